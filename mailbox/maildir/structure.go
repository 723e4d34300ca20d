package maildir

import (
	"context"

	"github.com/davmail/davmail/convert"
	"github.com/davmail/davmail/mailbox"
)

// structure returns the MIME structure of a message.
// TODO(issue 4): keep it in the index; this scans the file.
func (b *mbox) structure(ctx context.Context, folder, name string) (*mailbox.Structure, error) {
	c, err := b.open(ctx, folder, name)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st, err := convert.Scan(c, convert.ScanOptions{})
	if err != nil {
		return nil, err
	}
	return &mailbox.Structure{Parts: st.Parts, Problems: st.Problems}, nil
}
