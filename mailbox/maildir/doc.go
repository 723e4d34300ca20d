// Package maildir is the default mailbox.Store: Dovecot's Maildir++
// layout on disk, with a persistent per-user index so that listings never
// open a message file.
//
// # Layout
//
// Each user's mailbox is Root/<user>/Maildir. INBOX is that directory
// itself (cur/, new/, tmp/); every other folder is a directory ".Name"
// beside it, with "." as the hierarchy separator and each name segment in
// IMAP modified UTF-7 (RFC 3501 §5.1.3): "Archive/2024" lives in
// ".Archive.2024", "INBOX/sub" in ".INBOX.sub", "Entwürfe" in
// ".Entw&APw-rfe". A segment containing "." cannot be stored
// (mailbox.ErrInvalidName). A parent that has no directory of its own
// (".Archive.2024" without ".Archive") is listed as an empty folder, as
// Dovecot lists it as \NoSelect; the first message stored in it creates
// its directory.
//
// Messages are files named "<base>:2,<info>" (cr.yp.to/proto/maildir.html):
// base is unique and stays the same when flags change; info holds the
// flag letters and Dovecot's keyword letters a–z (mapped through
// dovecot-keywords), which are preserved whenever the flags are rewritten.
// The base is the message's identity: a file renamed to other flags or
// moved to another folder keeps its index entry and ID.
//
// # Index
//
// The index is a cache of the Maildir, one bbolt file per user
// (IndexDir/<user>.db). bbolt was chosen because it is pure Go (no cgo, so
// "go run" works on a fresh machine), keeps one file per user, and is ACID
// with copy-on-write pages: a crash in the middle of an update leaves the
// previous state. Since everything in it can be rebuilt from the files,
// its only jobs are speed and never being half-written. A corrupt index is
// moved aside and rebuilt; an index with a newer schema is refused.
//
// The index holds, per message, its ID (monotonic per user, never
// reused), item name (assigned once, so names are stable across restarts
// and new arrivals), file name, size, flags, dates, modseq and envelope,
// keyed by its IMAP UID within its folder's bucket, so that loading a
// folder reads it in List order; per folder its modseq, UIDVALIDITY,
// UIDNEXT and the cur/ and new/ directory mtimes at the last scan; dead
// properties in a bucket of their own, keyed by message ID or folder
// number (not path, so a folder rename rewrites nothing), so that
// listings never load them.
//
// UIDs (RFC 3501 §2.3.1.1) are the index's own, like Dovecot's in its
// dovecot-uidlist, which davmail neither reads nor writes: a message
// entering a folder (an Append, a Copy or Move into it, a file that a
// rescan finds delivered or moved there) gets the folder's UIDNEXT. A
// file renamed for a flag change keeps its UID, as it keeps its ID. An
// index rebuilt from scratch gives every folder a new UIDVALIDITY, as
// does a folder whose UIDs run out (it is renumbered 1…n). An index of
// schema 1, written before UIDs existed, is migrated in place when
// opened: UIDs 1…n in ID order per folder, without reading the Maildir.
//
// # Freshness
//
// Other programs change the Maildir: a delivery agent drops files into
// new/, Dovecot renames files when flags change, moves and deletes them.
// Before answering List, Folder or Folders the store compares the cur/
// and new/ mtimes of the folder with those of its last scan; when they
// differ, or when the last scan was less than the time-stamp granularity
// (Options.Granularity, one second by default) after the mtime, the
// changed directory is read again and compared with the index by base: new files
// are parsed (in parallel for big batches), renamed files only change
// flags, vanished files are removed, and a base that vanished from one
// folder and appeared in another is a move (same ID, not parsed again).
// An unchanged message is never parsed twice, across restarts included.
// Stat and Open of a message in a changed folder first try its file
// (one stat, cheaper than reading a big directory) and rescan only when
// it is gone.
//
// # Writes
//
// Every write is crash-safe: a message is written into tmp/, fsynced, and
// renamed into cur/, whose directory is then fsynced, before the index
// learns of it; nothing half-written is ever visible and nothing
// acknowledged is lost. A crash between the rename and the index update
// only leaves a file the next scan picks up. A replacing Append updates
// the index before it unlinks the old file, so that a failed index
// update leaves the mailbox as it was. Copies are hard links (Maildir
// files never change) with a new base; moves are renames that keep the
// base and so the ID; a deleted folder is first renamed out of sight.
//
// The message bytes are copied into tmp/ without holding the mailbox's
// lock; everything else on one mailbox is serialized by its mutex.
package maildir
