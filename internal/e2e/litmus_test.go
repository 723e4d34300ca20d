package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// litmusSuites are litmus's five suites, in its default order.
var litmusSuites = []string{"basic", "copymove", "props", "locks", "http"}

// litmus013Tests is the number of tests each suite of litmus 0.13 lists,
// 104 in all; Apache mod_dav passes every one.
var litmus013Tests = map[string]int{"basic": 16, "copymove": 13, "props": 30, "locks": 41, "http": 4}

// TestLitmus runs the litmus WebDAV compliance suite (all five suites)
// against alice's Inbox and fails listing every test that did not pass,
// with litmus's reason and the HTTP exchanges of that test.
func TestLitmus(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "litmus", "litmus")
	ts := startServer(t, serverOptions{})
	dir := t.TempDir() // litmus writes debug.log and child.log here
	target := ts.URL + folderPath("alice", "INBOX")
	start := time.Now()
	res := runTool(t, toolOpts{
		Dir:     dir,
		Env:     []string{"TESTS=" + strings.Join(litmusSuites, " ")},
		Timeout: 5 * time.Minute, // a passing run takes ~2 s; hung tests end here
	}, bin, "-k", target, "alice", ts.Passwords["alice"])
	t.Logf("litmus %s ran in %v", target, time.Since(start).Round(time.Millisecond))
	keepLitmusArtifacts(t, dir, res.Stdout)
	if res.Err != nil {
		// litmus -k exits 0 whatever the results; an error is a crash or
		// a timeout, and the parse below says what ran.
		t.Errorf("litmus: %v\nstderr: %s", res.Err, res.Stderr)
	}
	rep := parseLitmus(res.Stdout)

	version := strings.TrimSpace(runTool(t, toolOpts{}, bin, "--version").Stdout)
	known := version == "litmus 0.13"
	if !known {
		t.Logf("litmus version %q: per-suite test counts not checked (they are known for 0.13)", version)
	}
	total, run, passed := 0, 0, 0
	for _, s := range litmusSuites {
		sum, ok := rep.Summaries[s]
		listed := rep.count(s, "")
		if !ok {
			t.Errorf("litmus suite %s printed no summary (did not run or crashed); %d tests listed", s, listed)
			continue
		}
		t.Logf("litmus %-8s of %2d tests run: %2d passed, %2d failed; %2d skipped",
			s, sum.Run, sum.Passed, sum.Failed, rep.count(s, "SKIPPED"))
		if p, f := rep.count(s, "pass"), rep.count(s, "FAIL"); p != sum.Passed || f != sum.Failed {
			t.Errorf("litmus %s: parsed %d passed, %d failed but its summary says %d, %d (parser out of step with litmus output)",
				s, p, f, sum.Passed, sum.Failed)
		}
		if want := litmus013Tests[s]; known && listed != want {
			t.Errorf("litmus %s listed %d tests, litmus 0.13 has %d: a failure stopped the suite early", s, listed, want)
		}
		total += listed
		run += sum.Run
		passed += sum.Passed
	}
	t.Logf("litmus total: %d of %d tests passed (%d run)", passed, total, run)
	if known && total != 104 {
		t.Errorf("litmus listed %d tests in all, want 104", total)
	}

	for _, r := range rep.Tests {
		for _, w := range r.Warnings {
			t.Logf("litmus warning: %v: %s", r, w)
		}
	}
	traces := litmusTraces(t, filepath.Join(dir, "debug.log"))
	var bad []string
	for _, r := range rep.Tests {
		if r.Status == "pass" {
			continue
		}
		line := fmt.Sprintf("%v: %s", r, r.Status)
		switch {
		case r.Reason != "":
			line += ": " + r.Reason
		case r.Status == "SKIPPED":
			line += " (an earlier test of its group failed)"
		case r.Status == "":
			line += "no result printed"
		}
		for _, x := range traces[fmt.Sprintf("%s: %d", r.Suite, r.Num)] {
			line += "\n        " + x
		}
		bad = append(bad, line)
	}
	if len(bad) > 0 {
		t.Errorf("litmus: %d tests did not pass:\n    %s", len(bad), strings.Join(bad, "\n    "))
	}
}

var (
	// Lines of litmus's debug.log (neon's trace): the request line, the
	// X-Litmus header naming the test ("X-Litmus: props: 3 (name)") and
	// the response status line.
	traceRequest = regexp.MustCompile(`^([A-Z][A-Z-]*) (\S+) HTTP/1\.[01]$`)
	traceTest    = regexp.MustCompile(`^X-Litmus: ([a-z0-9]+: [0-9]+) \(`)
	traceStatus  = regexp.MustCompile(`^\[status-line\] < HTTP/1\.[01] (.*)$`)
)

// maxTrace caps the exchanges shown per failed test: the failing one is
// among the first few, and locks tests send a dozen at most.
const maxTrace = 16

// litmusTraces reads litmus's debug.log and returns, per test ("props: 3"),
// its requests and their statuses: "PROPFIND /path → 207 Multi-Status".
func litmusTraces(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("no litmus debug.log: %v", err)
		return nil
	}
	out := map[string][]string{}
	var req, test string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if m := traceRequest.FindStringSubmatch(line); m != nil {
			req, test = m[1]+" "+m[2], ""
		} else if m := traceTest.FindStringSubmatch(line); m != nil && req != "" {
			test = m[1]
		} else if m := traceStatus.FindStringSubmatch(line); m != nil && test != "" {
			if len(out[test]) < maxTrace {
				out[test] = append(out[test], req+" → "+m[1])
			}
			req, test = "", ""
		}
	}
	return out
}

// keepLitmusArtifacts copies litmus's output and debug.log to
// $E2E_ARTIFACTS/litmus/ when that variable is set, for a look at the
// full HTTP traces after the temporary directory is gone.
func keepLitmusArtifacts(t *testing.T, dir, stdout string) {
	t.Helper()
	base := os.Getenv("E2E_ARTIFACTS")
	if base == "" {
		return
	}
	dst := filepath.Join(base, "litmus")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Logf("E2E_ARTIFACTS: %v", err)
		return
	}
	if err := os.WriteFile(filepath.Join(dst, "output.txt"), []byte(stdout), 0o644); err != nil {
		t.Logf("E2E_ARTIFACTS: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "debug.log")); err == nil {
		if err := os.WriteFile(filepath.Join(dst, "debug.log"), b, 0o644); err != nil {
			t.Logf("E2E_ARTIFACTS: %v", err)
		}
	}
	t.Logf("litmus output and debug.log kept in %s", dst)
}
