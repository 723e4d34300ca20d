// Package imap is a mailbox.Store in front of an existing IMAP server
// (Dovecot), with pass-through login: davmail serves WebDAV, the Exchange
// dialect and the web UI without owning the mail files, and several
// stateless gateways can share one IMAP service.
//
// Users log in upstream with their own credentials, which the store gets
// from a Credentials (auth.Upstream holds them in memory only). Each user
// has a pool of at most Options.MaxConnsPerUser connections, closed after
// Options.IdleTimeout; a connection the server dropped is replaced, and
// an idempotent exchange that fails on a broken connection is retried
// once on a new one.
//
// # Index
//
// Each user has a bbolt index (<IndexDir>/<user>.db) holding what IMAP
// has no place for — stable message IDs (carried across MOVE/COPY by the
// UIDs of COPYUID, RFC 4315), item names, WebDAV dead properties, the
// mailbox-wide modseq, MIME structures with byte offsets — and a cache of
// the upstream metadata listings need (RFC822.SIZE, FLAGS, INTERNALDATE,
// the envelope fields, HasAttachments from the header fields or, for
// multipart messages only, BODYSTRUCTURE). Listings
// answer from it after one STATUS (UIDVALIDITY, UIDNEXT, MESSAGES,
// HIGHESTMODSEQ, RFC 7162): when those are as at the last sync, no FETCH
// is sent. Otherwise the folder is selected with CONDSTORE, flags changed
// since the last HIGHESTMODSEQ are fetched (CHANGEDSINCE), new messages
// above the highest known UID are fetched once (one streamed FETCH,
// written to the index in batches while it streams), and UID SEARCH
// finds expunged ones, and any the index lacks, only when the count
// still differs. A UIDVALIDITY change
// re-indexes the folder (new IDs and names). Stat, StatID, StatUID and
// Open answer from the index; an unknown name or UID triggers a sync.
//
// Message bytes stream with BODY.PEEK[] (a read from the start) or
// partial fetches BODY.PEEK[]<offset.length> in growing windows (Seek,
// ReadAt): memory does not depend on the message size. Append spools the
// body (memory up to 1 MiB, then an unlinked temporary file) under the
// size limit before APPEND. The upstream server must offer UIDPLUS; MOVE
// is used when offered, else COPY and UID EXPUNGE.
//
// docs/imap-backend.md has the deviations from the mailbox contract and
// the wiring.
package imap
