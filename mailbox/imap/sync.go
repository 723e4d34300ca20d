package imap

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	bolt "go.etcd.io/bbolt"

	"github.com/davmail/davmail/convert"
	"github.com/davmail/davmail/mailbox"
)

// flagForwarded is the keyword clients use for a forwarded message
// (RFC 5550 §2.8); it carries mailbox.FlagPassed, which IMAP has no
// system flag for.
const flagForwarded = imapv2.Flag("$Forwarded")

var systemFlags = [...]struct {
	f mailbox.Flags
	i imapv2.Flag
}{
	{mailbox.FlagDraft, imapv2.FlagDraft}, {mailbox.FlagFlagged, imapv2.FlagFlagged},
	{mailbox.FlagPassed, flagForwarded}, {mailbox.FlagAnswered, imapv2.FlagAnswered},
	{mailbox.FlagSeen, imapv2.FlagSeen}, {mailbox.FlagDeleted, imapv2.FlagDeleted},
}

// fromIMAPFlags splits upstream flags into system flags and keywords
// (sorted; \Recent is session state and dropped).
func fromIMAPFlags(fl []imapv2.Flag) (mailbox.Flags, []string) {
	var f mailbox.Flags
	var kw []string
next:
	for _, x := range fl {
		for _, s := range systemFlags {
			if strings.EqualFold(string(x), string(s.i)) {
				f |= s.f
				continue next
			}
		}
		if strings.EqualFold(string(x), `\Recent`) || strings.HasPrefix(string(x), `\`) {
			continue
		}
		kw = append(kw, string(x))
	}
	slices.Sort(kw)
	return f, kw
}

// toIMAPFlags returns the upstream flags of f.
func toIMAPFlags(f mailbox.Flags) []imapv2.Flag {
	var out []imapv2.Flag
	for _, s := range systemFlags {
		if f&s.f != 0 {
			out = append(out, s.i)
		}
	}
	return out
}

// envelopeFields are the header fields convert.ScanEnvelope reads: they
// are fetched for new messages so that the envelope is decoded exactly as
// the Maildir backend decodes it (RFC 2047, charsets, address display).
var envelopeFields = []string{"Subject", "From", "To", "Cc", "Date", "Message-ID", "Content-Type"}

var headerSection = &imapv2.FetchItemBodySection{
	Specifier: imapv2.PartSpecifierHeader, HeaderFields: envelopeFields, Peek: true,
}

// newMsgFetch is what a sync fetches for each new message: RFC822.SIZE,
// FLAGS, INTERNALDATE, the envelope fields and BODYSTRUCTURE (for
// HasAttachments), and MODSEQ.
var newMsgFetch = &imapv2.FetchOptions{
	UID: true, Flags: true, RFC822Size: true, InternalDate: true, ModSeq: true,
	BodyStructure: &imapv2.FetchItemBodyStructure{Extended: true},
	BodySection:   []*imapv2.FetchItemBodySection{headerSection},
}

// syncFolder brings f in line with upstream, whose STATUS answer is st.
// When UIDVALIDITY, HIGHESTMODSEQ, UIDNEXT and the message count are
// those of the last sync, nothing changed (RFC 7162 §3.1.2.1) and nothing
// is sent. Otherwise: SELECT (CONDSTORE), flags of known messages changed
// since the last HIGHESTMODSEQ (UID FETCH … (CHANGEDSINCE n)), metadata
// of messages above the highest known UID, and, only when the count
// still differs, UID SEARCH ALL to find the expunged ones. m.mu is held.
func (m *mbox) syncFolder(ctx context.Context, cn *conn, f *folder, st *imapv2.StatusData) error {
	if st.UIDValidity == f.UIDValidity && st.HighestModSeq != 0 && st.HighestModSeq == f.HighestModSeq &&
		st.NumMessages != nil && *st.NumMessages == f.Exists && uint32(st.UIDNext) == f.UIDNext {
		return nil
	}
	cn.reselect()
	m.s.selects.Add(1)
	sd, err := cn.selectBox(ctx, m.upstream(f.path))
	if err != nil {
		return err
	}
	if sd.UIDValidity != f.UIDValidity {
		if err := m.resetFolder(f, sd.UIDValidity); err != nil {
			return err
		}
	}
	var maxUID uint32
	if n := len(f.msgs); n > 0 {
		maxUID = f.msgs[n-1].UID
	}
	type flagChange struct {
		uid   uint32
		flags mailbox.Flags
		kw    []string
	}
	var changes []flagChange
	if maxUID > 0 && (f.HighestModSeq == 0 || sd.HighestModSeq != f.HighestModSeq) {
		var set imapv2.UIDSet
		set.AddRange(1, imapv2.UID(maxUID))
		opts := &imapv2.FetchOptions{UID: true, Flags: true, ChangedSince: f.HighestModSeq}
		if f.HighestModSeq == 0 || sd.HighestModSeq == 0 {
			opts.ChangedSince = 0 // no CONDSTORE state to compare: every flag
		}
		err := cn.do(ctx, func(c *imapclient.Client) error {
			cmd := c.Fetch(set, opts)
			for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
				b, err := msg.Collect()
				if err != nil {
					cmd.Close()
					return err
				}
				fl, kw := fromIMAPFlags(b.Flags)
				changes = append(changes, flagChange{uint32(b.UID), fl, kw})
			}
			return cmd.Close()
		})
		if err != nil {
			return err
		}
	}
	var added []mailbox.Message
	if uint32(sd.UIDNext) > maxUID+1 && sd.NumMessages > 0 {
		var set imapv2.UIDSet
		set.AddRange(imapv2.UID(maxUID+1), 0) // maxUID+1:*
		m.s.fetches.Add(1)
		err := cn.do(ctx, func(c *imapclient.Client) error {
			cmd := c.Fetch(set, newMsgFetch)
			for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
				b, err := msg.Collect()
				if err != nil {
					cmd.Close()
					return err
				}
				if uint32(b.UID) <= maxUID {
					continue // "N:*" always includes the last message
				}
				added = append(added, newMessage(f.path, b))
			}
			return cmd.Close()
		})
		if err != nil {
			return err
		}
	}
	var gone map[uint32]bool
	if uint32(len(f.msgs)+len(added)) != sd.NumMessages {
		var sdata *imapv2.SearchData
		err := cn.do(ctx, func(c *imapclient.Client) (err error) {
			sdata, err = c.UIDSearch(&imapv2.SearchCriteria{}, &imapv2.SearchOptions{ReturnAll: true}).Wait()
			return err
		})
		if err != nil {
			return err
		}
		all, _ := sdata.All.(imapv2.UIDSet)
		gone = map[uint32]bool{}
		for _, msg := range f.msgs {
			if !all.Contains(imapv2.UID(msg.UID)) {
				gone[msg.UID] = true
			}
		}
		added = slices.DeleteFunc(added, func(msg mailbox.Message) bool { return !all.Contains(imapv2.UID(msg.UID)) })
	}

	// Apply: only real differences take a modseq.
	now := time.Now()
	var ms uint64
	touch := func() uint64 {
		if ms == 0 {
			ms = m.bump()
			f.Modseq, f.Modified = ms, now
		}
		return ms
	}
	var write []mailbox.Message
	for _, c := range changes {
		i, ok := f.find(c.uid)
		if !ok || gone[c.uid] {
			continue
		}
		old := f.msgs[i]
		if old.Flags == c.flags && slices.Equal(old.Keywords, c.kw) {
			continue
		}
		f.mutable()
		msg := &f.msgs[i]
		msg.Flags, msg.Keywords, msg.Modseq, msg.Modified = c.flags, c.kw, touch(), now
		write = append(write, *msg)
	}
	var removed []mailbox.Message
	for uid := range gone {
		if i, ok := f.find(uid); ok {
			removed = append(removed, f.remove(i))
			delete(m.byID, removed[len(removed)-1].ID)
			touch()
		}
	}
	for _, msg := range added {
		m.meta.LastID++
		msg.ID = m.meta.LastID
		msg.Name = mailbox.UniqueName(mailbox.NameFromSubject(msg.Envelope.Subject), func(n string) bool { _, ok := f.byName[n]; return ok })
		msg.Modseq, msg.Modified = touch(), now
		f.insert(msg)
		m.byID[msg.ID] = loc{f.path, msg.UID}
		write = append(write, msg)
	}
	f.HighestModSeq, f.Exists = sd.HighestModSeq, sd.NumMessages
	f.UIDNext = max(f.UIDNext, uint32(sd.UIDNext))
	m.dirty(f)
	return m.persist(write, func(tx *bolt.Tx) error {
		mb, pb, sb := tx.Bucket(bucketMsgs), tx.Bucket(bucketProps), tx.Bucket(bucketStructs)
		for _, msg := range removed {
			if err := mb.Delete(msgKey(f.path, msg.UID)); err != nil {
				return err
			}
			if err := pb.Delete(propKeyMsg(msg.ID)); err != nil {
				return err
			}
			if err := sb.Delete(idKey(msg.ID)); err != nil {
				return err
			}
		}
		return nil
	})
}

// resetFolder forgets every message of f after a UIDVALIDITY change
// (RFC 3501 §2.3.1.1: the old UIDs mean nothing any more). The messages
// come back with new IDs and names at the sync that follows.
func (m *mbox) resetFolder(f *folder, uidValidity uint32) error {
	if f.UIDValidity != 0 {
		m.s.log.Info().Str("user", m.user).Str("folder", f.path).
			Uint32("old", f.UIDValidity).Uint32("new", uidValidity).Msg("imap: UIDVALIDITY changed, folder re-indexed")
	}
	old := f.msgs
	err := m.db.Update(func(tx *bolt.Tx) error {
		mb, pb, sb := tx.Bucket(bucketMsgs), tx.Bucket(bucketProps), tx.Bucket(bucketStructs)
		for _, msg := range old {
			if err := mb.Delete(msgKey(f.path, msg.UID)); err != nil {
				return err
			}
			if err := pb.Delete(propKeyMsg(msg.ID)); err != nil {
				return err
			}
			if err := sb.Delete(idKey(msg.ID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, msg := range old {
		delete(m.byID, msg.ID)
	}
	f.msgs, f.shared, f.byName = nil, false, map[string]uint32{}
	f.UIDValidity, f.UIDNext, f.HighestModSeq, f.Exists = uidValidity, 0, 0, 0
	f.Modseq, f.Modified = m.bump(), time.Now()
	m.dirty(f)
	return nil
}

// newMessage builds the index entry of a message from its FETCH answer
// (without ID and name, which the caller assigns).
func newMessage(path string, b *imapclient.FetchMessageBuffer) mailbox.Message {
	fl, kw := fromIMAPFlags(b.Flags)
	msg := mailbox.Message{
		UID: uint32(b.UID), Flags: fl, Folder: path, Size: b.RFC822Size,
		Keywords: kw, InternalDate: b.InternalDate,
	}
	if hdr := b.FindBodySection(headerSection); hdr != nil {
		env, err := convert.ScanEnvelope(bytes.NewReader(hdr))
		if err == nil {
			msg.Envelope = env
		}
	}
	if b.BodyStructure != nil {
		msg.Envelope.HasAttachments = hasAttachments(b.BodyStructure, false)
		if msg.Envelope.ContentType == "" {
			msg.Envelope.ContentType = strings.ToLower(b.BodyStructure.MediaType())
		}
	}
	return msg
}

// hasAttachments applies convert.Part.IsAttachment's rule to a
// BODYSTRUCTURE: an attachment disposition; a file name on a part that
// is neither text nor multipart; an attached message not marked inline.
// A part with a Content-ID inside multipart/related is an inline image.
func hasAttachments(bs imapv2.BodyStructure, inRelated bool) bool {
	switch p := bs.(type) {
	case *imapv2.BodyStructureMultiPart:
		rel := strings.EqualFold(p.Subtype, "related")
		for _, c := range p.Children {
			if hasAttachments(c, rel) {
				return true
			}
		}
		return false
	case *imapv2.BodyStructureSinglePart:
		disp := ""
		if d := p.Disposition(); d != nil {
			disp = strings.ToLower(d.Value)
		}
		if disp != "" && disp != "inline" {
			return true
		}
		typ := strings.ToLower(p.Type)
		if typ == "message" && (strings.EqualFold(p.Subtype, "rfc822") || strings.EqualFold(p.Subtype, "global")) {
			return disp != "inline"
		}
		if inRelated && p.ID != "" && disp == "" {
			return false
		}
		return p.Filename() != "" && typ != "text" && typ != "multipart"
	}
	return false
}

// errUIDValidity is returned when upstream renumbered a folder under an
// operation; the folder is re-indexed and the caller may retry.
var errUIDValidity = fmt.Errorf("imap: folder UIDVALIDITY changed during the operation: %w", mailbox.ErrNotFound)
