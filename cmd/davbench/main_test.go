package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/davmail/davmail/internal/davbench"
	"github.com/davmail/davmail/internal/davbench/davbenchtest"
)

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-h"}, exitOK, "Usage: davbench"},
		{nil, exitUsage, "-users or -users-file is required"},
		{[]string{"-users", "a:b", "-users-file", "x"}, exitUsage, "not both"},
		{[]string{"-users", "nopassword"}, exitUsage, "not name:password"},
		{[]string{"-users", "a:b", "-mix", "get=1,fly=2"}, exitUsage, "unknown operation"},
		{[]string{"-users", "a:b", "-url", "http://192.0.2.1:8080"}, exitUsage, "not a loopback address"},
		{[]string{"-users", "a:b", "-url", "http://[2001:db8::1]:8080"}, exitUsage, "not a loopback address"},
		{[]string{"-users", "a:b", "-url", "ftp://127.0.0.1/"}, exitUsage, "want http"},
		{[]string{"-users", "a:b", "-duration", "0s"}, exitUsage, "must be positive"},
		{[]string{"-users", "a:b", "extra"}, exitUsage, "unexpected argument"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("davbench %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}

// TestCommand runs the command for two seconds against a real server,
// with the users in a file and the results also written as JSON.
func TestCommand(t *testing.T) {
	srv := davbenchtest.Start(t, map[string]string{"alice": "a:1", "bob": "b 2"}, nil)
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("# davbench users\nalice:a:1\n\nbob:b 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "result.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // bounded: the run takes ~3 s
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-url", srv.URL, "-users-file", users, "-clients", "4", "-duration", "2s", "-seed", "3", "-json", out}, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"4 clients, 2 users", "propfind", "unlock", "p99 ms", "consistency: OK", "PASS"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res davbench.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("JSON: %v\n%s", err, b)
	}
	if !res.Passed || res.Clients != 4 || res.Seed != 3 || len(res.Ops) != 8 || res.Total.OK == 0 || res.Check.Messages == 0 {
		t.Errorf("JSON result: %s", b)
	}

	// A wrong password stops the run before any load, with a clear message.
	stdout.Reset()
	stderr.Reset()
	code = run(ctx, []string{"-url", srv.URL, "-users", "alice:wrong", "-duration", "1s"}, &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "login refused") {
		t.Errorf("wrong password: exit %d, stderr %q", code, stderr.String())
	}
}
