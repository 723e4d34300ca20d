package web

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/davmail/davmail/internal/reqlog"
)

// Activity bounds, with their reasons.
const (
	// activityWindow is what the admin page shows: the last hour, in
	// one-minute buckets, so old traffic leaves the totals minute by
	// minute.
	activityWindow  = time.Hour
	activityBuckets = 60
	// maxActivityUsers caps the users kept per minute (~100 bytes each
	// plus their agents): far above a gateway's concurrent users; the
	// rest is counted under otherUsers, so memory stays bounded even if
	// every request came from a new name.
	maxActivityUsers = 1000
	// maxAgentsPerUser caps the User-Agents kept per user per minute: a
	// person has a few devices; the rest is counted under otherAgents.
	maxAgentsPerUser = 8
	// maxAgentLen clips a User-Agent: real ones are under 200 bytes.
	maxAgentLen = 160
	// topAgents is how many agents the page shows per user.
	topAgents = 3
)

// Names under which overflow and unauthenticated requests are counted.
const (
	otherUsers    = "(other users)"
	anonymousUser = "(not logged in)"
	otherAgents   = "(other agents)"
)

// Event is one finished request, as the activity recorder counts it.
type Event struct {
	Time      time.Time
	User      string // "" when not authenticated
	UserAgent string
	Status    int
	BytesIn   int64
	BytesOut  int64
	// Refused: a limit refused the request (reqlog.Entry.Limit was set).
	Refused bool
	// Throttled: the request was told to come back later (429, or 503
	// with Retry-After).
	Throttled bool
}

// UserActivity is one user's totals over the last hour.
type UserActivity struct {
	User      string
	Requests  int64
	BytesIn   int64
	BytesOut  int64
	Refused   int64
	Throttled int64
	Errors    int64 // 5xx answers
	Agents    []AgentCount
}

// AgentCount is requests per User-Agent.
type AgentCount struct {
	Agent    string
	Requests int64
}

// Activity is a bounded in-memory recorder of per-user activity over the
// last hour: requests, bytes, refusals, throttling and User-Agents, the
// "which user or device is hurting the server" view. Safe for concurrent
// use; Record takes one short lock.
type Activity struct {
	now func() time.Time

	mu      sync.Mutex
	buckets [activityBuckets]actBucket
}

type actBucket struct {
	minute int64 // Unix minute this bucket holds; stale buckets are reset
	users  map[string]*actUser
}

type actUser struct {
	UserActivity
	agents map[string]int64
}

// ActivityOptions tune an Activity.
type ActivityOptions struct {
	// Now returns the current time; tests inject a clock. Default time.Now.
	Now func() time.Time
}

// NewActivity returns an empty recorder.
func NewActivity(opts ActivityOptions) *Activity {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Activity{now: opts.Now}
}

// Record counts one request.
func (a *Activity) Record(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = a.now()
	}
	minute := ev.Time.Unix() / 60
	user := ev.User
	if user == "" {
		user = anonymousUser
	}
	agent := ev.UserAgent
	if len(agent) > maxAgentLen {
		agent = agent[:maxAgentLen]
	}
	if agent == "" {
		agent = "(none)"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	b := &a.buckets[minute%activityBuckets]
	if b.minute != minute || b.users == nil {
		b.minute, b.users = minute, map[string]*actUser{}
	}
	u := b.users[user]
	if u == nil {
		if len(b.users) >= maxActivityUsers {
			user = otherUsers
			u = b.users[user]
		}
		if u == nil {
			u = &actUser{UserActivity: UserActivity{User: user}, agents: map[string]int64{}}
			b.users[user] = u
		}
	}
	u.Requests++
	u.BytesIn += ev.BytesIn
	u.BytesOut += ev.BytesOut
	if ev.Refused {
		u.Refused++
	}
	if ev.Throttled {
		u.Throttled++
	}
	if ev.Status >= 500 {
		u.Errors++
	}
	if _, ok := u.agents[agent]; !ok && len(u.agents) >= maxAgentsPerUser {
		agent = otherAgents
	}
	u.agents[agent]++
}

// LastHour returns every user's totals over the last hour, the busiest
// (most requests) first.
func (a *Activity) LastHour() []UserActivity {
	now := a.now().Unix() / 60
	total := map[string]*actUser{}
	a.mu.Lock()
	for i := range a.buckets {
		b := &a.buckets[i]
		if b.users == nil || now-b.minute >= int64(activityWindow/time.Minute) || b.minute > now {
			continue
		}
		for name, u := range b.users {
			t := total[name]
			if t == nil {
				t = &actUser{UserActivity: UserActivity{User: name}, agents: map[string]int64{}}
				total[name] = t
			}
			t.Requests += u.Requests
			t.BytesIn += u.BytesIn
			t.BytesOut += u.BytesOut
			t.Refused += u.Refused
			t.Throttled += u.Throttled
			t.Errors += u.Errors
			for ag, n := range u.agents {
				t.agents[ag] += n
			}
		}
	}
	a.mu.Unlock()
	out := make([]UserActivity, 0, len(total))
	for _, t := range total {
		ua := t.UserActivity
		for ag, n := range t.agents {
			ua.Agents = append(ua.Agents, AgentCount{Agent: ag, Requests: n})
		}
		slices.SortFunc(ua.Agents, func(x, y AgentCount) int {
			if x.Requests != y.Requests {
				return compareInt(y.Requests, x.Requests)
			}
			return compareFold(x.Agent, y.Agent)
		})
		if len(ua.Agents) > topAgents {
			ua.Agents = ua.Agents[:topAgents]
		}
		out = append(out, ua)
	}
	slices.SortFunc(out, func(x, y UserActivity) int {
		if x.Requests != y.Requests {
			return compareInt(y.Requests, x.Requests)
		}
		return compareFold(x.User, y.User)
	})
	return out
}

// Middleware records every request that passes through next. It reads
// the user and any refusal from the request's reqlog.Entry after next
// has run, so it must sit inside the access-log middleware (which creates
// the entry) and outside the handlers (which fill it in).
func (a *Activity) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &countWriter{w: w}
		var body *countBody
		if r.Body != nil && r.Body != http.NoBody {
			// On a shallow copy, as the access log does: net/http looks
			// at its own request's Body after the handler.
			body = &countBody{rc: r.Body}
			r2 := *r
			r2.Body = body
			r = &r2
		}
		defer func() {
			e := reqlog.From(r.Context())
			status := rw.status
			if status == 0 {
				status = http.StatusOK
			}
			ev := Event{
				User: e.User, UserAgent: r.UserAgent(), Status: status, BytesOut: rw.n,
				Refused:   e.Limit != "" && status >= 400,
				Throttled: status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable && rw.Header().Get("Retry-After") != "",
			}
			if body != nil {
				ev.BytesIn = body.n
			}
			a.Record(ev)
		}()
		next.ServeHTTP(rw, r)
	})
}

// countWriter counts the response body and records the status while
// staying transparent: ReadFrom keeps sendfile, Flush and Unwrap pass
// through (http.ResponseController), Hijack is forwarded.
type countWriter struct {
	w      http.ResponseWriter
	status int
	n      int64
}

func (c *countWriter) Header() http.Header { return c.w.Header() }

func (c *countWriter) WriteHeader(code int) {
	if c.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		c.status = code
	}
	c.w.WriteHeader(code)
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadFrom lets io.Copy use the underlying writer's ReadFrom (sendfile).
func (c *countWriter) ReadFrom(src io.Reader) (int64, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := c.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{c.w}, src)
	}
	c.n += n
	return n, err
}

// Flush implements http.Flusher.
func (c *countWriter) Flush() {
	if f, ok := c.w.(http.Flusher); ok {
		if c.status == 0 {
			c.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap is for http.ResponseController.
func (c *countWriter) Unwrap() http.ResponseWriter { return c.w }

// Hijack implements http.Hijacker for handlers that assert it directly.
func (c *countWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := c.w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijacking not supported")
	}
	conn, brw, err := h.Hijack()
	if err == nil {
		c.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// countBody counts the request body bytes read.
type countBody struct {
	rc io.ReadCloser
	n  int64
}

func (b *countBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *countBody) Close() error { return b.rc.Close() }
