package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// Series is the samples of one measurement of one server, in the unit of
// its case (seconds, MB/s or MiB).
type Series struct {
	Server  string    `json:"server"`
	Samples []float64 `json:"samples"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
}

func newSeries(server string, samples []float64) *Series {
	if len(samples) == 0 {
		return nil
	}
	return &Series{
		Server:  server,
		Samples: samples,
		Median:  median(samples),
		Min:     slices.Min(samples),
		Max:     slices.Max(samples),
	}
}

// median of xs (mean of the middle two for an even count); NaN when empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Goal is how a case is judged.
type Goal int

const (
	// RatioAtMost: davmail median / peer median ≤ Target (times).
	RatioAtMost Goal = iota
	// RatioAtLeast: davmail median / peer median ≥ Target (throughput).
	RatioAtLeast
	// ValueBelow: davmail's worst sample < Target, in the case's unit
	// (peak memory: the high-water mark must hold in every run).
	ValueBelow
	// Info: reported, not judged.
	Info
)

// Case is one named measurement and its verdict.
type Case struct {
	Name    string  `json:"name"`
	What    string  `json:"what"`
	Unit    string  `json:"unit"`
	Davmail *Series `json:"davmail,omitempty"`
	Peer    *Series `json:"peer,omitempty"`
	Goal    Goal    `json:"-"`
	Target  float64 `json:"target"`
	// TargetText is the target as printed, e.g. "≤1.00×" or "<200 MiB".
	TargetText string  `json:"target_text"`
	Ratio      float64 `json:"ratio,omitempty"`
	// Verdict is PASS, FAIL, INFO or ERROR (a server or check failed).
	Verdict string `json:"verdict"`
	Note    string `json:"note,omitempty"`
}

// judge fills Ratio and Verdict from the series.
func (c *Case) judge() {
	if c.Verdict == "ERROR" {
		return
	}
	if c.Davmail != nil && c.Peer != nil && c.Peer.Median > 0 {
		c.Ratio = c.Davmail.Median / c.Peer.Median
	}
	switch c.Goal {
	case Info:
		c.Verdict = "INFO"
		c.TargetText = "-"
	case RatioAtMost, RatioAtLeast:
		if c.Davmail == nil || c.Peer == nil || c.Ratio == 0 {
			c.Verdict = "ERROR"
			return
		}
		ok := c.Ratio <= c.Target
		c.TargetText = fmt.Sprintf("≤%.2f×", c.Target)
		if c.Goal == RatioAtLeast {
			ok = c.Ratio >= c.Target
			c.TargetText = fmt.Sprintf("≥%.2f×", c.Target)
		}
		c.Verdict = passFail(ok)
	case ValueBelow:
		if c.Davmail == nil {
			c.Verdict = "ERROR"
			return
		}
		c.TargetText = fmt.Sprintf("<%g %s", c.Target, c.Unit)
		c.Verdict = passFail(c.Davmail.Max < c.Target)
	}
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// fmtNum prints a value with three significant figures or so.
func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func fmtSeries(s *Series, unit string) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%s %s (min %s)", fmtNum(s.Median), unit, fmtNum(s.Min))
}

// printTable writes the case table: case, davmail median, peer median,
// ratio, target, verdict.
func printTable(w io.Writer, cases []*Case) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "case\tdavmail_median\tpeer\tpeer_median\tratio\ttarget\tresult")
	for _, c := range cases {
		peer, ratio := "-", "-"
		if c.Peer != nil {
			peer = c.Peer.Server
		}
		if c.Ratio != 0 {
			ratio = fmt.Sprintf("%.3f×", c.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name,
			fmtSeries(c.Davmail, c.Unit), peer, fmtSeries(c.Peer, c.Unit),
			ratio, c.TargetText, c.Verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range cases {
		if c.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", c.Name, strings.TrimSpace(c.Note))
		}
	}
	return nil
}
