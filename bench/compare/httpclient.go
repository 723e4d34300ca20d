package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// PROPFIND bodies (RFC 4918 §9.1). Apache is asked for the live DAV file
// properties; davmail additionally for the Exchange httpmail properties a
// mail client lists (DavMail's and Entourage's folder view).
const (
	propfindDAV = `<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop>
<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/><D:displayname/>
</D:prop></D:propfind>`
	propfindMail = `<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:e="urn:schemas:httpmail:"><D:prop>
<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/><D:displayname/>
<e:subject/><e:from/><e:to/><e:date/><e:read/><e:hasattachment/>
</D:prop></D:propfind>`
)

// copyBufSize is the client's read buffer: 256 KiB keeps syscalls per byte
// low, so the client is not the bottleneck of a 1 GB/s transfer.
const copyBufSize = 256 << 10

// newHTTPClient returns a client for loopback benchmarks: no compression,
// keep-alive, a whole-request timeout as the time bound of every request.
func newHTTPClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, never via a proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 16, // ≥ the 8 parallel downloads
		ReadBufferSize:      64 << 10,
		WriteBufferSize:     64 << 10,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// target is one server's URL and credentials for a request.
type target struct {
	url        string
	user, pass string // empty: no Authorization
}

// propfindResult is one timed PROPFIND.
type propfindResult struct {
	end       time.Time // when the last byte was read
	elapsed   time.Duration
	bytes     int64
	responses int // number of DAV:response elements in the multistatus
}

// propfind sends a Depth 1 PROPFIND with body and reads the whole
// multistatus, counting DAV:response elements on the fly. The time covers
// the request from sending to the last byte.
func propfind(ctx context.Context, c *http.Client, t target, body string) (propfindResult, error) {
	req, err := http.NewRequestWithContext(ctx, "PROPFIND", t.url, strings.NewReader(body))
	if err != nil {
		return propfindResult{}, err
	}
	req.Header.Set("Depth", "1")
	req.Header.Set("Content-Type", `application/xml; charset="utf-8"`)
	if t.user != "" {
		req.SetBasicAuth(t.user, t.pass)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return propfindResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusMultiStatus {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return propfindResult{}, fmt.Errorf("PROPFIND %s: status %s: %q", t.url, resp.Status, snippet)
	}
	var rc responseCounter
	buf := make([]byte, copyBufSize)
	n, err := io.CopyBuffer(&rc, resp.Body, buf)
	end := time.Now()
	if err != nil {
		return propfindResult{}, fmt.Errorf("PROPFIND %s: reading body after %d bytes: %w", t.url, n, err)
	}
	return propfindResult{end: end, elapsed: end.Sub(start), bytes: n, responses: rc.count}, nil
}

// getResult is one timed GET.
type getResult struct {
	elapsed time.Duration
	bytes   int64
}

// get downloads url to nowhere and returns the time and byte count. The
// byte count must equal want when want ≥ 0.
func get(ctx context.Context, c *http.Client, t target, want int64) (getResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return getResult{}, err
	}
	if t.user != "" {
		req.SetBasicAuth(t.user, t.pass)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return getResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return getResult{}, fmt.Errorf("GET %s: status %s: %q", t.url, resp.Status, snippet)
	}
	buf := make([]byte, copyBufSize)
	n, err := io.CopyBuffer(io.Discard, resp.Body, buf)
	elapsed := time.Since(start)
	if err != nil {
		return getResult{}, fmt.Errorf("GET %s: after %d bytes: %w", t.url, n, err)
	}
	if want >= 0 && n != want {
		return getResult{}, fmt.Errorf("GET %s: got %d bytes, want %d", t.url, n, want)
	}
	return getResult{elapsed: elapsed, bytes: n}, nil
}

// responseCounter is an io.Writer that counts the closing tags of DAV
// response elements ("</response>" or "</P:response>" for any prefix P) in
// a streamed multistatus without parsing or buffering it. It carries a
// short tail across writes so a tag split between reads is still seen.
// It is a check that the listing is complete, not an XML validator.
type responseCounter struct {
	count int
	tail  []byte // the last bytes of the previous write (< maxTagLen)
}

// maxPrefix bounds the namespace prefix of a counted closing tag; in
// practice prefixes are 1–3 bytes ("D", "ns0", "lp1").
const maxPrefix = 32

// maxTagLen is the longest closing tag counted: "</" + prefix + ":" +
// "response>".
const maxTagLen = 2 + maxPrefix + 1 + len("response>")

var responseTag = []byte("response>")

func (rc *responseCounter) Write(p []byte) (int, error) {
	// Look in tail+head-of-p for tags that straddle the boundary, then in p.
	if len(rc.tail) > 0 {
		head := p
		if len(head) > maxTagLen {
			head = head[:maxTagLen]
		}
		joined := append(append(make([]byte, 0, len(rc.tail)+len(head)), rc.tail...), head...)
		// Only tags that end beyond the tail are new.
		rc.count += countClosing(joined, len(rc.tail))
	}
	rc.count += countClosing(p, 0)
	// Keep the last maxTagLen-1 bytes: a tag ending in the next write
	// starts at most that far back.
	keep := maxTagLen - 1
	if len(p) >= keep {
		rc.tail = append(rc.tail[:0], p[len(p)-keep:]...)
	} else {
		rc.tail = append(rc.tail, p...)
		if len(rc.tail) > keep {
			rc.tail = rc.tail[len(rc.tail)-keep:]
		}
	}
	return len(p), nil
}

// countClosing counts "</[prefix:]response>" in b whose end lies after
// offset minEnd and, when minEnd > 0, whose start lies before minEnd (the
// tags straddling a write boundary; the others are counted in p itself).
func countClosing(b []byte, minEnd int) int {
	n := 0
	for i := 0; ; {
		j := bytes.Index(b[i:], responseTag)
		if j < 0 {
			return n
		}
		end := i + j + len(responseTag)
		if start, ok := closingStart(b, i+j); ok {
			if minEnd == 0 || (end > minEnd && start < minEnd) {
				n++
			}
		}
		i = i + j + 1
	}
}

// closingStart reports whether "response>" at b[at:] is preceded by "</" or
// "</prefix:" and returns where the tag starts.
func closingStart(b []byte, at int) (int, bool) {
	k := at
	if k > 0 && b[k-1] == ':' {
		k--
		end := k
		for k > 0 && end-k < maxPrefix && isNameByte(b[k-1]) {
			k--
		}
		if k == end { // empty prefix before ':'
			return 0, false
		}
	}
	if k >= 2 && b[k-1] == '/' && b[k-2] == '<' {
		return k - 2, true
	}
	return 0, false
}

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' ||
		c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

var errIncomplete = errors.New("incomplete listing")

// checkListing verifies that a Depth 1 listing of a folder of n items has
// at least n responses (n members, plus the collection itself).
func checkListing(r propfindResult, n int) error {
	if r.responses < n {
		return fmt.Errorf("%w: %d responses for %d messages", errIncomplete, r.responses, n)
	}
	return nil
}
