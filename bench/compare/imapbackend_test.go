package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeBodyIMAP serves scripted IMAP sessions on loopback: LOGIN with
// pass, SELECT INBOX, and UID FETCH 1:* (BODY.PEEK[]) answered with a
// literal of size bytes. cut > 0 closes the connection after cut bytes of
// the literal; failFetch answers the FETCH with NO.
func fakeBodyIMAP(t *testing.T, pass string, size, cut int, failFetch bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	chunk := []byte(strings.Repeat("x", 64<<10))
	serve := func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(c)
		w := bufio.NewWriter(c)
		defer w.Flush()
		fmt.Fprint(w, "* OK fake ready\r\n")
		w.Flush()
		for cmds := 0; cmds < 100; cmds++ { // bound on one session
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			tag, cmd, _ := strings.Cut(strings.TrimSpace(line), " ")
			switch {
			case strings.HasPrefix(cmd, "LOGIN "):
				if cmd != `LOGIN "alice" "`+pass+`"` {
					fmt.Fprintf(w, "%s NO bad login\r\n", tag)
				} else {
					fmt.Fprintf(w, "%s OK logged in\r\n", tag)
				}
			case cmd == "SELECT INBOX":
				fmt.Fprintf(w, "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n%s OK [READ-WRITE] done\r\n", tag)
			case cmd == "UID FETCH 1:* (BODY.PEEK[])":
				if failFetch {
					fmt.Fprintf(w, "%s NO no such message\r\n", tag)
					break
				}
				fmt.Fprintf(w, "* 1 FETCH (UID 4 BODY[] {%d}\r\n", size)
				limit := size
				if cut > 0 {
					limit = cut
				}
				for sent := 0; sent < limit; {
					k := min(len(chunk), limit-sent)
					w.Write(chunk[:k])
					sent += k
				}
				if cut > 0 {
					return
				}
				fmt.Fprintf(w, ")\r\n%s OK Fetch completed\r\n", tag)
			case cmd == "LOGOUT":
				fmt.Fprintf(w, "* BYE\r\n%s OK bye\r\n", tag)
				return
			default:
				fmt.Fprintf(w, "%s BAD unexpected\r\n", tag)
			}
			w.Flush()
		}
	}
	go func() {
		for conns := 0; conns < 10; conns++ { // bound: each test dials a few times
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

func TestIMAPBodyGets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const size = 3<<20 + 17 // over the read buffer, not a multiple of it
	addr := fakeBodyIMAP(t, "s3cret", size, 0, false)
	r, err := imapBodyGets(ctx, addr, "alice", "s3cret", 3, -1)
	if err != nil {
		t.Fatal(err)
	}
	if r.bytes != 3*size || r.elapsed <= 0 {
		t.Errorf("3 fetches: %d bytes in %v, want %d bytes", r.bytes, r.elapsed, 3*size)
	}
	if _, err := imapBodyGets(ctx, addr, "alice", "s3cret", 1, size); err != nil {
		t.Errorf("fetch with the right size: %v", err)
	}
	if _, err := imapBodyGets(ctx, addr, "alice", "s3cret", 1, size-1); err == nil {
		t.Error("size mismatch not reported")
	}
	if _, err := imapBodyGets(ctx, addr, "alice", "wrong", 1, -1); err == nil {
		t.Error("failed LOGIN not reported")
	}
}

func TestIMAPBodyGetsErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := imapBodyGets(ctx, fakeBodyIMAP(t, "p", 1<<20, 0, true), "alice", "p", 1, -1); err == nil ||
		!strings.Contains(err.Error(), "no such message") {
		t.Errorf("FETCH NO: err = %v", err)
	}
	if _, err := imapBodyGets(ctx, fakeBodyIMAP(t, "p", 1<<20, 1000, false), "alice", "p", 1, -1); err == nil {
		t.Error("connection closed inside the literal not reported")
	}
}

// TestStartDavmailIMAP checks the serve flags of the IMAP-backend process
// (a stand-in binary records them) and the refusal of a used data dir.
func TestStartDavmailIMAP(t *testing.T) {
	tmp := t.TempDir()
	b := &bench{o: &options{}, log: zerolog.Nop(), tmp: tmp}
	if _, _, err := b.startDavmailIMAP(context.Background(), "x", "127.0.0.1:1"); err == nil {
		t.Fatal("started without a davmail binary")
	}
	argsFile := filepath.Join(tmp, "args")
	script := "#!/bin/sh\necho \"$@\" > " + argsFile + "\n" +
		`echo '{"level":"info","addr":"127.0.0.1:4242","message":"listening"}'` + "\nexec sleep 20\n"
	b.bin = filepath.Join(tmp, "fake-davmail")
	if err := os.WriteFile(b.bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dm, dir, err := b.startDavmailIMAP(ctx, "flags", "127.0.0.1:143")
	if err != nil {
		t.Fatal(err)
	}
	dm.stop()
	if dm.base != "http://127.0.0.1:4242" {
		t.Errorf("base %q", dm.base)
	}
	got, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(string(got))
	flag := func(name string) string {
		for i, a := range args {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
		}
		return ""
	}
	if flag("--imap-upstream") != "127.0.0.1:143" || flag("--imap-tls") != "none" {
		t.Errorf("upstream flags missing: %q", args)
	}
	if u := flag("--users"); u == "" {
		t.Errorf("no --users in %q", args)
	} else if _, err := os.Stat(u); err == nil {
		t.Errorf("users file %s exists: login must be pass-through", u)
	}
	if d := flag("--data"); !strings.HasPrefix(d, dir) {
		t.Errorf("--data %q not under the run dir %q", d, dir)
	}
	// A leftover data dir (the next run's name) must be refused.
	next := filepath.Join(tmp, fmt.Sprintf("davmail-%02d-again", b.dmCount+1), "data")
	if err := os.MkdirAll(next, 0o755); err != nil {
		t.Fatal(err)
	}
	if dm, _, err := b.startDavmailIMAP(ctx, "again", "127.0.0.1:143"); err == nil {
		dm.stop()
		t.Error("a used data dir was accepted for a cold run")
	}
}
