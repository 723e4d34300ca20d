package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// litmus 0.13 (Debian 12's litmus package) prints one line per test:
//
//	 3. propfind_invalid2..... FAIL (PROPFIND with invalid namespace ...)
//
// preceded by a progress copy of the same text ending in "\r"; a test
// that warns prints "WARNING: ..." and continues its line on the next
// one, indented with dots. Each suite starts with "-> running `name':"
// and ends with
//
//	<- summary for `name': of 16 tests run: 16 passed, 0 failed. 100.0%
//
// Skipped tests (the rest of a group after a failure) are listed as
// SKIPPED and not counted in "tests run".

// litmusTest is the outcome of one litmus test.
type litmusTest struct {
	Suite    string
	Num      int
	Name     string
	Status   string // "pass", "FAIL", "SKIPPED", or "" when litmus printed none
	Reason   string // why it failed, as litmus says it
	Warnings []string
}

func (r litmusTest) String() string {
	return fmt.Sprintf("%s %d. %s", r.Suite, r.Num, r.Name)
}

// litmusSummary is one suite's summary line.
type litmusSummary struct {
	Run, Passed, Failed int
}

// litmusReport is the parsed output of a litmus run.
type litmusReport struct {
	Suites    []string // in the order litmus ran them
	Tests     []litmusTest
	Summaries map[string]litmusSummary
}

var (
	litmusRunning = regexp.MustCompile("^-> running `([^']+)':$")
	litmusSummRe  = regexp.MustCompile("^<- summary for `([^']+)': of ([0-9]+) tests run: ([0-9]+) passed, ([0-9]+) failed\\.")
	// A test line: number, name, dots padding the name to 20 columns (none
	// when it is longer), then what follows.
	litmusTestRe = regexp.MustCompile(`^\s*([0-9]+)\. ([A-Za-z0-9_]+)\.*\s*(.*)$`)
	// A continuation line after a warning: indentation and dots.
	litmusContRe = regexp.MustCompile(`^\s+\.{3,}\s*(.*)$`)
)

// maxLitmusTests caps the tests kept from one output: litmus 0.13 has
// 104; the cap only bounds what garbage input can make us allocate.
const maxLitmusTests = 10000

// parseLitmus parses litmus's standard output.
func parseLitmus(out string) *litmusReport {
	rep := &litmusReport{Summaries: map[string]litmusSummary{}}
	suite := ""
	var cur *litmusTest
	for _, line := range strings.Split(out, "\n") {
		// Keep what is left after the progress display's carriage
		// returns: the final text of the line.
		if i := strings.LastIndexByte(line, '\r'); i >= 0 {
			line = line[i+1:]
		}
		line = strings.TrimRight(line, " \t")
		if m := litmusRunning.FindStringSubmatch(line); m != nil {
			suite, cur = m[1], nil
			rep.Suites = append(rep.Suites, suite)
			continue
		}
		if m := litmusSummRe.FindStringSubmatch(line); m != nil {
			run, _ := strconv.Atoi(m[2])
			passed, _ := strconv.Atoi(m[3])
			failed, _ := strconv.Atoi(m[4])
			rep.Summaries[m[1]] = litmusSummary{Run: run, Passed: passed, Failed: failed}
			cur = nil
			continue
		}
		rest, cont := line, false
		if m := litmusContRe.FindStringSubmatch(line); m != nil {
			rest, cont = m[1], true
		}
		switch m := litmusTestRe.FindStringSubmatch(rest); {
		case m != nil && len(rep.Tests) < maxLitmusTests:
			n, _ := strconv.Atoi(m[1])
			rep.Tests = append(rep.Tests, litmusTest{Suite: suite, Num: n, Name: m[2]})
			cur = &rep.Tests[len(rep.Tests)-1]
			cur.setOutcome(m[3])
		case m == nil && cont && cur != nil:
			cur.setOutcome(rest)
		default:
			// Not about a test: "-> 7 tests were skipped.", "See
			// debug.log ...", or a test over the cap.
			cur = nil
		}
	}
	return rep
}

// setOutcome records what follows a test's name: a status, or a warning
// (the status then comes on a continuation line).
func (r *litmusTest) setOutcome(s string) {
	switch {
	case s == "":
	case strings.HasPrefix(s, "WARNING:"):
		r.Warnings = append(r.Warnings, strings.TrimSpace(strings.TrimPrefix(s, "WARNING:")))
	case strings.HasPrefix(s, "pass"):
		r.Status, r.Reason = "pass", ""
	case strings.HasPrefix(s, "FAIL"):
		r.Status = "FAIL"
		reason := strings.TrimSpace(strings.TrimPrefix(s, "FAIL"))
		if strings.HasPrefix(reason, "(") && strings.HasSuffix(reason, ")") {
			reason = reason[1 : len(reason)-1]
		}
		r.Reason = reason
	case strings.HasPrefix(s, "SKIPPED"):
		r.Status, r.Reason = "SKIPPED", ""
	}
}

// count returns the number of tests of suite with the given status ("" for
// all listed).
func (rep *litmusReport) count(suite, status string) int {
	n := 0
	for _, r := range rep.Tests {
		if r.Suite == suite && (status == "" || r.Status == status) {
			n++
		}
	}
	return n
}

// TestParseLitmus checks the parser on a real litmus 0.13 run against
// golang.org/x/net/webdav's in-memory file system, which fails three
// tests, skips seven and warns once.
func TestParseLitmus(t *testing.T) {
	out, err := os.ReadFile("testdata/litmus-xnet-webdav.txt")
	if err != nil {
		t.Fatal(err)
	}
	rep := parseLitmus(string(out))
	if got, want := strings.Join(rep.Suites, " "), "basic copymove props locks http"; got != want {
		t.Errorf("suites %q, want %q", got, want)
	}
	wantSumm := map[string]litmusSummary{
		"basic":    {16, 16, 0},
		"copymove": {13, 13, 0},
		"props":    {30, 29, 1},
		"locks":    {34, 32, 2},
		"http":     {4, 4, 0},
	}
	for s, w := range wantSumm {
		if g := rep.Summaries[s]; g != w {
			t.Errorf("summary %s = %+v, want %+v", s, g, w)
		}
		if got := rep.count(s, "pass") + rep.count(s, "FAIL"); got != w.Run {
			t.Errorf("%s: parsed %d run tests, summary says %d", s, got, w.Run)
		}
		if got := rep.count(s, ""); got != litmus013Tests[s] {
			t.Errorf("%s: parsed %d tests, litmus 0.13 has %d", s, got, litmus013Tests[s])
		}
	}
	var failed []string
	for _, r := range rep.Tests {
		if r.Status == "FAIL" {
			failed = append(failed, r.String()+": "+r.Reason)
		}
		if r.Status == "" {
			t.Errorf("%v: no status parsed", r)
		}
	}
	wantFailed := []string{
		"props 3. propfind_invalid2: PROPFIND with invalid namespace declaration in body (see FAQ) got 207 response not 400",
		"locks 20. fail_complex_cond_put: PUT with complex bogus conditional should fail with 412: 201 Created",
		"locks 23. lock_shared: LOCK on `/exchange/alice/Inbox/litmus/lockme': 501 Not Implemented",
	}
	if strings.Join(failed, "\n") != strings.Join(wantFailed, "\n") {
		t.Errorf("failed tests:\n%s\nwant:\n%s", strings.Join(failed, "\n"), strings.Join(wantFailed, "\n"))
	}
	if n := rep.count("locks", "SKIPPED"); n != 7 {
		t.Errorf("%d skipped in locks, want 7", n)
	}
	var warned []string
	for _, r := range rep.Tests {
		for _, w := range r.Warnings {
			warned = append(warned, r.String()+": "+w)
		}
	}
	if want := "locks 18. cond_put_corrupt_token: PUT failed with 412 not 423"; strings.Join(warned, "\n") != want {
		t.Errorf("warnings %q, want %q", warned, want)
	}
	// The test after the warning, printed on the warning's continuation
	// line, must not be lost.
	found := false
	for _, r := range rep.Tests {
		if r.Suite == "locks" && r.Num == 19 && r.Name == "complex_cond_put" && r.Status == "pass" {
			found = true
		}
	}
	if !found {
		t.Error("locks 19. complex_cond_put (after a warning) not parsed as pass")
	}
}

// TestLitmusTraces checks the extraction of a test's HTTP exchanges from
// litmus's debug.log (an excerpt of the run above).
func TestLitmusTraces(t *testing.T) {
	got := litmusTraces(t, "testdata/litmus-debug-excerpt.log")
	want := map[string][]string{
		"props: 3": {"PROPFIND /exchange/alice/Inbox/litmus/ → 207 Multi-Status"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("traces %q, want %q", got, want)
	}
}

// FuzzParseLitmus checks that the parser never panics and keeps its
// invariants on arbitrary output.
func FuzzParseLitmus(f *testing.F) {
	if b, err := os.ReadFile("testdata/litmus-xnet-webdav.txt"); err == nil {
		f.Add(string(b))
	}
	f.Add("-> running `basic':\n\r 0. init.................. \r 0. init.................. FAIL (connection refused)\n<- summary for `basic': of 1 tests run: 0 passed, 1 failed. 0.0%\n")
	f.Add(" 18. cond_put_corrupt_token WARNING: x\n    ...................... pass (with 1 warning)\n    ...................... 19. complex_cond_put...... pass\n")
	f.Add("    ...... FAIL ()\n1. a\n")
	f.Fuzz(func(t *testing.T, out string) {
		rep := parseLitmus(out)
		if len(rep.Tests) > maxLitmusTests {
			t.Fatalf("%d tests kept, cap %d", len(rep.Tests), maxLitmusTests)
		}
		for _, r := range rep.Tests {
			switch r.Status {
			case "", "pass", "FAIL", "SKIPPED":
			default:
				t.Fatalf("status %q", r.Status)
			}
			if r.Reason != "" && r.Status != "FAIL" {
				t.Fatalf("reason %q on a %q test", r.Reason, r.Status)
			}
			if r.Name == "" {
				t.Fatal("test without a name")
			}
		}
	})
}
