package dav

import (
	"context"
	"encoding/xml"
	"strconv"
	"strings"
	"time"

	"github.com/davmail/davmail/mailbox"
)

// resource is one folder or message being described in a response.
type resource struct {
	folder *mailbox.Folder // set for collections (the root included)
	msg    *mailbox.Message
	// lockPath is the canonical path locks are keyed by.
	lockPath string
}

// renderCtx is what property values need besides the resource.
type renderCtx struct {
	h       *Handler
	ctx     context.Context
	mb      mailbox.Mailbox
	locks   []lockView // active locks on the resource, for lockdiscovery
	now     time.Time
	folders []mailbox.Folder // loaded on first need (hassubs)
	// root is the absolute URL of the mailbox root, without the final "/".
	root []byte
	// exchange selects Exchange's value formats (see exchangeDialect).
	exchange bool
	// single is set when one message is described (content properties
	// are answered only then, desc.go), with their cached values.
	single             bool
	descDone, descOK   bool
	descText, descHTML []byte
	hdrDone            bool
	hdrBlock           []byte
}

// rootFolderProp is an httpmail: property of the mailbox root whose value
// is the absolute URL of the folder with the given special use ("\\Inbox"
// is INBOX; a name without a backslash is a top-level folder of that name).
func rootFolderProp(local, use string) liveProp {
	return liveProp{name: xml.Name{Space: nsHTTPMail, Local: local}, appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		if r.folder == nil || r.folder.Path != "" {
			return b, false
		}
		path := ""
		switch {
		case use == "\\Inbox":
			path = mailbox.Inbox
		default:
			c.loadFolders()
			for _, f := range c.folders {
				if (use[0] == '\\' && f.SpecialUse == use && mailbox.Parent(f.Path) == "") || f.Path == use {
					path = f.Path
					break
				}
			}
		}
		if path == "" {
			return b, false
		}
		b = append(b, c.root...)
		for _, seg := range strings.Split(folderURLPath(path), "/") {
			b = append(b, '/')
			b = appendEscaped(b, seg)
		}
		return b, true
	}}
}

// liveProp is a property computed from the index. appendValue appends the
// element content and returns false when the property does not apply to
// this resource (then it is reported 404 when asked for by name).
type liveProp struct {
	name xml.Name
	// dt is the Exchange datatype attribute value (b:dt), "" for none.
	dt          string
	allprop     bool
	appendValue func(b []byte, c *renderCtx, r *resource) ([]byte, bool)
}

func msgOnly(f func(b []byte, c *renderCtx, m *mailbox.Message) []byte) func([]byte, *renderCtx, *resource) ([]byte, bool) {
	return func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		if r.msg == nil {
			return b, false
		}
		return f(b, c, r.msg), true
	}
}

func folderOnly(f func(b []byte, c *renderCtx, fo *mailbox.Folder) []byte) func([]byte, *renderCtx, *resource) ([]byte, bool) {
	return func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		if r.folder == nil {
			return b, false
		}
		return f(b, c, r.folder), true
	}
}

func modified(r *resource) time.Time {
	if r.msg != nil {
		return r.msg.Modified
	}
	return r.folder.Modified
}

// liveProps lists the live properties in the order allprop writes them.
// The DAV: ones are RFC 4918 §15; the urn:schemas:httpmail: ones follow
// the Exchange 2003 SDK (exchange-webdav.md §4.3).
var liveProps = []liveProp{
	{name: xml.Name{Space: nsDAV, Local: "resourcetype"}, allprop: true, appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		if r.folder != nil {
			b = append(b, "<a:collection/>"...)
		}
		return b, true
	}},
	{name: xml.Name{Space: nsDAV, Local: "displayname"}, allprop: true, appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		if r.msg != nil {
			return appendXMLText(b, r.msg.Name), true
		}
		if r.folder.Path == mailbox.Inbox {
			return append(b, inboxSegment...), true
		}
		return appendXMLText(b, r.folder.Name()), true
	}},
	{name: xml.Name{Space: nsDAV, Local: "getcontentlength"}, allprop: true, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendInt(b, m.Size)
	})},
	{name: xml.Name{Space: nsDAV, Local: "getcontenttype"}, allprop: true, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return append(b, "message/rfc822"...)
	})},
	{name: xml.Name{Space: nsDAV, Local: "getetag"}, allprop: true, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendETag(b, m.ID, m.Size)
	})},
	{name: xml.Name{Space: nsDAV, Local: "getlastmodified"}, allprop: true, appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		t := modified(r)
		if t.IsZero() {
			return b, false
		}
		if c.exchange {
			// Exchange-dialect clients need milliseconds in UTC
			// (exchange-webdav.md §0.3 #4); RFC 4918 §15.7 clients the
			// RFC 1123 form.
			return appendExchangeDate(b, t), true
		}
		return appendHTTPDate(b, t), true
	}},
	{name: xml.Name{Space: nsDAV, Local: "creationdate"}, allprop: true, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendISODate(b, m.InternalDate)
	})},
	{name: xml.Name{Space: nsDAV, Local: "supportedlock"}, allprop: true, appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		return append(b, "<a:lockentry><a:lockscope><a:exclusive/></a:lockscope><a:locktype><a:write/></a:locktype></a:lockentry>"+
			"<a:lockentry><a:lockscope><a:shared/></a:lockscope><a:locktype><a:write/></a:locktype></a:lockentry>"...), true
	}},
	{name: xml.Name{Space: nsDAV, Local: "lockdiscovery"}, allprop: true, appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		for _, l := range c.locks {
			b = appendActiveLock(b, l, c.now)
		}
		return b, true
	}},
	{name: xml.Name{Space: nsDAV, Local: "iscollection"}, dt: "boolean", appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		return appendBool(b, r.folder != nil), true
	}},
	{name: xml.Name{Space: nsDAV, Local: "hassubs"}, dt: "boolean", appendValue: folderOnly(func(b []byte, c *renderCtx, f *mailbox.Folder) []byte {
		return appendBool(b, c.h.hasSubfolders(c, f.Path))
	})},
	{name: xml.Name{Space: nsHTTPMail, Local: "subject"}, allprop: true, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendXMLText(b, m.Envelope.Subject)
	})},
	{name: xml.Name{Space: nsHTTPMail, Local: "from"}, allprop: true, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendXMLText(b, m.Envelope.From)
	})},
	{name: xml.Name{Space: nsHTTPMail, Local: "to"}, allprop: true, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendXMLText(b, m.Envelope.To)
	})},
	{name: xml.Name{Space: nsHTTPMail, Local: "cc"}, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendXMLText(b, m.Envelope.Cc)
	})},
	{name: xml.Name{Space: nsHTTPMail, Local: "date"}, dt: "dateTime.tz", allprop: true, appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		if r.msg == nil {
			return b, false
		}
		d := r.msg.Envelope.Date
		if d.IsZero() {
			d = r.msg.InternalDate
		}
		return appendExchangeDate(b, d), true
	}},
	{name: xml.Name{Space: nsHTTPMail, Local: "datereceived"}, dt: "dateTime.tz", appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendExchangeDate(b, m.InternalDate)
	})},
	{name: xml.Name{Space: nsHTTPMail, Local: "read"}, dt: "boolean", allprop: true, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendBool(b, m.Flags&mailbox.FlagSeen != 0)
	})},
	{name: xml.Name{Space: nsHTTPMail, Local: "hasattachment"}, dt: "boolean", allprop: true, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendBool(b, m.Envelope.HasAttachments)
	})},
	{name: xml.Name{Space: nsHTTPMail, Local: "unreadcount"}, dt: "int", allprop: true, appendValue: folderOnly(func(b []byte, c *renderCtx, f *mailbox.Folder) []byte {
		return appendInt(b, int64(f.Unseen))
	})},
	{name: xml.Name{Space: nsDAV, Local: "visiblecount"}, dt: "int", appendValue: folderOnly(func(b []byte, c *renderCtx, f *mailbox.Folder) []byte {
		return appendInt(b, int64(f.Messages))
	})},
	{name: xml.Name{Space: nsHeader, Local: "message-id"}, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendXMLText(b, m.Envelope.MessageID)
	})},
	// Exchange / MAPI properties with data in the index (exchange-webdav.md
	// §4.2, §4.3). Not in allprop: generic clients never ask for them.
	{name: xml.Name{Space: nsMAPI, Local: "x0e230003"}, dt: "int", appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendInt(b, int64(m.UID)) // PR_INTERNET_ARTICLE_NUMBER: the IMAP UID
	})},
	{name: xml.Name{Space: nsMAPI, Local: "x0e080003"}, dt: "int", appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendInt(b, m.Size) // PR_MESSAGE_SIZE
	})},
	{name: xml.Name{Space: nsMAPI, Local: "x0e060040"}, dt: "dateTime.tz", appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendExchangeDate(b, m.InternalDate) // PR_MESSAGE_DELIVERY_TIME
	})},
	{name: xml.Name{Space: nsMAPI, Local: "x10f3001f"}, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendXMLText(b, m.Name) // PR_URL_COMP_NAME, not URL-encoded
	})},
	{name: xml.Name{Space: nsMAPI, Local: "x0e070003"}, dt: "int", appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		// PR_MESSAGE_FLAGS: MSGFLAG_READ 0x1, MSGFLAG_UNSENT 0x8
		n := int64(0)
		if m.Flags&mailbox.FlagSeen != 0 {
			n |= 1
		}
		if m.Flags&mailbox.FlagDraft != 0 {
			n |= 8
		}
		return appendInt(b, n)
	})},
	{name: xml.Name{Space: nsMAPI, Local: "x10900003"}, dt: "int", appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		if m.Flags&mailbox.FlagFlagged != 0 { // PR_FLAG_STATUS: 2 = flagged
			return append(b, '2')
		}
		return append(b, '0')
	})},
	{name: xml.Name{Space: nsDAV, Local: "uid"}, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return strconv.AppendUint(b, m.ID, 36) // stable across moves
	})},
	{name: xml.Name{Space: nsDAV, Local: "contentclass"}, appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		if r.msg != nil {
			return append(b, "urn:content-classes:message"...), true
		}
		return append(b, "urn:content-classes:mailfolder"...), true
	}},
	{name: xml.Name{Space: nsDAV, Local: "isfolder"}, dt: "boolean", appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		return appendBool(b, r.folder != nil), true
	}},
	{name: xml.Name{Space: nsDAV, Local: "ishidden"}, dt: "boolean", appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		return append(b, '0'), true
	}},
	{name: xml.Name{Space: nsDAV, Local: "objectcount"}, dt: "int", appendValue: folderOnly(func(b []byte, c *renderCtx, f *mailbox.Folder) []byte {
		return appendInt(b, int64(f.Messages))
	})},
	{name: xml.Name{Space: nsMAPI, Local: "x67510003"}, dt: "int", appendValue: folderOnly(func(b []byte, c *renderCtx, f *mailbox.Folder) []byte {
		return appendInt(b, int64(f.UIDNext)) // PR_ARTICLE_NUM_NEXT: IMAP UIDNEXT
	})},
	{name: xml.Name{Space: nsRepl, Local: "contenttag"}, appendValue: folderOnly(func(b []byte, c *renderCtx, f *mailbox.Folder) []byte {
		// The ctag: changes with every change in the folder (Modseq),
		// and with a new UIDValidity.
		b = strconv.AppendUint(b, uint64(f.UIDValidity), 36)
		b = append(b, '-')
		return strconv.AppendUint(b, f.Modseq, 36)
	})},
	{name: xml.Name{Space: nsDAV, Local: "sync-token"}, appendValue: folderOnly(func(b []byte, c *renderCtx, f *mailbox.Folder) []byte {
		return appendXMLText(b, folderSyncToken(f)) // RFC 6578 §4 (sync.go)
	})},
	{name: xml.Name{Space: nsDAV, Local: "supported-report-set"}, appendValue: folderOnly(func(b []byte, c *renderCtx, f *mailbox.Folder) []byte {
		return append(b, "<a:supported-report><a:report><a:sync-collection/></a:report></a:supported-report>"...)
	})},
	{name: xml.Name{Space: nsExchange, Local: "outlookfolderclass"}, appendValue: folderOnly(func(b []byte, c *renderCtx, f *mailbox.Folder) []byte {
		return append(b, "IPF.Note"...)
	})},
	// Special-folder URLs on the mailbox root (exchange-webdav.md §1.4),
	// mapped from RFC 6154 special-use attributes (Dovecot's Sent, Trash,
	// Drafts, Junk). A folder the store does not have is left out (404),
	// which is how Exchange says "absent"; calendar, contacts and tasks are
	// absent until the gateway serves them. sendmsg names the submission
	// URI when sending is configured.
	rootFolderProp("inbox", "\\Inbox"),
	rootFolderProp("drafts", "\\Drafts"),
	rootFolderProp("sentitems", "\\Sent"),
	rootFolderProp("deleteditems", "\\Trash"),
	rootFolderProp("junkemail", "\\Junk"),
	rootFolderProp("outbox", "Outbox"),
	{name: xml.Name{Space: nsHTTPMail, Local: "sendmsg"}, appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		if r.folder == nil || r.folder.Path != "" || c.h.cfg.Submit == nil {
			return b, false
		}
		b = append(append(b, c.root...), '/')
		return append(appendEscaped(b, submissionSegment), '/'), true
	}},
	{name: xml.Name{Space: nsHTTPMail, Local: "msgfolderroot"}, appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		if r.folder == nil || r.folder.Path != "" {
			return b, false
		}
		return append(append(b, c.root...), '/'), true
	}},
	// The body as properties, for one message at a time (desc.go).
	descProp(nsHTTPMail, "textdescription", false),
	descProp(nsHTTPMail, "htmldescription", true),
	descProp(nsHeader, "htmldescription", true),
	{name: xml.Name{Space: nsMAPI, Local: "x007d001f"}, appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		if r.msg == nil { // PR_TRANSPORT_MESSAGE_HEADERS, one message at a time (desc.go)
			return b, false
		}
		h, ok := c.headerBlock(r.msg)
		if !ok {
			return b, false
		}
		return appendXMLText(b, string(h)), true
	}},
	// oversized marks legacy messages above max-message-size: listed with
	// their exact size, but GET of the whole message is refused.
	{name: xml.Name{Space: nsDavmail, Local: "oversized"}, dt: "boolean", allprop: true, appendValue: msgOnly(func(b []byte, c *renderCtx, m *mailbox.Message) []byte {
		return appendBool(b, m.Size > c.h.cfg.MaxMessageSize)
	})},
}

var livePropIndex = func() map[xml.Name]int {
	m := make(map[xml.Name]int, len(liveProps))
	for i, p := range liveProps {
		m[p.name] = i
	}
	return m
}()

// protectedProp reports whether a PROPPATCH may not touch name: every
// live property is computed, so setting it is refused (RFC 4918 §16
// cannot-modify-protected-property), except the writable ones handled in
// proppatch.go.
func protectedProp(n xml.Name) bool {
	_, live := livePropIndex[n]
	return live || n.Space == nsDAV
}
