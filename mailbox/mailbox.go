// Package mailbox defines the backend-neutral mail store that the WebDAV
// layer (dav/) and the web UI (web/) consume, and the types they exchange.
//
// A Store hands out one Mailbox per user. A Mailbox is a tree of folders,
// each holding messages. Every listing call answers from the backend's index
// only: no message file is opened to list a folder or to stat a message.
// Message bytes are reached through Open, which returns a sized, seekable
// reader, so that callers can stream with fixed buffers whatever the size.
//
// Folder paths are UTF-8 names joined by "/", IMAP style: "INBOX",
// "INBOX/litmus", "Sent", "Archive/2024". The root of the tree has path "".
// Segment names are non-empty, contain no "/" and no control characters,
// and are not "." or ".." (see ValidSegment). Backends may refuse more
// (the Maildir++ layout cannot hold "." inside a name); they answer
// ErrInvalidName.
//
// Message names are unique within a folder (case-sensitive) and stable: a
// message keeps its name until it is renamed by Move. Messages that arrive
// from elsewhere (a delivery agent, Dovecot) are named after their subject,
// "<Subject>.EML", with "-2", "-3"… added on collisions, following Exchange
// (../shared/docs/exchange-webdav.md §1.5).
//
// Backends: maildir (the default, Dovecot's Maildir++ layout with a bbolt
// index) and memstore (in memory, for tests). The conformance suite in
// mailboxtest runs against both.
package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors every backend returns (wrapped or bare) for the conditions the
// protocol layers map to statuses. Compare with errors.Is.
var (
	ErrNotFound    = errors.New("mailbox: not found")
	ErrExists      = errors.New("mailbox: already exists")
	ErrNoParent    = errors.New("mailbox: parent folder does not exist")
	ErrInvalidName = errors.New("mailbox: invalid name")
	// ErrForbidden is returned for operations the store never allows, such
	// as deleting or renaming INBOX or the root.
	ErrForbidden = errors.New("mailbox: operation not allowed")
	// ErrEmptyMessage is returned (it wraps ErrForbidden) by a backend
	// that cannot store a zero-byte message: IMAP servers store RFC 5322
	// messages, and Dovecot refuses an empty APPEND.
	ErrEmptyMessage = fmt.Errorf("mailbox: an empty message cannot be stored here: %w", ErrForbidden)
	// ErrTooManyProps is returned when a dead-property patch would exceed
	// the per-resource caps (MaxDeadProps, MaxDeadPropBytes).
	ErrTooManyProps = errors.New("mailbox: too many or too large dead properties")
)

// Caps on dead properties per resource. Dead properties are client input
// stored in the index; without caps one client could grow it without bound
// (brief, failure 3). 64 properties and 64 KiB are far above what litmus,
// Finder or Windows store on a resource.
const (
	MaxDeadProps     = 64
	MaxDeadPropBytes = 64 << 10
)

// Inbox is the path of the INBOX folder. WebDAV shows it as "Inbox".
const Inbox = "INBOX"

// Flags are the IMAP system flags, stored in Maildir file names after ":2,".
type Flags uint8

// The flags, in Maildir letter order (D F P R S T).
const (
	FlagDraft    Flags = 1 << iota // D
	FlagFlagged                    // F
	FlagPassed                     // P (forwarded)
	FlagAnswered                   // R (replied)
	FlagSeen                       // S
	FlagDeleted                    // T (trashed: marked for expunge)
)

// maildirLetters maps each flag bit to its Maildir info letter; the order
// is ASCII order, which Maildir requires for the letters after ":2,".
var maildirLetters = [...]struct {
	f Flags
	c byte
}{{FlagDraft, 'D'}, {FlagFlagged, 'F'}, {FlagPassed, 'P'}, {FlagAnswered, 'R'}, {FlagSeen, 'S'}, {FlagDeleted, 'T'}}

// String returns the flags as Maildir letters in ASCII order, e.g. "FS".
func (f Flags) String() string {
	var b [len(maildirLetters)]byte
	n := 0
	for _, l := range maildirLetters {
		if f&l.f != 0 {
			b[n] = l.c
			n++
		}
	}
	return string(b[:n])
}

// ParseFlags reads Maildir info letters. Unknown letters (keywords a–z,
// which Dovecot maps through dovecot-keywords) are ignored here and kept
// by the backend as they are.
func ParseFlags(s string) Flags {
	var f Flags
	for i := 0; i < len(s); i++ {
		for _, l := range maildirLetters {
			if s[i] == l.c {
				f |= l.f
			}
		}
	}
	return f
}

// Envelope is the header information the index keeps for every message,
// parsed once when the message is first seen.
type Envelope struct {
	Subject     string    // decoded (RFC 2047), UTF-8, single line
	From        string    // decoded, as displayed: `Name <addr>`
	To          string    // decoded address list
	Cc          string    // decoded address list
	Date        time.Time // Date: header; zero when missing or unparsable
	MessageID   string    // Message-ID with angle brackets, as written
	ContentType string    // media type of the top-level entity, lower case, e.g. "multipart/mixed"
	// HasAttachments is true when some part is an attachment: it has
	// Content-Disposition attachment, or a file name on a part that is not
	// text and not multipart, or it is an attached message/rfc822. Inline
	// images referenced by Content-ID inside multipart/related are not
	// attachments (convert.Part.IsAttachment has the exact rule).
	HasAttachments bool
}

// Message is the index entry of one message. It is a value: callers may
// keep it; it does not change when the store does.
type Message struct {
	// ID is stable and unique within the user's mailbox, never reused. It
	// changes only when the content changes (a PUT replacing a message
	// gives the new content a new ID), so it can serve in a strong ETag.
	ID uint64
	// UID is the message's unique identifier in its folder, as IMAP
	// defines it (RFC 3501 §2.3.1.1) and Exchange shows it as
	// PR_INTERNET_ARTICLE_NUMBER (proptag x0e230003). It is assigned when
	// the message enters the folder: by Append, by Copy, by a Move from
	// another folder, or by a delivery or move of another program that a
	// rescan finds. It is greater than every UID the folder ever had (it
	// is the folder's UIDNext at that moment), so UIDs ascend in arrival
	// order; it is never 0 and never reused. A message moved or copied
	// into a folder gets a new UID there, even if it was there before.
	// Flag changes, dead-property changes, a rename within the folder
	// (Move with the same folder) and RenameFolder keep it; a replacing
	// Append is new content and gets a new UID. A UID is meaningful only
	// together with the folder's UIDValidity: when that changes, every
	// UID of the folder may have changed.
	UID uint32
	// Flags are the IMAP system flags. (Placed here, next to UID, so that
	// the two share one word: Message is kept compact because an index
	// holds one per message.)
	Flags  Flags
	Folder string // folder path
	Name   string // item name, unique in the folder
	// Size is the exact number of bytes Open returns.
	Size int64
	// Keywords are IMAP keywords (Dovecot keeps them as letters a–z in the
	// file name, mapped through dovecot-keywords).
	Keywords []string
	// InternalDate is the delivery time (IMAP INTERNALDATE).
	InternalDate time.Time
	// Modified is the last change of content, flags or name.
	Modified time.Time
	// Modseq increases with every change to this message; it is comparable
	// with Folder.Modseq.
	Modseq   uint64
	Envelope Envelope
	// HasDeadProps tells that DeadProps would return something, so a
	// listing need not ask for every message.
	HasDeadProps bool
}

// Folder describes one folder.
type Folder struct {
	Path string // "" for the root, "INBOX", "Archive/2024"
	// SpecialUse is the RFC 6154 attribute ("\\Sent", "\\Trash",
	// "\\Drafts", "\\Junk", "\\Archive") or "".
	SpecialUse string
	Messages   int   // number of messages
	Unseen     int   // messages without FlagSeen
	Size       int64 // sum of message sizes
	// Modseq increases with every change to the folder or any message in
	// it; a folder whose Modseq did not move has not changed.
	Modseq   uint64
	Modified time.Time
	// UIDValidity is never 0 and changes whenever the folder's UIDs
	// start afresh (RFC 3501 §2.3.1.1): when the folder is deleted and
	// created again, when a backend must rebuild its index of the folder
	// without knowing the old UIDs, or when the UIDs run out and are
	// renumbered. UIDs, and tokens derived from Modseq, are valid only
	// with the same UIDValidity.
	UIDValidity uint32
	// UIDNext is the UID the next message entering the folder gets:
	// greater than every UID the folder ever had, never 0. It persists
	// across restarts and only grows while UIDValidity stays the same.
	// (IMAP's UIDNEXT is a lower bound; here it is exact, the UID that a
	// following Append will get unless something else arrives first.)
	UIDNext uint32
}

// Name returns the last path segment ("" for the root).
func (f Folder) Name() string {
	if i := strings.LastIndexByte(f.Path, '/'); i >= 0 {
		return f.Path[i+1:]
	}
	return f.Path
}

// Content is an open message: sized, seekable, readable at offsets.
// Callers must Close it.
type Content interface {
	io.ReadSeekCloser
	io.ReaderAt
	Size() int64
}

// AppendOptions tune Append.
type AppendOptions struct {
	// Name of the new message; "" lets the store derive one from the
	// subject. A Name that exists is replaced when Replace is set and
	// ErrExists otherwise.
	Name    string
	Replace bool
	Flags   Flags
	// InternalDate defaults to now.
	InternalDate time.Time
	// MaxSize caps the bytes read from the stream. Over it, Append stores
	// nothing and returns a *limits.Error (errors.Is limits.ErrTooLarge).
	// 0 means no cap at this level (callers enforce theirs).
	MaxSize int64
}

// Prop is a dead property: a WebDAV property the server stores without
// interpreting it. XML is the inner XML of the property element, kept
// byte for byte so namespace declarations and mixed content survive.
type Prop struct {
	Space, Local string
	XML          string
	// Lang is the xml:lang in scope, if any (RFC 4918 §4.3).
	Lang string
}

// PropName names a property.
type PropName struct{ Space, Local string }

// Store opens mailboxes. Implementations are safe for concurrent use.
type Store interface {
	// Mailbox returns user's mailbox, creating it (with an INBOX) if the
	// backend allows and it does not exist yet.
	Mailbox(ctx context.Context, user string) (Mailbox, error)
	// Ready reports whether the store and its index are reachable.
	Ready(ctx context.Context) error
	Close() error
}

// Mailbox is one user's tree of folders. Implementations are safe for
// concurrent use. Every method honours ctx cancellation where it does
// work proportional to the mailbox size.
type Mailbox interface {
	// Folders lists every folder (not the root), sorted by path with INBOX
	// first.
	Folders(ctx context.Context) ([]Folder, error)
	// Folder describes one folder; path "" is the root.
	Folder(ctx context.Context, path string) (Folder, error)
	// CreateFolder creates path; its parent must exist (ErrNoParent).
	CreateFolder(ctx context.Context, path string) error
	// RenameFolder moves a folder with its messages and subfolders. The
	// new parent must exist; to must not (ErrExists).
	RenameFolder(ctx context.Context, from, to string) error
	// DeleteFolder removes a folder with its messages and subfolders.
	DeleteFolder(ctx context.Context, path string) error

	// List returns the messages of a folder in arrival order in the
	// folder: ascending UID, the order IMAP and Exchange clients expect.
	// (A message moved in from another folder keeps its older ID but
	// lists after everything that was there before it.) The slice is a
	// snapshot that the caller must not modify.
	List(ctx context.Context, folder string) ([]Message, error)
	// Stat returns one message by name.
	Stat(ctx context.Context, folder, name string) (Message, error)
	// StatID finds a message by ID anywhere in the mailbox.
	StatID(ctx context.Context, id uint64) (Message, error)
	// StatUID returns the message of folder with the given UID (IMAP
	// UID commands, permanent URLs), ErrNotFound if there is none. It
	// costs no more than Stat, whatever the size of the folder.
	StatUID(ctx context.Context, folder string, uid uint32) (Message, error)
	// Open returns the raw bytes of a message.
	Open(ctx context.Context, folder, name string) (Content, error)
	// Structure returns the MIME structure of a message from the index
	// (parsed once, when the message was indexed). The result is shared
	// and must not be modified.
	Structure(ctx context.Context, folder, name string) (*Structure, error)
	// Append stores a message read from r. Nothing is visible until the
	// message is completely and durably written.
	Append(ctx context.Context, folder string, r io.Reader, opts AppendOptions) (Message, error)
	// Copy copies a message to dstFolder under dstName ("" keeps the
	// name). replace allows overwriting an existing dstName. The copy is
	// a new message, with a new ID and a new UID in dstFolder.
	Copy(ctx context.Context, folder, name, dstFolder, dstName string, replace bool) (Message, error)
	// Move moves or renames a message; the ID stays the same. Into
	// another folder the message gets a new UID there; a rename within
	// the folder keeps its UID.
	Move(ctx context.Context, folder, name, dstFolder, dstName string, replace bool) (Message, error)
	// Delete removes a message.
	Delete(ctx context.Context, folder, name string) error
	// SetFlags adds (add=true) or removes flags.
	SetFlags(ctx context.Context, folder, name string, flags Flags, add bool) (Message, error)

	// DeadProps returns the dead properties of a message, or of the
	// folder itself when name is "".
	DeadProps(ctx context.Context, folder, name string) ([]Prop, error)
	// PatchProps sets and removes dead properties, all or nothing.
	PatchProps(ctx context.Context, folder, name string, set []Prop, remove []PropName) error
}

// ValidSegment reports whether s can be one segment of a folder path or a
// message name, for every backend.
func ValidSegment(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return false
		}
	}
	return true
}

// Parent returns the parent path of a folder path ("" for top level).
func Parent(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i]
	}
	return ""
}

// Join joins a folder path and a segment.
func Join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "/" + name
}

// IsDescendant reports whether path is below (not equal to) ancestor.
func IsDescendant(path, ancestor string) bool {
	if ancestor == "" {
		return path != ""
	}
	return len(path) > len(ancestor) && path[len(ancestor)] == '/' && path[:len(ancestor)] == ancestor
}
