// Command davmail is a WebDAV gateway to Maildir mailboxes.
//
// Usage:
//
//	davmail                      first run: serve with defaults and a demo account
//	davmail serve [flags]        serve (see davmail serve --help for the settings)
//	davmail user add [--users FILE] [--role admin] [--replace] [--cost N] NAME
//	davmail user del [--users FILE] NAME
//	davmail user list [--users FILE]
//	davmail config check FILE
//	davmail healthcheck [--ready] [--url URL]
//	davmail version
//	davmail help
//
// The settings are documented in docs/configuration.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/davmail/davmail/mailbox"
	"github.com/davmail/davmail/mailbox/maildir"
)

// The backend served must implement the store interface the handlers
// consume (style.md: interface guards live where no import cycle forms).
var _ mailbox.Store = (*maildir.Store)(nil)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module's build info.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line was wrong (the flag package's convention)
)

const usage = `davmail is a WebDAV gateway to Maildir mailboxes.

Usage:
  davmail                 first run: serve with the defaults and, if there are
                          no users yet, create a demo account and print its
                          password
  davmail serve [flags]   serve; 'davmail serve --help' lists the settings
  davmail user add [--users FILE] [--role admin] [--replace] [--cost N] NAME
                          add a user (or change one with --replace); the
                          password is read from standard input, one line
  davmail user del [--users FILE] NAME
                          delete a user
  davmail user list [--users FILE]
                          list the users and their roles
  davmail config check FILE
                          validate a config file; each error with its line
  davmail healthcheck [--ready] [--url URL]
                          probe the local server's /healthz (container
                          HEALTHCHECK); exit 0 when healthy
  davmail version         print the version
  davmail help            print this help

Settings come from flags, DAVMAIL_* environment variables and a YAML file
(--config); see 'davmail serve --help' and docs/configuration.md.
`

// run is main without the process: it returns the exit code, so tests
// can drive every command in-process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return runServe(nil, true, stdout, stderr)
	}
	switch cmd := args[0]; cmd {
	case "serve":
		return runServe(args[1:], false, stdout, stderr)
	case "user":
		return runUser(args[1:], stdin, stdout, stderr)
	case "config":
		return runConfig(args[1:], stdout, stderr)
	case "healthcheck":
		return runHealthcheck(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "davmail %s (%s, %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			switch args[1] {
			case "serve":
				return runServe([]string{"--help"}, false, stdout, stderr)
			case "user":
				fmt.Fprint(stdout, userUsage)
				return exitOK
			case "config":
				fmt.Fprint(stdout, configUsage)
				return exitOK
			case "healthcheck":
				fmt.Fprint(stdout, healthcheckUsage)
				return exitOK
			}
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		if len(cmd) > 1 && cmd[0] == '-' {
			// "davmail --listen :8080": flags without a command are serve's.
			return runServe(args, false, stdout, stderr)
		}
		fmt.Fprintf(stderr, "davmail: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// exitCodeFor maps a flag parsing error to the exit code.
func exitCodeFor(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}
