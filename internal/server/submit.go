package server

import (
	"context"
	"io"
	"path/filepath"
	"strings"

	"github.com/davmail/davmail/internal/config"
	"github.com/davmail/davmail/internal/submit"
	"github.com/davmail/davmail/mailbox"
	"github.com/rs/zerolog"
)

// submitter adapts the persistent SMTP queue to dav.Submitter.
type submitter struct {
	q       *submit.Queue
	domain  string
	maxSize int64
}

// openSubmitter opens the queue under <data>/queue when a relay is
// configured; bounces go to the sender's Inbox through the store.
func openSubmitter(cfg config.Config, store mailbox.Store, log zerolog.Logger) (*submitter, error) {
	if cfg.Relay == "" {
		return nil, nil
	}
	q, err := submit.Open(filepath.Join(cfg.Data, "queue"), submit.Options{
		Relay:    cfg.Relay,
		TLS:      submit.TLSMode(cfg.RelayTLS),
		Username: cfg.RelayUser,
		Password: cfg.RelayPassword,
		Bounce: func(ctx context.Context, user string, msg io.Reader) error {
			mb, err := store.Mailbox(ctx, user)
			if err != nil {
				return err
			}
			_, err = mb.Append(ctx, mailbox.Inbox, msg, mailbox.AppendOptions{})
			return err
		},
	}, log)
	if err != nil {
		return nil, err
	}
	return &submitter{q: q, domain: cfg.MailDomain, maxSize: cfg.MaxMessageSize}, nil
}

// mailAddress is a user's mail address: the name itself when it holds an
// "@", else <user>@<mail-domain>.
func mailAddress(user, domain string) string {
	if strings.Contains(user, "@") {
		return user
	}
	return user + "@" + domain
}

// Submit implements dav.Submitter.
func (s *submitter) Submit(ctx context.Context, user, contentType string, r io.Reader, saveCopy func(io.Reader) error) error {
	sp, err := s.q.NewSpool()
	if err != nil {
		return err
	}
	defer sp.Discard()
	acct := submit.Account{User: user, Addresses: []string{mailAddress(user, s.domain)}}
	p := submit.Preparer{MaxMessageSize: s.maxSize}
	var env submit.Envelope
	if contentType == "message/rfc821" {
		env, err = p.RFC821(r, acct, sp)
	} else {
		env, err = p.RFC822(r, acct, sp)
	}
	if err != nil {
		return err
	}
	if saveCopy != nil {
		if err := saveCopy(sp.Reader()); err != nil {
			return err
		}
	}
	_, err = s.q.Enqueue(ctx, env, sp)
	return err
}
