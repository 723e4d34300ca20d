package davbench

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxBody caps a response body the client reads whole: its own messages
// are at most 64 KiB and a scratch folder's listing is ~300 bytes per
// message, so 32 MiB (100,000 messages) is far beyond any run's need.
const maxBody = 32 << 20

// errBodyTooLarge is a response over maxBody.
var errBodyTooLarge = errors.New("response body over 32 MiB")

// Property namespaces (exchange-webdav.md §4.1).
const (
	nsDAV      = "DAV:"
	nsHTTPMail = "urn:schemas:httpmail:"
	nsHeader   = "urn:schemas:mailheader:"
)

// reply is one answered request.
type reply struct {
	status int
	header http.Header
	body   []byte // nil when a consume function read it
}

// req is one request.
type req struct {
	method, path string
	body         []byte
	hdr          []string // name, value, name, value…
	// consume reads the body of a reply whose status is in ok (nil: the
	// body is read whole into reply.body, up to maxBody).
	consume func(io.Reader) error
	// ok are the statuses the operation expects.
	ok []int
	// check validates a reply whose status is in ok: "" when it is
	// right, else a short reason counted as an error.
	check func(reply) string
}

// send sends one request with the client's credentials and reads the
// answer. The latency covers the whole body.
func (c *client) send(ctx context.Context, r req) (reply, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.e.cfg.Timeout)
	defer cancel()
	var body io.Reader = http.NoBody
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	hr, err := http.NewRequestWithContext(ctx, r.method, c.e.base+r.path, body)
	if err != nil {
		return reply{}, 0, err
	}
	hr.SetBasicAuth(c.user.Name, c.user.Password)
	hr.Header.Set("User-Agent", "davbench")
	for i := 0; i+1 < len(r.hdr); i += 2 {
		hr.Header.Set(r.hdr[i], r.hdr[i+1])
	}
	start := time.Now()
	resp, err := c.e.hc.Do(hr)
	if err != nil {
		return reply{}, time.Since(start), err
	}
	defer resp.Body.Close()
	rep := reply{status: resp.StatusCode, header: resp.Header}
	if r.consume != nil && slices.Contains(r.ok, resp.StatusCode) {
		err = r.consume(resp.Body)
		if err == nil {
			_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		}
	} else {
		rep.body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
		if err == nil && len(rep.body) > maxBody {
			err = errBodyTooLarge
		}
	}
	return rep, time.Since(start), err
}

// throttledStatus reports whether a status is the fair share's refusal
// (docs/limits.md): 429 per user or address, 503 server-wide.
func throttledStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable
}

// retryAfter reads Retry-After (seconds or an HTTP date); 1 s when absent
// or unreadable, the shortest the header can say.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return time.Second
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// outcome is what the client may conclude from an answer.
type outcome int

const (
	okay      outcome = iota // the expected status: the operation happened
	refused                  // another 4xx (or a wrong answer to a read): nothing happened
	throttled                // 429/503: refused before any work
	unknown                  // transport error, timeout or 5xx: a write may or may not have happened
)

// netPause is the least time a client spends on a transport error.
const netPause = 10 * time.Millisecond

// call sends one request of the load and records it under row. A
// throttled answer makes the client wait out Retry-After, within the run.
func (c *client) call(run, reqCtx context.Context, row Op, r req) (reply, outcome) {
	st := &c.stats[row]
	st.count++
	rep, lat, err := c.send(reqCtx, r)
	switch {
	case err != nil && rep.status == 0:
		st.fail("net")
		c.e.log.Debug().Err(err).Str("op", row.String()).Str("path", r.path).Msg("transport error")
		if lat < netPause {
			// A refused connection fails in microseconds: without a
			// pause a client of a dead server would spin.
			sleepCtx(run, netPause)
		}
		return rep, unknown
	case throttledStatus(rep.status):
		st.throttled++
		sleepCtx(run, retryAfter(rep.header, time.Now()))
		return rep, throttled
	case rep.status >= 500:
		c.unexpected5xx++
		st.fail(strconv.Itoa(rep.status))
		c.e.log.Warn().Int("status", rep.status).Str("op", row.String()).Str("path", r.path).Bytes("body", clip(rep.body)).Msg("unexpected 5xx")
		return rep, unknown
	case err != nil:
		// Status received, body cut short: the server did answer, but
		// the client cannot tell what the body said.
		st.fail("body")
		c.e.log.Debug().Err(err).Str("op", row.String()).Str("path", r.path).Msg("reading the body")
		return rep, unknown
	case !slices.Contains(r.ok, rep.status):
		st.fail(strconv.Itoa(rep.status))
		return rep, refused
	}
	if r.check != nil {
		if reason := r.check(rep); reason != "" {
			st.fail(reason)
			return rep, refused
		}
	}
	st.ok++
	st.lat.add(lat)
	return rep, okay
}

// reliableBudget bounds the retries of one setup, check or cleanup
// request: the fair share's time budget is a one-minute window, so after
// two of them every request is admitted again.
const reliableBudget = 2 * time.Minute

// maxReliableWait caps one Retry-After wait, so that a long one does not
// outlast the budget by itself.
const maxReliableWait = 10 * time.Second

// maxNetRetries is how many transport errors an idempotent request of
// setup, check or cleanup survives.
const maxNetRetries = 3

// reliable sends a request of setup, check or cleanup: throttled answers
// are waited out and retried, transport errors retried for idempotent
// methods. It returns the first other answer.
func (c *client) reliable(ctx context.Context, r req) (reply, error) {
	deadline := time.Now().Add(reliableBudget)
	nets := 0
	for {
		rep, _, err := c.send(ctx, r)
		switch {
		case err != nil && rep.status == 0:
			idempotent := r.method == "GET" || r.method == "PROPFIND" || r.method == "DELETE" || r.method == "SEARCH"
			nets++
			if !idempotent || nets > maxNetRetries || ctx.Err() != nil {
				return rep, err
			}
			continue
		case throttledStatus(rep.status):
			if time.Now().After(deadline) {
				return rep, fmt.Errorf("%s %s: still throttled (%d) after %v", r.method, r.path, rep.status, reliableBudget)
			}
			sleepCtx(ctx, min(retryAfter(rep.header, time.Now()), maxReliableWait))
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			continue
		case rep.status >= 500:
			c.unexpected5xx++
			c.e.log.Warn().Int("status", rep.status).Str("method", r.method).Str("path", r.path).Bytes("body", clip(rep.body)).Msg("unexpected 5xx")
		}
		return rep, err
	}
}

// clip shortens a body for a log line.
func clip(b []byte) []byte {
	const n = 300 // enough for the server's one-line error messages
	if len(b) > n {
		return b[:n]
	}
	return b
}

// multistatus parsing (RFC 4918 §14.16).

type msResponse struct {
	Href     string       `xml:"DAV: href"`
	Status   string       `xml:"DAV: status"`
	Propstat []msPropstat `xml:"DAV: propstat"`
}

type msPropstat struct {
	Status string `xml:"DAV: status"`
	Prop   struct {
		Props []msProp `xml:",any"`
	} `xml:"DAV: prop"`
}

type msProp struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

// statusCode reads the code of a status line, "HTTP/1.1 200 OK"; 0 if
// there is none.
func statusCode(line string) int {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// prop returns a property of the response's 200 propstat.
func (r *msResponse) prop(space, local string) (string, bool) {
	for _, ps := range r.Propstat {
		if statusCode(ps.Status) != http.StatusOK {
			continue
		}
		for _, p := range ps.Prop.Props {
			if p.XMLName.Space == space && p.XMLName.Local == local {
				return strings.TrimSpace(p.Value), true
			}
		}
	}
	return "", false
}

// propStatus returns the status of the propstat naming a property, 0 if
// none does.
func (r *msResponse) propStatus(space, local string) int {
	for _, ps := range r.Propstat {
		for _, p := range ps.Prop.Props {
			if p.XMLName.Space == space && p.XMLName.Local == local {
				return statusCode(ps.Status)
			}
		}
	}
	return 0
}

// eachResponse streams a multistatus body, one DAV:response at a time, so
// a listing of any size is read in bounded memory.
func eachResponse(r io.Reader, fn func(*msResponse) error) error {
	d := xml.NewDecoder(r)
	for {
		t, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		se, ok := t.(xml.StartElement)
		if !ok || se.Name.Space != nsDAV || se.Name.Local != "response" {
			continue
		}
		var resp msResponse
		if err := d.DecodeElement(&resp, &se); err != nil {
			return err
		}
		if err := fn(&resp); err != nil {
			return err
		}
	}
}

// hrefName returns the last segment of an href, decoded, and whether
// the href names a collection (ends with "/").
func hrefName(href string) (string, bool) {
	if u, err := url.Parse(href); err == nil {
		href = u.EscapedPath()
	}
	if strings.HasSuffix(href, "/") {
		return "", true
	}
	seg := href[strings.LastIndexByte(href, '/')+1:]
	name, err := url.PathUnescape(seg)
	if err != nil {
		return seg, false
	}
	return name, false
}

// item is one message of a folder listing.
type item struct {
	name    string
	msgID   string
	read    bool
	hasRead bool
}

// propfindBody asks for what the listings compare.
const propfindBody = `<?xml version="1.0" encoding="utf-8"?>` +
	`<D:propfind xmlns:D="DAV:" xmlns:h="urn:schemas:httpmail:" xmlns:m="urn:schemas:mailheader:">` +
	`<D:prop><D:displayname/><D:getcontentlength/><h:read/><m:message-id/></D:prop></D:propfind>`

// readListing reads a PROPFIND Depth 1 multistatus into its messages
// (folders left out).
func readListing(r io.Reader) ([]item, error) {
	var out []item
	err := eachResponse(r, func(resp *msResponse) error {
		name, isColl := hrefName(resp.Href)
		if isColl {
			return nil
		}
		it := item{name: name}
		it.msgID, _ = resp.prop(nsHeader, "message-id")
		if v, ok := resp.prop(nsHTTPMail, "read"); ok {
			it.read, it.hasRead = v == "1" || strings.EqualFold(v, "true"), true
		}
		out = append(out, it)
		return nil
	})
	return out, err
}
