package imap

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	bolt "go.etcd.io/bbolt"

	"github.com/davmail/davmail/mailbox"
)

// CreateFolder implements mailbox.Mailbox with CREATE.
func (m *mbox) CreateFolder(ctx context.Context, path string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.unlock()
	if path == "" {
		return fmt.Errorf("the root: %w", mailbox.ErrExists)
	}
	if err := m.listOnce(ctx); err != nil {
		return err
	}
	if err := m.checkPath(path); err != nil {
		return err
	}
	if m.folders[path] != nil || strings.EqualFold(path, mailbox.Inbox) {
		return fmt.Errorf("folder %q: %w", path, mailbox.ErrExists)
	}
	if p := mailbox.Parent(path); p != "" && m.folders[p] == nil {
		return fmt.Errorf("folder %q: %w", path, mailbox.ErrNoParent)
	}
	var st *imapv2.StatusData
	err := m.withConn(ctx, false, func(cn *conn) error {
		return cn.do(ctx, func(c *imapclient.Client) error {
			if err := c.Create(m.upstream(path), nil).Wait(); err != nil {
				if imapCode(err) == imapv2.ResponseCodeAlreadyExists {
					return fmt.Errorf("folder %q upstream: %w", path, mailbox.ErrExists)
				}
				return err
			}
			var err error
			st, err = c.Status(m.upstream(path), statusOpts).Wait()
			return err
		})
	})
	if err != nil {
		return err
	}
	f := m.addFolder(path)
	f.UIDValidity, f.UIDNext, f.HighestModSeq = st.UIDValidity, uint32(st.UIDNext), st.HighestModSeq
	if st.NumMessages != nil {
		f.Exists = *st.NumMessages
	}
	return m.persist(nil, nil)
}

// listOnce reads the folder list once per process. m.mu is held.
func (m *mbox) listOnce(ctx context.Context) error {
	if m.listed {
		return nil
	}
	return m.refreshFolders(ctx)
}

// subtree returns path and its descendants, deepest first.
func (m *mbox) subtree(path string) []*folder {
	var out []*folder
	for p, f := range m.folders {
		if p == path || mailbox.IsDescendant(p, path) {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b *folder) int { return strings.Compare(b.path, a.path) })
	return out
}

// RenameFolder implements mailbox.Mailbox with RENAME, which moves the
// subfolders along and keeps UIDVALIDITY and UIDs (RFC 3501 §6.3.5).
func (m *mbox) RenameFolder(ctx context.Context, from, to string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.unlock()
	if from == "" || to == "" || strings.EqualFold(from, mailbox.Inbox) || strings.EqualFold(to, mailbox.Inbox) {
		return fmt.Errorf("rename %q to %q: %w", from, to, mailbox.ErrForbidden)
	}
	if err := m.listOnce(ctx); err != nil {
		return err
	}
	if m.folders[from] == nil {
		return fmt.Errorf("folder %q: %w", from, mailbox.ErrNotFound)
	}
	if err := m.checkPath(to); err != nil {
		return err
	}
	if to == from {
		return fmt.Errorf("folder %q: %w", to, mailbox.ErrExists)
	}
	if mailbox.IsDescendant(to, from) {
		return fmt.Errorf("rename %q into itself: %w", from, mailbox.ErrInvalidName)
	}
	if m.folders[to] != nil {
		return fmt.Errorf("folder %q: %w", to, mailbox.ErrExists)
	}
	if p := mailbox.Parent(to); p != "" && m.folders[p] == nil {
		return fmt.Errorf("folder %q: %w", to, mailbox.ErrNoParent)
	}
	err := m.withConn(ctx, false, func(cn *conn) error {
		// A connection with a renamed folder selected would address it
		// by its old name: unselect first (RFC 3691).
		if cn.selected != "" {
			if err := cn.do(ctx, func(c *imapclient.Client) error { return c.Unselect().Wait() }); err != nil {
				return err
			}
			cn.selected, cn.sel = "", nil
		}
		return cn.do(ctx, func(c *imapclient.Client) error {
			return c.Rename(m.upstream(from), m.upstream(to), nil).Wait()
		})
	})
	if err != nil {
		if imapCode(err) == imapv2.ResponseCodeAlreadyExists {
			return fmt.Errorf("folder %q upstream: %w", to, mailbox.ErrExists)
		}
		return err
	}
	m.forgetSelections()
	now := time.Now()
	ms := m.bump()
	moved := m.subtree(from)
	return m.db.Update(func(tx *bolt.Tx) error {
		mb, pb, fb := tx.Bucket(bucketMsgs), tx.Bucket(bucketProps), tx.Bucket(bucketFolders)
		var a recArena
		for _, f := range moved {
			oldPath := f.path
			newPath := to + strings.TrimPrefix(oldPath, from)
			f.mutable()
			for i := range f.msgs {
				msg := &f.msgs[i]
				if err := mb.Delete(msgKey(oldPath, msg.UID)); err != nil {
					return err
				}
				msg.Folder = newPath
				if err := a.putMsg(mb, msg); err != nil {
					return err
				}
				m.byID[msg.ID] = loc{newPath, msg.UID}
			}
			if v := pb.Get(propKeyFolder(oldPath)); v != nil {
				v = append([]byte(nil), v...)
				if err := pb.Delete(propKeyFolder(oldPath)); err != nil {
					return err
				}
				if err := pb.Put(propKeyFolder(newPath), v); err != nil {
					return err
				}
			}
			if err := fb.Delete([]byte(oldPath)); err != nil {
				return err
			}
			delete(m.folders, oldPath)
			delete(m.pending, oldPath)
			f.path = newPath
			f.Modseq, f.Modified = ms, now
			m.folders[newPath] = f
			m.dirty(f)
		}
		m.touchParent(from, ms, now)
		m.touchParent(to, ms, now)
		return m.persistTx(tx)
	})
}

// forgetSelections makes pooled connections select again: after a
// rename their selected name may denote another folder.
func (m *mbox) forgetSelections() {
	m.pool.mu.Lock()
	defer m.pool.mu.Unlock()
	for _, cn := range m.pool.idle {
		cn.sel = nil
		cn.selected = ""
	}
}

// DeleteFolder implements mailbox.Mailbox: DELETE of every folder of the
// subtree, deepest first (a server may refuse to delete a folder with
// children, RFC 3501 §6.3.4).
func (m *mbox) DeleteFolder(ctx context.Context, path string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.unlock()
	if path == "" || strings.EqualFold(path, mailbox.Inbox) {
		return fmt.Errorf("delete %q: %w", path, mailbox.ErrForbidden)
	}
	if err := m.listOnce(ctx); err != nil {
		return err
	}
	if m.folders[path] == nil {
		return fmt.Errorf("folder %q: %w", path, mailbox.ErrNotFound)
	}
	victims := m.subtree(path)
	err := m.withConn(ctx, false, func(cn *conn) error {
		if cn.selected != "" {
			if err := cn.do(ctx, func(c *imapclient.Client) error { return c.Unselect().Wait() }); err != nil {
				return err
			}
			cn.selected, cn.sel = "", nil
		}
		for _, f := range victims {
			err := cn.do(ctx, func(c *imapclient.Client) error { return c.Delete(m.upstream(f.path)).Wait() })
			if err != nil && imapCode(err) != imapv2.ResponseCodeNonExistent {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.forgetSelections()
	for _, f := range victims {
		if err := m.dropFolder(f); err != nil {
			return err
		}
	}
	return nil
}

// DeadProps implements mailbox.Mailbox. IMAP has no place for WebDAV
// dead properties: they live in the gateway's index, keyed by message ID
// (so they follow moves) or by folder path.
func (m *mbox) DeadProps(ctx context.Context, path, name string) ([]mailbox.Prop, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.unlock()
	key, _, _, err := m.propTarget(ctx, path, name)
	if err != nil {
		return nil, err
	}
	var out []mailbox.Prop
	err = m.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketProps).Get(key); v != nil {
			return json.Unmarshal(v, &out)
		}
		return nil
	})
	return out, err
}

// propTarget finds the key of a resource's dead properties.
func (m *mbox) propTarget(ctx context.Context, path, name string) (key []byte, f *folder, i int, err error) {
	if name == "" {
		if path != "" {
			if f, err = m.knownFolder(ctx, path); err != nil {
				return nil, nil, 0, err
			}
		}
		return propKeyFolder(path), f, -1, nil
	}
	f, i, err = m.lookup(ctx, path, name)
	if err != nil {
		return nil, nil, 0, err
	}
	return propKeyMsg(f.msgs[i].ID), f, i, nil
}

// PatchProps implements mailbox.Mailbox.
func (m *mbox) PatchProps(ctx context.Context, path, name string, set []mailbox.Prop, remove []mailbox.PropName) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.unlock()
	key, f, i, err := m.propTarget(ctx, path, name)
	if err != nil {
		return err
	}
	var cur []mailbox.Prop
	err = m.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketProps).Get(key); v != nil {
			return json.Unmarshal(v, &cur)
		}
		return nil
	})
	if err != nil {
		return err
	}
	next, err := mailbox.MergeProps(cur, set, remove)
	if err != nil {
		return err
	}
	now := time.Now()
	ms := m.bump()
	var write []mailbox.Message
	switch {
	case f == nil: // the root
		m.meta.RootModseq, m.meta.RootModified = ms, now
	case i < 0:
		f.Modseq, f.Modified = ms, now
		m.dirty(f)
	default:
		f.mutable()
		p := &f.msgs[i]
		p.HasDeadProps, p.Modseq, p.Modified = len(next) > 0, ms, now
		f.Modseq, f.Modified = ms, now
		m.dirty(f)
		write = append(write, *p)
	}
	return m.persist(write, func(tx *bolt.Tx) error {
		if len(next) == 0 {
			return tx.Bucket(bucketProps).Delete(key)
		}
		return putJSON(tx.Bucket(bucketProps), key, next)
	})
}
