package imap

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	bolt "go.etcd.io/bbolt"

	"github.com/davmail/davmail/convert"
	"github.com/davmail/davmail/mailbox"
)

// Append implements mailbox.Mailbox. The message is spooled and scanned
// first (the size limit applies before anything is sent), then sent with
// APPEND; the new UID comes from APPENDUID (RFC 4315 §3), which the
// upstream server must support.
func (m *mbox) Append(ctx context.Context, path string, r io.Reader, opts mailbox.AppendOptions) (mailbox.Message, error) {
	if opts.Name != "" && !mailbox.ValidSegment(opts.Name) {
		return mailbox.Message{}, fmt.Errorf("name %q: %w", opts.Name, mailbox.ErrInvalidName)
	}
	if err := m.exists(ctx, path); err != nil {
		return mailbox.Message{}, err
	}
	sp, err := spoolMessage(ctx, r, opts.MaxSize, m.s.indexDir)
	if err != nil {
		return mailbox.Message{}, err
	}
	defer sp.Close()
	if sp.size == 0 {
		// IMAP servers store RFC 5322 messages; Dovecot refuses a
		// zero-byte APPEND ("NO Can't save a zero byte message").
		return mailbox.Message{}, fmt.Errorf("imap: %w (Dovecot refuses a zero-byte APPEND)", mailbox.ErrEmptyMessage)
	}

	if err := m.lock(); err != nil {
		return mailbox.Message{}, err
	}
	defer m.unlock()
	f, err := m.knownFolder(ctx, path)
	if err != nil {
		return mailbox.Message{}, err
	}
	oldIdx, replacing := -1, false
	if opts.Name != "" {
		if i, ok := f.byNameIdx(opts.Name); ok {
			if !opts.Replace {
				return mailbox.Message{}, fmt.Errorf("message %s/%s: %w", path, opts.Name, mailbox.ErrExists)
			}
			oldIdx, replacing = i, true
		}
	}
	idate := opts.InternalDate
	if idate.IsZero() {
		idate = time.Now()
	}
	idate = idate.Truncate(time.Second) // IMAP date-time has whole seconds (RFC 3501 §9)
	var ad *imapv2.AppendData
	var size int64 = sp.size
	err = m.withConn(ctx, false, func(cn *conn) error {
		err := cn.do(ctx, func(c *imapclient.Client) error {
			cmd := c.Append(m.upstream(path), sp.size, &imapv2.AppendOptions{Flags: toIMAPFlags(opts.Flags), Time: idate})
			if _, err := io.Copy(cmd, sp.reader()); err != nil {
				cmd.Close()
				return err
			}
			if err := cmd.Close(); err != nil {
				return err
			}
			var err error
			ad, err = cmd.Wait()
			return err
		})
		if err != nil {
			return err
		}
		if ad.UID == 0 {
			return fmt.Errorf("imap: upstream sent no APPENDUID: UIDPLUS (RFC 4315) is required")
		}
		if sp.dirty {
			// Upstream rewrote line ends: learn the size it serves.
			if size, err = m.fetchSize(ctx, cn, path, uint32(ad.UID)); err != nil {
				return err
			}
		}
		if replacing {
			return m.expunge(ctx, cn, path, f.msgs[oldIdx].UID)
		}
		return nil
	})
	if err != nil {
		return mailbox.Message{}, err
	}
	if ad.UIDValidity != f.UIDValidity {
		// Renumbered upstream since the last sync: start the folder over
		// (the new message gets a derived name there).
		if err := m.resetFolder(f, ad.UIDValidity); err != nil {
			return mailbox.Message{}, err
		}
		return mailbox.Message{}, errUIDValidity
	}
	now := time.Now()
	ms := m.bump()
	m.meta.LastID++
	msg := mailbox.Message{
		ID: m.meta.LastID, UID: uint32(ad.UID), Flags: opts.Flags, Folder: path, Size: size,
		InternalDate: idate, Modified: now, Modseq: ms, Envelope: sp.st.Envelope,
	}
	var oldProps []byte
	var old mailbox.Message
	if replacing {
		old = f.remove(oldIdx)
		delete(m.byID, old.ID)
		msg.Name = old.Name
		msg.HasDeadProps = old.HasDeadProps
	} else if opts.Name != "" {
		msg.Name = opts.Name
	} else {
		msg.Name = mailbox.UniqueName(mailbox.NameFromSubject(msg.Envelope.Subject), func(n string) bool { _, ok := f.byName[n]; return ok })
	}
	f.insert(msg)
	m.byID[msg.ID] = loc{path, msg.UID}
	f.UIDNext = max(f.UIDNext, msg.UID+1)
	f.Modseq, f.Modified = ms, now
	m.dirty(f)
	err = m.persist([]mailbox.Message{msg}, func(tx *bolt.Tx) error {
		if !sp.dirty {
			if err := putJSON(tx.Bucket(bucketStructs), idKey(msg.ID), sp.structure()); err != nil {
				return err
			}
		}
		if !replacing {
			return nil
		}
		pb := tx.Bucket(bucketProps)
		oldProps = pb.Get(propKeyMsg(old.ID))
		if oldProps != nil {
			// RFC 4918 §9.7.1: the replaced resource keeps its properties.
			if err := pb.Put(propKeyMsg(msg.ID), append([]byte(nil), oldProps...)); err != nil {
				return err
			}
		}
		return deleteMsgRecords(tx, old)
	})
	return msg, err
}

// exists checks that a folder exists, with the lock taken briefly.
func (m *mbox) exists(ctx context.Context, path string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.unlock()
	if path == "" {
		return fmt.Errorf("messages in the root: %w", mailbox.ErrNotFound)
	}
	_, err := m.knownFolder(ctx, path)
	return err
}

// deleteMsgRecords removes a message's records (entry, props, structure).
func deleteMsgRecords(tx *bolt.Tx, msg mailbox.Message) error {
	if err := tx.Bucket(bucketMsgs).Delete(msgKey(msg.Folder, msg.UID)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketProps).Delete(propKeyMsg(msg.ID)); err != nil {
		return err
	}
	return tx.Bucket(bucketStructs).Delete(idKey(msg.ID))
}

// fetchSize asks RFC822.SIZE of one message.
func (m *mbox) fetchSize(ctx context.Context, cn *conn, path string, uid uint32) (int64, error) {
	if _, err := cn.selectBox(ctx, m.upstream(path)); err != nil {
		return 0, err
	}
	var size int64 = -1
	err := cn.do(ctx, func(c *imapclient.Client) error {
		bufs, err := c.Fetch(imapv2.UIDSetNum(imapv2.UID(uid)), &imapv2.FetchOptions{UID: true, RFC822Size: true}).Collect()
		for _, b := range bufs {
			if uint32(b.UID) == uid {
				size = b.RFC822Size
			}
		}
		return err
	})
	if err == nil && size < 0 {
		err = fmt.Errorf("imap: new message %d not found upstream: %w", uid, mailbox.ErrNotFound)
	}
	return size, err
}

// expunge removes messages upstream: \Deleted, then UID EXPUNGE of just
// those UIDs (RFC 4315 §2.1), so other messages marked \Deleted by a
// client stay.
func (m *mbox) expunge(ctx context.Context, cn *conn, path string, uids ...uint32) error {
	if _, err := cn.selectBox(ctx, m.upstream(path)); err != nil {
		return err
	}
	var set imapv2.UIDSet
	for _, u := range uids {
		set.AddNum(imapv2.UID(u))
	}
	return cn.do(ctx, func(c *imapclient.Client) error {
		if err := c.Store(set, &imapv2.StoreFlags{Op: imapv2.StoreFlagsAdd, Silent: true, Flags: []imapv2.Flag{imapv2.FlagDeleted}}, nil).Close(); err != nil {
			return err
		}
		return c.UIDExpunge(set).Close()
	})
}

// transfer copies or moves one message upstream and returns its UID in
// dst (COPYUID, RFC 4315 §3). MOVE (RFC 6851) is used when offered,
// else COPY then UID EXPUNGE.
func (m *mbox) transfer(ctx context.Context, cn *conn, src string, uid uint32, dst string, move bool) (uint32, uint32, error) {
	if _, err := cn.selectBox(ctx, m.upstream(src)); err != nil {
		return 0, 0, err
	}
	set := imapv2.UIDSetNum(imapv2.UID(uid))
	var dest imapv2.NumSet
	var uidv uint32
	err := cn.do(ctx, func(c *imapclient.Client) error {
		if move && c.Caps().Has(imapv2.CapMove) {
			md, err := c.Move(set, m.upstream(dst)).Wait()
			if err != nil {
				return err
			}
			dest, uidv = md.DestUIDs, md.UIDValidity
			return nil
		}
		cd, err := c.Copy(set, m.upstream(dst)).Wait()
		if err != nil {
			return err
		}
		dest, uidv = cd.DestUIDs, cd.UIDValidity
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	ds, _ := dest.(imapv2.UIDSet)
	uids, _ := ds.Nums()
	if len(uids) != 1 {
		return 0, 0, fmt.Errorf("imap: upstream sent no COPYUID: UIDPLUS (RFC 4315) is required")
	}
	if move && !cn.c.Caps().Has(imapv2.CapMove) {
		if err := m.expunge(ctx, cn, src, uid); err != nil {
			return 0, 0, err
		}
	}
	return uint32(uids[0]), uidv, nil
}

// checkTransfer validates Copy and Move arguments and finds the source
// and destination. m.mu is held.
func (m *mbox) checkTransfer(ctx context.Context, path, name, dstPath, dstName string) (src, dst *folder, i int, err error) {
	if !mailbox.ValidSegment(dstName) {
		return nil, nil, 0, fmt.Errorf("name %q: %w", dstName, mailbox.ErrInvalidName)
	}
	src, i, err = m.lookup(ctx, path, name)
	if err != nil {
		return nil, nil, 0, err
	}
	if dstPath == "" {
		return nil, nil, 0, fmt.Errorf("messages in the root: %w", mailbox.ErrNotFound)
	}
	if dst, err = m.knownFolder(ctx, dstPath); err != nil {
		return nil, nil, 0, err
	}
	return src, dst, i, nil
}

// Copy implements mailbox.Mailbox.
func (m *mbox) Copy(ctx context.Context, path, name, dstPath, dstName string, replace bool) (mailbox.Message, error) {
	if dstName == "" {
		dstName = name
	}
	if err := m.lock(); err != nil {
		return mailbox.Message{}, err
	}
	defer m.unlock()
	src, dst, i, err := m.checkTransfer(ctx, path, name, dstPath, dstName)
	if err != nil {
		return mailbox.Message{}, err
	}
	if path == dstPath && name == dstName {
		return mailbox.Message{}, fmt.Errorf("copy of %s/%s onto itself: %w", path, name, mailbox.ErrForbidden)
	}
	oldIdx, replacing := dst.byNameIdx(dstName)
	if replacing && !replace {
		return mailbox.Message{}, fmt.Errorf("message %s/%s: %w", dstPath, dstName, mailbox.ErrExists)
	}
	orig := src.msgs[i]
	var newUID, uidv uint32
	err = m.withConn(ctx, false, func(cn *conn) (err error) {
		if newUID, uidv, err = m.transfer(ctx, cn, path, orig.UID, dstPath, false); err != nil {
			return err
		}
		if replacing {
			return m.expunge(ctx, cn, dstPath, dst.msgs[oldIdx].UID)
		}
		return nil
	})
	if err != nil {
		return mailbox.Message{}, err
	}
	if uidv != dst.UIDValidity {
		return mailbox.Message{}, m.resetAfter(dst, uidv)
	}
	now := time.Now()
	ms := m.bump()
	m.meta.LastID++
	msg := orig
	msg.ID, msg.UID, msg.Folder, msg.Name, msg.Modseq, msg.Modified = m.meta.LastID, newUID, dstPath, dstName, ms, now
	msg.Keywords = append([]string(nil), orig.Keywords...)
	var old mailbox.Message
	if replacing {
		old = dst.remove(oldIdx)
		delete(m.byID, old.ID)
	}
	dst.insert(msg)
	m.byID[msg.ID] = loc{dstPath, msg.UID}
	dst.UIDNext = max(dst.UIDNext, newUID+1)
	dst.Modseq, dst.Modified = ms, now
	m.dirty(dst)
	err = m.persist([]mailbox.Message{msg}, func(tx *bolt.Tx) error {
		if replacing {
			if err := deleteMsgRecords(tx, old); err != nil {
				return err
			}
		}
		// The copy's dead properties and structure are copies (new ID).
		for _, b := range []struct {
			bucket   []byte
			from, to []byte
		}{{bucketProps, propKeyMsg(orig.ID), propKeyMsg(msg.ID)}, {bucketStructs, idKey(orig.ID), idKey(msg.ID)}} {
			bk := tx.Bucket(b.bucket)
			if v := bk.Get(b.from); v != nil {
				if err := bk.Put(b.to, append([]byte(nil), v...)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return msg, err
}

// resetAfter handles a UIDVALIDITY change seen in a COPYUID answer.
func (m *mbox) resetAfter(f *folder, uidv uint32) error {
	if err := m.resetFolder(f, uidv); err != nil {
		return err
	}
	return errUIDValidity
}

// Move implements mailbox.Mailbox. Into another folder it is MOVE (or
// COPY and UID EXPUNGE); the ID, name, dead properties and structure are
// carried over to the UID that COPYUID reports. Within the folder it is
// a rename in the index only: IMAP has no item names.
func (m *mbox) Move(ctx context.Context, path, name, dstPath, dstName string, replace bool) (mailbox.Message, error) {
	if dstName == "" {
		dstName = name
	}
	if err := m.lock(); err != nil {
		return mailbox.Message{}, err
	}
	defer m.unlock()
	src, dst, i, err := m.checkTransfer(ctx, path, name, dstPath, dstName)
	if err != nil {
		return mailbox.Message{}, err
	}
	if path == dstPath && name == dstName {
		return src.msgs[i], nil
	}
	oldIdx, replacing := dst.byNameIdx(dstName)
	if replacing && !replace {
		return mailbox.Message{}, fmt.Errorf("message %s/%s: %w", dstPath, dstName, mailbox.ErrExists)
	}
	orig := src.msgs[i]
	var oldUID uint32
	if replacing {
		oldUID = dst.msgs[oldIdx].UID
	}
	newUID, uidv := orig.UID, dst.UIDValidity
	if path != dstPath || replacing {
		err = m.withConn(ctx, false, func(cn *conn) (err error) {
			if path != dstPath {
				if newUID, uidv, err = m.transfer(ctx, cn, path, orig.UID, dstPath, true); err != nil {
					return err
				}
			}
			if replacing {
				return m.expunge(ctx, cn, dstPath, oldUID)
			}
			return nil
		})
		if err != nil {
			return mailbox.Message{}, err
		}
	}
	if uidv != dst.UIDValidity {
		return mailbox.Message{}, m.resetAfter(dst, uidv)
	}
	now := time.Now()
	ms := m.bump()
	var old mailbox.Message
	if replacing {
		j, _ := dst.find(oldUID)
		old = dst.remove(j)
		delete(m.byID, old.ID)
	}
	j, _ := src.find(orig.UID)
	src.remove(j)
	msg := orig
	msg.UID, msg.Folder, msg.Name, msg.Modseq, msg.Modified = newUID, dstPath, dstName, ms, now
	dst.insert(msg)
	m.byID[msg.ID] = loc{dstPath, newUID}
	dst.UIDNext = max(dst.UIDNext, newUID+1)
	src.Modseq, src.Modified, dst.Modseq, dst.Modified = ms, now, ms, now
	m.dirty(src)
	m.dirty(dst)
	err = m.persist([]mailbox.Message{msg}, func(tx *bolt.Tx) error {
		if replacing {
			if err := deleteMsgRecords(tx, old); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMsgs).Delete(msgKey(path, orig.UID))
	})
	return msg, err
}

// Delete implements mailbox.Mailbox.
func (m *mbox) Delete(ctx context.Context, path, name string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.unlock()
	f, i, err := m.lookup(ctx, path, name)
	if err != nil {
		return err
	}
	uid := f.msgs[i].UID
	if err := m.withConn(ctx, false, func(cn *conn) error { return m.expunge(ctx, cn, path, uid) }); err != nil {
		return err
	}
	j, ok := f.find(uid)
	if !ok {
		return nil
	}
	old := f.remove(j)
	delete(m.byID, old.ID)
	f.Modseq, f.Modified = m.bump(), time.Now()
	m.dirty(f)
	return m.persist(nil, func(tx *bolt.Tx) error { return deleteMsgRecords(tx, old) })
}

// SetFlags implements mailbox.Mailbox with UID STORE ±FLAGS.SILENT.
func (m *mbox) SetFlags(ctx context.Context, path, name string, flags mailbox.Flags, add bool) (mailbox.Message, error) {
	if err := m.lock(); err != nil {
		return mailbox.Message{}, err
	}
	defer m.unlock()
	f, i, err := m.lookup(ctx, path, name)
	if err != nil {
		return mailbox.Message{}, err
	}
	msg := f.msgs[i]
	next := msg.Flags &^ flags
	op := imapv2.StoreFlagsDel
	if add {
		next, op = msg.Flags|flags, imapv2.StoreFlagsAdd
	}
	if next == msg.Flags || flags == 0 {
		return msg, nil
	}
	err = m.withConn(ctx, true, func(cn *conn) error {
		if _, err := cn.selectBox(ctx, m.upstream(path)); err != nil {
			return err
		}
		return cn.do(ctx, func(c *imapclient.Client) error {
			return c.Store(imapv2.UIDSetNum(imapv2.UID(msg.UID)), &imapv2.StoreFlags{Op: op, Silent: true, Flags: toIMAPFlags(flags)}, nil).Close()
		})
	})
	if err != nil {
		return mailbox.Message{}, err
	}
	now := time.Now()
	ms := m.bump()
	f.mutable()
	p := &f.msgs[i]
	p.Flags, p.Modseq, p.Modified = next, ms, now
	f.Modseq, f.Modified = ms, now
	m.dirty(f)
	return *p, m.persist([]mailbox.Message{*p}, nil)
}

// Structure implements mailbox.Mailbox. The structure of a message the
// gateway appended was scanned from its spool; any other is scanned once
// from upstream (BODY.PEEK[] streamed through convert.Scan, constant
// memory) on first use and kept in the index.
func (m *mbox) Structure(ctx context.Context, path, name string) (*mailbox.Structure, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	f, i, err := m.lookup(ctx, path, name)
	if err != nil {
		m.unlock()
		return nil, err
	}
	msg := f.msgs[i]
	var st *mailbox.Structure
	err = m.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketStructs).Get(idKey(msg.ID)); v != nil {
			st = new(mailbox.Structure)
			return json.Unmarshal(v, st)
		}
		return nil
	})
	c := &content{m: m, ctx: ctx, upstream: m.upstream(path), uidValidity: f.UIDValidity, uid: msg.UID, size: msg.Size, window: minWindow}
	m.unlock()
	if err != nil || st != nil {
		return st, err
	}
	// Scanned without the lock: a big message must not stop the user's
	// listings.
	cst, err := convert.Scan(io.NewSectionReader(c, 0, msg.Size), convert.ScanOptions{})
	c.Close()
	if err != nil {
		return nil, err
	}
	st = &mailbox.Structure{Parts: cst.Parts, Problems: cst.Problems}
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.unlock()
	if _, still := m.byID[msg.ID]; still {
		err = m.db.Update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bucketStructs), idKey(msg.ID), st) })
	}
	return st, err
}
