// Package submit sends the mail that Exchange-dialect clients hand to the
// mail submission URI (PUT or MOVE to ##DavMailSubmissionURI##,
// ../shared/docs/exchange-webdav.md §6.5): it prepares the message and its
// SMTP envelope, keeps it in a persistent queue under the data folder, and
// relays it over SMTP to the configured relay, bouncing to the sender's
// Inbox what cannot be delivered.
//
// # Preparation
//
// PrepareRFC822 and PrepareRFC821 (or a Preparer with non-default caps)
// stream a submitted message once, with fixed buffers, into a spool
// writer: they read the top-level header (at most 256 KiB), collect the
// recipients (To, Cc and Bcc for message/rfc822; the RCPT TO lines for
// message/rfc821), remove Bcc, check that From and Sender belong to the
// account, add From, Date and Message-ID when missing (RFC 5322 §3.6), then
// copy the body unchanged. A client mistake is an *Error (400 or 403) or
// a *limits.Error (413); the handler maps both to their status.
//
// # Queue
//
// Open returns a Queue kept in one directory:
//
//	FORMAT          {"v":1}: the layout version; Open refuses a newer one
//	LOCK            flocked while a Queue is open: one process per queue
//	q/<id>.msg      the message, exactly as it is sent
//	q/<id>.json     its record: envelope and per-recipient state, "v":1
//	tmp/            spools and records being written
//	dead/           items given up on (a bounce that could not be stored
//	                for MaxAge, or a record that cannot be read)
//
// A handler prepares into a Spool (a file in tmp/) and hands it to
// Enqueue, which renames it into q/ without a copy:
//
//	sp, err := q.NewSpool()
//	defer sp.Discard()
//	env, err := submit.PrepareRFC822(body, account, sp)
//	// Sent Items copy (Saveinsent): sp.Reader(), before Enqueue
//	id, err := q.Enqueue(ctx, env, sp)
//
// Every file is written to tmp/, fsynced, renamed into place, and the
// directory fsynced, so an item exists once and whole or not at all. An
// item exists when its record exists; a message file without a record is
// an Enqueue that never returned and is removed by Open.
//
// Memory holds only an index of due times (one small entry per item, capped
// by Options.MaxItems) and per-destination-domain backoff hints in an LRU
// map capped by Options.MaxDomains. A dispatcher goroutine hands due items
// to Options.Workers worker goroutines; there is no goroutine per item or
// per domain.
//
// # Delivery and the one duplicate window
//
// Before connecting to the relay, a worker marks the item in flight in its
// record (fsynced) and counts the attempt. It then runs one SMTP
// transaction (RFC 5321 §3.3) for the recipients still pending: a 2xx reply
// to RCPT and the final 250 to DATA make a recipient done, a 5xx makes it
// failed (bounced), a 4xx or a network error leaves it pending for a retry
// with exponential backoff (RetryInitial doubling up to RetryMax, for at
// most MaxAge). Recipients refused as too many for one transaction (452,
// RFC 5321 §4.5.3.1.10) go in another transaction at once. A failure to
// reach the relay at all holds every delivery back for one backoff,
// rather than each item discovering it. After the relay's final 250 the
// first thing the worker does
// is persist the outcome: it removes the item when every recipient is done,
// or rewrites its record marking the delivered recipients done. Delivered
// recipients are never sent to again.
//
// An item found in flight by Open (the process died during an attempt) is
// retried. If the process died between the relay's 250 and that removal or
// rewrite, those recipients get the message a second time: that is the
// only window for a duplicate, a few milliseconds wide. SMTP cannot close
// it (RFC 1047 names it); RFC 5321 accepts it: §4.5.4.1 has the client
// retry until the message is delivered or given up, and §4.5.3.2.6 notes
// that a lost 250 "would typically result in delivery of multiple copies
// of the message" (which is also why the final-dot timeout is 10 minutes).
// Everywhere else a message is sent at most once per recipient and never
// lost.
//
// # Bounces
//
// Recipients that fail permanently, or are still pending after MaxAge, are
// reported to the sender with a delivery status notification (RFC 3464
// multipart/report, RFC 6522) handed to Options.Bounce, which stores it in
// the sender's Inbox. A bounce that cannot be stored is retried with the
// same backoff; after MaxAge of failures the item moves to dead/. A
// message with a null reverse-path (MAIL FROM:<>) is never bounced (RFC
// 5321 §4.5.5): its failures are logged and dropped.
package submit
