// Command compare benchmarks davmail against real peers from Debian in
// the same run on the same machine, and prints ratios of medians:
//
//   - a Depth 1 PROPFIND of a 100,000-message folder, warm, against Apache
//     httpd with mod_dav_fs serving the same Maildir cur/ directory;
//   - davmail's cold first listing of that folder (fresh index) against
//     Dovecot's cold IMAP "UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)"
//     (fresh index and control directories);
//   - davmail's peak RSS (VmHWM) while doing so;
//   - GET of a 200 MB message against Apache, then 8 parallel downloads
//     and davmail's peak RSS during them;
//   - GET of that message's decoded base64 attachment against Dovecot's
//     "UID FETCH BINARY.PEEK[2]" (RFC 3516), 8 parallel downloads' peak
//     RSS, and a Range request for its last MiB (issue 4);
//   - davmail over its IMAP backend in front of that Dovecot (issue 8,
//     -imap-backend=false skips): warm listing against davmail on the
//     Maildir, cold listing against Dovecot's cold FETCH, raw GET against
//     a streaming "UID FETCH BODY.PEEK[]" client, and peak RSS.
//
// Every server listens on 127.0.0.1 only; every loop is bounded in count
// (-runs) and in time (-timeout and per-request timeouts). Targets are
// printed as PASS/FAIL; the exit status reflects them only with -strict.
// See bench/README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/davmail/davmail/limits"
	"github.com/rs/zerolog"
)

type options struct {
	short, keep, strict, verbose bool
	runs                         int
	out                          string
	timeout                      time.Duration
	bigfolder                    int
	msgSize                      int64
	parallel                     int
	root, confDir, mkcorpusDir   string
	corpus                       string
	runUser                      string
	skipDavmail                  bool
	davmailBin                   string
	imapBackend                  bool
	// only names the groups of cases to run (listing, get, att, imap);
	// empty runs them all.
	only map[string]bool
}

// caseGroups are the names -only accepts.
var caseGroups = []string{"listing", "get", "att", "imap"}

// selected reports whether the group of cases named g is to run.
func (o *options) selected(g string) bool { return len(o.only) == 0 || o.only[g] }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	var msgSize string
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.short, "short", false, "smaller sizes for CI: a 20,000-message folder and a 20 MB message")
	fs.IntVar(&o.runs, "runs", 5, "timed runs of each measurement (median and min are reported)")
	fs.StringVar(&o.out, "out", "", "write the results as JSON to this file")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (corpus, configs, logs)")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when a target FAILs or a case errors")
	fs.BoolVar(&o.verbose, "v", false, "debug logging on stderr")
	fs.DurationVar(&o.timeout, "timeout", 90*time.Minute, "bound on the whole run")
	fs.IntVar(&o.bigfolder, "bigfolder", 0, "messages in the big folder (default 100000, 20000 with -short)")
	fs.StringVar(&msgSize, "msgsize", "", "size of the large message (default 200MB, 20MB with -short)")
	fs.IntVar(&o.parallel, "parallel", 8, "parallel downloads in the GET memory case")
	fs.StringVar(&o.root, "root", "", "davmail module root (default: found from the working directory)")
	fs.StringVar(&o.confDir, "conf", "", "config templates (default ROOT/bench/conf)")
	fs.StringVar(&o.mkcorpusDir, "mkcorpus", "", "mkcorpus source directory (default $DAVMAIL_MKCORPUS, ROOT/tools/mkcorpus or /work/shared/tools/mkcorpus)")
	fs.StringVar(&o.corpus, "corpus", "", "reuse a corpus made by mkcorpus -bigfolder N (its Bulk new/ is settled into cur/ and the large message added)")
	fs.StringVar(&o.runUser, "run-as", "www-data", "unprivileged user for Apache workers and Dovecot's mail processes when run as root")
	fs.StringVar(&o.davmailBin, "davmail-bin", "", "use this davmail binary instead of building ROOT/cmd/davmail")
	fs.BoolVar(&o.imapBackend, "imap-backend", true, "also measure davmail over its IMAP backend in front of Dovecot (issue 8)")
	fs.BoolVar(&o.skipDavmail, "peers-only", false, "measure Apache and Dovecot only (davmail cases report ERROR)")
	var only string
	fs.StringVar(&only, "only", "", "comma-separated groups of cases to run: "+strings.Join(caseGroups, ", ")+" (default all)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, g := range strings.FieldsFunc(only, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !slices.Contains(caseGroups, g) {
			fmt.Fprintf(stderr, "compare: -only: unknown group %q (groups: %s)\n", g, strings.Join(caseGroups, ", "))
			return 2
		}
		if o.only == nil {
			o.only = map[string]bool{}
		}
		o.only[g] = true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "compare: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if o.runs < 1 || o.runs > 100 { // 100: a bound, not a useful count
		fmt.Fprintln(stderr, "compare: -runs must be 1..100")
		return 2
	}
	if o.parallel < 1 || o.parallel > 64 { // 64: a bound on a 2-core benchmark
		fmt.Fprintln(stderr, "compare: -parallel must be 1..64")
		return 2
	}
	if o.bigfolder == 0 {
		o.bigfolder = 100000
		if o.short {
			o.bigfolder = 20000
		}
	}
	if msgSize == "" {
		msgSize = "200MB"
		if o.short {
			msgSize = "20MB"
		}
	}
	var err error
	if o.msgSize, err = limits.ParseSize(msgSize); err != nil || o.msgSize < 4096 {
		fmt.Fprintf(stderr, "compare: bad -msgsize %q\n", msgSize)
		return 2
	}

	level := zerolog.InfoLevel
	if o.verbose {
		level = zerolog.DebugLevel
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05", NoColor: !isTerminal(stderr)}).
		Level(level).With().Timestamp().Logger()

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	res, err := benchmark(ctx, log, &o)
	if err != nil {
		log.Error().Err(err).Msg("benchmark aborted")
		return 1
	}
	fmt.Fprintf(stdout, "\ndavmail comparative benchmark — %s, %s\n", res.Env.Date, res.Env.Summary())
	if err := printTable(stdout, res.Cases); err != nil {
		return 1
	}
	if o.out != "" {
		if err := writeJSON(o.out, res); err != nil {
			log.Error().Err(err).Msg("writing results")
			return 1
		}
		log.Info().Str("file", o.out).Msg("results written")
	}
	if o.strict {
		for _, c := range res.Cases {
			if c.Verdict == "FAIL" || c.Verdict == "ERROR" {
				return 1
			}
		}
	}
	return 0
}

// findModuleRoot walks up from the working directory to the davmail
// module's go.mod.
func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), "module github.com/davmail/davmail") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("davmail module root not found above the working directory; use -root")
		}
		dir = parent
	}
}

// findMkcorpus picks the mkcorpus source directory.
func findMkcorpus(o *options) (string, error) {
	cands := []string{o.mkcorpusDir}
	if o.mkcorpusDir == "" {
		cands = []string{os.Getenv("DAVMAIL_MKCORPUS"),
			filepath.Join(o.root, "tools", "mkcorpus"),
			filepath.Join(o.root, "internal", "mkcorpus"),
			"/work/shared/tools/mkcorpus"}
	}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(c, "main.go")); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("mkcorpus source not found (tried %q); use -mkcorpus", cands)
}

// randomSecret returns a fresh password for the benchmark user, so that no
// fixed credential is ever listening, even on loopback.
func randomSecret() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// isTerminal reports whether w is a character device (a terminal), to
// colour the progress log only there.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
