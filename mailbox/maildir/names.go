package maildir

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/davmail/davmail/mailbox"
)

// nameMax is NAME_MAX of common file systems (ext4, xfs, btrfs, tmpfs):
// a directory or file name longer than this cannot be created, so longer
// Maildir++ folder directories are refused up front.
const nameMax = 255

// infoSep is what separates a Maildir base from its info on Unix
// (cr.yp.to/proto/maildir.html: "unique:2,flags").
const infoSep = ":2,"

// Marker of davmail's own temporary files in tmp/. Files with it are left
// only by a crash in the middle of a write and are removed when the
// mailbox is opened; other programs' files in tmp/ are removed only after
// tmpMaxAge.
const tmpMarker = ".davmail-tmp"

// trashPrefix starts the name a folder directory gets just before it is
// removed, so that it disappears atomically even when the recursive
// removal takes long or is interrupted. Dovecot uses the same prefix; a
// leading ".." can never be a folder name, so nothing lists it, and
// leftovers are removed when the mailbox is opened.
const trashPrefix = "..DOVECOT-TRASHED"

// mkdirPrefix starts the name under which a new folder directory is put
// together (cur/, new/, tmp/, maildirfolder) before it is renamed into
// place, so that a folder never appears half made.
const mkdirPrefix = "..davmail-mkdir."

// parseName splits a Maildir file name into its base (the unique part,
// which may carry ",S=<size>,W=<size>" hints) and its info (the letters
// after ":2,"). Names without ":2," (files in new/) have an empty info;
// names with another info version (":1,") keep only the base. Hidden
// files, empty bases and names that are not a single path element are
// refused.
func parseName(name string) (base, info string, ok bool) {
	if name == "" || name[0] == '.' || len(name) > nameMax || strings.ContainsAny(name, "/\x00") {
		return "", "", false
	}
	i := strings.IndexByte(name, ':')
	if i < 0 {
		return name, "", true
	}
	if i == 0 {
		return "", "", false
	}
	base = name[:i]
	if strings.HasPrefix(name[i:], infoSep) {
		info = name[i+len(infoSep):]
	}
	return base, info, true
}

// leadingNumber returns the leading decimal number of a Maildir base
// (the delivery time stamp of "<seconds>.<unique>"), by which new files
// are ordered.
func leadingNumber(s string) (uint64, bool) {
	i := 0
	for i < len(s) && i < 19 && s[i] >= '0' && s[i] <= '9' { // 19 digits always fit a uint64
		i++
	}
	if i == 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	return n, err == nil
}

// flagLetters are the info letters of the mailbox.Flags, which mergeInfo
// replaces; every other letter (Dovecot keywords a–z, unknown upper-case
// letters) is preserved.
const flagLetters = "DFPRST"

// mergeInfo returns info with its flag letters replaced by flags and all
// other characters kept, in ASCII order without repeats, as the Maildir
// spec requires.
func mergeInfo(info string, flags mailbox.Flags) string {
	var set [128]bool
	for i := 0; i < len(info); i++ {
		c := info[i]
		if c < 128 && !strings.ContainsRune(flagLetters, rune(c)) {
			set[c] = true
		}
	}
	fs := flags.String()
	for i := 0; i < len(fs); i++ {
		set[fs[i]] = true
	}
	var b []byte
	for c := 0x21; c < 127; c++ { // printable ASCII without space: what an info can hold
		if set[c] {
			b = append(b, byte(c))
		}
	}
	return string(b)
}

// infoFlags returns the flags of an info string.
func infoFlags(info string) mailbox.Flags { return mailbox.ParseFlags(info) }

// dirName returns the directory of a folder relative to the Maildir
// root: "" for INBOX, ".Archive.2024" for "Archive/2024". Paths with a
// segment that is not a valid segment or contains "." (the Maildir++
// separator) or whose directory name would pass NAME_MAX are refused.
func dirName(path string) (string, error) {
	if path == mailbox.Inbox {
		return "", nil
	}
	if path == "" {
		return "", fmt.Errorf("maildir: the root is not a folder: %w", mailbox.ErrInvalidName)
	}
	var b strings.Builder
	for seg := range strings.SplitSeq(path, "/") {
		if !mailbox.ValidSegment(seg) || strings.Contains(seg, ".") {
			return "", fmt.Errorf("maildir: folder %q: segment %q: %w", path, seg, mailbox.ErrInvalidName)
		}
		b.WriteByte('.')
		b.WriteString(encodeMUTF7(seg))
	}
	if b.Len() > nameMax {
		return "", fmt.Errorf("maildir: folder %q: directory name over %d bytes: %w", path, nameMax, mailbox.ErrInvalidName)
	}
	return b.String(), nil
}

// pathFromDir returns the folder path of a Maildir++ directory name
// (".Archive.2024" → "Archive/2024"), or false when the name is not a
// folder directory: no leading dot, a leading "..", empty segments,
// non-canonical modified UTF-7, invalid segments, or ".INBOX" (INBOX is
// the Maildir root itself).
func pathFromDir(name string) (string, bool) {
	if len(name) < 2 || name[0] != '.' || name[1] == '.' {
		return "", false
	}
	segs := strings.Split(name[1:], ".")
	for i, s := range segs {
		d, ok := decodeMUTF7(s)
		if !ok || !mailbox.ValidSegment(d) {
			return "", false
		}
		segs[i] = d
	}
	p := strings.Join(segs, "/")
	if p == mailbox.Inbox {
		return "", false
	}
	return p, true
}

// specialUse returns the RFC 6154 attribute of a top-level folder by the
// names Dovecot's default configuration (conf.d/15-mailboxes.conf) and
// common clients give special folders.
func specialUse(path string) string {
	switch path {
	case "Sent", "Sent Items", "Sent Messages":
		return `\Sent`
	case "Trash", "Deleted Items", "Deleted Messages":
		return `\Trash`
	case "Drafts":
		return `\Drafts`
	case "Junk", "Spam":
		return `\Junk`
	case "Archive":
		return `\Archive`
	}
	return ""
}

// maxDerivedName caps a name derived from a subject, in bytes, leaving
// room within ValidSegment's 255 bytes for UniqueName's "-N" suffix (the
// same rule as memstore, so both backends name messages alike).
const maxDerivedName = 240

// derivedName is the item name of a message stored without one:
// mailbox.NameFromSubject, shortened on a rune boundary to maxDerivedName.
func derivedName(subject string) string {
	name := mailbox.NameFromSubject(subject)
	if len(name) <= maxDerivedName {
		return name
	}
	const ext = ".EML"
	stem := name[:len(name)-len(ext)]
	for len(stem)+len(ext) > maxDerivedName {
		_, n := utf8.DecodeLastRuneInString(stem)
		stem = stem[:len(stem)-n]
	}
	return stem + ext
}

// validUser reports whether user can name a mailbox directory and an
// index file: a valid segment that is not hidden and has no path or
// drive separators.
func validUser(user string) bool {
	return mailbox.ValidSegment(user) && user[0] != '.' && !strings.ContainsAny(user, ":"+string(os.PathSeparator))
}

// sanitizeHost makes a host name safe inside a Maildir base: "/" and ":"
// are replaced as the Maildir spec says ("\057", "\072"), and "," too
// ("\054") because davmail appends ",S=<size>" to the base.
func sanitizeHost(h string) string {
	if h == "" {
		h = "localhost"
	}
	if len(h) > 64 { // a DNS label is at most 63 bytes; longer adds nothing to uniqueness
		h = h[:64]
	}
	r := strings.NewReplacer("/", `\057`, ":", `\072`, ",", `\054`, "\n", "_", "\x00", "_")
	return r.Replace(h)
}

// sortPaths orders folder paths as mailbox.Mailbox.Folders does: the
// INBOX subtree first, then the rest, each in byte order (the order
// memstore uses, pinned by the conformance suite).
func sortPaths(paths []string) {
	sort.Slice(paths, func(i, j int) bool { return inboxFirst(paths[i], paths[j]) })
}

func inboxFirst(a, b string) bool {
	ia := a == mailbox.Inbox || mailbox.IsDescendant(a, mailbox.Inbox)
	ib := b == mailbox.Inbox || mailbox.IsDescendant(b, mailbox.Inbox)
	if ia != ib {
		return ia
	}
	return a < b
}
