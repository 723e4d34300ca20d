package davbench

import (
	"context"
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxIssues caps the issues one client keeps: the first ones explain a
// failure; a broken server could otherwise produce one per message.
const maxIssues = 1000

// maxShared caps the hrefs a client remembers from the shared folder's
// listing: GET needs a few known messages, not the whole folder.
const maxShared = 64

// maxSharedSize: GET reads only messages of the shared folder up to
// 1 MiB. The load measures requests, not bulk transfer (a big message
// would dominate the latencies), and a legacy message over
// max-message-size would only be refused.
const maxSharedSize = 1 << 20

// sharedGetOneIn: one GET in sharedGetOneIn reads a message of the shared
// folder (when it has any), the others the client's own messages, which
// can be verified byte for byte.
const sharedGetOneIn = 4

// randomProbes is how many random draws pickMsg tries before scanning.
const randomProbes = 16

// lockTimeout is the Timeout of davbench's locks: a lock whose UNLOCK
// never gets through expires by itself within a minute.
const lockTimeout = "Second-60"

// client is one simulated user agent: one user, two scratch folders of
// its own, and the model of every message it wrote.
type client struct {
	e       *engine
	id      int
	user    User
	rng     *rand.Rand
	root    string    // "/exchange/alice/"
	scratch [2]string // scratch folder paths, with a trailing slash
	msgs    []*message
	byName  map[string]*message
	locked  []*message // LOCKed, UNLOCK still to succeed
	seq     int
	shared  []string // paths of messages seen in the shared folder

	stats         [numRows]opStats
	unexpected5xx int
	issues        []Issue
	dropped       int
}

func newClient(e *engine, id int) *client {
	u := e.cfg.Users[id%len(e.cfg.Users)]
	c := &client{
		e:      e,
		id:     id,
		user:   u,
		rng:    rand.New(rand.NewPCG(e.cfg.Seed, uint64(id))),
		root:   e.cfg.Prefix + url.PathEscape(u.Name) + "/",
		byName: make(map[string]*message),
	}
	for f := range 2 {
		c.scratch[f] = c.root + fmt.Sprintf("davbench-%s-%d-%c/", e.tag, id, "ab"[f])
	}
	return c
}

// issue records an inconsistency.
func (c *client) issue(is Issue) {
	if len(c.issues) >= maxIssues {
		c.dropped++
		return
	}
	is.Client, is.User = c.id, c.user.Name
	c.issues = append(c.issues, is)
	c.e.log.Warn().Str("kind", is.Kind).Str("phase", is.Phase).Int("client", c.id).Str("user", is.User).
		Str("folder", is.Folder).Str("name", is.Name).Str("detail", is.Detail).Msg("inconsistency")
}

func (c *client) folderName(f int) string {
	return strings.TrimPrefix(c.scratch[f], c.root)
}

func (c *client) msgPath(m *message) string { return c.scratch[m.folder] + m.name }

// pickMsg returns a random message for which ok holds, or nil.
func (c *client) pickMsg(ok func(*message) bool) *message {
	n := len(c.msgs)
	if n == 0 {
		return nil
	}
	for range randomProbes {
		if m := c.msgs[c.rng.IntN(n)]; ok(m) {
			return m
		}
	}
	start := c.rng.IntN(n)
	for i := range n {
		if m := c.msgs[(start+i)%n]; ok(m) {
			return m
		}
	}
	return nil
}

func isSure(m *message) bool { return m.doubt == sure }

// run sends the mix until run ends. Requests use reqCtx, which outlives
// run, so that the last requests finish and their outcome is known.
func (c *client) run(run, reqCtx context.Context) {
	for run.Err() == nil {
		if len(c.locked) > 0 {
			c.unlock(run, reqCtx, c.locked[0])
			continue
		}
		switch c.e.cfg.Mix.pick(c.rng) {
		case OpPropfind:
			c.propfind(run, reqCtx)
		case OpGet:
			c.get(run, reqCtx)
		case OpPut:
			c.put(run, reqCtx)
		case OpMove:
			c.move(run, reqCtx)
		case OpProppatch:
			c.proppatch(run, reqCtx)
		case OpSearch:
			c.search(run, reqCtx)
		case OpLock:
			c.lock(run, reqCtx)
		}
	}
}

var xmlHeaders = []string{"Content-Type", "text/xml; charset=utf-8"}

func (c *client) propfind(run, rc context.Context) {
	n := 2
	if c.e.cfg.SharedFolder != "" {
		n = 3
	}
	f := c.rng.IntN(n)
	if f == 2 {
		c.propfindShared(run, rc)
		return
	}
	var items []item
	_, out := c.call(run, rc, OpPropfind, req{
		method: "PROPFIND", path: c.scratch[f], body: []byte(propfindBody),
		hdr: append([]string{"Depth", "1"}, xmlHeaders...), ok: []int{http.StatusMultiStatus},
		consume: func(r io.Reader) (err error) { items, err = readListing(r); return err },
	})
	if out == okay {
		c.verifyListing(f, items)
	}
}

// sharedPath is the shared folder's URL path.
func (c *client) sharedPath() string {
	var b strings.Builder
	b.WriteString(c.root)
	for _, s := range strings.Split(strings.Trim(c.e.cfg.SharedFolder, "/"), "/") {
		b.WriteString(url.PathEscape(s))
		b.WriteByte('/')
	}
	return b.String()
}

func (c *client) propfindShared(run, rc context.Context) {
	var found []string
	_, out := c.call(run, rc, OpPropfind, req{
		method: "PROPFIND", path: c.sharedPath(), body: []byte(propfindBody),
		hdr: append([]string{"Depth", "1"}, xmlHeaders...), ok: []int{http.StatusMultiStatus},
		consume: func(r io.Reader) error {
			return eachResponse(r, func(resp *msResponse) error {
				_, coll := hrefName(resp.Href)
				v, _ := resp.prop(nsDAV, "getcontentlength")
				size, err := strconv.ParseInt(v, 10, 64)
				if coll || err != nil || size > maxSharedSize || len(found) >= maxShared {
					return nil
				}
				if u, err := url.Parse(resp.Href); err == nil {
					found = append(found, u.EscapedPath())
				}
				return nil
			})
		},
	})
	if out == okay {
		c.shared = found
	}
}

// verifyListing compares a listing of scratch folder f, taken during the
// run, with the model.
func (c *client) verifyListing(f int, items []item) {
	seen := make(map[string]bool, len(items))
	bad := func(kind string, name, detail string) {
		c.issue(Issue{Kind: kind, Phase: "run", Folder: c.folderName(f), Name: name, Detail: detail})
	}
	for _, it := range items {
		m := c.byName[it.name]
		switch {
		case seen[it.name]:
			bad("duplicate", it.name, "listed twice in one PROPFIND")
		case m == nil:
			bad("unexpected", it.name, "PROPFIND lists an item davbench never wrote")
		case m.doubt != maybeMoved && m.folder != f:
			bad("misplaced", it.name, fmt.Sprintf("PROPFIND lists it here, but it is in %s", c.folderName(m.folder)))
		case m.doubt == sure && m.readKnown && it.hasRead && it.read != m.read:
			bad("read-flag", it.name, fmt.Sprintf("PROPFIND says read=%v, the last acknowledged PROPPATCH set %v", it.read, m.read))
		}
		seen[it.name] = true
	}
	for _, m := range c.msgs {
		if m.doubt == sure && m.folder == f && !seen[m.name] {
			bad("missing", m.name, "an acknowledged message is not in the PROPFIND listing")
		}
	}
}

var translateF = []string{"Translate", "f"}

func (c *client) get(run, rc context.Context) {
	if len(c.shared) > 0 && c.rng.IntN(sharedGetOneIn) == 0 {
		c.call(run, rc, OpGet, req{method: "GET", path: c.shared[c.rng.IntN(len(c.shared))], hdr: translateF, ok: []int{http.StatusOK}})
		return
	}
	m := c.pickMsg(isSure)
	if m == nil {
		c.put(run, rc)
		return
	}
	rep, out := c.call(run, rc, OpGet, req{method: "GET", path: c.msgPath(m), hdr: translateF, ok: []int{http.StatusOK}})
	switch {
	case out == okay:
		if d := c.compareBytes(m, rep.body); d != "" {
			c.issue(Issue{Kind: "corrupt", Phase: "run", Folder: c.folderName(m.folder), Name: m.name, MessageID: m.msgID, Detail: d})
		}
	case rep.status == http.StatusNotFound:
		c.issue(Issue{Kind: "missing", Phase: "run", Folder: c.folderName(m.folder), Name: m.name, MessageID: m.msgID, Detail: "GET of an acknowledged message: 404"})
	}
}

// compareBytes returns "" when got is the message PUT, else what differs.
func (c *client) compareBytes(m *message, got []byte) string {
	if sha256.Sum256(got) == m.sum {
		return ""
	}
	if !selfDigestOK(got) {
		return fmt.Sprintf("GET returned %d bytes (PUT %d) whose body does not match their %s header", len(got), m.size, digestHeader)
	}
	return fmt.Sprintf("GET returned %d bytes, not the %d PUT (the body matches its digest header: another message's bytes?)", len(got), m.size)
}

func (c *client) put(run, rc context.Context) {
	c.seq++
	f := c.rng.IntN(2)
	msgID, raw := buildMessage(c.rng, c.e.tag, c.id, c.seq, c.user.Name, time.Now())
	m := &message{name: fmt.Sprintf("m%d-%d.EML", c.id, c.seq), msgID: msgID, folder: f, sum: sha256.Sum256(raw), size: len(raw), readKnown: true}
	_, out := c.call(run, rc, OpPut, req{
		method: "PUT", path: c.msgPath(m), body: raw,
		// If-None-Match: * makes a name collision a 412, never an overwrite.
		hdr: []string{"Content-Type", "message/rfc822", "Translate", "f", "If-None-Match", "*"},
		ok:  []int{http.StatusCreated, http.StatusOK},
	})
	switch out {
	case okay:
	case unknown:
		m.doubt = maybeCreated
	default:
		return
	}
	c.msgs = append(c.msgs, m)
	c.byName[m.name] = m
}

func (c *client) move(run, rc context.Context) {
	m := c.pickMsg((*message).writable)
	if m == nil {
		c.put(run, rc)
		return
	}
	to := 1 - m.folder
	_, out := c.call(run, rc, OpMove, req{
		method: "MOVE", path: c.msgPath(m),
		hdr: []string{"Destination", c.e.base + c.scratch[to] + m.name, "Overwrite", "F"},
		ok:  []int{http.StatusCreated, http.StatusNoContent},
	})
	switch out {
	case okay:
		m.folder, m.moved = to, true
	case unknown:
		m.doubt = maybeMoved
	}
}

func readPatchBody(read bool) []byte {
	v := "0"
	if read {
		v = "1"
	}
	return []byte(`<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:h="urn:schemas:httpmail:">` +
		`<D:set><D:prop><h:read>` + v + `</h:read></D:prop></D:set></D:propertyupdate>`)
}

func (c *client) proppatch(run, rc context.Context) {
	m := c.pickMsg((*message).writable)
	if m == nil {
		c.put(run, rc)
		return
	}
	want := !m.read
	if !m.readKnown {
		want = c.rng.IntN(2) == 1
	}
	created := false
	_, out := c.call(run, rc, OpProppatch, req{
		method: "PROPPATCH", path: c.msgPath(m), body: readPatchBody(want), hdr: xmlHeaders,
		ok: []int{http.StatusMultiStatus},
		check: func(rep reply) string {
			st := 0
			err := eachResponse(strings.NewReader(string(rep.body)), func(r *msResponse) error {
				if statusCode(r.Status) == http.StatusCreated {
					created = true
				}
				st = max(st, r.propStatus(nsHTTPMail, "read"))
				return nil
			})
			switch {
			case err != nil:
				return "bad-xml"
			case created:
				return "created"
			case st != http.StatusOK:
				return "no-200-propstat"
			}
			return ""
		},
	})
	if created {
		// PROPPATCH creates a missing item (exchange-webdav.md §3.2): the
		// message the model holds was not there.
		c.issue(Issue{Kind: "created", Phase: "run", Folder: c.folderName(m.folder), Name: m.name, MessageID: m.msgID, Detail: "PROPPATCH of an acknowledged message created it (it was missing)"})
	}
	switch out {
	case okay:
		m.read, m.readKnown = want, true
	case unknown:
		m.readKnown, m.tainted = false, true
	}
}

// searchSQL finds the unread messages of a folder in Exchange's SQL
// (exchange-webdav.md §5.1): the scope is the folder's path without the
// trailing slash, as DavMail writes it.
func searchSQL(folderPath string) string {
	return `SELECT "DAV:displayname", "urn:schemas:mailheader:message-id" FROM SCOPE('shallow traversal of "` +
		strings.TrimSuffix(folderPath, "/") + `"') WHERE "DAV:isfolder" = false AND "urn:schemas:httpmail:read" = 0`
}

func searchBody(sql string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><D:searchrequest xmlns:D="DAV:"><D:sql>`)
	xml.EscapeText(&b, []byte(sql))
	b.WriteString(`</D:sql></D:searchrequest>`)
	return []byte(b.String())
}

func (c *client) search(run, rc context.Context) {
	f := c.rng.IntN(2)
	var names []string
	_, out := c.call(run, rc, OpSearch, req{
		method: "SEARCH", path: c.scratch[f], body: searchBody(searchSQL(c.scratch[f])), hdr: xmlHeaders,
		ok: []int{http.StatusMultiStatus},
		consume: func(r io.Reader) error {
			return eachResponse(r, func(resp *msResponse) error {
				if n, coll := hrefName(resp.Href); !coll {
					names = append(names, n)
				}
				return nil
			})
		},
	})
	if out == okay {
		c.verifySearch(f, names)
	}
}

// verifySearch compares the unread messages SEARCH found in scratch
// folder f with the model.
func (c *client) verifySearch(f int, names []string) {
	found := make(map[string]bool, len(names))
	bad := func(name, detail string) {
		c.issue(Issue{Kind: "search", Phase: "run", Folder: c.folderName(f), Name: name, Detail: detail})
	}
	for _, n := range names {
		found[n] = true
		m := c.byName[n]
		switch {
		case m == nil:
			bad(n, "SEARCH found an item davbench never wrote")
		case m.doubt != maybeMoved && m.folder != f:
			bad(n, "SEARCH found it here, but it is in "+c.folderName(m.folder))
		case m.doubt == sure && m.readKnown && m.read:
			bad(n, "SEARCH for read = 0 found a message whose last acknowledged PROPPATCH set read")
		}
	}
	for _, m := range c.msgs {
		if m.doubt == sure && m.folder == f && m.readKnown && !m.read && !found[m.name] {
			bad(m.name, "SEARCH for read = 0 missed an unread acknowledged message")
		}
	}
}

const lockBody = `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">` +
	`<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>` +
	`<D:owner>davbench</D:owner></D:lockinfo>`

func (c *client) lock(run, rc context.Context) {
	m := c.pickMsg((*message).writable)
	if m == nil {
		c.put(run, rc)
		return
	}
	token := ""
	rep, out := c.call(run, rc, OpLock, req{
		method: "LOCK", path: c.msgPath(m), body: []byte(lockBody),
		hdr: append([]string{"Depth", "0", "Timeout", lockTimeout}, xmlHeaders...),
		ok:  []int{http.StatusOK},
		check: func(rep reply) string {
			v := strings.TrimSpace(rep.header.Get("Lock-Token"))
			if len(v) < 3 || v[0] != '<' || v[len(v)-1] != '>' {
				return "no-lock-token"
			}
			token = v[1 : len(v)-1]
			return ""
		},
	})
	switch {
	case out == okay:
		m.lockToken = token
		c.locked = append(c.locked, m)
		c.unlock(run, rc, m)
	case out == unknown:
		m.lockUnknown = true
	case rep.status == http.StatusCreated:
		// RFC 4918 §7.3: a LOCK of an unmapped URL creates a resource.
		c.issue(Issue{Kind: "created", Phase: "run", Folder: c.folderName(m.folder), Name: m.name, MessageID: m.msgID, Detail: "LOCK of an acknowledged message created it (it was missing)"})
		m.lockUnknown = true
	}
}

func (c *client) unlock(run, rc context.Context, m *message) {
	rep, out := c.call(run, rc, opUnlock, req{
		method: "UNLOCK", path: c.msgPath(m), hdr: []string{"Lock-Token", "<" + m.lockToken + ">"},
		ok: []int{http.StatusNoContent, http.StatusOK},
	})
	if out == okay || out == refused {
		// Refused: the lock is gone (expired, or never applied here);
		// holding the token would only repeat the refusal.
		c.dropLock(m)
	}
	if rep.status == http.StatusNotFound && m.doubt == sure {
		c.issue(Issue{Kind: "missing", Phase: "run", Folder: c.folderName(m.folder), Name: m.name, MessageID: m.msgID, Detail: "UNLOCK of a locked acknowledged message: 404"})
	}
}

func (c *client) dropLock(m *message) {
	m.lockToken = ""
	for i, l := range c.locked {
		if l == m {
			c.locked = append(c.locked[:i], c.locked[i+1:]...)
			break
		}
	}
}

// unlockAll releases the locks still held after the run, and those a
// LOCK without an answer may have left (found through lockdiscovery), so
// that the check and the cleanup are not refused with 423.
func (c *client) unlockAll(ctx context.Context) {
	for len(c.locked) > 0 {
		m := c.locked[0]
		c.releaseLock(ctx, c.msgPath(m), m.lockToken)
		c.dropLock(m)
	}
	for _, m := range c.msgs {
		if !m.lockUnknown {
			continue
		}
		for f := range 2 {
			if f != m.folder && m.doubt != maybeMoved {
				continue
			}
			path := c.scratch[f] + m.name
			var tokens []string
			rep, err := c.reliable(ctx, req{
				method: "PROPFIND", path: path, body: []byte(lockDiscoveryBody),
				hdr: append([]string{"Depth", "0"}, xmlHeaders...), ok: []int{http.StatusMultiStatus},
				consume: func(r io.Reader) (err error) { tokens, err = lockTokens(r); return err },
			})
			if err != nil || rep.status != http.StatusMultiStatus {
				continue // not there: no lock to release
			}
			for _, tok := range tokens {
				c.releaseLock(ctx, path, tok)
			}
		}
		m.lockUnknown = false
	}
}

func (c *client) releaseLock(ctx context.Context, path, token string) {
	rep, err := c.reliable(ctx, req{method: "UNLOCK", path: path, hdr: []string{"Lock-Token", "<" + token + ">"}})
	if err != nil {
		c.e.log.Warn().Err(err).Str("path", path).Msg("unlock after the run")
	} else if rep.status != http.StatusNoContent && rep.status != http.StatusOK && rep.status != http.StatusConflict {
		c.e.log.Warn().Int("status", rep.status).Str("path", path).Msg("unlock after the run")
	}
}

const lockDiscoveryBody = `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>`

// lockTokens collects the DAV:locktoken hrefs of a lockdiscovery answer.
func lockTokens(r io.Reader) ([]string, error) {
	d := xml.NewDecoder(r)
	var stack []string
	var out []string
	for {
		t, err := d.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name.Space+" "+t.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			n := len(stack)
			if n >= 2 && stack[n-1] == nsDAV+" href" && stack[n-2] == nsDAV+" locktoken" {
				if tok := strings.TrimSpace(string(t)); tok != "" {
					out = append(out, tok)
				}
			}
		}
	}
}

// statusErr describes an unexpected answer of setup, check or cleanup.
func statusErr(what string, rep reply, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %d %s: %s", what, rep.status, http.StatusText(rep.status), strings.TrimSpace(string(clip(rep.body))))
}
