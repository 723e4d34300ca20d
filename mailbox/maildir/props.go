package maildir

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/davmail/davmail/mailbox"
)

// propTarget resolves the resource of a dead-property call: the folder
// (name "") or a message in it. For a message, m is set.
func (b *mbox) propTarget(ctx context.Context, folder, name string) (f *folder, m *mailbox.Message, r fileRef, err error) {
	if name == "" {
		if err := b.sync(ctx, false); err != nil {
			return nil, nil, r, err
		}
		f, err := b.folder(folder)
		return f, nil, r, err
	}
	f, msg, r, err := b.stat(ctx, folder, name)
	if err != nil {
		return nil, nil, r, err
	}
	return f, &msg, r, nil
}

func propKey(f *folder, m *mailbox.Message) []byte {
	if m != nil {
		return msgPropKey(m.ID)
	}
	return folderPropKey(f.fid)
}

func (b *mbox) readProps(key []byte) ([]mailbox.Prop, error) {
	var props []mailbox.Prop
	err := b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketProps).Get(key)
		if v == nil {
			return nil
		}
		var err error
		props, err = decodeProps(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("maildir: reading dead properties: %w", err)
	}
	return props, nil
}

func (b *mbox) deadProps(ctx context.Context, folder, name string) ([]mailbox.Prop, error) {
	f, m, _, err := b.propTarget(ctx, folder, name)
	if err != nil {
		return nil, err
	}
	if (m != nil && !m.HasDeadProps) || (m == nil && !f.hasProps) {
		return nil, nil
	}
	return b.readProps(propKey(f, m))
}

// errEmptyPropName refuses a property without a local name, which no XML
// element can have.
var errEmptyPropName = fmt.Errorf("maildir: dead property without a name: %w", mailbox.ErrInvalidName)

func (b *mbox) patchProps(ctx context.Context, folder, name string, set []mailbox.Prop, remove []mailbox.PropName) error {
	for _, p := range set {
		if p.Local == "" {
			return errEmptyPropName
		}
	}
	f, m, r, err := b.propTarget(ctx, folder, name)
	if err != nil {
		return err
	}
	var cur []mailbox.Prop
	if (m != nil && m.HasDeadProps) || (m == nil && f.hasProps) {
		if cur, err = b.readProps(propKey(f, m)); err != nil {
			return err
		}
	}
	next, err := patchPropList(cur, set, remove)
	if err != nil {
		return err
	}
	key := propKey(f, m)
	return b.commit(func(w *txw) error {
		bk := w.tx.Bucket(bucketProps)
		if len(next) == 0 {
			if err := bk.Delete(key); err != nil {
				return err
			}
		} else if err := bk.Put(key, encodeProps(nil, next)); err != nil {
			return err
		}
		ms, t := b.bump()
		if m != nil {
			m.HasDeadProps = len(next) > 0
			m.Modseq, m.Modified = ms, t
			if err := w.putMsg(f.fid, m, r); err != nil {
				return err
			}
			f.update(*m, r)
			f.maybeCompact()
		} else {
			f.hasProps = len(next) > 0
		}
		f.touch(ms, t)
		return w.putFolder(f)
	})
}

// patchPropList applies a dead-property patch with the caps every backend shares.
func patchPropList(cur []mailbox.Prop, set []mailbox.Prop, remove []mailbox.PropName) ([]mailbox.Prop, error) {
	return mailbox.MergeProps(cur, set, remove)
}

// copyProps copies the dead properties of message src to dst.
func (w *txw) copyProps(src, dst uint64) error {
	bk := w.tx.Bucket(bucketProps)
	v := bk.Get(msgPropKey(src))
	if v == nil {
		return nil
	}
	return bk.Put(msgPropKey(dst), bytes.Clone(v))
}

// moveProps moves the dead properties of message src to dst.
func (w *txw) moveProps(src, dst uint64) error {
	if err := w.copyProps(src, dst); err != nil {
		return err
	}
	return w.tx.Bucket(bucketProps).Delete(msgPropKey(src))
}
