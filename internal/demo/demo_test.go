package demo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/davmail/davmail/convert"
	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/mailbox"
	"github.com/davmail/davmail/mailbox/maildir"
	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

// seedOpts returns options in a temporary directory, with a small legacy
// message (64 KiB) unless a test asks for the real one.
func seedOpts(t *testing.T) Options {
	dir := t.TempDir()
	return Options{
		UsersFile:   filepath.Join(dir, "users"),
		MaildirRoot: filepath.Join(dir, "maildir"),
		Logger:      zerolog.New(zerolog.NewTestWriter(t)),
		legacySize:  64 << 10,
		bcryptCost:  bcrypt.MinCost,
	}
}

// snapshot records every file under dir with size and mtime, to prove a
// second run changes nothing.
func snapshot(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			out[p] = fi.Mode().String() + " " + strconv.FormatInt(fi.Size(), 10) + " " + fi.ModTime().String()
			return nil
		})
	}
	return out
}

// maildirName is a Maildir file name as Seed writes it.
var maildirName = regexp.MustCompile(`^\d+\.M\d+P\d+Q\d+\.[^/:]+,S=(\d+)(:2,([A-Za-z]*))?$`)

func TestSeed(t *testing.T) {
	opts := seedOpts(t)
	acct, err := Seed(opts)
	if err != nil {
		t.Fatal(err)
	}
	if acct == nil {
		t.Fatal("first Seed created nothing")
	}
	if acct.User != "demo" || len(acct.Password) != passwordLen {
		t.Errorf("account %q / %d-character password", acct.User, len(acct.Password))
	}
	for _, c := range acct.Password {
		if !strings.ContainsRune(passwordAlphabet, c) {
			t.Errorf("password has %q, outside the alphabet", c)
		}
	}
	users, err := auth.LoadUsers(opts.UsersFile)
	if err != nil {
		t.Fatal(err)
	}
	if !users.Verify("demo", acct.Password) {
		t.Error("the printed password does not log in")
	}
	if fi, err := os.Stat(opts.UsersFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("users file: %v %v", fi, err)
	}

	// Layout: INBOX plus three Maildir++ folders, each with cur/new/tmp.
	mdir := filepath.Join(opts.MaildirRoot, "demo", "Maildir")
	if acct.Maildir != mdir {
		t.Errorf("Maildir %q, want %q", acct.Maildir, mdir)
	}
	count := map[string]int{}
	for _, f := range []string{"", ".Sent", ".Drafts", ".Trash"} {
		for _, sub := range []string{"cur", "new", "tmp"} {
			ents, err := os.ReadDir(filepath.Join(mdir, f, sub))
			if err != nil {
				t.Fatal(err)
			}
			if sub == "tmp" && len(ents) != 0 {
				t.Errorf("%s/tmp not empty: %v", f, ents)
			}
			for _, e := range ents {
				m := maildirName.FindStringSubmatch(e.Name())
				if m == nil {
					t.Errorf("bad Maildir name %s/%s/%s", f, sub, e.Name())
					continue
				}
				if (sub == "new") != (m[2] == "") {
					t.Errorf("%s/%s/%s: info part in the wrong directory", f, sub, e.Name())
				}
				fi, _ := e.Info()
				if strconv.FormatInt(fi.Size(), 10) != m[1] {
					t.Errorf("%s: S=%s but size %d", e.Name(), m[1], fi.Size())
				}
				count[f]++
			}
		}
		if f != "" {
			if _, err := os.Stat(filepath.Join(mdir, f, "maildirfolder")); err != nil {
				t.Errorf("%s: no maildirfolder marker", f)
			}
		}
	}
	if want := map[string]int{"": 9, ".Sent": 1, ".Drafts": 1}; count[""] != want[""] || count[".Sent"] != want[".Sent"] || count[".Drafts"] != want[".Drafts"] || count[".Trash"] != 0 {
		t.Errorf("messages per folder %v, want %v", count, want)
	}
	if _, err := os.Stat(mdir + ".seeding"); !os.IsNotExist(err) {
		t.Error("staging directory left behind")
	}

	// Idempotent: a second run prints nothing, changes nothing.
	before := snapshot(t, opts.MaildirRoot, filepath.Dir(opts.UsersFile))
	again, err := Seed(opts)
	if err != nil || again != nil {
		t.Fatalf("second Seed: %+v, %v; want nil, nil", again, err)
	}
	after := snapshot(t, opts.MaildirRoot, filepath.Dir(opts.UsersFile))
	if len(before) != len(after) {
		t.Errorf("second Seed changed the file set: %d → %d files", len(before), len(after))
	}
	for p, v := range before {
		if after[p] != v {
			t.Errorf("second Seed changed %s: %s → %s", p, v, after[p])
		}
	}
}

// TestSeededMailIsServed opens the seeded Maildir with the real backend
// and checks what a client will see: folders, decoded subjects in every
// charset, and the oversized legacy message.
func TestSeededMailIsServed(t *testing.T) {
	opts := seedOpts(t)
	if _, err := Seed(opts); err != nil {
		t.Fatal(err)
	}
	st, err := maildir.Open(maildir.Options{Root: opts.MaildirRoot, IndexDir: filepath.Join(t.TempDir(), "index"), Logger: opts.Logger})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	mb, err := st.Mailbox(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	fl, err := mb.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range fl {
		paths = append(paths, f.Path)
	}
	for _, want := range []string{"INBOX", "Sent", "Drafts", "Trash"} {
		if !contains(paths, want) {
			t.Errorf("folder %s missing from %v", want, paths)
		}
	}
	msgs, err := mb.List(ctx, mailbox.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	subjects := map[string]mailbox.Message{}
	for _, m := range msgs {
		subjects[m.Envelope.Subject] = m
	}
	for _, want := range []string{
		"Welcome to davmail",
		"Grüße aus München – Protokoll 📎",
		"Récapitulatif de la réunion",
		"Отчёт за первый квартал",
		"Your order #40213 has shipped",
		"Q1 figures and the floor plan",
		"Lunch on Thursday?",
		"Re: Lunch on Thursday?",
		"Legacy scan archive (oversized)",
	} {
		if _, ok := subjects[want]; !ok {
			t.Errorf("INBOX lacks %q; has %v", want, keys(subjects))
		}
	}
	if legacy := subjects["Legacy scan archive (oversized)"]; legacy.Size != legacyMessageSize(opts.legacySize) {
		t.Errorf("legacy message is %d bytes, want %d", legacy.Size, legacyMessageSize(opts.legacySize))
	}
	if m := subjects["Q1 figures and the floor plan"]; m.Flags&mailbox.FlagFlagged == 0 || !m.Envelope.HasAttachments {
		t.Errorf("attachment message: flags %v, attachments %v", m.Flags, m.Envelope.HasAttachments)
	}
	if m := subjects["Récapitulatif de la réunion"]; m.Flags&mailbox.FlagSeen != 0 {
		t.Error("the message in new/ is marked seen")
	}
	if m := subjects["Welcome to davmail"]; m.InternalDate.Year() != 2024 {
		t.Errorf("welcome InternalDate %v, want its Date header (2024)", m.InternalDate)
	}
}

// legacyMessageSize is the size writeLegacy produces for an attachment of
// raw bytes: header, base64 in 76-character lines, trailer.
func legacyMessageSize(raw int64) int64 {
	lines := (raw + 56) / 57
	full := raw / 57
	enc := full*76 + int64(base64.StdEncoding.EncodedLen(int(raw%57)))
	return int64(len(legacyHeader)+len(legacyTrailer)) + enc + lines - 1
}

// TestLegacySize checks that the real legacy message (generating it takes
// tens of seconds under -race, so its size is computed, and the formula
// checked against generated messages) is over the default
// max-message-size and under the default max-response-size.
func TestLegacySize(t *testing.T) {
	for _, raw := range []int64{1, 56, 57, 58, 57 * 1024, 57*1024 + 1, 1<<20 + 13} {
		n, err := countingWrite(func(w io.Writer) error { return writeLegacy(w, raw) })
		if err != nil {
			t.Fatal(err)
		}
		if n != legacyMessageSize(raw) {
			t.Errorf("raw %d: wrote %d bytes, formula says %d", raw, n, legacyMessageSize(raw))
		}
	}
	size := legacyMessageSize(legacyRaw)
	if size <= dav.DefaultMaxMessageSize || size >= dav.DefaultMaxResponseSize {
		t.Errorf("legacy message is %d bytes; want between max-message-size %d and max-response-size %d",
			size, dav.DefaultMaxMessageSize, dav.DefaultMaxResponseSize)
	}
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

func countingWrite(f func(io.Writer) error) (int64, error) {
	c := &counter{}
	err := f(c)
	return c.n, err
}

// TestLegacyMessage parses a generated message and checks the
// attachment decodes to exactly the PRNG stream. The size is not a
// multiple of the 57-byte line, to cover the short last line; the real
// size is checked in TestSeededMailIsServed.
func TestLegacyMessage(t *testing.T) {
	const legacyRaw = 1<<20 + 13
	var buf bytes.Buffer
	if err := writeLegacy(&buf, legacyRaw); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(buf.String(), "\n") {
		if len(line) > 76 {
			t.Fatalf("line %d is %d characters, over RFC 2045's 76", i+1, len(line))
		}
	}
	ent, err := message.Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	mr := ent.MultipartReader()
	if mr == nil {
		t.Fatal("not multipart")
	}
	var parts int
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		parts++
		if parts == 2 {
			_, params, _ := p.Header.ContentDisposition()
			if params["filename"] != "scan-archive-2019.bin" {
				t.Errorf("filename %q", params["filename"])
			}
			h := sha256.New()
			n, err := io.Copy(h, p.Body)
			if err != nil {
				t.Fatal(err)
			}
			if n != legacyRaw {
				t.Errorf("attachment decodes to %d bytes, want %d", n, legacyRaw)
			}
			want := sha256.New()
			io.Copy(want, io.LimitReader(mrand.NewChaCha8(legacySeed), legacyRaw))
			if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
				t.Error("attachment is not the deterministic PRNG stream")
			}
		}
	}
	if parts != 2 {
		t.Errorf("%d parts, want 2", parts)
	}
	if !strings.HasSuffix(buf.String(), "--legacy-boundary-2019--\n") {
		t.Error("no closing boundary")
	}
	// Sanity: the base64 body has no stray characters.
	body := buf.String()[len(legacyHeader) : buf.Len()-len(legacyTrailer)]
	if _, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(body, "\n", "")); err != nil {
		t.Errorf("attachment base64: %v", err)
	}
}

// TestEmbeddedMessages checks every embedded message parses and has the
// envelope a client needs.
func TestEmbeddedMessages(t *testing.T) {
	ents, err := mailFS.ReadDir("mail")
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(seedMessages) {
		t.Errorf("%d embedded files, %d placed in seedMessages", len(ents), len(seedMessages))
	}
	for _, m := range seedMessages {
		data, err := mailFS.ReadFile("mail/" + m.file)
		if err != nil {
			t.Fatal(err)
		}
		env, err := convert.ScanEnvelope(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if env.Subject == "" || env.From == "" || env.MessageID == "" || env.Date.IsZero() {
			t.Errorf("%s: incomplete envelope %+v", m.file, env)
		}
		if strings.ContainsRune(env.Subject+env.From, '\uFFFD') {
			t.Errorf("%s: undecodable subject or sender %q / %q", m.file, env.Subject, env.From)
		}
	}
}

func TestSeedSkipsWhenUsersExist(t *testing.T) {
	opts := seedOpts(t)
	if err := auth.AddUser(opts.UsersFile, "alice", "pw", "", auth.Cost(bcrypt.MinCost)); err != nil {
		t.Fatal(err)
	}
	acct, err := Seed(opts)
	if err != nil || acct != nil {
		t.Fatalf("Seed with users: %+v, %v", acct, err)
	}
	if _, err := os.Stat(filepath.Join(opts.MaildirRoot, "demo")); !os.IsNotExist(err) {
		t.Error("demo mailbox created although users exist")
	}
}

func TestSeedRecoversFromCrash(t *testing.T) {
	opts := seedOpts(t)
	// A crash mid-seed leaves a staging directory with partial content.
	stage := filepath.Join(opts.MaildirRoot, "demo", "Maildir.seeding")
	if err := os.MkdirAll(filepath.Join(stage, "cur"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stage, "cur", "junk"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	acct, err := Seed(opts)
	if err != nil || acct == nil {
		t.Fatalf("Seed after crash: %v, %v", acct, err)
	}
	if _, err := os.Stat(filepath.Join(acct.Maildir, "cur", "junk")); !os.IsNotExist(err) {
		t.Error("partial staging content ended up in the mailbox")
	}

	// A crash after the Maildir but before the user: the mail is kept and
	// only the user is added.
	opts2 := seedOpts(t)
	if _, err := Seed(opts2); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(opts2.UsersFile); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, opts2.MaildirRoot)
	acct, err = Seed(opts2)
	if err != nil || acct == nil {
		t.Fatalf("Seed with mail but no user: %v, %v", acct, err)
	}
	after := snapshot(t, opts2.MaildirRoot)
	if len(before) != len(after) {
		t.Error("existing demo mail was rewritten")
	}
}

func TestURLAndBanner(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080/exchange/demo/",
		":8080":          "http://127.0.0.1:8080/exchange/demo/",
		"0.0.0.0:9":      "http://127.0.0.1:9/exchange/demo/",
		"[::]:9":         "http://127.0.0.1:9/exchange/demo/",
		"[::1]:9":        "http://[::1]:9/exchange/demo/",
		"mail.example:1": "http://mail.example:1/exchange/demo/",
	} {
		if got := URL(addr); got != want {
			t.Errorf("URL(%q) = %q, want %q", addr, got, want)
		}
	}
	var b bytes.Buffer
	PrintBanner(&b, &Account{User: "demo", Password: "Secret123secret4", UsersFile: "/d/users"}, URL("127.0.0.1:8080"))
	for _, want := range []string{"http://127.0.0.1:8080/exchange/demo/", "user:     demo", "password: Secret123secret4", "cadaver ", "rclone ", "/d/users"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, b.String())
		}
	}
}

func TestPasswordRandom(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p, err := password()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != passwordLen || seen[p] {
			t.Fatalf("password %q: wrong length or repeated", p)
		}
		seen[p] = true
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func keys(m map[string]mailbox.Message) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
