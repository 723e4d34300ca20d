package convert

import (
	"testing"
)

func TestDecodeFilename(t *testing.T) {
	for _, c := range []struct{ disp, ctype, want string }{
		{`attachment; filename="a.pdf"`, "", "a.pdf"},
		{`attachment; filename=a.pdf`, "", "a.pdf"},
		{`attachment; filename=My File.pdf`, "", "My File.pdf"}, // unquoted with spaces
		{`attachment; filename="unterminated.pdf`, "", "unterminated.pdf"},
		{`attachment; FILENAME="upper.pdf"`, "", "upper.pdf"},
		{`attachment;filename="a.pdf";filename="b.pdf"`, "", "a.pdf"}, // first wins
		{`attachment; filename*=utf-8''%E2%82%AC%20rates.pdf`, "", "€ rates.pdf"},
		{`attachment; filename*=UTF-8'en'%C3%A4.txt`, "", "ä.txt"},
		{`attachment; filename*=iso-8859-1''%E4.txt`, "", "ä.txt"},
		{`attachment; filename*=x-unknown''%C3%A4%E4.txt`, "", "Ã¤ä.txt"}, // unknown charset: UTF-8 if valid, else Latin-1
		{`attachment; filename*0*=utf-8''%E4%BC%9A; filename*1*=%E8%AD%B0; filename*2=".xlsx"`, "", "会議.xlsx"},
		{`attachment; filename*1*=%E8%AD%B0; filename*0*=utf-8''%E4%BC%9A`, "", "会議"}, // out of order
		{`attachment; filename*0="a"; filename*2="c"`, "", "a"},                       // gap: stop
		{`attachment; filename*1="b"; filename="plain"`, "", "plain"},                 // no section 0
		{`attachment; filename="fallback"; filename*=utf-8''exact`, "", "exact"},      // RFC 2231 wins
		{`attachment; filename="=?utf-8?b?UsOpc3Vtw6kuZG9jeA==?="`, "", "Résumé.docx"},
		{`attachment; filename="=?utf-8?q?R=C3=A9sum=C3=A9?= .docx"`, "", "Résumé .docx"},
		{`attachment; filename="C:\Documents\report.doc"`, "", `C:\Documents\report.doc`},
		{`attachment; filename="say \"hi\".txt"`, "", `say "hi".txt`},
		{"attachment; filename=\"caf\xe9.txt\"", "", "café.txt"},     // raw Latin-1
		{"attachment; filename=\"caf\xc3\xa9.txt\"", "", "café.txt"}, // raw UTF-8
		{"attachment; filename=\"a\x00b\x01c.txt\"", "", "ab c.txt"},
		{`attachment; filename="  spaced.txt  "`, "", "spaced.txt"},
		{`attachment (comment); filename="c.txt"`, "", "c.txt"},
		{`attachment`, `application/pdf; name="from-type.pdf"`, "from-type.pdf"},
		{``, `application/pdf; name*=utf-8''%C3%A4.pdf`, "ä.pdf"},
		{`attachment; filename=""`, `application/pdf; name="n.pdf"`, "n.pdf"},
		{``, `garbage; name="x.pdf"`, ""}, // invalid Content-Type: no parameters
		{``, ``, ""},
	} {
		var tb textBuf
		var pp paramParser
		if got := decodeFilename(&tb, &pp, []byte(c.disp), []byte(c.ctype)); got != c.want {
			t.Errorf("filename of %q / %q = %q, want %q", c.disp, c.ctype, got, c.want)
		}
	}
}

func TestMediaType(t *testing.T) {
	for _, c := range []struct {
		in, typ string
		ok      bool
		params  map[string]string
	}{
		{"text/plain", "text/plain", true, nil},
		{"TEXT/Plain; Charset=UTF-8", "text/plain", true, map[string]string{"charset": "UTF-8"}},
		{"text/plain; charset=us-ascii (Plain text)", "text/plain", true, map[string]string{"charset": "us-ascii"}},
		{"text / plain ; charset = \"utf-8\" ;", "text/plain", true, map[string]string{"charset": "utf-8"}},
		{"(comment) multipart/mixed; boundary=\"----=_Part_1\"", "multipart/mixed", true, map[string]string{"boundary": "----=_Part_1"}},
		{"text/plain charset=utf-8", "text/plain", true, map[string]string{"charset": "utf-8"}},
		{"text/plain;; ;format=flowed", "text/plain", true, map[string]string{"format": "flowed"}},
		{"text", "text", false, nil},
		{"text/", "text/", false, nil},
		{"/plain", "", false, nil},
		{"", "", false, nil},
		{"      (\\", "", false, nil}, // escape at the very end of a comment
		{"text/plain (a\\", "text/plain", true, nil},
	} {
		var pp paramParser
		pp.parse([]byte(c.in), true)
		if string(pp.typ) != c.typ || pp.typeOK != c.ok {
			t.Errorf("%q: type %q ok %v, want %q %v", c.in, pp.typ, pp.typeOK, c.typ, c.ok)
		}
		for k, v := range c.params {
			if got, ok := pp.raw(k); !ok || string(got) != v {
				t.Errorf("%q: %s = %q (%v), want %q", c.in, k, got, ok, v)
			}
		}
	}
}
