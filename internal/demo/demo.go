// Package demo seeds the first-run demo account: when `davmail` starts
// with no arguments and the users file has no users, it creates user
// "demo" with a random password and a Maildir++ mailbox holding a handful
// of realistic messages (several charsets and transfer encodings, HTML,
// attachments, a reply thread, a draft) and one legacy message larger than
// the default max-message-size, so every feature can be tried at once.
//
// Seeding is idempotent: once the users file has a user, Seed does
// nothing. Messages are delivered the Maildir way (write in tmp/, fsync,
// rename into cur/ or new/), the whole mailbox is assembled under a
// staging name and renamed into place, and the user is added last, so a
// crash at any point leaves either nothing or a complete demo.
package demo

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/davmail/davmail/internal/auth"
	"github.com/rs/zerolog"
)

// User is the demo account's name.
const User = "demo"

//go:embed mail/*.eml
var mailFS embed.FS

// seedMessage places one embedded message.
type seedMessage struct {
	file   string
	folder string // Maildir++ directory: "" for INBOX, ".Sent"…
	flags  string // Maildir info letters; ignored when inNew
	inNew  bool   // delivered but not yet seen by any client
}

// seedMessages is the demo mailbox. Flags vary so that clients show
// read, unread, flagged, answered and draft messages.
var seedMessages = []seedMessage{
	{file: "01-welcome.eml", flags: "S"},
	{file: "02-utf8-subject.eml", flags: "S"},
	{file: "03-latin1-qp.eml", inNew: true},
	{file: "04-koi8r-base64.eml", flags: ""},
	{file: "05-alternative-html.eml", flags: "S"},
	{file: "06-mixed-attachments.eml", flags: "FS"},
	{file: "07-thread-1.eml", flags: "RS"},
	{file: "08-thread-2-sent.eml", folder: ".Sent", flags: "S"},
	{file: "09-thread-3.eml", inNew: true},
	{file: "10-draft.eml", folder: ".Drafts", flags: "DS"},
}

// folders are the Maildir++ subfolders created besides INBOX.
var folders = []string{".Sent", ".Drafts", ".Trash"}

// Legacy message sizes. The attachment is 20 MiB of pseudo-random bytes,
// which base64 turns into ~27 MiB of text: the message is larger than the
// default max-message-size (25 MiB), like mail imported from an older
// system, so the demo shows how davmail lists such a message (exact size,
// marked oversized) while refusing to serve or store it whole. It stays
// under the default max-response-size (50 MiB), so raising
// max-message-size alone makes it downloadable.
const legacyRaw = 20 << 20

// legacySeed makes the attachment the same on every machine, so a bug
// report about it can be reproduced byte for byte.
var legacySeed = [32]byte{'d', 'a', 'v', 'm', 'a', 'i', 'l', '-', 'l', 'e', 'g', 'a', 'c', 'y'}

// passwordLen and passwordAlphabet: 16 characters from 54 symbols are
// ~92 bits, unguessable; ambiguous characters (0 O 1 l I) are left out
// because the password is read off a terminal.
const (
	passwordLen      = 16
	passwordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
)

// Account is the seeded account.
type Account struct {
	User      string
	Password  string
	Maildir   string
	UsersFile string
}

// Options say where to seed.
type Options struct {
	UsersFile   string // the users file (config Users)
	MaildirRoot string // holds <user>/Maildir (config MaildirRoot)
	Logger      zerolog.Logger

	// legacySize overrides legacyRaw (tests that do not look at the
	// legacy message keep it small).
	legacySize int64
	// bcryptCost overrides auth.BcryptCost (tests run faster).
	bcryptCost int
}

// Seed creates the demo account if the users file has no users. It
// returns the account when it created it, nil when there was nothing to
// do. An existing demo Maildir (say, the user was deleted from the users
// file but the mail kept) is reused, not overwritten.
func Seed(opts Options) (*Account, error) {
	users, err := auth.LoadUsers(opts.UsersFile)
	if err != nil {
		return nil, err
	}
	if users.Len() > 0 {
		return nil, nil
	}
	mdir := filepath.Join(opts.MaildirRoot, User, "Maildir")
	if _, err := os.Stat(mdir); errors.Is(err, os.ErrNotExist) {
		size := opts.legacySize
		if size <= 0 {
			size = legacyRaw
		}
		if err := seedMaildir(mdir, size); err != nil {
			return nil, fmt.Errorf("demo: seeding %s: %w", mdir, err)
		}
		opts.Logger.Info().Str("maildir", mdir).Msg("demo mailbox created")
	} else if err != nil {
		return nil, err
	}
	pw, err := password()
	if err != nil {
		return nil, err
	}
	var wopts []auth.WriteOption
	if opts.bcryptCost != 0 {
		wopts = append(wopts, auth.Cost(opts.bcryptCost))
	}
	if err := auth.AddUser(opts.UsersFile, User, pw, auth.RoleUser, wopts...); err != nil {
		return nil, fmt.Errorf("demo: adding user: %w", err)
	}
	opts.Logger.Info().Str("user", User).Str("users", opts.UsersFile).Msg("demo user created")
	return &Account{User: User, Password: pw, Maildir: mdir, UsersFile: opts.UsersFile}, nil
}

func password() (string, error) {
	var b [passwordLen]byte
	out := make([]byte, 0, passwordLen)
	for len(out) < passwordLen {
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		for _, c := range b {
			// Rejection sampling keeps every symbol equally likely.
			if int(c) < 256-256%len(passwordAlphabet) && len(out) < passwordLen {
				out = append(out, passwordAlphabet[int(c)%len(passwordAlphabet)])
			}
		}
	}
	return string(out), nil
}

// seedMaildir builds the demo Maildir under a staging name next to mdir
// and renames it into place.
func seedMaildir(mdir string, legacySize int64) error {
	parent := filepath.Dir(mdir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	stage := mdir + ".seeding"
	// A staging directory is what a crash mid-seed leaves: start over.
	if err := os.RemoveAll(stage); err != nil {
		return err
	}
	if err := makeMaildir(stage, false); err != nil {
		return err
	}
	for _, f := range folders {
		if err := makeMaildir(filepath.Join(stage, f), true); err != nil {
			return err
		}
	}
	d := newDeliverer()
	for _, m := range seedMessages {
		data, err := mailFS.ReadFile("mail/" + m.file)
		if err != nil {
			return err
		}
		if err := d.deliver(filepath.Join(stage, m.folder), m.flags, m.inNew, dateOf(data), func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		}); err != nil {
			return fmt.Errorf("%s: %w", m.file, err)
		}
	}
	legacyDate := time.Date(2019, 11, 4, 16, 20, 0, 0, time.UTC)
	if err := d.deliver(stage, "S", false, legacyDate, func(w io.Writer) error { return writeLegacy(w, legacySize) }); err != nil {
		return fmt.Errorf("legacy message: %w", err)
	}
	// Dovecot's subscriptions file (version 1: one name per line), so IMAP
	// clients show the folders.
	if err := writeSynced(filepath.Join(stage, "subscriptions"), []byte("Sent\nDrafts\nTrash\n")); err != nil {
		return err
	}
	for _, dir := range append([]string{stage}, joinAll(stage, folders)...) {
		for _, sub := range []string{"cur", "new"} {
			if err := syncDir(filepath.Join(dir, sub)); err != nil {
				return err
			}
		}
	}
	if err := syncDir(stage); err != nil {
		return err
	}
	if err := os.Rename(stage, mdir); err != nil {
		return err
	}
	return syncDir(parent)
}

func joinAll(dir string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(dir, n)
	}
	return out
}

// makeMaildir creates dir with cur/, new/ and tmp/; a Maildir++
// subfolder also gets the empty "maildirfolder" marker.
func makeMaildir(dir string, sub bool) error {
	for _, s := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o700); err != nil {
			return err
		}
	}
	if sub {
		return writeSynced(filepath.Join(dir, "maildirfolder"), nil)
	}
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// dateOf reads the Date header of a message, for its file time (which
// Maildir readers take as the delivery date); now if it has none.
func dateOf(data []byte) time.Time {
	if m, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		if d, err := m.Header.Date(); err == nil {
			return d
		}
	}
	return time.Now()
}

// deliverer names and writes Maildir messages.
type deliverer struct {
	host string
	pid  int
	seq  int
}

func newDeliverer() *deliverer {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "davmail"
	}
	// Maildir unique names must not hold "/" or ":" (the info separator);
	// Dovecot writes them as octal escapes.
	h = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(h)
	return &deliverer{host: h, pid: os.Getpid()}
}

// deliver writes one message into the Maildir dir: into tmp/ first, fsync,
// then rename into cur/ (with ":2," and flags) or new/. The name carries
// the size (S=) as Dovecot's do, so readers need not stat the file.
func (d *deliverer) deliver(dir, flags string, inNew bool, date time.Time, write func(io.Writer) error) error {
	d.seq++
	base := fmt.Sprintf("%d.M%dP%dQ%d.%s", date.Unix(), date.Nanosecond()/1000, d.pid, d.seq, d.host)
	tmp := filepath.Join(dir, "tmp", base)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// 64 KiB: large enough that the 27 MiB legacy message is written in
	// big chunks, fixed whatever the message size.
	bw := bufio.NewWriterSize(f, 64<<10)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chtimes(tmp, date, date); err != nil {
		return err
	}
	name := fmt.Sprintf("%s,S=%d", base, fi.Size())
	dst := filepath.Join(dir, "new", name)
	if !inNew {
		dst = filepath.Join(dir, "cur", name+":2,"+flags)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	ok = true
	return nil
}

// legacyHeader is the start of the oversized legacy message, up to the
// attachment's base64 body.
const legacyHeader = `Message-ID: <scan-archive-2019@legacy.example.org>
Date: Mon, 04 Nov 2019 16:20:00 +0000
From: Scanner Room 3 <scanner@legacy.example.org>
To: Demo User <demo@example.org>
Subject: Legacy scan archive (oversized)
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="legacy-boundary-2019"

--legacy-boundary-2019
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

This message comes from the old mail system. Its attachment makes it
larger than davmail's default max-message-size (25 MiB): davmail lists
it with its exact size but does not serve it whole until the limit is
raised.

--legacy-boundary-2019
Content-Type: application/octet-stream; name="scan-archive-2019.bin"
Content-Disposition: attachment; filename="scan-archive-2019.bin"
Content-Transfer-Encoding: base64

`

const legacyTrailer = "\n--legacy-boundary-2019--\n"

// writeLegacy streams the legacy message with an attachment of size raw
// bytes: they come from a deterministic PRNG through fixed buffers and
// are never held in memory whole.
func writeLegacy(w io.Writer, size int64) error {
	if _, err := io.WriteString(w, legacyHeader); err != nil {
		return err
	}
	rng := mrand.NewChaCha8(legacySeed)
	// 57 raw bytes make one 76-character base64 line, the RFC 2045 §6.8
	// maximum; 1,024 lines per PRNG read.
	const lineRaw = 57
	raw := make([]byte, lineRaw*1024)
	var line [77]byte // 76 characters and "\n"
	remaining := size
	first := true
	for remaining > 0 {
		chunk := raw[:min(int64(len(raw)), remaining)]
		rng.Read(chunk)
		remaining -= int64(len(chunk))
		for len(chunk) > 0 {
			n := min(lineRaw, len(chunk))
			if !first {
				if _, err := w.Write([]byte{'\n'}); err != nil {
					return err
				}
			}
			first = false
			enc := base64.StdEncoding.EncodedLen(n)
			base64.StdEncoding.Encode(line[:enc], chunk[:n])
			if _, err := w.Write(line[:enc]); err != nil {
				return err
			}
			chunk = chunk[n:]
		}
	}
	_, err := io.WriteString(w, legacyTrailer)
	return err
}

// URL returns the demo mailbox's URL for a server listening on addr. An
// unspecified host (":8080", "0.0.0.0:8080", "[::]:8080") is shown as
// 127.0.0.1, which reaches it from the same machine.
func URL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/exchange/" + User + "/"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/exchange/" + User + "/"
}

// PrintBanner tells the person who just started davmail how to log in.
// It is printed once, when Seed created the account.
func PrintBanner(w io.Writer, acct *Account, url string) {
	fmt.Fprintf(w, `
davmail: created a demo account (first run, the users file was empty).

  URL:      %[1]s
  user:     %[2]s
  password: %[3]s

Try it:
  %[5]s   (in a browser)
  cadaver %[1]s
  rclone lsf -R --webdav-url %[1]s --webdav-user %[2]s --webdav-pass "$(rclone obscure '%[3]s')" :webdav:
  curl -u '%[2]s:%[3]s' -X PROPFIND -H 'Depth: 1' %[1]s

The password is shown only now. Change it with:
  davmail user add --replace --users %[4]s %[2]s

`, url, acct.User, acct.Password, acct.UsersFile, webURL(url))
}

// webURL is the web UI's address on the server of mailbox URL u
// (".../exchange/<user>/" → ".../web/").
func webURL(u string) string {
	if i := strings.Index(u, "/exchange/"); i >= 0 {
		return u[:i] + "/web/"
	}
	return u
}
