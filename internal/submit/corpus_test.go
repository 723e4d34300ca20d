package submit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCorpus prepares every message of a small mkcorpus corpus (real
// MUA-shaped messages in many charsets, plus the malformed catalog) as a
// submission by its own From address: well-formed messages must pass with
// their body unchanged, malformed ones must pass or fail with a typed
// client error, never anything else.
func TestCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("corpus test skipped in -short mode")
	}
	gen := os.Getenv("DAVMAIL_MKCORPUS")
	if gen == "" {
		gen = filepath.Join("..", "..", "..", "shared", "tools", "mkcorpus")
	}
	if _, err := os.Stat(filepath.Join(gen, "main.go")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mkcorpus not found at %s (set DAVMAIL_MKCORPUS): %v", gen, err)
		}
		t.Skipf("mkcorpus not found at %s (set DAVMAIL_MKCORPUS)", gen)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	out := t.TempDir()
	cmd := exec.CommandContext(t.Context(), goTool, "run", ".", "-out", out, "-messages", "12", "-large", "1", "-large-size", "256KiB")
	cmd.Dir = gen
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkcorpus: %v\n%s", err, b)
	}
	mf, err := os.Open(filepath.Join(out, "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	sc := bufio.NewScanner(mf)
	sc.Buffer(nil, 1<<20)
	ok, refused := 0, 0
	for sc.Scan() {
		var e struct {
			File, Malformed string
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(out, e.File))
		if err != nil {
			t.Fatal(err)
		}
		acct := Account{User: "u", Addresses: []string{"nobody@example.invalid"}}
		// The account is the message's own From (the manifest's from is
		// the case name for malformed messages).
		if m, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
			if a, err := mail.ParseAddress(m.Header.Get("From")); err == nil {
				acct.Addresses = []string{a.Address}
			}
		}
		var spool bytes.Buffer
		p := Preparer{MaxMessageSize: -1}
		env, err := p.RFC822(bytes.NewReader(raw), acct, &spool)
		if err != nil && e.Malformed == "" {
			t.Errorf("%s: %v", e.File, err)
		}
		checkPrepared(t, acct, DefaultMaxRecipients, raw, raw, env, spool.Bytes(), err)
		if err == nil {
			ok++
		}

		// The same message as message/rfc821, so that the malformed ones
		// (which have no To) go through too.
		spool.Reset()
		in := append([]byte("RCPT TO:<t@x.test>\r\n\r\n"), raw...)
		env, err = p.RFC821(bytes.NewReader(in), acct, &spool)
		if err != nil {
			t.Logf("%s %s: refused as rfc821: %v", e.File, e.Malformed, err)
			refused++
		} else if len(env.Recipients) != 1 {
			t.Errorf("%s: rfc821 recipients %v", e.File, env.Recipients)
		}
		checkPrepared(t, acct, DefaultMaxRecipients, in, raw, env, spool.Bytes(), err)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages prepared as rfc822; %d refused as rfc821", ok, refused)
	if ok < 24 || refused > 1 {
		t.Errorf("%d messages prepared (want >= 24), %d refused as rfc821 (want at most the empty file)", ok, refused)
	}
}
