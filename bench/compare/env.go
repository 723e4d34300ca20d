package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Env describes the machine and the peers' versions, so that figures from
// different runs can be compared honestly.
type Env struct {
	Date    string `json:"date"`
	Host    string `json:"host"`
	CPU     string `json:"cpu"`
	Cores   int    `json:"cores"`
	Kernel  string `json:"kernel"`
	Go      string `json:"go"`
	Apache  string `json:"apache"`
	Dovecot string `json:"dovecot"`
	Davmail string `json:"davmail"`
	// LoadStart and LoadEnd are the 1-minute load averages when the run
	// began and ended: other work on the machine skews every figure.
	LoadStart float64 `json:"load_start"`
	LoadEnd   float64 `json:"load_end"`
	// Nice is the scheduling niceness the run had (see README: running
	// under "nice -n -10" shields all servers alike from other work).
	Nice int `json:"nice"`
}

// niceness returns the process's nice value. The raw getpriority system
// call returns 20-nice on Linux (getpriority(2), "C library/kernel
// differences").
func niceness() int {
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		return 0
	}
	return 20 - p
}

// loadAvg1 returns the 1-minute load average from /proc/loadavg.
func loadAvg1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscan(string(b), &l)
	return l
}

func (e Env) Summary() string {
	return fmt.Sprintf("%d cores %s, %s, %s, dovecot %s, load %.1f→%.1f, nice %d",
		e.Cores, e.CPU, e.Kernel, e.Apache, e.Dovecot, e.LoadStart, e.LoadEnd, e.Nice)
}

// Results is the JSON document written by -out.
type Results struct {
	Env     Env            `json:"env"`
	Options map[string]any `json:"options"`
	Cases   []*Case        `json:"cases"`
}

func collectEnv(ctx context.Context, root string) Env {
	e := Env{Date: time.Now().UTC().Format(time.RFC3339), Cores: runtime.NumCPU(),
		Go: runtime.Version(), LoadStart: loadAvg1(), Nice: niceness()}
	e.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = "linux " + strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if out, err := commandOutput(ctx, "apache2", "-v"); err == nil {
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "Server version: "); ok {
				e.Apache = strings.TrimSpace(v)
			}
		}
	}
	e.Dovecot, _ = dovecotVersion(ctx)
	if out, err := commandOutput(ctx, "git", "-C", root, "describe", "--always", "--dirty"); err == nil {
		e.Davmail = out
	}
	return e
}

func writeJSON(path string, r *Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
