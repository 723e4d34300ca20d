package dav

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/davmail/davmail/mailbox"
)

// RFC 6578 collection synchronization: REPORT sync-collection on any
// folder, with stateless sync tokens (the seeds' incremental sync kept
// per-client state and leaked it; brief, failure 4).
//
// A token is derived from the folder alone: its UIDVALIDITY, its modseq,
// its UIDNEXT and its message count, as
// "urn:davmail:sync:1:<uidvalidity>.<modseq>.<uidnext>.<count>" (base 36).
// Nothing is kept on the server between requests. From a token:
//
//   - changed or new members are the messages whose Modseq is above the
//     token's (the index keeps a modseq per message);
//   - members that existed then are exactly those with UID below the
//     token's UIDNEXT (UIDs only grow, RFC 3501 §2.3.1.1), so the number
//     removed since is the token's count minus the messages now present
//     with such a UID.
//
// The store keeps no record of which messages were removed, so when some
// were, the token is refused with the RFC 6578 §3.2 valid-sync-token
// precondition (403) and the client syncs from scratch; a change of
// UIDVALIDITY is refused the same way. Additions and changes, by far the
// common case, are answered incrementally.

const syncTokenPrefix = "urn:davmail:sync:1:"

type syncToken struct {
	uidValidity uint32
	modseq      uint64
	uidNext     uint32
	count       int
}

func folderSyncToken(f *mailbox.Folder) string {
	b := []byte(syncTokenPrefix)
	b = strconv.AppendUint(b, uint64(f.UIDValidity), 36)
	b = append(b, '.')
	b = strconv.AppendUint(b, f.Modseq, 36)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(f.UIDNext), 36)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(f.Messages), 36)
	return string(b)
}

func parseSyncToken(s string) (syncToken, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), syncTokenPrefix)
	if !ok {
		return syncToken{}, false
	}
	f := strings.Split(rest, ".")
	if len(f) != 4 {
		return syncToken{}, false
	}
	var v [4]uint64
	for i, s := range f {
		n, err := strconv.ParseUint(s, 36, 64)
		if err != nil {
			return syncToken{}, false
		}
		v[i] = n
	}
	if v[0] > 1<<32-1 || v[2] > 1<<32-1 || v[3] > 1<<31 {
		return syncToken{}, false
	}
	return syncToken{uint32(v[0]), v[1], uint32(v[2]), int(v[3])}, true
}

type syncRequest struct {
	token string
	level string
	limit int // 0: none
	props propfindRequest
}

// parseSyncCollection reads the body of a sync-collection REPORT (RFC
// 6578 §6.1), whose root the caller has read.
func parseSyncCollection(x *xmlReader) (syncRequest, error) {
	var req syncRequest
	sawProp := false
	for {
		t, err := x.Token()
		if err != nil {
			return req, eofIsBad(err)
		}
		if _, ok := t.(xml.EndElement); ok {
			break
		}
		se, ok := t.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case se.Name == xml.Name{Space: nsDAV, Local: "sync-token"}:
			if req.token, err = x.text(); err != nil {
				return req, err
			}
		case se.Name == xml.Name{Space: nsDAV, Local: "sync-level"}:
			if req.level, err = x.text(); err != nil {
				return req, err
			}
		case se.Name == xml.Name{Space: nsDAV, Local: "limit"}:
			if err := x.limit(&req.limit); err != nil {
				return req, err
			}
		case se.Name == xml.Name{Space: nsDAV, Local: "prop"}:
			names, err := x.nameList()
			if err != nil {
				return req, err
			}
			req.props.props, sawProp = names, true
		case se.Name == xml.Name{Space: nsDAV, Local: "allprop"}:
			req.props.allprop, sawProp = true, true
			if err := x.skip(); err != nil {
				return req, err
			}
		default:
			if err := x.skip(); err != nil {
				return req, err
			}
		}
	}
	if !sawProp {
		return req, errorf(http.StatusBadRequest, "DAV:sync-collection must hold a DAV:prop")
	}
	return req, x.drain()
}

// text reads the character data of the current element up to its end;
// child elements are refused.
func (x *xmlReader) text() (string, error) {
	var b strings.Builder
	for {
		t, err := x.Token()
		if err != nil {
			return "", eofIsBad(err)
		}
		switch t := t.(type) {
		case xml.CharData:
			if b.Len()+len(t) > 4096 { // a token or level is short
				return "", errorf(http.StatusBadRequest, "element text too long")
			}
			b.Write(t)
		case xml.StartElement:
			return "", errorf(http.StatusBadRequest, "unexpected element %s", t.Name.Local)
		case xml.EndElement:
			return strings.TrimSpace(b.String()), nil
		}
	}
}

// limit reads DAV:limit/DAV:nresults (RFC 5323 §5.17).
func (x *xmlReader) limit(n *int) error {
	for {
		t, err := x.Token()
		if err != nil {
			return eofIsBad(err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			if t.Name != (xml.Name{Space: nsDAV, Local: "nresults"}) {
				if err := x.skip(); err != nil {
					return err
				}
				continue
			}
			s, err := x.text()
			if err != nil {
				return err
			}
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 {
				return errorf(http.StatusBadRequest, "DAV:nresults must be a positive integer")
			}
			*n = v
		case xml.EndElement:
			return nil
		}
	}
}

// report answers REPORT; only sync-collection is supported.
func (h *Handler) report(w http.ResponseWriter, r *http.Request, rq *request) error {
	x := h.newXMLReader(r.Body)
	root, err := x.root()
	if err == io.EOF {
		return errorf(http.StatusBadRequest, "REPORT needs a body")
	}
	if err != nil {
		return err
	}
	if root.Name != (xml.Name{Space: nsDAV, Local: "sync-collection"}) {
		return &httpError{Code: http.StatusForbidden, Cond: "supported-report", Msg: fmt.Sprintf("report %s is not supported; DAV:sync-collection is", root.Name.Local)}
	}
	req, err := parseSyncCollection(x)
	if err != nil {
		return err
	}
	t := &rq.target
	if !t.exists || !t.isFolder {
		return errorf(http.StatusForbidden, "sync-collection works on folders")
	}
	if req.level != "1" {
		return &httpError{Code: http.StatusForbidden, Cond: "sync-level", Msg: "only DAV:sync-level 1 is supported: sync each folder (folders are listed by PROPFIND)"}
	}
	if d := r.Header.Get("Depth"); d != "" && d != "0" {
		return errorf(http.StatusBadRequest, "REPORT sync-collection takes Depth: 0 (RFC 6578 §3.3)")
	}
	f := t.folder
	msgs, err := rq.mb.List(r.Context(), f.Path)
	if err != nil {
		return err
	}
	// The folder snapshot the new token describes: List and Folder are
	// separate calls, so derive the token from the listing itself.
	cur := f
	cur.Messages = len(msgs)
	for i := range msgs {
		if msgs[i].Modseq > cur.Modseq {
			cur.Modseq = msgs[i].Modseq
		}
		if msgs[i].UID >= cur.UIDNext {
			cur.UIDNext = msgs[i].UID + 1
		}
	}
	changed := msgs
	if req.token != "" {
		tok, ok := parseSyncToken(req.token)
		if !ok || tok.uidValidity != f.UIDValidity {
			return &httpError{Code: http.StatusForbidden, Cond: "valid-sync-token", Msg: "the sync token is not one of this folder's (or its UIDs started afresh): sync again without a token"}
		}
		old := 0
		changed = nil
		for i := range msgs {
			if msgs[i].UID < tok.uidNext {
				old++
			}
			if msgs[i].Modseq > tok.modseq {
				changed = append(changed, msgs[i])
			}
		}
		if old != tok.count {
			return &httpError{Code: http.StatusForbidden, Cond: "valid-sync-token", Msg: fmt.Sprintf("%d messages were removed since this token; sync again without a token", tok.count-old)}
		}
	}
	if req.limit > 0 && len(changed) > req.limit {
		return &httpError{Code: http.StatusInsufficientStorage, Cond: "number-of-matches-within-limits", Msg: fmt.Sprintf("%d changes exceed the limit of %d: sync without a limit", len(changed), req.limit)}
	}
	l := listing{folders: []mailbox.Folder{f}, msgs: [][]mailbox.Message{changed}, noroot: true, syncToken: folderSyncToken(&cur)}
	return h.writeMultistatus(w, r, rq, &req.props, &l)
}
