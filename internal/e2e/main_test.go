package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// built holds the binaries this test binary builds once (mkcorpus). It
// is created lazily by the first test that needs it and removed by
// TestMain.
var built struct {
	once     sync.Once
	dir      string
	mkcorpus string
	err      error
	// missing is set when the mkcorpus sources are absent (no ../shared
	// beside the repository): the tests skip locally, fail in CI.
	missing bool
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// inCI reports whether the tests run in CI, where every peer must be
// present (scripts/test.sh installs them) and nothing may skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// needTool returns the path of an external program the test drives, or
// stops the test: t.Fatalf in CI, t.Skipf with the install command
// otherwise.
func needTool(t *testing.T, name, debianPkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if inCI() {
		t.Fatalf("%s not installed but CI=true: scripts/test.sh must install it (apt-get install %s)", name, debianPkg)
	}
	t.Skipf("%s not installed: apt-get install %s (or run scripts/test.sh as root)", name, debianPkg)
	return ""
}

// repoRoot finds the module root by walking up from the test's working
// directory (the package directory) to the go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("go.mod not found above the test directory")
		}
		dir = up
	}
}

// mkcorpusBinary builds ../shared/tools/mkcorpus once per test binary and
// returns the path of the executable.
func mkcorpusBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		root, err := repoRoot()
		if err != nil {
			built.err = err
			return
		}
		src := filepath.Join(root, "..", "shared", "tools", "mkcorpus")
		if _, err := os.Stat(filepath.Join(src, "go.mod")); err != nil {
			built.missing = true
			built.err = fmt.Errorf("mkcorpus sources not found at %s: %w", src, err)
			return
		}
		built.dir, err = os.MkdirTemp("", "davmail-e2e-bin-")
		if err != nil {
			built.err = err
			return
		}
		exe := filepath.Join(built.dir, "mkcorpus")
		// Two minutes: a cold build that downloads golang.org/x/text
		// takes well under one on a CI runner.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-o", exe, ".")
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("building mkcorpus in %s: %v\n%s", src, err, out)
			return
		}
		built.mkcorpus = exe
	})
	if built.err != nil {
		if built.missing && !inCI() {
			t.Skipf("%v (the e2e tests need the shared tools checked out beside the repository)", built.err)
		}
		t.Fatal(built.err)
	}
	return built.mkcorpus
}

// toolOpts describe one run of an external program.
type toolOpts struct {
	Dir     string        // working directory ("" = the test's)
	Env     []string      // added to the environment
	Stdin   string        // fed to standard input
	Timeout time.Duration // 0 = one minute
}

// toolResult is what an external program printed and how it ended.
type toolResult struct {
	Stdout, Stderr string
	Err            error // nil on exit status 0
}

// runTool runs an external program, killing its whole process group when
// the timeout expires.
func runTool(t *testing.T, o toolOpts, name string, args ...string) toolResult {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	ownProcessGroup(cmd)
	// Five seconds for the pipes to drain after a kill.
	cmd.WaitDelay = 5 * time.Second
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.Stdin = strings.NewReader(o.Stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out after %v: %w", filepath.Base(name), o.Timeout, err)
	}
	return toolResult{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}
