package dav

import (
	"context"

	"github.com/davmail/davmail/mailbox"
)

// nopStore satisfies Config.Store for tests of the parsers alone.
type nopStore struct{}

func (nopStore) Mailbox(context.Context, string) (mailbox.Mailbox, error) {
	return nil, mailbox.ErrNotFound
}
func (nopStore) Ready(context.Context) error { return nil }
func (nopStore) Close() error                { return nil }
