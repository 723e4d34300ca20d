package maildir

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/davmail/davmail/mailbox"
)

// subsFile is Dovecot's list of subscribed folders, in the Maildir root.
const subsFile = "subscriptions"

// maxSubsFile caps the subscriptions file read: 1 MiB holds DefaultMaxFolders
// names of 100 bytes; a bigger file is not Dovecot's and is left alone.
const maxSubsFile = 1 << 20

// subscriptions is the parsed subscriptions file. Two formats exist:
// version 1, one name per line with "." as separator in modified UTF-7
// (what Dovecot 1.x and Courier write), and version 2, a "V\t2" header
// and a blank line, then names with tab as separator in UTF-8 (Dovecot
// 2.2+). The format found is kept; a new file is version 1. Lines that
// cannot be parsed are kept as they are.
type subscriptions struct {
	header  []string // v2 header lines, including the blank line
	v2      bool
	entries []subEntry
	changed bool
}

type subEntry struct {
	raw  string
	path string // "" when raw could not be parsed
}

func parseSubscriptions(data []byte) *subscriptions {
	s := &subscriptions{}
	lines := strings.Split(string(data), "\n")
	if len(lines) > 0 && strings.HasPrefix(lines[0], "V\t") {
		s.v2 = true
		i := 0
		for ; i < len(lines); i++ {
			s.header = append(s.header, lines[i])
			if lines[i] == "" {
				i++
				break
			}
		}
		lines = lines[i:]
	}
	for _, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			continue
		}
		s.entries = append(s.entries, subEntry{raw: l, path: s.decode(l)})
	}
	return s
}

func (s *subscriptions) decode(line string) string {
	sep := "."
	if s.v2 {
		sep = "\t"
	}
	segs := strings.Split(line, sep)
	for i, seg := range segs {
		if !s.v2 {
			d, ok := decodeMUTF7(seg)
			if !ok {
				return ""
			}
			seg = d
		}
		if !mailbox.ValidSegment(seg) {
			return ""
		}
		segs[i] = seg
	}
	return strings.Join(segs, "/")
}

func (s *subscriptions) encode(path string) string {
	segs := strings.Split(path, "/")
	if s.v2 {
		return strings.Join(segs, "\t")
	}
	for i, seg := range segs {
		segs[i] = encodeMUTF7(seg)
	}
	return strings.Join(segs, ".")
}

func (s *subscriptions) add(path string) {
	for _, e := range s.entries {
		if e.path == path {
			return
		}
	}
	s.entries = append(s.entries, subEntry{raw: s.encode(path), path: path})
	s.changed = true
}

// remove unsubscribes path and its subfolders.
func (s *subscriptions) remove(path string) {
	kept := s.entries[:0]
	for _, e := range s.entries {
		if e.path != "" && (e.path == path || mailbox.IsDescendant(e.path, path)) {
			s.changed = true
			continue
		}
		kept = append(kept, e)
	}
	s.entries = kept
}

// rename moves the subscriptions of from and its subfolders to to.
func (s *subscriptions) rename(from, to string) {
	for i, e := range s.entries {
		if e.path != "" && (e.path == from || mailbox.IsDescendant(e.path, from)) {
			np := to + e.path[len(from):]
			s.entries[i] = subEntry{raw: s.encode(np), path: np}
			s.changed = true
		}
	}
}

func (s *subscriptions) bytes() []byte {
	var b bytes.Buffer
	for _, h := range s.header {
		b.WriteString(h)
		b.WriteByte('\n')
	}
	if s.v2 && (len(s.header) == 0 || s.header[len(s.header)-1] != "") {
		b.WriteByte('\n') // the blank line that ends a version 2 header
	}
	if !s.v2 && len(s.entries) > 0 && strings.HasPrefix(s.entries[0].raw, "V\t") {
		// A version 1 file whose first name looks like a version 2
		// header was read as version 1 because a blank line came first:
		// keep that blank line, or the rewrite would change the format.
		b.WriteByte('\n')
	}
	for _, e := range s.entries {
		b.WriteString(e.raw)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// editSubscriptions applies edit to the subscriptions file and writes it
// back atomically (temp file, fsync, rename). Subscriptions are Dovecot's
// business, not davmail's: a failure is logged, never fatal.
func (b *mbox) editSubscriptions(edit func(s *subscriptions)) {
	p := filepath.Join(b.root, subsFile)
	var data []byte
	f, err := os.Open(p)
	switch {
	case err == nil:
		data, err = io.ReadAll(io.LimitReader(f, maxSubsFile+1))
		f.Close()
		if err == nil && len(data) > maxSubsFile {
			b.log.Warn().Str("file", p).Msg("subscriptions file too large; not updated")
			return
		}
	case errors.Is(err, fs.ErrNotExist):
		err = nil
	}
	if err != nil {
		b.log.Warn().Err(err).Msg("cannot read subscriptions")
		return
	}
	s := parseSubscriptions(data)
	edit(s)
	if !s.changed {
		return
	}
	if err := writeFileAtomic(p, s.bytes()); err != nil {
		b.log.Warn().Err(err).Msg("cannot update subscriptions")
	}
}

// writeFileAtomic replaces the file at p with data: written to a
// temporary file beside it, fsynced, renamed over p, directory fsynced.
func writeFileAtomic(p string, data []byte) error {
	tmp := p + tmpMarker
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(p))
}
