package davbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// engine runs one benchmark.
type engine struct {
	cfg     Config
	base    string // scheme://host[:port], no slash
	hc      *http.Client
	log     zerolog.Logger
	tag     string // names this run's folders and messages
	clients []*client

	elapsed time.Duration // of the load
}

// newEngine builds the clients. tag "" draws a random one.
func newEngine(cfg Config, u *url.URL, log zerolog.Logger, tag string) (*engine, error) {
	if tag == "" {
		b := make([]byte, 3) // six hex digits: enough to tell runs apart
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		tag = hex.EncodeToString(b)
	}
	tr := &http.Transport{
		Proxy:               nil, // a load test of loopback never goes through a proxy
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
		MaxIdleConns:        cfg.Clients * 2,
		MaxIdleConnsPerHost: cfg.Clients * 2, // one kept-alive connection per client, and spares
		IdleConnTimeout:     90 * time.Second,
		// The bytes are compared as stored: no transparent gzip.
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
	}
	e := &engine{
		cfg:  cfg,
		base: u.Scheme + "://" + u.Host,
		hc:   &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		log:  log,
		tag:  tag,
	}
	for i := range cfg.Clients {
		e.clients = append(e.clients, newClient(e, i))
	}
	return e, nil
}

// Run performs a whole benchmark: it creates two scratch folders per
// client, runs the mix for cfg.Duration, checks consistency, removes the
// scratch folders (unless cfg.Keep) and returns the figures. An error
// means the benchmark could not run (bad configuration, the server
// unreachable, a login refused, ctx cancelled); findings are in the
// Result.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	u, err := CheckURL(ctx, cfg.URL, cfg.AllowRemote, net.DefaultResolver)
	if err != nil {
		return nil, err
	}
	e, err := newEngine(cfg, u, log, "")
	if err != nil {
		return nil, err
	}
	defer e.hc.CloseIdleConnections()
	if err := e.setup(ctx); err != nil {
		return nil, err
	}
	log.Info().Int("clients", cfg.Clients).Dur("duration", cfg.Duration).Str("tag", e.tag).Msg("load started")
	e.load(ctx)
	if err := ctx.Err(); err != nil {
		if !cfg.Keep {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), interruptedCleanup)
			defer cancel()
			e.cleanup(cctx)
		}
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	log.Info().Dur("elapsed", e.elapsed).Msg("load finished, checking")
	res := e.finish(ctx)
	if err := ctx.Err(); err != nil {
		// Interrupted during the check: its findings are not to be
		// trusted, and the cleanup may not have happened.
		if !cfg.Keep {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), interruptedCleanup)
			defer cancel()
			e.cleanup(cctx)
		}
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	return res, nil
}

// interruptedCleanup bounds the cleanup after an interruption: the user
// wants out; folders left behind are named davbench-* and easy to find.
const interruptedCleanup = 30 * time.Second

// forEach runs fn for every client concurrently and waits.
func (e *engine) forEach(fn func(*client)) {
	var wg sync.WaitGroup
	for _, c := range e.clients {
		wg.Go(func() { fn(c) })
	}
	wg.Wait()
}

// setup logs each user in once, then creates every client's scratch
// folders. A refused login stops it before anything is created.
func (e *engine) setup(ctx context.Context) error {
	seen := make(map[string]bool)
	for _, c := range e.clients {
		if seen[c.user.Name] {
			continue
		}
		seen[c.user.Name] = true
		if err := c.login(ctx); err != nil {
			return fmt.Errorf("user %s: %w", c.user.Name, err)
		}
	}
	var mu sync.Mutex
	var errs []error
	e.forEach(func(c *client) {
		for f := range 2 {
			rep, err := c.reliable(ctx, req{method: "MKCOL", path: c.scratch[f]})
			if err != nil || rep.status != http.StatusCreated {
				mu.Lock()
				errs = append(errs, fmt.Errorf("client %d (%s): %w", c.id, c.user.Name, statusErr("MKCOL "+c.scratch[f], rep, err)))
				mu.Unlock()
				return
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		e.cleanup(context.WithoutCancel(ctx))
		return err
	}
	return nil
}

// login checks the client's credentials and mailbox.
func (c *client) login(ctx context.Context) error {
	rep, err := c.reliable(ctx, req{method: "PROPFIND", path: c.root, body: []byte(propfindBody), hdr: append([]string{"Depth", "0"}, xmlHeaders...)})
	switch {
	case err != nil:
		return err
	case rep.status == http.StatusUnauthorized:
		return fmt.Errorf("login refused (401): wrong password?")
	case rep.status != http.StatusMultiStatus:
		return statusErr("PROPFIND of "+c.root, rep, nil)
	}
	return nil
}

// load runs every client for the configured duration.
func (e *engine) load(ctx context.Context) {
	run, cancel := context.WithTimeout(ctx, e.cfg.Duration)
	defer cancel()
	start := time.Now()
	e.forEach(func(c *client) { c.run(run, ctx) })
	e.elapsed = time.Since(start)
}

// finish checks consistency, cleans up and assembles the result.
func (e *engine) finish(ctx context.Context) *Result {
	start := time.Now()
	checks := make([]CheckResult, len(e.clients))
	e.forEach(func(c *client) { checks[c.id] = c.check(ctx) })
	checkTime := time.Since(start)
	cleanup := "kept"
	if !e.cfg.Keep {
		cleanup = e.cleanup(ctx)
	}
	r := e.result(checks)
	r.CheckTimeS = checkTime.Seconds()
	r.Cleanup = cleanup
	return r
}

// cleanup deletes the scratch folders; it returns "" or what failed.
func (e *engine) cleanup(ctx context.Context) string {
	var mu sync.Mutex
	var failed []string
	e.forEach(func(c *client) {
		c.unlockAll(ctx)
		for f := range 2 {
			rep, err := c.reliable(ctx, req{method: "DELETE", path: c.scratch[f], hdr: []string{"Depth", "infinity"}})
			if err == nil && (rep.status == http.StatusOK || rep.status == http.StatusNoContent || rep.status == http.StatusNotFound) {
				continue
			}
			mu.Lock()
			failed = append(failed, statusErr("DELETE "+c.scratch[f], rep, err).Error())
			mu.Unlock()
		}
	})
	return strings.Join(failed, "; ")
}

// result merges the clients' figures.
func (e *engine) result(checks []CheckResult) *Result {
	cfg := e.cfg
	r := &Result{
		URL: cfg.URL, Users: len(cfg.Users), Clients: cfg.Clients, Seed: cfg.Seed, Mix: cfg.Mix.String(),
		Duration: cfg.Duration, Elapsed: e.elapsed, DurationS: cfg.Duration.Seconds(), ElapsedS: e.elapsed.Seconds(),
	}
	var rows [numRows]opStats
	var total opStats
	for _, c := range e.clients {
		for i := range rows {
			rows[i].merge(&c.stats[i])
			total.merge(&c.stats[i])
		}
		r.Unexpected5xx += c.unexpected5xx
		r.Check.Issues = append(r.Check.Issues, c.issues...)
		r.Check.IssuesDropped += c.dropped
	}
	for i := range rows {
		r.Ops = append(r.Ops, opResult(Op(i).String(), &rows[i], e.elapsed))
	}
	r.Total = opResult("total", &total, e.elapsed)
	for _, ch := range checks {
		r.Check.Messages += ch.Messages
		r.Check.Moved += ch.Moved
		r.Check.Read += ch.Read
		r.Check.BytesChecked += ch.BytesChecked
		r.Check.InDoubt += ch.InDoubt
	}
	if r.Check.Issues == nil {
		r.Check.Issues = []Issue{}
	}
	r.Passed = len(r.Check.Issues) == 0 && r.Check.IssuesDropped == 0 && r.Unexpected5xx == 0
	return r
}
