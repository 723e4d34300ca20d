package mailboxtest

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/davmail/davmail/mailbox"
)

// structureMsg is a multipart/mixed message with a text body and a
// base64 attachment whose name is RFC 2231-encoded.
const structureMsg = "From: a@example.org\r\n" +
	"Subject: parts\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=XX\r\n" +
	"\r\n" +
	"--XX\r\n" +
	"Content-Type: text/plain; charset=iso-8859-1\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Gr=FC=DFe\r\n" +
	"--XX\r\n" +
	"Content-Type: application/octet-stream\r\n" +
	"Content-Disposition: attachment; filename*=UTF-8''R%C3%A9sum%C3%A9.bin\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"AAECAwQFBgcICQ==\r\n" +
	"--XX--\r\n"

// checkStructure checks the structure of structureMsg as stored in mb.
func checkStructure(t *testing.T, mb mailbox.Mailbox, folder, name string) {
	t.Helper()
	st, err := mb.Structure(t.Context(), folder, name)
	if err != nil {
		t.Fatalf("Structure(%q, %q): %v", folder, name, err)
	}
	if len(st.Parts) != 3 {
		t.Fatalf("%d parts, want 3: %+v", len(st.Parts), st.Parts)
	}
	root, text, att := st.Parts[0], st.Parts[1], st.Parts[2]
	if root.ContentType != "multipart/mixed" || root.Parent != -1 {
		t.Errorf("root %+v", root)
	}
	if text.Path != "1" || text.ContentType != "text/plain" || text.Charset != "iso-8859-1" || text.Encoding != "quoted-printable" || text.DecodedSize != 5 || text.IsAttachment {
		t.Errorf("text part %+v", text)
	}
	if att.Path != "2" || att.FileName != "Résumé.bin" || att.Encoding != "base64" || att.DecodedSize != 10 || !att.IsAttachment || att.Parent != 0 {
		t.Errorf("attachment part %+v", att)
	}
	// The offsets address the bytes Open returns.
	c, err := mb.Open(t.Context(), folder, name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := make([]byte, att.EncodedSize)
	if _, err := c.ReadAt(body, att.BodyStart); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if string(body) != "AAECAwQFBgcICQ==" {
		t.Errorf("attachment body at [%d,%d) is %q", att.BodyStart, att.BodyEnd, body)
	}
}

func testStructure(t *testing.T, newStore NewStore) {
	_, _, mb := open(t, newStore)
	mustCreate(t, mb, "Archive")
	m := mustAppend(t, mb, mailbox.Inbox, []byte(structureMsg), mailbox.AppendOptions{})
	checkStructure(t, mb, mailbox.Inbox, m.Name)

	// The structure follows the message through copies and moves.
	if _, err := mb.Copy(t.Context(), mailbox.Inbox, m.Name, "Archive", "copy.EML", false); err != nil {
		t.Fatal(err)
	}
	checkStructure(t, mb, "Archive", "copy.EML")
	if _, err := mb.Move(t.Context(), mailbox.Inbox, m.Name, "Archive", "moved.EML", false); err != nil {
		t.Fatal(err)
	}
	checkStructure(t, mb, "Archive", "moved.EML")
	if _, err := mb.Structure(t.Context(), mailbox.Inbox, m.Name); !errors.Is(err, mailbox.ErrNotFound) {
		t.Errorf("Structure of the moved-away name: %v, want ErrNotFound", err)
	}

	// A replacing append gets the new content's structure.
	if _, err := mb.Append(t.Context(), "Archive", strings.NewReader("Subject: plain\r\n\r\nhello\r\n"), mailbox.AppendOptions{Name: "moved.EML", Replace: true}); err != nil {
		t.Fatal(err)
	}
	st, err := mb.Structure(t.Context(), "Archive", "moved.EML")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Parts) != 1 || st.Parts[0].ContentType != "text/plain" || st.Parts[0].DecodedSize != 7 {
		t.Errorf("replaced message structure %+v", st.Parts)
	}

	if err := mb.Delete(t.Context(), "Archive", "copy.EML"); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Structure(t.Context(), "Archive", "copy.EML"); !errors.Is(err, mailbox.ErrNotFound) {
		t.Errorf("Structure of a deleted message: %v, want ErrNotFound", err)
	}
}
