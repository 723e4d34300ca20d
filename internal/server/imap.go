package server

import (
	"context"
	"errors"

	"github.com/rs/zerolog"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/config"
	"github.com/davmail/davmail/mailbox"
	"github.com/davmail/davmail/mailbox/imap"
)

// openIMAP opens the IMAP backend (issue 8, docs/imap-backend.md): the
// mailboxes live on cfg.IMAPUpstream, users log in there with their own
// passwords (held in memory only, for as long as their sessions need
// them), and the local index under <data>/index caches listings,
// structures, stable IDs and dead properties.
func openIMAP(cfg config.Config, log zerolog.Logger) (mailbox.Store, *auth.Upstream, error) {
	mode, err := imap.ParseTLSMode(cfg.IMAPTLS)
	if err != nil {
		return nil, nil, err
	}
	dialer := &imap.Dialer{Addr: cfg.IMAPUpstream, TLS: mode}
	up, err := auth.NewUpstream(auth.UpstreamOptions{
		Login: func(ctx context.Context, user, password string) (bool, error) {
			err := dialer.Login(ctx, user, password)
			if errors.Is(err, imap.ErrLoginFailed) {
				return false, nil
			}
			return err == nil, err
		},
		Logger: log.With().Str("component", "auth").Logger(),
	})
	if err != nil {
		return nil, nil, err
	}
	store, err := imap.New(imap.Options{
		Dialer:              dialer,
		IndexDir:            cfg.IndexDir(),
		Credentials:         up,
		MaxConnsPerUser:     cfg.IMAPMaxConns,
		IdleTimeout:         cfg.IMAPIdleTimeout,
		MaxMessagesInMemory: int64(cfg.IndexMemoryMessages),
		Logger:              log.With().Str("component", "imap").Logger(),
	})
	if err != nil {
		return nil, nil, err
	}
	return store, up, nil
}
