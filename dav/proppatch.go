package dav

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/davmail/davmail/mailbox"
)

func xmlName(p mailbox.Prop) xml.Name { return xml.Name{Space: p.Space, Local: p.Local} }

var propRead = xml.Name{Space: nsHTTPMail, Local: "read"}

// proppatch applies a DAV:propertyupdate (RFC 4918 §9.2): all
// instructions or none. urn:schemas:httpmail:read maps to the Seen flag;
// other live properties are protected (403); everything else is a dead
// property stored in the index.
func (h *Handler) proppatch(w http.ResponseWriter, r *http.Request, rq *request) error {
	t := &rq.target
	var parents []string
	if !t.exists {
		if err := ensureMessageParent(t); err != nil {
			return errorf(http.StatusNotFound, "no folder or message at this URL, and no folder to create it in")
		}
		parents = []string{rq.lockPathFolder(t.parent)}
	}
	if err := h.preconditions(r, rq, []string{rq.lockPath()}, nil, parents); err != nil {
		return err
	}
	patches, err := h.parsePropertyUpdate(r.Body)
	if err != nil {
		return err
	}
	res, err := h.applyPropPatch(r.Context(), rq, patches)
	if err != nil {
		return err
	}
	brief := isBrief(r)
	if brief && !res.failed {
		// Brief: t and every update succeeded: a bare 200 (SDK Brief Header).
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	b := []byte(multistatusOpen)
	b = appendPatchResponse(b, []byte(baseURL(r)+r.URL.EscapedPath()), patches, res, brief)
	b = append(b, multistatusClose...)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusMultiStatus)
	w.Write(b)
	return nil
}

// patchResult is the outcome of one property update.
type patchResult struct {
	status  []int // per instruction
	failed  bool
	created bool
}

// placeholderMessage is the smallest message an IMAP server stores: no
// header fields, an empty body (RFC 5322 §3.5: the blank line alone).
const placeholderMessage = "\r\n"

// appendEmpty creates the empty item that a PROPPATCH or a LOCK on an
// unmapped URL makes (exchange-webdav.md §3.2, RFC 4918 §7.3). A store
// that holds no empty message (an IMAP upstream) gets placeholderMessage
// instead, which the client's PUT then replaces. The placeholder is kept
// upstream, not in this gateway, so that the PUT may reach another
// gateway in front of the same server.
func appendEmpty(ctx context.Context, mb mailbox.Mailbox, folder, name string) (mailbox.Message, error) {
	m, err := mb.Append(ctx, folder, strings.NewReader(""), mailbox.AppendOptions{Name: name})
	if errors.Is(err, mailbox.ErrEmptyMessage) {
		m, err = mb.Append(ctx, folder, strings.NewReader(placeholderMessage), mailbox.AppendOptions{Name: name})
	}
	return m, err
}

// applyPropPatch applies patches to rq's target (creating a missing
// message first), all or nothing (RFC 4918 §9.2).
func (h *Handler) applyPropPatch(ctx context.Context, rq *request, patches []propPatch) (patchResult, error) {
	t := &rq.target
	res := patchResult{status: make([]int, len(patches))}
	if !t.exists {
		// PROPPATCH on a URL that does not exist creates the item
		// (exchange-webdav.md §3.2): DavMail sets properties, then PUTs
		// the content, which keeps them.
		m, err := appendEmpty(ctx, rq.mb, t.parent, t.name)
		if err != nil {
			return res, err
		}
		t.msg, t.exists, res.created = &m, true, true
	}
	status := res.status
	var set []mailbox.Prop
	var remove []mailbox.PropName
	// Flags the patch sets and clears: httpmail:read and the MAPI flag
	// properties all map to store flags, so they stay consistent with
	// each other (exchange-webdav.md §4.3).
	var addF, clearF mailbox.Flags
	// Instructions apply in document order (RFC 4918 §9.2): for a
	// property named twice, the last instruction decides.
	last := make(map[xml.Name]int, len(patches))
	for i, p := range patches {
		last[xmlName(p.prop)] = i
	}
	for i, p := range patches {
		if last[xmlName(p.prop)] != i {
			status[i] = http.StatusOK
			continue
		}
		n := xmlName(p.prop)
		switch {
		case t.msg != nil && flagProp(n):
			a, c := flagPatch(n, p.remove, strings.TrimSpace(p.prop.XML))
			addF, clearF = (addF&^c)|a, (clearF&^a)|c
			status[i] = http.StatusOK
		case protectedProp(n):
			status[i] = http.StatusForbidden
			res.failed = true
		case p.remove:
			remove = append(remove, mailbox.PropName{Space: n.Space, Local: n.Local})
			status[i] = http.StatusOK
		default:
			set = append(set, p.prop)
			status[i] = http.StatusOK
		}
	}
	folder, name := t.parent, t.name
	if t.isFolder {
		folder, name = t.folder.Path, ""
	}
	if !res.failed && (len(set) > 0 || len(remove) > 0) {
		if err := rq.mb.PatchProps(ctx, folder, name, set, remove); err != nil {
			if !errors.Is(err, mailbox.ErrTooManyProps) {
				return res, err
			}
			for i := range status {
				status[i] = http.StatusInsufficientStorage
			}
			res.failed = true
			addF, clearF = 0, 0
		}
	}
	if res.failed {
		for i := range status {
			if status[i] == http.StatusOK {
				status[i] = http.StatusFailedDependency
			}
		}
		return res, nil
	}
	if addF != 0 {
		if _, err := rq.mb.SetFlags(ctx, folder, name, addF, true); err != nil {
			return res, err
		}
	}
	if clearF != 0 {
		if _, err := rq.mb.SetFlags(ctx, folder, name, clearF, false); err != nil {
			return res, err
		}
	}
	return res, nil
}

// appendPatchResponse writes the DAV:response of one property update,
// grouping the properties by status; Brief leaves out the 200 group.
func appendPatchResponse(b, href []byte, patches []propPatch, res patchResult, brief bool) []byte {
	b = append(b, "<a:response><a:href>"...)
	b = append(b, href...)
	b = append(b, "</a:href>"...)
	if res.created {
		// DavMail reads this status line to tell "created" (§3.2).
		b = append(b, "<a:status>HTTP/1.1 201 Created</a:status>"...)
	}
	for _, code := range []int{http.StatusOK, http.StatusForbidden, http.StatusFailedDependency, http.StatusInsufficientStorage} {
		if brief && code == http.StatusOK {
			continue
		}
		any := false
		for i, p := range patches {
			if res.status[i] != code {
				continue
			}
			if !any {
				b = append(b, "<a:propstat><a:prop>"...)
				any = true
			}
			b = appendEmptyProp(b, xmlName(p.prop))
		}
		if any {
			b = append(b, "</a:prop><a:status>HTTP/1.1 "...)
			b = strconv.AppendInt(b, int64(code), 10)
			b = append(b, ' ')
			b = append(b, http.StatusText(code)...)
			b = append(b, "</a:status>"...)
			if code == http.StatusForbidden {
				b = append(b, "<a:error><a:cannot-modify-protected-property/></a:error>"...)
			}
			b = append(b, "</a:propstat>"...)
		}
	}
	return append(b, "</a:response>\n"...)
}

// parseBoolValue reads an Exchange boolean: "1"/"0", "true"/"false".
func parseBoolValue(s string) bool {
	s = strings.TrimSpace(s)
	return s == "1" || strings.EqualFold(s, "true")
}

var (
	propDeletedName  = splitProp(propDeleted)
	propFlagStatus   = xml.Name{Space: nsMAPI, Local: "x10900003"}
	propMessageFlags = xml.Name{Space: nsMAPI, Local: "x0e070003"}
	propLastVerb     = xml.Name{Space: nsMAPI, Local: "x10810003"}
)

// flagProp reports whether n is a message property stored as flags.
func flagProp(n xml.Name) bool {
	return n == propRead || n == propDeletedName || n == propFlagStatus || n == propMessageFlags || n == propLastVerb
}

// flagPatch returns the flags to add and to clear for setting (or, with
// remove, removing) property n to v (exchange-webdav.md §4.3, §11.1).
func flagPatch(n xml.Name, remove bool, v string) (add, clear mailbox.Flags) {
	num, _ := strconv.ParseInt(v, 10, 64)
	switch n {
	case propRead:
		if !remove && parseBoolValue(v) {
			return mailbox.FlagSeen, 0
		}
		return 0, mailbox.FlagSeen
	case propDeletedName: // DavMail: "1" marks \Deleted, removal undeletes
		if !remove && v == "1" {
			return mailbox.FlagDeleted, 0
		}
		return 0, mailbox.FlagDeleted
	case propFlagStatus: // PR_FLAG_STATUS: 2 = flagged
		if !remove && num == 2 {
			return mailbox.FlagFlagged, 0
		}
		return 0, mailbox.FlagFlagged
	case propMessageFlags: // PR_MESSAGE_FLAGS: 0x1 read, 0x8 unsent (draft)
		if remove {
			return 0, 0
		}
		if num&1 != 0 {
			add |= mailbox.FlagSeen
		} else {
			clear |= mailbox.FlagSeen
		}
		if num&8 != 0 {
			add |= mailbox.FlagDraft
		} else {
			clear |= mailbox.FlagDraft
		}
		return add, clear
	case propLastVerb: // 102/103 replied, 104 forwarded
		switch {
		case remove:
			return 0, mailbox.FlagAnswered | mailbox.FlagPassed
		case num == 102 || num == 103:
			return mailbox.FlagAnswered, 0
		case num == 104:
			return mailbox.FlagPassed, 0
		}
	}
	return 0, 0
}

// isBrief reports the Brief: t header (Exchange SDK "Brief Header"): leave
// out the 404 propstats of PROPFIND and the 200 ones of PROPPATCH.
func isBrief(r *http.Request) bool {
	return strings.EqualFold(strings.TrimSpace(r.Header.Get("Brief")), "t")
}
