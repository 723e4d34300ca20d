//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/davmail/davmail/internal/config"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// davmailJar is where Debian's davmail-server package installs DavMail;
// /usr/bin/davmail-server runs `java -jar` on it with -server.
const davmailJar = "/usr/share/davmail/davmail.jar"

// davmailRig is the whole chain of a DavMail end-to-end run: the gateway
// on one mailbox backend, relaying to Postfix, which delivers into the
// Maildirs that backend serves, and DavMail in front of the gateway.
// startDavMailRig builds it on the Maildir backend, startIMAPDavMailRig
// (davmail_imap_test.go) on the IMAP backend in front of Dovecot;
// runDavMailSteps drives either.
type davmailRig struct {
	ts *testServer
	// mailRoot holds each user's Maildir (<mailRoot>/<user>/Maildir) as
	// the backend reads it and Postfix delivers into it: the gateway's
	// --maildir-root, or Dovecot's mail root.
	mailRoot string
	// manifest is the corpus manifest with each message's size as the
	// backend serves it (the file's size on Maildir, its CRLF form
	// through Dovecot: see imapForm).
	manifest []manifestEntry
	// deliveryUID owns the files Postfix's virtual(8) delivers: main.cf's
	// virtual_uid_maps, which must be the uid the backend reads mail as.
	deliveryUID int
	pf          *postfixServer
	dm          *davmailProc
}

// maildir is a user's Maildir as the backend serves it.
func (r *davmailRig) maildir(user string) string {
	return filepath.Join(r.mailRoot, user, "Maildir")
}

// TestDavMail drives DavMail 6.0.1 (Debian davmail-server, WebDav mode,
// configured per exchange-webdav.md §8) through its IMAP and SMTP
// listeners against the gateway on the Maildir backend (runDavMailSteps;
// TestIMAPDavMail runs the same steps on the IMAP backend).
func TestDavMail(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM and Postfix: not in -short")
	}
	runDavMailSteps(t, startDavMailRig(t))
}

// runDavMailSteps is the DavMail suite, written once for both backends:
// it drives DavMail through its IMAP and SMTP listeners and checks every
// effect on the gateway itself (WebDAV PROPFIND, and the Maildir on disk
// that the backend serves) rather than trusting DavMail's answers. Body
// downloads are not tested: DavMail 6.0.1 cannot GET a message in WebDav
// mode (§0.3 #9); the dav transcript tests cover them.
func runDavMailSteps(t *testing.T, rig *davmailRig) {
	inbox := entriesIn(rig.manifest, "alice", "INBOX")
	c := rig.imap(t, "alice", "main")
	var msgs []*imapclient.FetchMessageBuffer // INBOX at the first SELECT

	t.Run("LoginRefused", func(t *testing.T) {
		conn := rig.dialIMAP(t, "bad-login")
		err := conn.Login("alice", "not-"+rig.ts.Passwords["alice"]).Wait()
		if err == nil {
			t.Fatal("LOGIN with a wrong password succeeded")
		}
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo {
			t.Fatalf("LOGIN with a wrong password: %v, want a NO", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		want, err := corpusFolders(rig.maildir("alice"))
		if err != nil {
			t.Fatal(err)
		}
		got := listNames(t, c)
		if !slices.Equal(got, want) {
			t.Fatalf("LIST \"\" *:\n got  %q\n want %q (the corpus's folders)", got, want)
		}
	})

	t.Run("SelectFetch", func(t *testing.T) {
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if int(sel.NumMessages) != len(inbox) {
			t.Fatalf("SELECT INBOX: %d messages, the corpus has %d", sel.NumMessages, len(inbox))
		}
		msgs = fetchAll(t, c, len(inbox))
		// Approximate sizes are PR_MESSAGE_SIZE, the exact size the
		// backend serves: the sizes with the flags the corpus sets
		// (Maildir S, F, R) must be the corpus's.
		var got, want []string
		for _, m := range msgs {
			got = append(got, fmt.Sprintf("%d/%v/%v/%v", m.RFC822Size, slices.Contains(m.Flags, imap.FlagSeen),
				slices.Contains(m.Flags, imap.FlagFlagged), slices.Contains(m.Flags, imap.FlagAnswered)))
		}
		for _, e := range inbox {
			want = append(want, fmt.Sprintf("%d/%v/%v/%v", e.Size, e.seen(),
				strings.Contains(e.Flags, "F"), strings.Contains(e.Flags, "R")))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("FETCH 1:* (RFC822.SIZE FLAGS) as size/seen/flagged/answered:\n got  %v\n want %v", got, want)
		}
		for i, m := range msgs {
			if m.UID == 0 || (i > 0 && m.UID <= msgs[i-1].UID) {
				t.Fatalf("UIDs not positive and increasing with sequence numbers: %d after %d", m.UID, msgs[max(i-1, 0)].UID)
			}
		}
	})
	needMsgs := func(t *testing.T) {
		t.Helper()
		if len(msgs) == 0 {
			t.Fatal("no INBOX listing: the SelectFetch step failed")
		}
	}
	// Messages whose size is unique in INBOX: the tests find them again
	// on the gateway by size. Each step takes its own.
	pick := uniqueSized(msgs, inbox)

	t.Run("HeaderFields", func(t *testing.T) {
		needMsgs(t)
		m := pick(t, nil)
		e := entryOfSize(inbox, m.RFC822Size)
		// DavMail answers header fetches from PR_TRANSPORT_MESSAGE_HEADERS
		// (x007d001f) and, without it, GETs the whole message, which
		// 6.0.1 cannot do: the connection dies. The gateway must serve it.
		if !rig.hasTransportHeaders(t, "alice", "INBOX") {
			t.Fatal("PROPFIND of a message answers x007d001f (PR_TRANSPORT_MESSAGE_HEADERS, exchange-webdav.md §4.3, §7.2, §11 #12) with 404: DavMail would fall back to a GET of the body, which 6.0.1 cannot do")
		}
		// Named fields, unquoted as mail clients send them, over a raw
		// connection: DavMail 6.0.1 matches quoted names ("Message-ID",
		// which go-imap sends) against nothing and answers an empty
		// section; and BODY.PEEK[HEADER] makes it GET the whole message.
		raw := rig.rawIMAP(t, "alice")
		raw.cmd(t, "SELECT INBOX")
		out := raw.cmd(t, fmt.Sprintf("UID FETCH %d (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)])", m.UID))
		if !strings.Contains(out, e.MessageID) {
			t.Errorf("BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)] of UID %d:\n%s\nwant Message-ID %s", m.UID, out, e.MessageID)
		}
		if strings.Contains(out, "\nFrom:") || strings.Contains(out, "\nDate:") {
			t.Errorf("BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)] of UID %d returned other fields:\n%s", m.UID, out)
		}
	})

	t.Run("Search", func(t *testing.T) {
		needMsgs(t)
		var wantUnseen []imap.UID
		for _, m := range msgs {
			if !slices.Contains(m.Flags, imap.FlagSeen) {
				wantUnseen = append(wantUnseen, m.UID)
			}
		}
		nUnseen := 0
		for _, e := range inbox {
			if !e.seen() {
				nUnseen++
			}
		}
		if len(wantUnseen) != nUnseen || nUnseen == 0 || nUnseen == len(inbox) {
			t.Fatalf("corpus INBOX has %d unseen of %d, FETCH said %d: need some of each", nUnseen, len(inbox), len(wantUnseen))
		}
		got := uidSearch(t, c, &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}})
		if !slices.Equal(got, wantUnseen) {
			t.Fatalf("UID SEARCH UNSEEN = %v, want %v", got, wantUnseen)
		}

		word, n := searchWord(inbox)
		if word == "" {
			t.Fatal("no subject word in the corpus INBOX to search for")
		}
		got = uidSearch(t, c, &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: word}}})
		if len(got) != n {
			t.Fatalf("UID SEARCH SUBJECT %q: %d hits %v, the corpus has %d subjects containing it", word, len(got), got, n)
		}
	})

	t.Run("Store", func(t *testing.T) {
		needMsgs(t)
		m := pick(t, func(m *imapclient.FetchMessageBuffer) bool { return slices.Contains(m.Flags, imap.FlagSeen) })
		uid := m.UID
		if _, err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect(); err != nil {
			t.Fatalf("UID STORE %d -FLAGS (\\Seen): %v", uid, err)
		}
		res, err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect()
		if err != nil {
			t.Fatalf("UID STORE %d +FLAGS (\\Flagged): %v", uid, err)
		}
		if len(res) != 1 || !slices.Contains(res[0].Flags, imap.FlagFlagged) || slices.Contains(res[0].Flags, imap.FlagSeen) {
			t.Fatalf("UID STORE answered %+v, want \\Flagged without \\Seen", res)
		}
		// On the gateway: urn:schemas:httpmail:read is now 0.
		e := rig.entryBySize(t, "alice", "INBOX", m.RFC822Size)
		if read, err := parseBool(e.Props[propRead].Text); err != nil || read {
			t.Fatalf("gateway: %s read = %q after -FLAGS \\Seen", e.Href, e.Props[propRead].Text)
		}
		// A new DavMail session reloads the folder from the gateway.
		fresh := rig.imap(t, "alice", "store-check")
		if _, err := fresh.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		bufs, err := fresh.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{Flags: true, UID: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		if len(bufs) != 1 || !slices.Contains(bufs[0].Flags, imap.FlagFlagged) || slices.Contains(bufs[0].Flags, imap.FlagSeen) {
			t.Fatalf("a new session sees UID %d as %+v, want \\Flagged without \\Seen", uid, bufs)
		}
	})

	t.Run("Copy", func(t *testing.T) {
		needMsgs(t)
		m := pick(t, nil)
		before := rig.sizes(t, "alice", "Drafts")
		if _, err := c.Copy(imap.UIDSetNum(m.UID), "Drafts").Wait(); err != nil {
			t.Fatalf("UID COPY %d Drafts: %v", m.UID, err)
		}
		rig.wantSizes(t, "alice", "Drafts", append(before, m.RFC822Size))
		rig.wantPresent(t, "alice", "INBOX", m.RFC822Size, true)
	})

	t.Run("Move", func(t *testing.T) {
		needMsgs(t)
		if !c.Caps().Has(imap.CapMove) {
			t.Fatal("DavMail does not announce MOVE: the client would fall back to COPY+EXPUNGE")
		}
		m := pick(t, nil)
		before := rig.sizes(t, "alice", "Trash")
		if _, err := c.Move(imap.UIDSetNum(m.UID), "Trash").Wait(); err != nil {
			t.Fatalf("UID MOVE %d Trash: %v", m.UID, err)
		}
		rig.wantSizes(t, "alice", "Trash", append(before, m.RFC822Size))
		rig.wantPresent(t, "alice", "INBOX", m.RFC822Size, false)
	})

	t.Run("Expunge", func(t *testing.T) {
		needMsgs(t)
		m := pick(t, nil)
		if _, err := c.Store(imap.UIDSetNum(m.UID), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
			t.Fatalf("UID STORE %d +FLAGS.SILENT (\\Deleted): %v", m.UID, err)
		}
		if _, err := c.Expunge().Collect(); err != nil {
			t.Fatalf("EXPUNGE: %v", err)
		}
		rig.wantPresent(t, "alice", "INBOX", m.RFC822Size, false)
		trash := rig.sizes(t, "alice", "Trash")
		if slices.Contains(trash, m.RFC822Size) {
			t.Fatalf("the expunged message (%d bytes) went to Trash: an EXPUNGE deletes", m.RFC822Size)
		}
		sel, err := rig.imap(t, "alice", "expunge-check").Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		// The corpus, less the MOVE and this EXPUNGE.
		if want := len(inbox) - 2; int(sel.NumMessages) != want {
			t.Errorf("a new session sees %d INBOX messages, want %d", sel.NumMessages, want)
		}
	})

	t.Run("Append", func(t *testing.T) {
		subject := "davmail e2e append " + randomHex(t, 6)
		msg := mailMessage("alice@"+rig.pf.Domain, "alice@"+rig.pf.Domain, subject, "appended through DavMail's IMAP APPEND")
		// Its own connection: DavMail drops the connection after a failed
		// APPEND.
		ac := rig.imap(t, "alice", "append")
		cmd := ac.Append("Drafts", int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
		if _, err := cmd.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			// DavMail's APPEND is PROPPATCH <Drafts>/<uuid>.EML (creates
			// the item), then PUT of the MIME there, which must answer
			// 200 or 201 (exchange-webdav.md §11 #17). The PROPPATCH
			// must answer 207 on every backend, the IMAP one included,
			// whose upstream refuses to store an empty message.
			t.Fatalf("APPEND Drafts: %v", err)
		}
		e := rig.waitEntry(t, "alice", "Drafts", subject, 0)
		if n := e.Props[propContentLength].Text; n != fmt.Sprint(len(msg)) {
			t.Errorf("gateway: appended message is %s bytes, DavMail was given %d", n, len(msg))
		}
		if read, err := parseBool(e.Props[propRead].Text); err != nil || !read {
			t.Errorf("gateway: appended message read = %q, want 1 (APPEND with \\Seen)", e.Props[propRead].Text)
		}
	})

	t.Run("Folders", func(t *testing.T) {
		// A space and a non-ASCII letter: both travel percent-encoded in
		// DavMail's MKCOL/MOVE and modified UTF-7 on disk.
		const name, child, renamed = "E2E Folder ä", "E2E Folder ä/Child", "E2E Renamed ä"
		mdir := rig.maildir("alice")
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatalf("CREATE %q: %v", name, err)
		}
		if err := c.Create(child, nil).Wait(); err != nil {
			t.Fatalf("CREATE %q: %v", child, err)
		}
		wantFolders(t, c, mdir, []string{name, child}, nil)
		if err := c.Rename(name, renamed, nil).Wait(); err != nil {
			t.Fatalf("RENAME %q %q: %v", name, renamed, err)
		}
		wantFolders(t, c, mdir, []string{renamed, renamed + "/Child"}, []string{name, child})
		if err := c.Delete(renamed + "/Child").Wait(); err != nil {
			t.Fatalf("DELETE %q: %v", renamed+"/Child", err)
		}
		if err := c.Delete(renamed).Wait(); err != nil {
			t.Fatalf("DELETE %q: %v", renamed, err)
		}
		wantFolders(t, c, mdir, nil, []string{renamed, renamed + "/Child"})
	})

	t.Run("SMTPSendToOtherUser", func(t *testing.T) {
		// DavMail SMTP → PROPPATCH/PUT/MOVE to ##DavMailSubmissionURI## on
		// the gateway → the gateway's queue → Postfix (deploy/postfix) →
		// bob's Maildir (the gateway's, or Dovecot's) → the backend →
		// PROPFIND as bob.
		subject := "davmail e2e smtp " + randomHex(t, 6)
		from, to := "alice@"+rig.pf.Domain, "bob@"+rig.pf.Domain
		msg := mailMessage(from, to, subject, "sent through DavMail's SMTP, the gateway and Postfix")
		msgID := messageID(msg)
		sentBefore := rig.sizes(t, "alice", "Sent")
		if !rig.hasRootProp(t, "alice", sendmsgProp) {
			t.Fatal("PROPFIND of the mailbox root answers urn:schemas:httpmail:sendmsg with 404 (§1.4): DavMail would MOVE the draft to /exchange/alice/null")
		}
		if err := rig.sendSMTP(t, "alice", from, []string{to}, msg); err != nil {
			// DavMail's send is PROPPATCH <Drafts>/<uuid>.EML, PUT of the
			// MIME there, then MOVE to the sendmsg URL (§6.5, §11 #18):
			// the PROPPATCH creates the item, as in the Append step.
			t.Fatalf("SMTP through DavMail: %v", err)
		}
		// 60 s: relay and delivery take well under a second; the queue's
		// first retry, should Postfix refuse once, comes after a minute
		// and would be a failure worth seeing here.
		e := rig.waitEntry(t, "bob", "INBOX", subject, 60*time.Second)
		status, body := rig.ts.client(t, "bob").getBytes(t, e.Href)
		if status != http.StatusOK {
			t.Fatalf("GET %s as bob: %d", e.Href, status)
		}
		hdr := headerBlock(body)
		for _, want := range []string{"Message-ID: " + msgID, "(Postfix)", "Subject: " + subject, from} {
			if !strings.Contains(hdr, want) {
				t.Errorf("the message in bob's Inbox lacks %q in its header:\n%s", want, hdr)
			}
		}
		if !strings.Contains(string(body), "sent through DavMail's SMTP") {
			t.Errorf("the message in bob's Inbox lost its body:\n%s", clip(body, 2000))
		}
		// Delivered by Postfix's virtual(8), as the virtual uid, into the
		// Maildir the backend serves: Postfix logs the delivery of this
		// Message-ID to maildir, and the file is there, owned by that uid.
		if err := postfixDelivered(rig.pf.Log, msgID, to); err != nil {
			t.Error(err)
		}
		f, err := findMaildirFile(rig.maildir("bob"), msgID)
		if err != nil {
			t.Fatal(err)
		}
		if uid, ok := fileUID(f); !ok || uid != rig.deliveryUID {
			t.Errorf("%s is owned by uid %d, want Postfix's virtual uid %d", f, uid, rig.deliveryUID)
		}
		// Saveinsent (DavMail's default): a copy in alice's Sent Items.
		if got := rig.sizes(t, "alice", "Sent"); len(got) != len(sentBefore)+1 {
			t.Errorf("alice's Sent has %d messages after sending, had %d: no copy saved", len(got), len(sentBefore))
		}
		rig.waitEntry(t, "alice", "Sent", subject, 0)
	})
}

// startDavMailRig generates the corpus, starts Postfix on it, the gateway
// (Maildir backend) relaying to Postfix, and DavMail pointed at the
// gateway.
func startDavMailRig(t *testing.T) *davmailRig {
	t.Helper()
	java := davmailJava(t)
	mk := mkcorpusBinary(t)
	// Not t.TempDir: Postfix's virtual(8) (uid 5000) must reach the
	// Maildirs, and t.TempDir's parents are 0700.
	base, err := os.MkdirTemp("", "davmail-e2e-davmail-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	served := filepath.Join(base, "maildir")
	args := append([]string{"-out", served, "-users", strings.Join(testUsers, ",")}, smallCorpus...)
	if r := runTool(t, toolOpts{Timeout: 2 * time.Minute}, mk, args...); r.Err != nil {
		t.Fatalf("mkcorpus %s: %v\n%s%s", strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	corpus := filepath.Join(base, "corpus")
	if err := linkTree(served, corpus); err != nil {
		t.Fatalf("linking the corpus: %v", err)
	}
	pf := startPostfix(t, served, testUsers)
	ts := startRelayingGateway(t, base, served, corpus, pf)
	dm := startDavMail(t, java, ts.URL+"/exchange/", base)
	return &davmailRig{
		ts: ts, mailRoot: served, manifest: readManifest(t, ts.Corpus),
		deliveryUID: postfixUID, pf: pf, dm: dm,
	}
}

// davmailJava checks that DavMail (Debian davmail-server) and java are
// installed and returns java's path; the test skips without them, or
// fails under CI=true.
func davmailJava(t *testing.T) string {
	t.Helper()
	needTool(t, "davmail-server", "davmail-server")
	java := needTool(t, "java", "davmail-server")
	if _, err := os.Stat(davmailJar); err != nil {
		if inCI() {
			t.Fatalf("%s missing but CI=true: apt-get install davmail-server", davmailJar)
		}
		t.Skipf("%s missing: apt-get install davmail-server", davmailJar)
	}
	return java
}

// startRelayingGateway starts the gateway as startServer does, with the
// relay settings startServer has no option for: --relay to Postfix without
// TLS (loopback) and --mail-domain from the shipped main.cf.
func startRelayingGateway(t *testing.T, base, served, corpus string, pf *postfixServer) *testServer {
	t.Helper()
	return launchServer(t, base, served, corpus, serverOptions{Configure: func(c *config.Config) {
		c.Relay, c.RelayTLS, c.MailDomain = pf.Addr, "none", pf.Domain
	}})
}

// davmailProc is a running DavMail.
type davmailProc struct {
	IMAPAddr, SMTPAddr string
	Log                string // davmail.logFilePath
}

// startDavMail writes davmail.properties from testdata/davmail and runs
// DavMail headless (`java -jar davmail.jar -server FILE`, as
// /usr/bin/davmail-server does) until the test ends. Its log is printed
// when the test fails; DAVMAIL_E2E_WIRE=1 adds the HTTP wire dump.
func startDavMail(t *testing.T, java, url, base string) *davmailProc {
	t.Helper()
	dir := filepath.Join(base, "davmail")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "davmail", "davmail.properties.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	imapAddr, smtpAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	wire := "WARN"
	if os.Getenv("DAVMAIL_E2E_WIRE") == "1" {
		wire = "DEBUG"
	}
	dm := &davmailProc{IMAPAddr: imapAddr, SMTPAddr: smtpAddr, Log: filepath.Join(dir, "davmail.log")}
	var props bytes.Buffer
	if err := tmpl.Execute(&props, map[string]string{
		"URL": url, "IMAPPort": port(imapAddr), "SMTPPort": port(smtpAddr),
		"LogFile": dm.Log, "WireLevel": wire,
	}); err != nil {
		t.Fatal(err)
	}
	propsFile := filepath.Join(dir, "davmail.properties")
	if err := os.WriteFile(propsFile, props.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The properties file is the last argument (§8); headless: no GUI.
	ctx, stop := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, java, "-Djava.awt.headless=true", "-jar", davmailJar, "-server", propsFile)
	ownProcessGroup(cmd)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		stop()
		out.Close()
		t.Fatalf("starting DavMail: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); out.Close() }()
	t.Cleanup(func() {
		stop() // SIGKILL to the group: DavMail holds no state worth a clean stop
		select {
		case <-exited:
		case <-time.After(10 * time.Second): // a killed JVM is reaped at once
			t.Errorf("DavMail (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("DavMail stdout:\n%s", tailFile(out.Name(), 16<<10))
			t.Logf("DavMail log (%s):\n%s", dm.Log, tailFile(dm.Log, 256<<10))
		}
	})
	// 90 s: the JVM starts in a few seconds; a loaded CI runner is slower.
	// Each greeting costs DavMail a GET of the OWA URL (§11 #1).
	if err := waitIMAPGreeting(imapAddr, 90*time.Second, exited); err != nil {
		t.Fatalf("DavMail did not greet on %s: %v\n%s", imapAddr, err, tailFile(out.Name(), 16<<10))
	}
	return dm
}

// waitIMAPGreeting dials addr until an IMAP server greets with "* OK".
func waitIMAPGreeting(addr string, within time.Duration, exited <-chan error) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("the process exited: %v", err)
		default:
		}
		last = imapGreeting(addr)
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	return fmt.Errorf("no greeting within %v: %w", within, last)
}

func imapGreeting(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second)) // DavMail checks the gateway first
	b := make([]byte, 512)
	n, err := conn.Read(b)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(b[:n], []byte("* OK")) {
		return fmt.Errorf("greeting %q", strings.TrimSpace(string(b[:n])))
	}
	_, err = conn.Write([]byte("a LOGOUT\r\n"))
	return err
}

// rawIMAPConn is a hand-driven IMAP connection, for commands whose exact
// spelling matters.
type rawIMAPConn struct {
	conn net.Conn
	r    *bufio.Reader
	n    int // last tag number
	tr   *lockedBuffer
}

// rawIMAP logs in to DavMail as user over a raw connection.
func (r *davmailRig) rawIMAP(t *testing.T, user string) *rawIMAPConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", r.dm.IMAPAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(imapSessionTimeout))
	c := &rawIMAPConn{conn: conn, r: bufio.NewReader(conn), tr: &lockedBuffer{}}
	t.Cleanup(func() {
		conn.Close()
		if t.Failed() {
			t.Logf("raw IMAP transcript (last 16 KiB):\n%s", c.tr.tail(16<<10))
		}
	})
	if line, err := c.r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "* OK") {
		t.Fatalf("IMAP greeting %q: %v", line, err)
	}
	c.cmd(t, fmt.Sprintf("LOGIN %s %s", user, r.ts.Passwords[user]))
	return c
}

// maxRawResponse caps what cmd reads for one command: the commands sent
// this way answer a few KiB.
const maxRawResponse = 1 << 20

// cmd sends one command and returns everything up to and including its
// tagged OK (literals included); anything but OK fails the test.
func (c *rawIMAPConn) cmd(t *testing.T, line string) string {
	t.Helper()
	c.n++
	tag := fmt.Sprintf("R%d", c.n)
	fmt.Fprintf(c.tr, "C: %s %s\r\n", tag, line)
	if _, err := fmt.Fprintf(c.conn, "%s %s\r\n", tag, line); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for out.Len() < maxRawResponse {
		l, err := c.r.ReadString('\n')
		out.WriteString(l)
		c.tr.Write([]byte(l))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		// A literal {n} at the end of a line: n bytes follow.
		if i := strings.LastIndexByte(l, '{'); i >= 0 && strings.HasSuffix(l, "}\r\n") {
			var n int64
			if _, err := fmt.Sscanf(l[i:], "{%d}", &n); err == nil && n >= 0 && n < maxRawResponse {
				b := make([]byte, n)
				if _, err := io.ReadFull(c.r, b); err != nil {
					t.Fatalf("%s: literal: %v", line, err)
				}
				out.Write(b)
				c.tr.Write(b)
				continue
			}
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			if !strings.HasPrefix(rest, "OK") {
				t.Fatalf("%s: %s", line, strings.TrimSpace(rest))
			}
			return out.String()
		}
	}
	t.Fatalf("%s: more than %d bytes without a tagged answer", line, maxRawResponse)
	return ""
}

// imapSessionTimeout bounds one IMAP connection to DavMail, all commands
// included: the whole test needs well under a minute.
const imapSessionTimeout = 5 * time.Minute

// dialIMAP connects to DavMail's IMAP listener; the transcript is printed
// if the test fails.
func (r *davmailRig) dialIMAP(t *testing.T, label string) *imapclient.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", r.dm.IMAPAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(imapSessionTimeout))
	tr := &lockedBuffer{}
	c := imapclient.New(conn, &imapclient.Options{DebugWriter: tr})
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("IMAP transcript %q (last 16 KiB):\n%s", label, tr.tail(16<<10))
		}
	})
	if err := c.WaitGreeting(); err != nil {
		t.Fatalf("IMAP greeting: %v", err)
	}
	return c
}

// imap returns a logged-in IMAP connection to DavMail as user.
func (r *davmailRig) imap(t *testing.T, user, label string) *imapclient.Client {
	t.Helper()
	c := r.dialIMAP(t, label)
	if err := c.Login(user, r.ts.Passwords[user]).Wait(); err != nil {
		t.Fatalf("LOGIN %s through DavMail: %v", user, err)
	}
	return c
}

// sendSMTP sends msg through DavMail's SMTP listener, authenticated as
// user.
func (r *davmailRig) sendSMTP(t *testing.T, user, from string, to []string, msg []byte) error {
	t.Helper()
	conn, err := net.DialTimeout("tcp", r.dm.SMTPAddr, 10*time.Second)
	if err != nil {
		return err
	}
	// Two minutes: DavMail logs in to the gateway and makes four
	// requests; a second or two.
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("e2e.test"); err != nil {
		return err
	}
	if err := c.Auth(sasl.NewPlainClient("", user, r.ts.Passwords[user])); err != nil {
		return fmt.Errorf("AUTH PLAIN: %w", err)
	}
	if err := c.SendMail(from, to, bytes.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

// sizes lists the sizes of the messages in a user's folder, as the gateway
// reports them (PROPFIND Depth 1, getcontentlength), sorted.
func (r *davmailRig) sizes(t *testing.T, user, folder string) []int64 {
	t.Helper()
	var out []int64
	for _, e := range r.messages(t, user, folder) {
		var n int64
		if _, err := fmt.Sscan(e.Props[propContentLength].Text, &n); err != nil {
			t.Fatalf("%s: getcontentlength %q", e.Href, e.Props[propContentLength].Text)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// messages lists a user's folder on the gateway (messages only).
func (r *davmailRig) messages(t *testing.T, user, folder string) []davEntry {
	t.Helper()
	code, entries := r.ts.client(t, user).propfind(t, folderPath(user, folder), "1")
	if code != http.StatusMultiStatus {
		t.Fatalf("PROPFIND %s as %s: %d", folderPath(user, folder), user, code)
	}
	var out []davEntry
	for _, e := range entries {
		if !e.isCollection() {
			out = append(out, e)
		}
	}
	return out
}

// wantSizes checks a folder's message sizes on the gateway.
func (r *davmailRig) wantSizes(t *testing.T, user, folder string, want []int64) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	if got := r.sizes(t, user, folder); !slices.Equal(got, want) {
		t.Fatalf("gateway: %s's %s holds sizes %v, want %v", user, folder, got, want)
	}
}

// wantPresent checks whether a message of that (unique) size is in the
// folder on the gateway.
func (r *davmailRig) wantPresent(t *testing.T, user, folder string, size int64, present bool) {
	t.Helper()
	if got := slices.Contains(r.sizes(t, user, folder), size); got != present {
		t.Fatalf("gateway: a %d-byte message in %s's %s: %v, want %v", size, user, folder, got, present)
	}
}

// entryBySize finds the one message of that size in a folder on the
// gateway.
func (r *davmailRig) entryBySize(t *testing.T, user, folder string, size int64) davEntry {
	t.Helper()
	var found []davEntry
	for _, e := range r.messages(t, user, folder) {
		if e.Props[propContentLength].Text == fmt.Sprint(size) {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("gateway: %d messages of %d bytes in %s's %s, want 1", len(found), size, user, folder)
	}
	return found[0]
}

// waitEntry polls a folder on the gateway until a message with that
// subject shows up, for at most within (0: look once).
func (r *davmailRig) waitEntry(t *testing.T, user, folder, subject string, within time.Duration) davEntry {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, e := range r.messages(t, user, folder) {
			if e.Props[propSubject].Text == subject {
				return e
			}
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("gateway: no message %q in %s's %s after %v", subject, user, folder, within)
		}
		time.Sleep(200 * time.Millisecond) // poll interval
	}
}

// sendmsgProp is the mailbox root's mail submission URI (§1.4).
var sendmsgProp = xml.Name{Space: "urn:schemas:httpmail:", Local: "sendmsg"}

// hasRootProp reports whether a PROPFIND Depth 0 of the user's mailbox
// root answers the property with 200.
func (r *davmailRig) hasRootProp(t *testing.T, user string, prop xml.Name) bool {
	t.Helper()
	body := `<?xml version="1.0"?><a:propfind xmlns:a="DAV:" xmlns:p="` + prop.Space + `"><a:prop><p:` + prop.Local + `/></a:prop></a:propfind>`
	resp := r.ts.client(t, user).do(t, "PROPFIND", folderPath(user, ""), strings.NewReader(body), "Depth", "0", "Content-Type", "text/xml")
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20)) // one property of one folder
	if err != nil || resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("PROPFIND %s of the root: %d %v", prop.Local, resp.StatusCode, err)
	}
	entries, err := parseMultistatus(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := e.Props[prop]; ok {
			return true
		}
	}
	return false
}

// transportHeaders is PR_TRANSPORT_MESSAGE_HEADERS (exchange-webdav.md §4.3).
var transportHeaders = xml.Name{Space: "http://schemas.microsoft.com/mapi/proptag/", Local: "x007d001f"}

// hasTransportHeaders reports whether the gateway serves x007d001f for a
// message of the folder, asked the way DavMail asks: PROPFIND Depth 0 of
// the one message.
func (r *davmailRig) hasTransportHeaders(t *testing.T, user, folder string) bool {
	t.Helper()
	msgs := r.messages(t, user, folder)
	if len(msgs) == 0 {
		t.Fatalf("no message in %s's %s", user, folder)
	}
	const body = `<?xml version="1.0"?><a:propfind xmlns:a="DAV:" xmlns:e="http://schemas.microsoft.com/mapi/proptag/"><a:prop><e:x007d001f/></a:prop></a:propfind>`
	resp := r.ts.client(t, user).do(t, "PROPFIND", msgs[0].Href, strings.NewReader(body), "Depth", "0", "Content-Type", "text/xml")
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20)) // one header block: far less
	if err != nil || resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("PROPFIND x007d001f of %s: %d %v", msgs[0].Href, resp.StatusCode, err)
	}
	entries, err := parseMultistatus(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := e.Props[transportHeaders]; ok {
			return true
		}
	}
	return false
}

// fetchAll fetches FLAGS, UID and RFC822.SIZE of the n messages of the
// selected folder.
func fetchAll(t *testing.T, c *imapclient.Client, n int) []*imapclient.FetchMessageBuffer {
	t.Helper()
	var seq imap.SeqSet
	seq.AddRange(1, uint32(n))
	bufs, err := c.Fetch(seq, &imap.FetchOptions{Flags: true, UID: true, RFC822Size: true}).Collect()
	if err != nil {
		t.Fatalf("FETCH 1:%d (FLAGS UID RFC822.SIZE): %v", n, err)
	}
	if len(bufs) != n {
		t.Fatalf("FETCH 1:%d returned %d messages", n, len(bufs))
	}
	slices.SortFunc(bufs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.SeqNum) - int(b.SeqNum) })
	return bufs
}

// uidSearch runs UID SEARCH and returns the UIDs found, sorted.
func uidSearch(t *testing.T, c *imapclient.Client, crit *imap.SearchCriteria) []imap.UID {
	t.Helper()
	data, err := c.UIDSearch(crit, nil).Wait()
	if err != nil {
		t.Fatalf("UID SEARCH: %v", err)
	}
	uids := data.AllUIDs()
	slices.Sort(uids)
	return uids
}

// listNames returns the sorted mailbox names of LIST "" "*".
func listNames(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
	}
	slices.Sort(names)
	return names
}

// wantFolders checks LIST and the Maildir++ directories on disk: present
// must be there, absent must not.
func wantFolders(t *testing.T, c *imapclient.Client, mdir string, present, absent []string) {
	t.Helper()
	names := listNames(t, c)
	onDisk, err := corpusFolders(mdir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range present {
		if !slices.Contains(names, f) {
			t.Errorf("LIST lacks %q: %q", f, names)
		}
		if !slices.Contains(onDisk, f) {
			t.Errorf("no Maildir++ folder for %q in %s: %q", f, mdir, onDisk)
		}
	}
	for _, f := range absent {
		if slices.Contains(names, f) {
			t.Errorf("LIST still has %q: %q", f, names)
		}
		if slices.Contains(onDisk, f) {
			t.Errorf("Maildir++ folder for %q still in %s", f, mdir)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// corpusFolders lists the folders of a Maildir++ directory as IMAP names:
// INBOX, and each ".a.b" subdirectory as "a/b" (modified UTF-7 decoded),
// with the parents the hierarchy implies. Sorted.
func corpusFolders(mdir string) ([]string, error) {
	des, err := os.ReadDir(mdir)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{"INBOX": true}
	for _, de := range des {
		if !de.IsDir() || !strings.HasPrefix(de.Name(), ".") || de.Name() == "." || de.Name() == ".." {
			continue
		}
		segs := strings.Split(de.Name()[1:], ".")
		for i := range segs {
			s, err := decodeMUTF7(segs[i])
			if err != nil {
				return nil, fmt.Errorf("folder %q: %w", de.Name(), err)
			}
			segs[i] = s
			set[strings.Join(segs[:i+1], "/")] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// decodeMUTF7 decodes an IMAP modified UTF-7 name (RFC 3501 §5.1.3).
func decodeMUTF7(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '&' {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := strings.IndexByte(s[i:], '-')
		if j < 0 {
			return "", fmt.Errorf("unterminated shift in %q", s)
		}
		enc := s[i+1 : i+j]
		i += j + 1
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := base64.RawStdEncoding.DecodeString(strings.ReplaceAll(enc, ",", "/"))
		if err != nil || len(raw)%2 != 0 {
			return "", fmt.Errorf("bad modified UTF-7 %q", s)
		}
		u := make([]uint16, len(raw)/2)
		for k := range u {
			u[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		b.WriteString(string(utf16.Decode(u)))
	}
	return b.String(), nil
}

// uniqueSized returns a picker of INBOX messages whose size is unique in
// the corpus's INBOX (so that the gateway's listing identifies them by
// size) and that no earlier pick took; ok filters further.
func uniqueSized(msgs []*imapclient.FetchMessageBuffer, inbox []manifestEntry) func(t *testing.T, ok func(*imapclient.FetchMessageBuffer) bool) *imapclient.FetchMessageBuffer {
	taken := map[imap.UID]bool{}
	return func(t *testing.T, ok func(*imapclient.FetchMessageBuffer) bool) *imapclient.FetchMessageBuffer {
		t.Helper()
		count := map[int64]int{}
		for _, e := range inbox {
			count[e.Size]++
		}
		for _, m := range msgs {
			if count[m.RFC822Size] == 1 && !taken[m.UID] && (ok == nil || ok(m)) {
				taken[m.UID] = true
				return m
			}
		}
		t.Fatal("no INBOX message left with a unique size")
		return nil
	}
}

// entryOfSize is the corpus entry with that size (unique, see uniqueSized).
func entryOfSize(entries []manifestEntry, size int64) manifestEntry {
	for _, e := range entries {
		if e.Size == size {
			return e
		}
	}
	return manifestEntry{}
}

// searchWord picks a word of at least five letters from the corpus
// INBOX's subjects, present in some but not all of them, and says how many
// subjects contain it (case-insensitively, as Exchange's LIKE compares).
func searchWord(inbox []manifestEntry) (string, int) {
	for _, e := range inbox {
		if e.Malformed != "" {
			continue
		}
		for _, w := range strings.FieldsFunc(e.Subject, func(r rune) bool { return !unicode.IsLetter(r) || r > unicode.MaxASCII }) {
			if len(w) < 5 {
				continue
			}
			n := 0
			for _, o := range inbox {
				if strings.Contains(strings.ToLower(o.Subject), strings.ToLower(w)) {
					n++
				}
			}
			if n < len(inbox) {
				return w, n
			}
		}
	}
	return "", 0
}

// mailMessage builds a small RFC 5322 message with a unique Message-ID.
func mailMessage(from, to, subject, body string) []byte {
	id := make([]byte, 8)
	rand.Read(id)
	return []byte("From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + hex.EncodeToString(id) + "@e2e.test>\r\nDate: " +
		time.Now().UTC().Format(time.RFC1123Z) + "\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body + "\r\n")
}

// messageID returns the Message-ID header value of a mailMessage.
func messageID(msg []byte) string {
	for _, l := range strings.Split(string(headerBlock(msg)), "\r\n") {
		if v, ok := strings.CutPrefix(l, "Message-ID: "); ok {
			return v
		}
	}
	return ""
}

// headerBlock is the header of a message, up to the first empty line.
func headerBlock(msg []byte) string {
	s := string(msg)
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := strings.Index(s, sep); i >= 0 {
			return s[:i]
		}
	}
	return s
}

// findMaildirFile finds the message file holding needle in a Maildir's
// new/ or cur/.
func findMaildirFile(mdir, needle string) (string, error) {
	for _, sub := range []string{"new", "cur"} {
		des, err := os.ReadDir(filepath.Join(mdir, sub))
		if err != nil {
			return "", err
		}
		for _, de := range des {
			p := filepath.Join(mdir, sub, de.Name())
			b, err := os.ReadFile(p)
			if err == nil && bytes.Contains(b, []byte(needle)) {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("no file in %s/{new,cur} holds %q", mdir, needle)
}

// randomHex returns n random bytes in hex, for unique subjects.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// lockedBuffer is an io.Writer safe for the IMAP client's reader and
// writer goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// tail returns the last n bytes written.
func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b.Bytes()
	return string(b[max(len(b)-n, 0):])
}

// postfixDelivered checks Postfix's log for the delivery of the message
// with that Message-ID to rcpt by virtual(8) into a Maildir: cleanup(8)
// logs "QID: message-id=<...>", virtual(8) "QID: to=<rcpt>, ...,
// status=sent (delivered to maildir)". Postfix logs through postlogd, a
// moment after the delivery itself: it polls for postfixLogLag.
func postfixDelivered(logPath, msgID, rcpt string) error {
	deadline := time.Now().Add(postfixLogLag)
	for {
		b, err := os.ReadFile(logPath)
		if err != nil {
			return err
		}
		var qids []string
		lines := strings.Split(string(b), "\n")
		for _, l := range lines {
			if pre, _, ok := strings.Cut(l, ": message-id="+msgID); ok {
				if f := strings.Fields(pre); len(f) > 0 {
					qids = append(qids, f[len(f)-1])
				}
			}
		}
		for _, l := range lines {
			for _, q := range qids {
				if strings.Contains(l, " postfix/virtual[") && strings.Contains(l, " "+q+": to=<"+rcpt+">") &&
					strings.Contains(l, "status=sent (delivered to maildir)") {
					return nil
				}
			}
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("Postfix's log (%s) has no delivery of %s to <%s> into a Maildir (queue ids %q) after %v",
				logPath, msgID, rcpt, qids, postfixLogLag)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

// postfixLogLag bounds how long after a delivery Postfix's log line may
// appear: postlogd writes within milliseconds.
const postfixLogLag = 10 * time.Second
