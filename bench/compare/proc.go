package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// freePort asks the kernel for a free loopback port. The listener is closed
// before the port is handed to Apache or Dovecot, which cannot take an
// inherited socket; the small race is handled by the callers' start retry.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP polls addr until it accepts a connection, the process exits
// (exited is closed) or ctx ends. No sleeps for readiness: a short backoff
// between bounded attempts.
func waitTCP(ctx context.Context, addr string, exited <-chan struct{}) error {
	const maxAttempts = 2000 // with the 10 ms backoff, at most ~20 s
	var d net.Dialer
	for i := 0; i < maxAttempts; i++ {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return fmt.Errorf("process exited before listening on %s", addr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not listening after %d attempts", addr, maxAttempts)
}

// proc is a child process started by the harness, in its own process group
// so that its workers (Apache children, Dovecot services) stop with it.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // set before exited is closed
	log    zerolog.Logger
}

func startProc(log zerolog.Logger, name string, cmd *exec.Cmd) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), log: log}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	log.Debug().Str("proc", name).Int("pid", cmd.Process.Pid).Msg("started")
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to the process (Apache's and Dovecot's masters stop
// their own workers on it), SIGKILL after the grace period, and finally
// SIGKILL to the process group the harness created for it, in case a worker
// outlived its master.
func (p *proc) stop() {
	if p == nil {
		return
	}
	const grace = 10 * time.Second // Apache's and Dovecot's shutdown takes < 1 s
	select {
	case <-p.exited:
		return
	default:
	}
	pgid := p.cmd.Process.Pid // Setpgid: the group id is the leader's pid
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.log.Warn().Str("proc", p.name).Msg("no exit after SIGTERM; killing")
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// vmHWM returns the peak resident set size ("VmHWM" in /proc/PID/status) in
// bytes.
func vmHWM(pid int) (int64, error) {
	return procStatusKB(pid, "VmHWM:")
}

// resetHWM resets the peak RSS counter of pid (Linux ≥ 4.0,
// Documentation/filesystems/proc.rst "clear_refs": writing 5 resets VmHWM).
func resetHWM(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

func procStatusKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, field) {
			continue
		}
		fs := strings.Fields(strings.TrimPrefix(line, field))
		if len(fs) != 2 || fs[1] != "kB" {
			return 0, fmt.Errorf("unexpected %q", line)
		}
		kb, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, err
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New(field + " not found in /proc status")
}

// commandOutput runs a short command (version probes) with a timeout.
func commandOutput(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // version probes take ms
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
