// Command gen writes docs/configuration.md from the settings table of
// package config. Run it with `go generate ./internal/config`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/davmail/davmail/internal/config"
)

func main() {
	out := flag.String("o", "", "output file (default standard output)")
	flag.Parse()
	doc := config.Markdown()
	if *out == "" {
		fmt.Print(doc)
		return
	}
	if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
