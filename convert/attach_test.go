package convert

import (
	"bytes"
	"strings"
	"testing"

	"github.com/davmail/davmail/mailbox"
)

func TestAttachments(t *testing.T) {
	raw := strings.ReplaceAll(`From: a@example.org
Subject: atts
Content-Type: multipart/mixed; boundary=M

--M
Content-Type: multipart/related; boundary=R

--R
Content-Type: text/html; charset=utf-8

<p>hi <img src="cid:logo@x"></p>
--R
Content-Type: image/png
Content-ID: <logo@x>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--R--
--M
Content-Type: application/pdf; name="a/b\c.pdf"
Content-Disposition: attachment; filename="a/b\\c.pdf"
Content-Transfer-Encoding: base64

JVBERi0=
--M
Content-Type: application/pdf
Content-Disposition: attachment; filename="A_B_C.PDF"

x
--M
Content-Type: application/octet-stream
Content-Disposition: attachment

y
--M
Content-Type: message/rfc822
Content-Disposition: attachment

Subject: inner
Content-Type: multipart/mixed; boundary=I

--I
Content-Type: text/plain

inner body
--I
Content-Type: application/zip; name=inner.zip

z
--I--
--M--
`, "\n", "\r\n")
	st, err := Scan(strings.NewReader(raw), ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	atts := Attachments(st.Parts)
	var got []string
	for _, a := range atts {
		p := st.Parts[a.Part]
		got = append(got, a.Name+"|"+p.ContentType)
		if a.Inline != (p.ContentType == "image/png") {
			t.Errorf("%s: Inline %v", a.Name, a.Inline)
		}
	}
	want := []string{
		"attachment-1-2.png|image/png",
		"a_b_c.pdf|application/pdf",
		"A_B_C-2.PDF|application/pdf", // same name but for case: made unique
		"attachment-4.bin|application/octet-stream",
		"attachment-5.eml|message/rfc822", // its inner.zip is part of its file, not listed
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Attachments:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if a, ok := FindAttachment(st.Parts, "a_b_c-2.pdf"); !ok || a.Name != "A_B_C-2.PDF" {
		t.Errorf("FindAttachment without case: %+v, %v", a, ok)
	}
	if _, ok := FindAttachment(st.Parts, "inner.zip"); ok {
		t.Error("FindAttachment found a part of an attached message")
	}
	// The attached message is served as its own bytes.
	p := st.Parts[atts[4].Part]
	if body := raw[p.BodyStart:p.BodyEnd]; !bytes.HasPrefix([]byte(body), []byte("Subject: inner")) || !strings.HasSuffix(body, "--I--") {
		t.Errorf("attached message body %q", body)
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"report.pdf":             "report.pdf",
		"../../etc/passwd":       "_.._etc_passwd",
		"a\x00b\x1fc":            "abc",
		" .hidden. ":             "hidden",
		"..":                     "",
		strings.Repeat("é", 150): strings.Repeat("é", 100),
	} {
		if got := sanitizeName(in); got != want {
			t.Errorf("sanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzAttachments(f *testing.F) {
	f.Add("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment; filename=x\r\n\r\ny\r\n--b--\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		st, err := Scan(strings.NewReader(raw), ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, a := range Attachments(st.Parts) {
			k := strings.ToLower(a.Name)
			if a.Name == "" || !mailbox.ValidSegment(a.Name) || seen[k] || strings.ContainsAny(a.Name, "/\\\x00") || a.Name == "." || a.Name == ".." {
				t.Fatalf("bad or repeated name %q", a.Name)
			}
			seen[k] = true
			if got, ok := FindAttachment(st.Parts, a.Name); !ok || got != a {
				t.Fatalf("FindAttachment(%q) = %+v, %v; want %+v", a.Name, got, ok, a)
			}
		}
	})
}
