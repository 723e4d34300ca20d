package submit

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// formatVersion is the version of the queue layout and of its records.
// Bump it when a change is not readable by older code; Open refuses a
// directory or a record with a newer version rather than misreading it.
const formatVersion = 1

// maxRecordSize caps a record read from disk: 1,000 recipients with a
// 256-byte address and a 512-byte reply each stay under 1 MiB.
const maxRecordSize = 2 << 20

// maxReply caps a relay reply kept per recipient (RFC 5321 §4.5.3.1.5
// allows 512 octets per reply line).
const maxReply = 512

// Recipient states in a record.
const (
	rcptPending  = "pending"  // to be attempted
	rcptDone     = "done"     // the relay took it (final 250 to DATA)
	rcptFailed   = "failed"   // permanent failure, bounce not yet stored
	rcptReported = "reported" // permanent failure, bounce stored or dropped
)

// record is the on-disk state of one queued message, q/<id>.json.
type record struct {
	V         int       `json:"v"`
	ID        string    `json:"id"`
	User      string    `json:"user"`
	From      string    `json:"from"`
	MessageID string    `json:"message_id,omitempty"`
	Size      int64     `json:"size"`
	Created   time.Time `json:"created"`
	// Next is when the item is due.
	Next     time.Time `json:"next"`
	Attempts int       `json:"attempts"`
	// InFlight is set, durably, before each attempt and cleared after it:
	// an item found in flight by Open was interrupted and is retried.
	InFlight bool `json:"in_flight,omitempty"`
	// BounceFailures counts failed attempts to store the bounce, since
	// BounceSince.
	BounceFailures int        `json:"bounce_failures,omitempty"`
	BounceSince    time.Time  `json:"bounce_since,omitzero"`
	Rcpts          []rcptInfo `json:"rcpts"`
}

// rcptInfo is the state of one recipient, with the relay's last reply.
type rcptInfo struct {
	Addr     string `json:"addr"`
	State    string `json:"state"`
	Code     int    `json:"code,omitempty"`
	Enhanced string `json:"enhanced,omitempty"`
	Reply    string `json:"reply,omitempty"`
}

func (r *record) count(state string) int {
	n := 0
	for i := range r.Rcpts {
		if r.Rcpts[i].State == state {
			n++
		}
	}
	return n
}

// layout names the files of a queue directory.
type layout struct {
	dir, q, tmp, dead string
	noSync            bool
}

func newLayout(dir string, noSync bool) layout {
	return layout{dir: dir, q: filepath.Join(dir, "q"), tmp: filepath.Join(dir, "tmp"), dead: filepath.Join(dir, "dead"), noSync: noSync}
}

func (l layout) msgPath(id string) string    { return filepath.Join(l.q, id+".msg") }
func (l layout) recordPath(id string) string { return filepath.Join(l.q, id+".json") }

// init creates the directories and checks or writes the FORMAT file.
func (l layout) init() error {
	for _, d := range []string{l.dir, l.q, l.tmp, l.dead} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	fp := filepath.Join(l.dir, "FORMAT")
	b, err := os.ReadFile(fp)
	switch {
	case err == nil:
		var f struct {
			V int `json:"v"`
		}
		if err := json.Unmarshal(b, &f); err != nil || f.V < 1 {
			return fmt.Errorf("submit: %s is not a queue format file (%q); move it away if this folder is not a queue", fp, truncate(string(b), maxQuoted))
		}
		if f.V > formatVersion {
			return fmt.Errorf("submit: the queue in %s has format version %d; this davmail reads version %d only: run the newer davmail that wrote it until the queue is empty, or use another data folder", l.dir, f.V, formatVersion)
		}
		return nil
	case errors.Is(err, os.ErrNotExist):
		return l.writeFile(fp, l.dir, []byte(fmt.Sprintf("{\"v\":%d}\n", formatVersion)))
	default:
		return err
	}
}

// writeFile writes data to path durably: tmp file, fsync, rename, fsync
// of dir (the directory holding path).
func (l layout) writeFile(path, dir string, data []byte) error {
	f, err := os.CreateTemp(l.tmp, "w-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil && !l.noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return l.syncDir(dir)
}

func (l layout) syncDir(dir string) error {
	if l.noSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeRecord stores r durably over its previous version.
func (l layout) writeRecord(r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return l.writeFile(l.recordPath(r.ID), l.q, append(b, '\n'))
}

// readRecord reads and checks a record. A record with a newer version is
// an *versionError.
func (l layout) readRecord(id string) (*record, error) {
	f, err := os.Open(l.recordPath(id))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecordSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRecordSize {
		return nil, &corruptError{fmt.Errorf("record %s is larger than %d bytes", id, maxRecordSize)}
	}
	var r record
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&r); err != nil {
		return nil, &corruptError{fmt.Errorf("record %s: %w", id, err)}
	}
	if r.V > formatVersion {
		return nil, &versionError{path: l.recordPath(id), v: r.V}
	}
	if r.V < 1 || r.ID != id || len(r.Rcpts) == 0 {
		return nil, &corruptError{fmt.Errorf("record %s: not a version %d queue record", id, formatVersion)}
	}
	return &r, nil
}

// corruptError: a record that can be read but not understood. Such an
// item is moved to dead/; an I/O error, which may pass, is not.
type corruptError struct{ err error }

func (e *corruptError) Error() string { return e.err.Error() }
func (e *corruptError) Unwrap() error { return e.err }

type versionError struct {
	path string
	v    int
}

func (e *versionError) Error() string {
	return fmt.Sprintf("submit: queue record %s has format version %d; this davmail reads version %d only: run the newer davmail that wrote it until the queue is empty, or use another data folder", e.path, e.v, formatVersion)
}

// remove deletes an item: the record first (the item then no longer
// exists), the message, then the directory entry changes are fsynced.
func (l layout) remove(id string) error {
	if err := os.Remove(l.recordPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Remove(l.msgPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return l.syncDir(l.q)
}

// bury moves an item to dead/ for the administrator, message first.
func (l layout) bury(id string) error {
	if err := os.Rename(l.msgPath(id), filepath.Join(l.dead, id+".msg")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(l.recordPath(id), filepath.Join(l.dead, id+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := l.syncDir(l.dead); err != nil {
		return err
	}
	return l.syncDir(l.q)
}

// newID returns a new item id: the creation time in base 36 (ids sort
// roughly by age) and 64 random bits (no collision in practice; Enqueue
// still refuses to overwrite).
func newID(now time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(now.UnixMilli(), 36) + "-" + hex.EncodeToString(b[:])
}

// validID reports whether name could be an id made by newID (file names
// found in q/ are checked before use).
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return !strings.HasPrefix(id, "-")
}
