package dav

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"

	"github.com/davmail/davmail/convert"
	"github.com/davmail/davmail/mailbox"
)

// The body as properties: urn:schemas:httpmail:textdescription and
// htmldescription (DavMail reads the latter in urn:schemas:mailheader:,
// exchange-webdav.md §4.3). They are content, not index data, so they are
// answered only when one message is asked for (a PROPFIND of a message
// URL, Depth 0): a listing of a folder never opens message files. In a
// listing they are reported missing (404).

// maxDescription caps each description property: DavMail uses them only
// to rebuild a message it cannot download, and a PROPFIND answer must stay
// small; the body itself is a GET away.
const maxDescription = 256 << 10

// description computes (once per request) the text and HTML forms of the
// body of m.
func (c *renderCtx) description(m *mailbox.Message) (text, htmlBody []byte, ok bool) {
	if !c.single {
		return nil, nil, false
	}
	if c.descDone {
		return c.descText, c.descHTML, c.descOK
	}
	c.descDone = true
	st, err := c.mb.Structure(c.ctx, m.Folder, m.Name)
	if err != nil {
		return nil, nil, false
	}
	content, err := c.mb.Open(c.ctx, m.Folder, m.Name)
	if err != nil {
		return nil, nil, false
	}
	defer content.Close()
	var hb bytes.Buffer
	info, err := convert.RenderBody(&hb, content, st, convert.RenderOptions{MaxBytes: maxDescription})
	if err != nil {
		return nil, nil, false
	}
	c.descHTML = clipUTF8(hb.Bytes(), maxDescription)
	if info.Part >= 0 && !info.HTML {
		p := &st.Parts[info.Part]
		raw, err := io.ReadAll(io.LimitReader(convert.NewPartReader(content, p), maxDescription))
		if err != nil {
			return nil, nil, false
		}
		t, _, _ := convert.ToUTF8(raw, p.Charset)
		c.descText = clipUTF8([]byte(t), maxDescription)
	} else {
		c.descText = clipUTF8(htmlText(c.descHTML), maxDescription)
	}
	c.descOK = true
	return c.descText, c.descHTML, true
}

// maxHeaderBlock caps PR_TRANSPORT_MESSAGE_HEADERS: the scanner reads at
// most convert.DefaultMaxHeaderBytes of a header; real headers are a few
// KiB.
const maxHeaderBlock = 256 << 10

// headerBlock returns the raw header of m (up to the empty line that ends
// it), as valid UTF-8, for one message at a time.
func (c *renderCtx) headerBlock(m *mailbox.Message) ([]byte, bool) {
	if !c.single {
		return nil, false
	}
	if c.hdrDone {
		return c.hdrBlock, c.hdrBlock != nil
	}
	c.hdrDone = true
	st, err := c.mb.Structure(c.ctx, m.Folder, m.Name)
	if err != nil {
		return nil, false
	}
	content, err := c.mb.Open(c.ctx, m.Folder, m.Name)
	if err != nil {
		return nil, false
	}
	defer content.Close()
	n := min(st.Parts[0].BodyStart, maxHeaderBlock, content.Size())
	b := make([]byte, n)
	if _, err := content.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, false
	}
	c.hdrBlock = bytes.ToValidUTF8(b, []byte("\uFFFD"))
	return c.hdrBlock, true
}

// htmlText is the text content of sanitized HTML, paragraphs on lines.
func htmlText(b []byte) []byte {
	var out bytes.Buffer
	z := html.NewTokenizer(bytes.NewReader(b))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return bytes.TrimSpace(out.Bytes())
		case html.TextToken:
			out.Write(z.Text())
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "p", "br", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "pre":
				out.WriteByte('\n')
			}
		}
	}
}

// clipUTF8 cuts b to at most n bytes at a rune boundary.
func clipUTF8(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return b[:n]
}

func descProp(space, local string, isHTML bool) liveProp {
	return liveProp{name: xml.Name{Space: space, Local: local}, appendValue: func(b []byte, c *renderCtx, r *resource) ([]byte, bool) {
		if r.msg == nil {
			return b, false
		}
		text, h, ok := c.description(r.msg)
		if !ok {
			return b, false
		}
		if isHTML {
			return appendXMLText(b, string(h)), true
		}
		return appendXMLText(b, strings.ToValidUTF8(string(text), "\uFFFD")), true
	}}
}
