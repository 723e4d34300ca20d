package imap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
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
// With Content-Type and Content-Disposition, the scan of these fields
// also tells whether a message that is not multipart is an attachment
// (convert's rule for the top-level part), so only multipart messages
// need their BODYSTRUCTURE.
var envelopeFields = []string{"Subject", "From", "To", "Cc", "Date", "Message-ID", "Content-Type", "Content-Disposition"}

var headerSection = &imapv2.FetchItemBodySection{
	Specifier: imapv2.PartSpecifierHeader, HeaderFields: envelopeFields, Peek: true,
}

// newMsgFetch is what a sync fetches for each new message: RFC822.SIZE,
// FLAGS, INTERNALDATE and the envelope fields. BODYSTRUCTURE, which
// costs the server a parse of the whole message and the client a large
// decode, is asked separately (structFetch) for the messages whose
// attachments the header cannot tell: multipart ones and attached
// messages.
var newMsgFetch = &imapv2.FetchOptions{
	UID: true, Flags: true, RFC822Size: true, InternalDate: true,
	BodySection: []*imapv2.FetchItemBodySection{headerSection},
}

// structFetch asks the BODYSTRUCTURE of messages whose top-level type is
// multipart or message (HasAttachments).
var structFetch = &imapv2.FetchOptions{UID: true, BodyStructure: &imapv2.FetchItemBodyStructure{Extended: true}}

// writeBatchLen is how many new messages go to the index writer at a time:
// large enough that commits are rare (25 for 100,000 messages), small
// enough that a batch in flight is a few MiB and an interrupted cold
// listing keeps most of what it fetched.
const writeBatchLen = 4096

// maxSetUIDs bounds the UIDs of one UID FETCH whose set is scattered:
// 1,024 UIDs of up to 11 bytes each stay well under the 64 KiB command
// line Dovecot accepts (imap_max_line_length).
const maxSetUIDs = 1024

// syncFolder brings f in line with upstream, whose STATUS answer is st.
// When UIDVALIDITY, HIGHESTMODSEQ, UIDNEXT and the message count are
// those of the last sync, nothing changed (RFC 7162 §3.1.2.1) and nothing
// is sent. Otherwise: SELECT (CONDSTORE), flags of known messages changed
// since the last HIGHESTMODSEQ (UID FETCH … (CHANGEDSINCE n)), metadata
// of messages above the highest known UID (one UID FETCH maxUID+1:*,
// streamed), and, only when the count still differs, UID SEARCH ALL to
// find the expunged ones and any the index lacks. m.mu is held.
//
// New messages are written to the index while the FETCH still streams
// (indexWriter), in batches. A message whose attachments only its
// BODYSTRUCTURE tells is written after the FETCH, once that is known. A
// sync interrupted half-way thus leaves the index with some of the new
// messages and the folder's old sync state: the next sync fetches those
// above the highest UID, and its UID SEARCH (the count differs) finds
// those below it.
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
		if !ok {
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

	if uint32(sd.UIDNext) > maxUID+1 && sd.NumMessages > 0 {
		if want := int(sd.NumMessages) - len(f.msgs); want > 0 && len(f.msgs) == 0 {
			// A first sync: size the folder once instead of growing it
			// by doubling (each step a copy, and garbage).
			f.msgs = slices.Grow(f.msgs, want)
			f.byName = make(map[string]uint32, want)
		}
		var set imapv2.UIDSet
		set.AddRange(imapv2.UID(maxUID+1), 0) // maxUID+1:*
		if err := m.fetchNew(ctx, cn, f, set, maxUID, int(sd.NumMessages)-len(f.msgs), write, touch, now); err != nil {
			return err
		}
		write = nil // written by fetchNew
	}

	var removed []mailbox.Message
	if uint32(len(f.msgs)) != sd.NumMessages {
		var sdata *imapv2.SearchData
		err := cn.do(ctx, func(c *imapclient.Client) (err error) {
			sdata, err = c.UIDSearch(&imapv2.SearchCriteria{}, &imapv2.SearchOptions{ReturnAll: true}).Wait()
			return err
		})
		if err != nil {
			return err
		}
		all, _ := sdata.All.(imapv2.UIDSet)
		var gone []uint32
		for _, msg := range f.msgs {
			if !all.Contains(imapv2.UID(msg.UID)) {
				gone = append(gone, msg.UID)
			}
		}
		for _, uid := range gone {
			if i, ok := f.find(uid); ok {
				removed = append(removed, f.remove(i))
				delete(m.byID, removed[len(removed)-1].ID)
				touch()
			}
		}
		// Upstream messages the index lacks (a sync interrupted before
		// writing them, see above): fetched now, in sets of bounded
		// length.
		var missing []imapv2.UIDSet
		var cur imapv2.UIDSet
		var n int
		forEachUID(all, func(uid uint32) {
			if _, ok := f.find(uid); ok {
				return
			}
			cur.AddNum(imapv2.UID(uid))
			if n++; n == maxSetUIDs {
				missing, cur, n = append(missing, cur), nil, 0
			}
		})
		if n > 0 {
			missing = append(missing, cur)
		}
		for _, set := range missing {
			if err := m.fetchNew(ctx, cn, f, set, 0, maxSetUIDs, write, touch, now); err != nil {
				return err
			}
			write = nil
		}
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

// forEachUID calls fn for each UID of a UID SEARCH answer (no "*").
func forEachUID(set imapv2.UIDSet, fn func(uint32)) {
	for _, r := range set {
		lo, hi := uint32(r.Start), uint32(r.Stop)
		if hi == 0 { // "*": not in a SEARCH answer
			hi = lo
		}
		if hi < lo {
			lo, hi = hi, lo
		}
		for u := lo; ; u++ {
			fn(u)
			if u == hi {
				break
			}
		}
	}
}

// fetchNew fetches the messages of set above floor (one streamed UID
// FETCH), adds them to f and writes them to the index in batches, after
// changed (records of flag changes); hint is how many are expected.
// Messages whose attachments only their BODYSTRUCTURE tells are written
// last, once it is fetched. m.mu is held.
func (m *mbox) fetchNew(ctx context.Context, cn *conn, f *folder, set imapv2.UIDSet, floor uint32, hint int,
	changed []mailbox.Message, touch func() uint64, now time.Time) error {
	w := m.startIndexWriter()
	if len(changed) > 0 {
		w.send(changed, m.meta)
	}
	var needStruct []uint32 // UIDs, ascending
	batch := make([]mailbox.Message, 0, min(max(hint, 1), writeBatchLen))
	m.s.fetches.Add(1)
	err := cn.do(ctx, func(c *imapclient.Client) error {
		cmd := c.Fetch(set, newMsgFetch)
		for fm := cmd.Next(); fm != nil; fm = cmd.Next() {
			msg, err := decodeNew(fm, f.path)
			if err != nil {
				cmd.Close()
				return err
			}
			if msg.UID <= floor {
				continue // "N:*" always includes the last message
			}
			if _, dup := f.find(msg.UID); dup || msg.UID == 0 {
				continue
			}
			m.meta.LastID++
			msg.ID = m.meta.LastID
			msg.Name = mailbox.UniqueName(mailbox.NameFromSubject(msg.Envelope.Subject), func(n string) bool { _, ok := f.byName[n]; return ok })
			msg.Modseq, msg.Modified = touch(), now
			f.insert(msg)
			m.byID[msg.ID] = loc{f.path, msg.UID}
			if ct := msg.Envelope.ContentType; ct == "" || strings.HasPrefix(ct, "multipart/") || ct == "message/rfc822" || ct == "message/global" {
				needStruct = append(needStruct, msg.UID)
				continue
			}
			batch = append(batch, msg)
			if len(batch) == writeBatchLen {
				if err := w.failed(); err != nil {
					cmd.Close()
					return errWriter{err}
				}
				w.send(batch, m.meta)
				batch = make([]mailbox.Message, 0, writeBatchLen)
			}
		}
		return cmd.Close()
	})
	unknown := needStruct
	if err == nil && len(needStruct) > 0 {
		unknown, err = m.fetchStructs(ctx, cn, f, needStruct, func(msg mailbox.Message) {
			batch = append(batch, msg)
		})
	}
	if err != nil {
		// Messages whose attachments are still unknown are forgotten
		// (they were never written): the next sync fetches them again
		// (step 3 of syncFolder).
		for _, uid := range unknown {
			if i, ok := f.find(uid); ok {
				delete(m.byID, f.remove(i).ID)
			}
		}
	}
	if len(batch) > 0 {
		w.send(batch, m.meta) // complete messages, written even after an error
	}
	werr := w.finish()
	var we errWriter
	if errors.As(err, &we) {
		err = nil // reported by finish
	}
	return errors.Join(err, werr)
}

// errWriter carries the index writer's error out of a FETCH loop.
type errWriter struct{ err error }

func (e errWriter) Error() string { return e.err.Error() }

// fetchStructs fetches the BODYSTRUCTURE of the messages uids of f (new
// ones, beyond every List snapshot, so they are updated in place), sets
// their HasAttachments, and passes each to done. On an error it returns
// the UIDs not passed to done.
func (m *mbox) fetchStructs(ctx context.Context, cn *conn, f *folder, uids []uint32, done func(mailbox.Message)) ([]uint32, error) {
	for len(uids) > 0 {
		n := min(len(uids), maxSetUIDs)
		var set imapv2.UIDSet
		for _, uid := range uids[:n] {
			set.AddNum(imapv2.UID(uid))
		}
		part := uids[:n]
		m.s.fetches.Add(1)
		err := cn.do(ctx, func(c *imapclient.Client) error {
			cmd := c.Fetch(set, structFetch)
			for fm := cmd.Next(); fm != nil; fm = cmd.Next() {
				b, err := fm.Collect()
				if err != nil {
					cmd.Close()
					return err
				}
				i, ok := f.find(uint32(b.UID))
				if !ok || b.BodyStructure == nil {
					continue
				}
				msg := &f.msgs[i]
				msg.Envelope.HasAttachments = hasAttachments(b.BodyStructure, false)
				if msg.Envelope.ContentType == "" {
					msg.Envelope.ContentType = strings.ToLower(b.BodyStructure.MediaType())
				}
			}
			return cmd.Close()
		})
		if err != nil {
			return uids, err
		}
		// Written whether or not upstream answered (an expunged one is
		// dropped by the next sync).
		for _, uid := range part {
			if i, ok := f.find(uid); ok {
				done(f.msgs[i])
			}
		}
		uids = uids[n:]
	}
	return nil, nil
}

// decodeNew builds the index entry of a message from its FETCH answer
// (without ID and name, which the caller assigns), item by item: the
// header fields stream from the connection into convert.ScanEnvelope.
func decodeNew(fm *imapclient.FetchMessageData, path string) (mailbox.Message, error) {
	msg := mailbox.Message{Folder: path}
	for it := fm.Next(); it != nil; it = fm.Next() {
		switch it := it.(type) {
		case imapclient.FetchItemDataUID:
			msg.UID = uint32(it.UID)
		case imapclient.FetchItemDataFlags:
			msg.Flags, msg.Keywords = fromIMAPFlags(it.Flags)
		case imapclient.FetchItemDataRFC822Size:
			msg.Size = it.Size
		case imapclient.FetchItemDataInternalDate:
			msg.InternalDate = it.Time
		case imapclient.FetchItemDataBodySection:
			if it.Literal == nil {
				continue // NIL: no header (the content type stays "", so BODYSTRUCTURE is asked)
			}
			env, err := convert.ScanEnvelope(it.Literal)
			if err != nil {
				return msg, err // a read error of the connection
			}
			msg.Envelope = env
		}
	}
	return msg, nil
}

// indexWriter writes batches of message records in a goroutine of its
// own, so that the bbolt work of one chunk overlaps the FETCH of the
// next. At most one batch waits while another is written: memory stays
// bounded by a few chunks.
type indexWriter struct {
	ch   chan writeBatch
	done chan error
	err  atomic.Pointer[error]
}

// writeBatch is the records of one chunk and the mailbox state (next ID,
// modseq) to persist with them. Folder records are not written here:
// the folder's sync state (HIGHESTMODSEQ, message count) must reach the
// index only with the sync's last transaction.
type writeBatch struct {
	msgs []mailbox.Message
	meta metaRec
}

func (m *mbox) startIndexWriter() *indexWriter {
	w := &indexWriter{ch: make(chan writeBatch, 1), done: make(chan error, 1)}
	go func() {
		var a recArena
		var err error
		for b := range w.ch {
			if err != nil {
				continue // drain: the sender notices through failed
			}
			err = m.db.Update(func(tx *bolt.Tx) error {
				a.buf = a.buf[:0]
				mb := tx.Bucket(bucketMsgs)
				for i := range b.msgs {
					if err := a.putMsg(mb, &b.msgs[i]); err != nil {
						return err
					}
				}
				return putJSON(tx.Bucket(bucketMeta), keyState, &b.meta)
			})
			if err != nil {
				w.err.Store(&err)
			}
		}
		w.done <- err
	}()
	return w
}

// send queues a batch (msgs is not changed afterwards by the caller).
func (w *indexWriter) send(msgs []mailbox.Message, meta metaRec) {
	w.ch <- writeBatch{msgs, meta}
}

// failed returns the writer's error so far.
func (w *indexWriter) failed() error {
	if p := w.err.Load(); p != nil {
		return *p
	}
	return nil
}

// finish waits for the queued batches to be written.
func (w *indexWriter) finish() error {
	close(w.ch)
	return <-w.done
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
