package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/davmail/davmail/internal/config"
)

const configUsage = `Usage:
  davmail config check FILE
      validate a YAML config file as 'davmail serve --config FILE' reads
      it (without flags or environment): every error is reported with its
      line and an explanation of the setting. Exit status 0 when the file
      is good, 1 when it has errors.

The settings are listed by 'davmail serve --help' and docs/configuration.md.
`

func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, configUsage)
		return exitUsage
	}
	switch args[0] {
	case "check":
		if len(args) != 2 || len(args[1]) > 0 && args[1][0] == '-' {
			fmt.Fprintf(stderr, "davmail config check: want one file name\n\n%s", configUsage)
			return exitUsage
		}
		return configCheck(args[1], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, configUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "davmail config: unknown command %q\n\n%s", args[0], configUsage)
		return exitUsage
	}
}

// configCheck prints one block per problem: "file:line: setting: what is
// wrong", then what the setting is, its default and its variable.
func configCheck(path string, stdout, stderr io.Writer) int {
	errs := config.Check(path)
	if len(errs) == 0 {
		fmt.Fprintf(stdout, "%s: OK\n", path)
		return exitOK
	}
	for _, e := range errs {
		fmt.Fprintln(stderr, e.Error())
		if x := config.Explain(e.Setting); x != "" {
			fmt.Fprintf(stderr, "    %s\n", x)
		}
	}
	s := "s"
	if len(errs) == 1 {
		s = ""
	}
	fmt.Fprintf(stderr, "%s: %d error%s\n", path, len(errs), s)
	return exitError
}

const healthcheckUsage = `Usage:
  davmail healthcheck [--ready] [--url URL]

Probes the local server's /healthz (or /readyz with --ready) and exits 0
when it answers 200, 1 otherwise. Without --url the address and scheme
come from the same settings 'davmail serve' reads (DAVMAIL_LISTEN,
DAVMAIL_TLS_CERT, DAVMAIL_CONFIG...), so a container's HEALTHCHECK needs
no arguments. It is for images without curl (distroless).
`

// healthTimeout bounds the probe: Docker's default healthcheck timeout
// is 30 s; answering within 5 s or failing keeps the verdict quick.
const healthTimeout = 5 * time.Second

func runHealthcheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("davmail healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, healthcheckUsage) }
	ready := fs.Bool("ready", false, "probe /readyz instead of /healthz")
	target := fs.String("url", "", "URL to probe (default from the serve settings)")
	if err := fs.Parse(args); err != nil {
		return exitCodeFor(err)
	}
	if *target == "" {
		cfg, err := config.Load("davmail serve", nil, os.LookupEnv, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "davmail healthcheck: %v\n", err)
			return exitError
		}
		*target = probeURL(cfg, *ready)
	}
	client := &http.Client{
		Timeout: healthTimeout,
		Transport: &http.Transport{
			// The probe dials the server's own address, usually by IP,
			// which the certificate does not name: check liveness, not
			// the certificate.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
	}
	resp, err := client.Get(*target)
	if err != nil {
		fmt.Fprintf(stderr, "davmail healthcheck: %v\n", err)
		return exitError
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10)) // "ok\n" or a short reason
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "davmail healthcheck: %s: %s %q\n", *target, resp.Status, body)
		return exitError
	}
	fmt.Fprintf(stdout, "%s: %s", *target, body)
	return exitOK
}

// probeURL is the health URL of the server cfg describes, reached over
// loopback when it listens on every interface.
func probeURL(cfg config.Config, ready bool) string {
	host, port, _ := net.SplitHostPort(cfg.Listen) // Load validated it
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	path := "/healthz"
	if ready {
		path = "/readyz"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + path
}
