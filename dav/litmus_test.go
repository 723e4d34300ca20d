package dav_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/davmail/davmail/dav"
)

// TestLitmusMemstore runs the litmus WebDAV compliance suite against the
// handler over the in-memory store: the handler's own conformance,
// independent of the Maildir backend (internal/e2e runs it again through
// the whole server on Maildir).
func TestLitmusMemstore(t *testing.T) {
	bin, err := exec.LookPath("litmus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("litmus is not installed; scripts/test.sh installs it in CI")
		}
		t.Skip("litmus not installed: apt-get install litmus")
	}
	ts := newTestServer(t, dav.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, ts.URL+"/exchange/alice/Inbox/", "alice", "alice-pw")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "TESTS=basic copymove props locks http")
	out, _ := cmd.CombinedOutput()
	text := string(out)
	sum := regexp.MustCompile(`summary for .(\w+).: of (\d+) tests run: (\d+) passed, (\d+) failed`)
	total, failed := 0, 0
	for _, m := range sum.FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[2])
		f, _ := strconv.Atoi(m[4])
		total += n
		failed += f
		t.Logf("litmus %-9s %s tests, %s passed, %s failed", m[1], m[2], m[3], m[4])
	}
	suites := len(sum.FindAllStringSubmatch(text, -1))
	if total == 0 || failed > 0 || suites != 5 {
		for _, f := range regexp.MustCompile(`\d+\.\s*\w+\.*\s*(FAIL|WARNING)[^\n]*`).FindAllString(text, -1) {
			t.Errorf("litmus: %s", f)
		}
		t.Errorf("litmus: %d suites of 5 ran, %d tests, %d failed", suites, total, failed)
		t.Logf("litmus output:\n%s", text)
	}
}
