package convert

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/davmail/davmail/mailbox"
	"golang.org/x/net/html"
)

// scanBytes scans raw into a mailbox.Structure as a store would keep it.
func scanBytes(t testing.TB, raw []byte) *mailbox.Structure {
	t.Helper()
	st, err := Scan(bytes.NewReader(raw), ScanOptions{})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return &mailbox.Structure{Parts: st.Parts, Problems: st.Problems}
}

// testCID resolves every Content-ID of the message st to "/part/<index>",
// as the web UI does with its own URLs.
func testCID(st *mailbox.Structure) func(string) (string, bool) {
	return func(id string) (string, bool) {
		want := NormalizeContentID(id)
		for i, p := range st.Parts {
			if want != "" && NormalizeContentID(p.ContentID) == want {
				return "/part/" + string(rune('0'+i%10)), true
			}
		}
		return "", false
	}
}

func render(t testing.TB, raw []byte, opts RenderOptions) (string, RenderInfo) {
	t.Helper()
	st := scanBytes(t, raw)
	var b bytes.Buffer
	info, err := RenderBody(&b, bytes.NewReader(raw), st, opts)
	if err != nil {
		t.Fatalf("RenderBody: %v", err)
	}
	// Deterministic: a second rendering is byte for byte the same (the
	// lead computes Content-Length this way).
	var again bytes.Buffer
	if _, err := RenderBody(&again, bytes.NewReader(raw), st, opts); err != nil {
		t.Fatalf("RenderBody again: %v", err)
	}
	if !bytes.Equal(b.Bytes(), again.Bytes()) {
		t.Fatalf("two renderings differ:\n%s\n---\n%s", b.Bytes(), again.Bytes())
	}
	return b.String(), info
}

// TestRenderGolden renders every testdata/render/*.eml and compares the
// output with the reviewed .html next to it; -update rewrites them.
func TestRenderGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "render", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d testdata/render/*.eml files, want at least 6", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".eml")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			st := scanBytes(t, raw)
			got, _ := render(t, raw, RenderOptions{SanitizeOptions: SanitizeOptions{CID: testCID(st)}})
			assertSafe(t, got)
			golden := strings.TrimSuffix(file, ".eml") + ".html"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run RenderGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (go test -run RenderGolden -update rewrites it):\n%s", golden, lineDiff(string(want), got))
			}
		})
	}
}

// assertSafe parses out as a browser would and fails on anything that
// could run script, submit, frame, or load from elsewhere than data:,
// the gateway's own cid: URLs (/part/…) or the https images of the
// tests that allow remote images.
func assertSafe(t testing.TB, out string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(out))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		switch tok.Data {
		case "script", "iframe", "frame", "frameset", "object", "embed", "form", "input", "button",
			"textarea", "select", "meta", "base", "link", "style", "svg", "math", "applet", "noscript", "template":
			t.Fatalf("forbidden element <%s> in output:\n%s", tok.Data, out)
		}
		for _, a := range tok.Attr {
			k := strings.ToLower(a.Key)
			v := strings.ToLower(strings.TrimSpace(a.Val))
			switch {
			case strings.HasPrefix(k, "on"):
				t.Fatalf("event handler %s on <%s>:\n%s", a.Key, tok.Data, out)
			case k == "srcset", k == "srcdoc", k == "formaction", k == "background", k == "xlink:href":
				t.Fatalf("attribute %s on <%s>:\n%s", a.Key, tok.Data, out)
			case k == "style" && (strings.Contains(v, "url(") || strings.Contains(v, "expression")):
				t.Fatalf("style with url()/expression on <%s>: %q", tok.Data, a.Val)
			case k == "href" && !(strings.HasPrefix(v, "https:") || strings.HasPrefix(v, "http:") || strings.HasPrefix(v, "mailto:")):
				t.Fatalf("href %q on <%s>", a.Val, tok.Data)
			case k == "src" && !(strings.HasPrefix(v, "data:image/") || strings.HasPrefix(v, "/part/") || strings.HasPrefix(v, "https://images.example/")):
				t.Fatalf("src %q on <%s>", a.Val, tok.Data)
			}
		}
	}
}

func TestRenderHostile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "render", "hostile.eml"))
	if err != nil {
		t.Fatal(err)
	}
	out, info := render(t, raw, RenderOptions{})
	if !info.HTML || info.Part < 0 {
		t.Fatalf("info = %+v, want the HTML alternative", info)
	}
	for _, bad := range []string{"pwned", "alert(", "tracker.example", "evil.example", "javascript:", "page title"} {
		if strings.Contains(strings.ToLower(out), strings.ToLower(bad)) {
			t.Errorf("output contains %q:\n%s", bad, out)
		}
	}
	// Two remote images are blocked (the pixel and the https one with a
	// srcset); the protocol-relative and relative ones are dropped.
	if info.BlockedImages != 2 {
		t.Errorf("BlockedImages = %d, want 2", info.BlockedImages)
	}
	for _, good := range []string{"Hello", "color: red", "ok link", `target="_blank"`, "noopener", "cell", BlockedImageSrc} {
		if !strings.Contains(out, good) {
			t.Errorf("output lacks %q:\n%s", good, out)
		}
	}
	// With remote images allowed, the https image is kept as it is and
	// nothing is counted as blocked.
	out, info = render(t, raw, RenderOptions{SanitizeOptions: SanitizeOptions{AllowRemoteImages: true}})
	if info.BlockedImages != 0 || !strings.Contains(out, "https://images.example/b.png") {
		t.Errorf("remote images allowed: blocked=%d, output:\n%s", info.BlockedImages, out)
	}
}

func TestRenderCID(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "render", "related-cid.eml"))
	if err != nil {
		t.Fatal(err)
	}
	st := scanBytes(t, raw)
	var asked []string
	cid := func(id string) (string, bool) {
		asked = append(asked, id)
		return testCID(st)(id)
	}
	out, info := render(t, raw, RenderOptions{SanitizeOptions: SanitizeOptions{CID: cid}})
	if info.InlineImages != 1 {
		t.Errorf("InlineImages = %d, want 1", info.InlineImages)
	}
	if !strings.Contains(out, `src="/part/2"`) {
		t.Errorf("cid image not rewritten:\n%s", out)
	}
	if strings.Contains(out, "cid:") {
		t.Errorf("unresolved cid: left in output:\n%s", out)
	}
	if strings.Join(asked, ",") != "logo@mkcorpus,nothere@x,logo@mkcorpus,nothere@x" {
		t.Errorf("resolver asked %q", asked) // twice: render renders twice
	}
}

func TestRenderText(t *testing.T) {
	raw := []byte("Subject: x\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nGr=FC=DFe <b>not bold</b> & more\r\n")
	out, info := render(t, raw, RenderOptions{})
	if info.HTML || info.Charset != "iso-8859-1" || info.CharsetNote != "" {
		t.Errorf("info = %+v", info)
	}
	if !strings.Contains(out, "Grüße &lt;b&gt;not bold&lt;/b&gt; &amp; more\n") {
		t.Errorf("text not converted and escaped:\n%s", out)
	}
}

func TestRenderUnknownCharset(t *testing.T) {
	raw := []byte("Subject: x\nContent-Type: text/plain; charset=x-unknown-42\n\ncaf\xe9 <b>\n")
	out, info := render(t, raw, RenderOptions{})
	if info.CharsetNote == "" || info.Charset != "windows-1252" {
		t.Errorf("info = %+v, want a note and windows-1252", info)
	}
	if !strings.Contains(out, "café &lt;b&gt;") || !strings.Contains(out, "x-unknown-42") {
		t.Errorf("output:\n%s", out)
	}
}

func TestRenderTruncated(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 100) // 1,600 bytes
	raw := []byte("Subject: x\nContent-Type: text/html\n\n<p>" + body + "</p>\n")
	out, info := render(t, raw, RenderOptions{MaxBytes: 1000})
	if !info.Truncated || info.BodyBytes != int64(len(body)+8) {
		t.Errorf("info = %+v", info)
	}
	if !strings.Contains(out, "only its first 1000 bytes are shown") {
		t.Errorf("no truncation marker:\n%s", out)
	}
	if strings.Count(out, "0123456789abcdef") >= 100 {
		t.Errorf("the whole body was rendered")
	}
}

func TestChooseBody(t *testing.T) {
	cases := []struct {
		file string
		want string // content type of the chosen part, "" for none
	}{
		{"hostile.eml", "text/html"},
		{"related-cid.eml", "text/html"},
		{"pdf-only.eml", ""},
		{"mixed-forwarded.eml", "text/plain"},
		{"koi8r.eml", "text/plain"},
	}
	for _, c := range cases {
		raw, err := os.ReadFile(filepath.Join("testdata", "render", c.file))
		if err != nil {
			t.Fatal(err)
		}
		st := scanBytes(t, raw)
		i := ChooseBody(st)
		got := ""
		if i >= 0 {
			got = st.Parts[i].ContentType
		}
		if got != c.want {
			t.Errorf("%s: chose %q (part %d), want %q", c.file, got, i, c.want)
		}
	}
	if ChooseBody(nil) != -1 || ChooseBody(&mailbox.Structure{}) != -1 {
		t.Error("ChooseBody of nothing should be -1")
	}
}

func TestToUTF8(t *testing.T) {
	cases := []struct {
		in, label, want, used string
		note                  bool
	}{
		{"plain", "", "plain", "utf-8", false},
		{"caf\xc3\xa9", "us-ascii", "café", "us-ascii", false},
		{"caf\xe9", "", "café", "windows-1252", false},
		{"caf\xe9", "utf-8", "caf\uFFFD", "utf-8", false},
		{"\xf0\xd2\xc9", "KOI8-R", "При", "koi8-r", false},
		{"caf\xe9", "x-nope", "café", "windows-1252", true},
		{"ok", strings.Repeat("z", 200), "ok", "utf-8", true},
	}
	for _, c := range cases {
		got, used, note := ToUTF8([]byte(c.in), c.label)
		if got != c.want || used != c.used || (note != "") != c.note {
			t.Errorf("ToUTF8(%q, %q) = %q, %q, note %q; want %q, %q, note %v", c.in, c.label, got, used, note, c.want, c.used, c.note)
		}
		if len(note) > 400 {
			t.Errorf("note too long: %d bytes", len(note))
		}
	}
}

// FuzzRenderBody renders arbitrary messages: it must not fail on any
// input, must be deterministic, and its output must pass assertSafe.
func FuzzRenderBody(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "render", "*.eml"))
	more, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, file := range append(files, more...) {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("Content-Type: text/html\n\n<scr<script>ipt>alert(1)</script><a href=\"jav&#x09;ascript:alert(1)\">x</a><img src=x:y>"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		st := scanBytes(t, raw)
		opts := RenderOptions{MaxBytes: 64 << 10, SanitizeOptions: SanitizeOptions{CID: testCID(st)}}
		var a, b bytes.Buffer
		if _, err := RenderBody(&a, bytes.NewReader(raw), st, opts); err != nil {
			t.Fatalf("RenderBody: %v", err)
		}
		if _, err := RenderBody(&b, bytes.NewReader(raw), st, opts); err != nil {
			t.Fatalf("RenderBody: %v", err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatal("not deterministic")
		}
		assertSafe(t, a.String())
		// Content shorter than the structure says (the file changed
		// under the index) renders what is there, without panicking.
		RenderBody(io.Discard, bytes.NewReader(raw[:len(raw)/2]), st, opts)
	})
}
