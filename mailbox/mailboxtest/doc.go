// Package mailboxtest is the conformance suite every mailbox.Store backend
// runs (memstore, maildir, later imap). It is the executable contract of
// package mailbox: where the interface comments leave a choice open, the
// rules below settle it, and Run checks them.
//
// Use it from a backend's tests:
//
//	func TestConformance(t *testing.T) {
//		mailboxtest.Run(t, func(t *testing.T) mailbox.Store { return newTestStore(t) })
//	}
//
// Every subtest gets a fresh store from newStore and closes it (Close
// must return nil) when it ends; newStore must not close it itself. The
// suite uses the user "alice" (and "bob" for isolation), folder names
// without "." (which Maildir++ cannot hold), and small messages, and runs
// in well under two seconds against an in-memory store. Run it with -race.
//
// # The contract
//
// Errors are compared with errors.Is, so backends may wrap them.
//
// Store.Mailbox(ctx, user) creates the user's mailbox with an INBOX if it
// is missing; the same user always reaches the same state, and users are
// isolated. A user that is not a mailbox.ValidSegment is ErrInvalidName.
// Ready returns nil on a working store.
//
// Folders returns every folder except the root, the INBOX subtree ("INBOX"
// and "INBOX/…") first, then all others, each part in byte order of the
// path (so "Archive-x" sorts before "Archive/2024", and "INBOX-old" is not
// in the INBOX subtree). Folder(ctx, "") is the root, with Path "" and no
// messages. Messages, Unseen (messages without FlagSeen) and Size (sum of
// message sizes) are exact at all times. UIDValidity is never 0 and
// changes when a folder is deleted and created again. A missing folder is
// ErrNotFound.
//
// CreateFolder: an existing path (including "INBOX") is ErrExists; a
// missing parent is ErrNoParent; a path with an invalid segment (empty,
// ".", "..", "\", control characters, invalid UTF-8) is ErrInvalidName.
// Nested folders under INBOX ("INBOX/sub") and non-ASCII names
// ("Entwürfe", "日本語", "R&D") work.
//
// RenameFolder(from, to): from or to equal to "INBOX" or "" is
// ErrForbidden; a missing from is ErrNotFound; to inside from is
// ErrInvalidName; an existing to is ErrExists; a missing parent of to is
// ErrNoParent. Subfolders, messages and the dead properties of every moved
// folder and message move along; message IDs do not change and
// Message.Folder follows. A failed rename changes nothing.
//
// DeleteFolder is recursive. "INBOX" and "" are ErrForbidden, a missing
// folder is ErrNotFound. The messages inside are gone (StatID is
// ErrNotFound) and a folder created again at the same path starts empty,
// without dead properties.
//
// List(folder) returns the messages in ascending UID order (arrival in
// the folder). A missing folder is ErrNotFound; the root lists no
// messages and no error. The slice is a snapshot: later changes to the
// mailbox do not alter it.
//
// UIDs (RFC 3501 §2.3.1.1): every message has a UID > 0 in its folder,
// below the folder's UIDNext, and unique in the folder. Every folder,
// the root included, has UIDNext > 0. A message entering a folder (Append,
// Copy, Move from another folder, Append with Replace) gets a UID at
// least the folder's UIDNext before the operation, and UIDNext then
// exceeds it; UIDs are never reused, not even the highest after it is
// deleted, nor a message's own former UID when it is moved out and back.
// Move out of a folder leaves that folder's UIDNext as it was. SetFlags,
// PatchProps, a Move within the folder (rename, also with replace) and a
// rename onto itself keep the UID and the folder's UIDNext. RenameFolder
// keeps the UIDValidity, UIDNext and UIDs of the moved folders. A folder
// deleted and created again has another UIDValidity. StatUID(folder, uid)
// returns what Stat returns for that message; a UID the folder does not
// hold (0, deleted, moved away, never assigned) is ErrNotFound, as is a
// missing folder.
//
// Append(folder, r, opts): a missing folder is ErrNotFound. With
// opts.Name "" the name is mailbox.NameFromSubject of the decoded subject,
// made unique with mailbox.UniqueName ("X.EML", "X-2.EML", …). A given
// Name that is not a ValidSegment is ErrInvalidName; an existing Name is
// ErrExists unless opts.Replace, in which case the new content gets a new
// ID under the same name, the old ID is gone, and the resource keeps its
// dead properties (RFC 4918 §9.7.1: PUT does not otherwise affect the
// properties of the resource it replaces; DavMail depends on it,
// exchange-webdav.md §6.1). Size is exactly the number of bytes read and
// Open returns them unchanged, whatever they are (NUL, bare CR or LF,
// 8-bit). opts.MaxSize > 0 caps the stream: exactly MaxSize bytes are
// fine, one more is an error with errors.Is(err, limits.ErrTooLarge) and
// nothing is stored. A reader error is returned (errors.Is) and nothing is
// stored. A ctx cancelled before or during the read gives an error with
// errors.Is(err, context.Canceled) and nothing is stored. The envelope
// comes from convert.ScanEnvelope (RFC 2047 subjects decoded). Flags and
// InternalDate come from opts; a zero InternalDate means now. An empty
// (0-byte) message is allowed.
//
// Open returns exactly the appended bytes; Size() equals Message.Size;
// Seek and ReadAt work. Stat and StatID: missing is ErrNotFound. IDs are
// unique across the whole mailbox and never reused, not even the highest
// one after it is deleted.
//
// Copy(folder, name, dstFolder, dstName, replace) makes a new message with
// a new ID and the same bytes, flags, internal date and dead properties
// (copied, not shared); dstName "" keeps the name. An existing destination
// is ErrExists, or is replaced (its ID gone) when replace is set. Copying
// a message onto itself is ErrForbidden (RFC 4918 §9.8.5). A missing
// source or destination folder is ErrNotFound; an invalid dstName is
// ErrInvalidName.
//
// Move keeps the ID and updates Folder and Name; dead properties move
// along. An existing destination is ErrExists, or is replaced when replace
// is set. Moving a message onto itself returns it unchanged, without
// error. Renaming within a folder works. Errors as for Copy.
//
// Delete: missing is ErrNotFound. SetFlags(folder, name, flags, add) adds
// or removes flags and returns the updated message; Unseen follows.
//
// Modseq: one counter per mailbox. Every change gives everything it
// touches a Modseq above every earlier value in the mailbox:
//
//   - Append, SetFlags, PatchProps of a message: the message and its folder;
//   - PatchProps of a folder: the folder;
//   - Copy: the new message and the destination folder (the source folder
//     may or may not move);
//   - Move (including a rename in place): the message and both folders;
//   - Delete: the folder;
//   - CreateFolder: the new folder and its parent (the root for top-level
//     folders);
//   - RenameFolder: the moved folder, its subfolders, and both parents (the
//     messages inside may or may not move);
//   - DeleteFolder: the parent.
//
// A folder's Modseq is never below that of a message in it. A folder that
// nothing touched keeps its Modseq, however often it is read. A SetFlags
// that changes nothing may or may not move Modseq.
//
// Dead properties: DeadProps(folder, "") are the folder's, DeadProps(folder,
// name) the message's, sorted by (Space, Local). PatchProps(set, remove):
// a set replaces a property with the same (Space, Local); removing a
// missing property is fine; the patch applies whole or not at all. A
// result with more than mailbox.MaxDeadProps properties or more than
// mailbox.MaxDeadPropBytes bytes (sum of len(Space)+len(Local)+len(XML)+
// len(Lang)) is ErrTooManyProps and nothing is applied; the caps apply to
// the result, so a patch that removes as much as it adds passes at the
// cap. XML and Lang are kept byte for byte (namespace declarations,
// non-BMP characters). Message.HasDeadProps follows. A missing folder or
// message is ErrNotFound. (A name in both set and remove is left to the
// backend; callers pass the net effect of a PROPPATCH.)
//
// Concurrency: 8 goroutines appending 50 messages each with the same
// subject and Name "" to one folder get 400 distinct names, IDs and UIDs
// and no error, while readers list the folder.
package mailboxtest
