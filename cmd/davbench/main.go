// Command davbench is a seeded, time-boxed load generator for davmail, in
// the spirit of Dovecot's imaptest: N clients mix PROPFIND, GET, PUT,
// MOVE, PROPPATCH, SEARCH and LOCK against a running server for a fixed
// time, then check that every acknowledged write is there, once, intact.
//
// Usage:
//
//	davbench -url http://127.0.0.1:8080 -users alice:pw,bob:pw -clients 8 -duration 30s -seed 1
//
// It prints a table (per operation: count, throughput, p50/p99 latency,
// errors by status, throttling) and the consistency result, and exits 1
// on any inconsistency or unexpected 5xx. See docs/davbench.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/davmail/davmail/internal/davbench"
	"github.com/rs/zerolog"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // inconsistencies or unexpected 5xx
	exitUsage = 2 // bad command line, or the benchmark could not run
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process.
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("davbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		rawURL      = fs.String("url", "http://127.0.0.1:8080", "davmail's base URL (loopback only unless -allow-remote)")
		users       = fs.String("users", "", "users as name:password,name:password")
		usersFile   = fs.String("users-file", "", "file of name:password lines (instead of -users)")
		clients     = fs.Int("clients", 8, "concurrent clients; client i logs in as user i mod len(users)")
		duration    = fs.Duration("duration", 30*time.Second, "how long the load runs")
		seed        = fs.Uint64("seed", 1, "seed of every client's random choices")
		mix         = fs.String("mix", davbench.DefaultMix().String(), "operation weights")
		timeout     = fs.Duration("timeout", 30*time.Second, "limit on one request; slower answers count as transport errors")
		shared      = fs.String("folder", "Inbox", "folder of each mailbox that PROPFIND and GET also read (\"\" for none)")
		prefix      = fs.String("prefix", "/exchange/", "where the server mounts the mailboxes")
		allowRemote = fs.Bool("allow-remote", false, "accept a server that is not on loopback")
		keep        = fs.Bool("keep", false, "keep the scratch folders after the run")
		jsonOut     = fs.String("json", "", "also write the results as JSON to this file (- for stdout)")
		verbose     = fs.Bool("v", false, "log progress and every transport error")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: davbench -users NAME:PW[,…] [flags]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "davbench: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	cfg := davbench.Config{
		URL: *rawURL, Clients: *clients, Duration: *duration, Seed: *seed, Timeout: *timeout,
		AllowRemote: *allowRemote, Keep: *keep, SharedFolder: *shared, Prefix: *prefix,
	}
	var err error
	if cfg.Mix, err = davbench.ParseMix(*mix); err != nil {
		fmt.Fprintf(stderr, "davbench: %v\n", err)
		return exitUsage
	}
	switch {
	case *users != "" && *usersFile != "":
		err = errors.New("give -users or -users-file, not both")
	case *users != "":
		cfg.Users, err = davbench.ParseUsers(*users)
	case *usersFile != "":
		cfg.Users, err = readUsersFile(*usersFile)
	default:
		err = errors.New("-users or -users-file is required")
	}
	if err != nil {
		fmt.Fprintf(stderr, "davbench: %v\n", err)
		return exitUsage
	}
	if *duration <= 0 || *clients <= 0 {
		fmt.Fprintf(stderr, "davbench: -duration and -clients must be positive\n")
		return exitUsage
	}
	level := zerolog.WarnLevel
	if *verbose {
		level = zerolog.DebugLevel
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05", NoColor: true}).Level(level).With().Timestamp().Logger()

	res, err := davbench.Run(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "davbench: %v\n", err)
		return exitUsage
	}
	if err := res.WriteTable(stdout); err != nil {
		fmt.Fprintf(stderr, "davbench: %v\n", err)
		return exitUsage
	}
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, stdout, res); err != nil {
			fmt.Fprintf(stderr, "davbench: %v\n", err)
			return exitUsage
		}
	}
	if !res.Passed {
		return exitFail
	}
	return exitOK
}

func readUsersFile(path string) ([]davbench.User, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	u, err := davbench.ReadUsers(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

func writeJSON(path string, stdout io.Writer, res *davbench.Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
