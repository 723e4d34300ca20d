package davbench

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// histSub is the number of buckets per power of two of the latency
// histogram: 16 gives each bucket a width of 2^(1/16) ≈ 4.4 %, finer
// than the noise of a shared machine, in fixed memory whatever the run's
// length.
const histSub = 16

// histBuckets covers 1 µs to 2^40 µs (12 days): any latency a request
// can have.
const histBuckets = 40 * histSub

// histogram counts latencies in logarithmic buckets.
type histogram struct {
	n     [histBuckets]uint64
	count uint64
	max   time.Duration
}

func (h *histogram) add(d time.Duration) {
	us := d.Microseconds()
	if us < 1 {
		us = 1
	}
	i := int(math.Log2(float64(us)) * histSub)
	i = min(max(i, 0), histBuckets-1)
	h.n[i]++
	h.count++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, v := range o.n {
		h.n[i] += v
	}
	h.count += o.count
	h.max = max(h.max, o.max)
}

// quantile returns the upper bound of the bucket holding the q-th
// quantile (so p99 is never under-reported), capped at the largest value
// seen; 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	target := uint64(math.Ceil(q * float64(h.count)))
	target = max(target, 1)
	var cum uint64
	for i, v := range h.n {
		cum += v
		if cum >= target {
			upper := time.Duration(math.Exp2(float64(i+1)/histSub) * float64(time.Microsecond))
			return min(upper, h.max)
		}
	}
	return h.max
}

// opStats are one client's figures for one kind of request.
type opStats struct {
	count     int            // requests sent
	ok        int            // answered as expected
	throttled int            // 429 or 503
	errors    map[string]int // by status ("404", "net", "no-200-propstat", …)
	lat       histogram      // latency of the ok ones
}

func (s *opStats) fail(reason string) {
	if s.errors == nil {
		s.errors = make(map[string]int)
	}
	s.errors[reason]++
}

func (s *opStats) merge(o *opStats) {
	s.count += o.count
	s.ok += o.ok
	s.throttled += o.throttled
	for k, v := range o.errors {
		if s.errors == nil {
			s.errors = make(map[string]int)
		}
		s.errors[k] += v
	}
	s.lat.merge(&o.lat)
}

func (s *opStats) nerrors() int {
	n := 0
	for _, v := range s.errors {
		n += v
	}
	return n
}

// OpResult is the figures of one kind of request over the whole run.
type OpResult struct {
	Op        string `json:"op"`
	Count     int    `json:"count"`     // requests sent
	OK        int    `json:"ok"`        // answered with the expected status
	Throttled int    `json:"throttled"` // 429 or 503 (fair share), not errors
	Errors    int    `json:"errors"`    // everything else
	// ErrorsByStatus counts the errors by HTTP status, or "net" for a
	// transport error or timeout, or a short reason when the status was
	// right but the answer was not (e.g. "no-200-propstat").
	ErrorsByStatus map[string]int `json:"errors_by_status,omitempty"`
	// OpsPerSec is OK divided by the run's elapsed time.
	OpsPerSec float64 `json:"ops_per_sec"`
	// P50Ms and P99Ms are latency percentiles of the OK requests in
	// milliseconds (bucket upper bounds, within 4.4 %).
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

func opResult(name string, s *opStats, elapsed time.Duration) OpResult {
	r := OpResult{Op: name, Count: s.count, OK: s.ok, Throttled: s.throttled, Errors: s.nerrors()}
	if len(s.errors) > 0 {
		r.ErrorsByStatus = maps.Clone(s.errors)
	}
	if elapsed > 0 {
		r.OpsPerSec = float64(s.ok) / elapsed.Seconds()
	}
	r.P50Ms = ms(s.lat.quantile(0.50))
	r.P99Ms = ms(s.lat.quantile(0.99))
	r.MaxMs = ms(s.lat.max)
	return r
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Issue is one inconsistency between the server and the model of what
// it acknowledged.
type Issue struct {
	// Kind is missing, misplaced, duplicate, corrupt, read-flag,
	// unexpected, listing, search or created.
	Kind string `json:"kind"`
	// Phase is "run" (seen by an operation during the load) or "check".
	Phase     string `json:"phase"`
	Client    int    `json:"client"`
	User      string `json:"user"`
	Folder    string `json:"folder,omitempty"`
	Name      string `json:"name,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	Detail    string `json:"detail"`
}

// String prints the issue on one line.
func (i Issue) String() string {
	s := fmt.Sprintf("%s (%s, client %d, %s)", i.Kind, i.Phase, i.Client, i.User)
	if i.Folder != "" || i.Name != "" {
		s += " " + i.Folder + i.Name
	}
	return s + ": " + i.Detail
}

// CheckResult is the outcome of the consistency check.
type CheckResult struct {
	// Messages is the number of acknowledged messages checked.
	Messages int `json:"messages"`
	// Moved and Read count those whose last acknowledged MOVE or
	// PROPPATCH the check verified.
	Moved int `json:"moved"`
	Read  int `json:"read"`
	// BytesChecked is what the check downloaded and compared.
	BytesChecked int64 `json:"bytes_checked"`
	// InDoubt counts writes whose outcome the client never learned
	// (transport error, timeout, 5xx): either outcome is accepted, but
	// never both, never a duplicate.
	InDoubt int `json:"in_doubt"`
	// Issues are the inconsistencies, from the run and from the check.
	Issues []Issue `json:"issues"`
	// IssuesDropped counts issues beyond the ones kept.
	IssuesDropped int `json:"issues_dropped,omitempty"`
}

// Result is a whole run's figures.
type Result struct {
	URL        string        `json:"url"`
	Users      int           `json:"users"`
	Clients    int           `json:"clients"`
	Seed       uint64        `json:"seed"`
	Mix        string        `json:"mix"`
	Duration   time.Duration `json:"-"`
	Elapsed    time.Duration `json:"-"`
	DurationS  float64       `json:"duration_s"`
	ElapsedS   float64       `json:"elapsed_s"`
	CheckTimeS float64       `json:"check_s"`
	Ops        []OpResult    `json:"ops"`
	Total      OpResult      `json:"total"`
	// Unexpected5xx counts 5xx answers other than the fair share's 503,
	// in every phase: each is a server bug.
	Unexpected5xx int         `json:"unexpected_5xx"`
	Check         CheckResult `json:"check"`
	// Cleanup is "" when the scratch folders were removed, "kept" with
	// -keep, or what went wrong.
	Cleanup string `json:"cleanup,omitempty"`
	// Passed is true when the check found nothing and no unexpected 5xx
	// was seen.
	Passed bool `json:"passed"`
}

// OpByName returns the figures of op ("propfind", …, "unlock").
func (r *Result) OpByName(op string) (OpResult, bool) {
	for _, o := range r.Ops {
		if o.Op == op {
			return o, true
		}
	}
	return OpResult{}, false
}

// maxIssuesPrinted keeps the table readable; the JSON has them all (up
// to maxIssues).
const maxIssuesPrinted = 20

// WriteTable prints the result for a terminal.
func (r *Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "davbench %s: %s, %s, %v (ran %.2fs), seed %d\n", r.URL, plural(r.Clients, "client"), plural(r.Users, "user"), r.Duration, r.Elapsed.Seconds(), r.Seed)
	fmt.Fprintf(&b, "mix %s\n\n", r.Mix)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\tok\tthrottled\terrors\tops/s\tp50 ms\tp99 ms\tmax ms\t")
	row := func(o OpResult) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t\n", o.Op, o.Count, o.OK, o.Throttled, o.Errors, o.OpsPerSec, o.P50Ms, o.P99Ms, o.MaxMs)
	}
	for _, o := range r.Ops {
		row(o)
	}
	row(r.Total)
	tw.Flush()
	var errs []string
	for _, o := range r.Ops {
		for _, k := range slices.Sorted(maps.Keys(o.ErrorsByStatus)) {
			errs = append(errs, fmt.Sprintf("%s %s×%d", o.Op, k, o.ErrorsByStatus[k]))
		}
	}
	if len(errs) == 0 {
		errs = []string{"none"}
	}
	fmt.Fprintf(&b, "\nerrors by status: %s\n", strings.Join(errs, ", "))
	fmt.Fprintf(&b, "unexpected 5xx: %d\n", r.Unexpected5xx)
	c := r.Check
	verdict := "OK"
	if n := len(c.Issues) + c.IssuesDropped; n > 0 {
		verdict = "FAILED, " + strconv.Itoa(n) + " inconsistencies"
	}
	fmt.Fprintf(&b, "consistency: %s: %d acknowledged messages (%d moved, %d read flags), %.1f MiB compared, %d writes in doubt, check took %.2fs\n",
		verdict, c.Messages, c.Moved, c.Read, float64(c.BytesChecked)/(1<<20), c.InDoubt, r.CheckTimeS)
	for i, is := range c.Issues {
		if i == maxIssuesPrinted {
			fmt.Fprintf(&b, "  … %d more\n", len(c.Issues)-i+c.IssuesDropped)
			break
		}
		fmt.Fprintf(&b, "  %s\n", is)
	}
	if r.Cleanup != "" {
		fmt.Fprintf(&b, "cleanup: %s\n", r.Cleanup)
	}
	if r.Passed {
		b.WriteString("PASS\n")
	} else {
		b.WriteString("FAIL\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// plural writes "1 user", "2 users".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
