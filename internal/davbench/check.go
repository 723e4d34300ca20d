package davbench

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// check compares the server with the model after the run: both scratch
// folders are listed, every message is located, downloaded and compared,
// and its read flag checked. It adds its findings to c.issues and
// returns the counts.
func (c *client) check(ctx context.Context) CheckResult {
	var res CheckResult
	c.unlockAll(ctx)
	var lists [2][]item
	for f := range 2 {
		var items []item
		rep, err := c.reliable(ctx, req{
			method: "PROPFIND", path: c.scratch[f], body: []byte(propfindBody),
			hdr: append([]string{"Depth", "1"}, xmlHeaders...), ok: []int{http.StatusMultiStatus},
			consume: func(r io.Reader) (err error) { items, err = readListing(r); return err },
		})
		if err != nil || rep.status != http.StatusMultiStatus {
			c.issue(Issue{Kind: "listing", Phase: "check", Folder: c.folderName(f), Detail: statusErr("PROPFIND of the scratch folder", rep, err).Error()})
			return res
		}
		lists[f] = items
	}
	bad := func(kind string, f int, m *message, name, detail string) {
		is := Issue{Kind: kind, Phase: "check", Name: name, Detail: detail}
		if f >= 0 {
			is.Folder = c.folderName(f)
		}
		if m != nil {
			is.MessageID = m.msgID
		}
		c.issue(is)
	}
	// Where each name is, and how often each Message-ID occurs.
	type place struct {
		in   [2]bool
		item [2]item
	}
	where := make(map[string]*place)
	ids := make(map[string][]string)
	for f, items := range lists {
		for _, it := range items {
			p := where[it.name]
			if p == nil {
				p = &place{}
				where[it.name] = p
			}
			if p.in[f] {
				bad("duplicate", f, nil, it.name, "listed twice in one folder")
			}
			p.in[f], p.item[f] = true, it
			if it.msgID != "" {
				ids[it.msgID] = append(ids[it.msgID], c.folderName(f)+it.name)
			}
			if c.byName[it.name] == nil {
				bad("unexpected", f, nil, it.name, "an item davbench never wrote (or a write it was refused)")
			}
		}
	}
	for id, at := range ids {
		if len(at) > 1 {
			bad("duplicate", -1, nil, "", fmt.Sprintf("Message-ID %s occurs %d times: %v", id, len(at), at))
		}
	}
	for _, m := range c.msgs {
		p := where[m.name]
		if p == nil {
			p = &place{}
		}
		other := 1 - m.folder
		found := -1
		switch {
		case m.doubt != sure:
			res.InDoubt++
			switch {
			case p.in[0] && p.in[1]:
				bad("duplicate", -1, m, m.name, "a message whose write is in doubt is in both folders")
			case m.doubt == maybeMoved && !p.in[0] && !p.in[1]:
				bad("missing", m.folder, m, m.name, "an acknowledged message whose MOVE got no answer is in neither folder")
			case p.in[m.folder]:
				found = m.folder
			case p.in[other] && m.doubt == maybeMoved:
				found = other
			case p.in[other]:
				bad("misplaced", other, m, m.name, "a message PUT to "+c.folderName(m.folder)+" (no answer) is here")
			}
		case p.in[m.folder] && p.in[other]:
			bad("duplicate", -1, m, m.name, "an acknowledged message is in both scratch folders")
		case p.in[m.folder]:
			found = m.folder
		case p.in[other]:
			bad("misplaced", other, m, m.name, "the last acknowledged operation put it in "+c.folderName(m.folder))
		default:
			bad("missing", m.folder, m, m.name, "an acknowledged message is in neither scratch folder")
		}
		if m.doubt == sure {
			res.Messages++
		}
		if found < 0 {
			continue
		}
		it := p.item[found]
		if it.msgID != m.msgID {
			bad("corrupt", found, m, m.name, fmt.Sprintf("listed with Message-ID %q, PUT with %q", it.msgID, m.msgID))
		}
		rep, err := c.reliable(ctx, req{method: "GET", path: c.scratch[found] + m.name, hdr: translateF, ok: []int{http.StatusOK}})
		switch {
		case err != nil || rep.status != http.StatusOK:
			bad("missing", found, m, m.name, statusErr("GET of a listed message", rep, err).Error())
		default:
			res.BytesChecked += int64(len(rep.body))
			if d := c.compareBytes(m, rep.body); d != "" {
				bad("corrupt", found, m, m.name, d)
			}
		}
		if m.doubt != sure {
			continue
		}
		if m.moved {
			res.Moved++
		}
		switch {
		case !m.readKnown:
			res.InDoubt++
		case !it.hasRead:
			bad("read-flag", found, m, m.name, "the listing has no urn:schemas:httpmail:read")
		case it.read != m.read:
			bad("read-flag", found, m, m.name, fmt.Sprintf("read=%v, the last acknowledged PROPPATCH (or the PUT) left %v", it.read, m.read))
		default:
			res.Read++
		}
	}
	return res
}
