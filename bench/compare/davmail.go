package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// buildDavmail builds ./cmd/davmail of the module at root into binDir.
func buildDavmail(ctx context.Context, root, binDir string) (string, error) {
	bin := filepath.Join(binDir, "davmail")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/davmail")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/davmail: %w\n%s", err, tail(b))
	}
	return bin, nil
}

// addDavmailUser runs "davmail user add --users FILE NAME" with the
// password on stdin.
func addDavmailUser(ctx context.Context, bin, usersFile, name, pass string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute) // bcrypt takes < 1 s
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "user", "add", "--users", usersFile, name)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(pass + "\n")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("davmail user add: %w\n%s", err, tail(b))
	}
	return nil
}

// davmailServer is a running "davmail serve" process.
type davmailServer struct {
	proc    *proc
	base    string    // http://127.0.0.1:port
	started time.Time // just before exec
	ready   time.Time // when the addr log line was read
}

// davmailOpts are the serve flags the benchmark varies.
type davmailOpts struct {
	bin, maildirRoot, usersFile, dataDir, logFile string
	maxMessage, maxResponse                       string
	extra                                         []string // more serve flags (e.g. --imap-upstream)
}

// startDavmail starts "davmail serve --listen 127.0.0.1:0 …" and waits for
// the log line carrying the bound address (field "addr").
func startDavmail(ctx context.Context, log zerolog.Logger, o davmailOpts) (*davmailServer, error) {
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return nil, err
	}
	args := []string{"serve", "--listen", "127.0.0.1:0",
		"--maildir-root", o.maildirRoot, "--users", o.usersFile, "--data", o.dataDir}
	if o.maxMessage != "" {
		args = append(args, "--max-message-size", o.maxMessage)
	}
	if o.maxResponse != "" {
		args = append(args, "--max-response-size", o.maxResponse)
	}
	args = append(args, o.extra...)
	cmd := exec.Command(o.bin, args...)
	cmd.Env = cleanEnv()
	logf, err := os.Create(o.logFile)
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.Stderr = logf
	started := time.Now()
	p, err := startProc(log, "davmail", cmd)
	if err != nil {
		logf.Close()
		return nil, err
	}
	// Copy stdout to the log file, picking out the first "addr".
	addrc := make(chan string, 1)
	go func() {
		defer logf.Close()
		scanAddr(stdout, logf, addrc)
	}()
	const readyTimeout = 60 * time.Second // startup, not indexing, is timed here
	select {
	case addr := <-addrc:
		ready := time.Now()
		log.Debug().Str("addr", addr).Int("pid", p.pid()).
			Float64("startup_s", ready.Sub(started).Seconds()).Msg("davmail ready")
		return &davmailServer{proc: p, base: "http://" + addr, started: started, ready: ready}, nil
	case <-p.exited:
		b, _ := os.ReadFile(o.logFile)
		return nil, fmt.Errorf("davmail exited before listening (%v):\n%s", p.err, tail(b))
	case <-time.After(readyTimeout):
		p.stop()
		return nil, fmt.Errorf("davmail: no addr logged within %s", readyTimeout)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

// scanAddr copies log lines from r to w and sends the first "addr" field
// of a JSON log line (zerolog) to addrc. Lines are capped at 1 MiB.
func scanAddr(r io.Reader, w io.Writer, addrc chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20) // log lines are < 1 KiB
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		w.Write(line)
		w.Write([]byte{'\n'})
		if sent {
			continue
		}
		if addr, ok := addrFromLog(line); ok {
			addrc <- addr
			sent = true
		}
	}
	// Drain the rest so the server never blocks on a full pipe.
	if sc.Err() != nil {
		io.Copy(w, r)
	}
}

// addrFromLog extracts a loopback "addr" from a zerolog JSON line.
func addrFromLog(line []byte) (string, bool) {
	var rec struct {
		Addr string `json:"addr"`
	}
	if err := json.Unmarshal(line, &rec); err != nil || rec.Addr == "" {
		return "", false
	}
	// Only accept a concrete loopback host:port.
	if !strings.HasPrefix(rec.Addr, "127.0.0.1:") || strings.HasSuffix(rec.Addr, ":0") {
		return "", false
	}
	return rec.Addr, true
}

func (d *davmailServer) stop() {
	if d != nil {
		d.proc.stop()
	}
}

func (d *davmailServer) peakRSS() (int64, error) {
	if d == nil {
		return 0, errors.New("davmail not running")
	}
	return vmHWM(d.proc.pid())
}

// cleanEnv is the environment without DAVMAIL_* variables, so a setting
// or config file in the caller's environment cannot change what is
// benchmarked: only the flags given here apply.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DAVMAIL_") {
			env = append(env, kv)
		}
	}
	return env
}
