package convert

import (
	"bytes"
	"io"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
)

// HTML sanitizing for showing mail bodies in a browser.
//
// Two passes. First github.com/microcosm-cc/bluemonday, with a policy
// built on its UGC policy: an allow-list of formatting elements and
// attributes, so that everything else is dropped — scripts (with their
// content), event handlers (on* attributes), forms and their controls,
// iframes, frames, objects, embeds, <meta> (refresh), <base>, <link>,
// <style> blocks (with their content), SVG and MathML. URLs must parse
// and use http, https, mailto, cid (RFC 2392) or data (images only, RFC
// 2397, checked to be base64 images); relative URLs are dropped, since
// they would resolve against the gateway itself and let a message make the
// reader's browser issue requests to it with the reader's cookies.
// Inline style attributes are kept for a fixed list of presentational
// properties whose values bluemonday validates; url() can appear in none
// of them.
//
// Then a token pass over the sanitized output (well-formed by then)
// rewrites what depends on the reader: img src with cid: goes through the
// caller's resolver (and is dropped when it has none), remote images
// (http, https) are replaced by a placeholder and counted unless allowed,
// and every link opens in a new browsing context without referrer.
//
// The sanitizer is the only barrier in the output, but not the only one in
// the web UI: the page that shows the result also puts it in a sandboxed
// iframe under a Content-Security-Policy without scripts.

// BlockedImageSrc is the src a blocked remote image gets: a 1×1
// transparent GIF, so that the layout keeps its box and no request leaves
// the browser.
const BlockedImageSrc = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"

// SanitizeOptions tune SanitizeHTML.
type SanitizeOptions struct {
	// AllowRemoteImages keeps http and https image sources. Off by
	// default: a remote image tells the sender when and where the message
	// was read (a tracking pixel).
	AllowRemoteImages bool
	// CID resolves a "cid:" reference (RFC 2392: the Content-ID without
	// its angle brackets, percent-decoded) to the URL the browser should
	// load instead. Nil, or ok=false, drops the image source.
	CID func(contentID string) (url string, ok bool)
}

// SanitizeInfo reports what SanitizeHTML changed for the reader.
type SanitizeInfo struct {
	// BlockedImages counts remote images replaced by BlockedImageSrc.
	BlockedImages int
	// InlineImages counts cid: images resolved through CID.
	InlineImages int
}

// styleProperties are the CSS properties kept in style attributes:
// presentational ones whose values bluemonday checks against their
// grammar, none of which takes a url().
var styleProperties = []string{
	"color", "background-color", "font", "font-family", "font-size", "font-style",
	"font-variant", "font-weight", "letter-spacing", "line-height", "text-align",
	"text-decoration", "text-indent", "text-transform", "vertical-align",
	"white-space", "word-spacing", "direction", "margin", "margin-top",
	"margin-right", "margin-bottom", "margin-left", "padding", "padding-top",
	"padding-right", "padding-bottom", "padding-left", "border", "border-top",
	"border-right", "border-bottom", "border-left", "border-color", "border-style",
	"border-width", "border-collapse", "border-spacing", "border-radius", "width",
	"height", "max-width", "min-width", "max-height", "min-height", "display",
	"float", "clear", "list-style-type", "table-layout", "overflow-wrap", "word-break",
}

// htmlPolicy is built once and only read afterwards; bluemonday policies
// are safe for concurrent use once built.
var htmlPolicy = sync.OnceValue(func() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowRelativeURLs(false)
	p.AllowURLSchemes("http", "https", "mailto", "cid")
	p.AllowDataURIImages()
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	// Mail HTML is table layout with presentational attributes.
	p.AllowAttrs("align", "valign", "bgcolor", "width", "height", "border", "cellpadding", "cellspacing", "colspan", "rowspan", "nowrap").
		OnElements("table", "tbody", "thead", "tfoot", "tr", "td", "th", "col", "colgroup")
	p.AllowAttrs("align").OnElements("p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "center")
	p.AllowAttrs("color", "face", "size").OnElements("font")
	p.AllowElements("font", "center", "big")
	p.AllowAttrs("class").Globally()
	p.AllowStyles(styleProperties...).Globally()
	return p
})

// SanitizeHTML reads an HTML document or fragment from r and writes its
// sanitized form (a fragment: html, head and body tags are dropped,
// their content kept) to w. The output depends only on the input and the
// options, so rendering twice gives the same bytes.
func SanitizeHTML(w io.Writer, r io.Reader, opts SanitizeOptions) (SanitizeInfo, error) {
	var clean bytes.Buffer
	if err := htmlPolicy().SanitizeReaderToWriter(r, &clean); err != nil {
		return SanitizeInfo{}, err
	}
	return rewrite(w, &clean, opts)
}

// rewrite is the second pass: image sources and links (see the top of
// this file). The input is bluemonday's output.
func rewrite(w io.Writer, r io.Reader, opts SanitizeOptions) (SanitizeInfo, error) {
	var info SanitizeInfo
	z := html.NewTokenizer(r)
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if err := z.Err(); err != io.EOF {
				return info, err
			}
			return info, nil
		case html.StartTagToken, html.SelfClosingTagToken:
			raw := z.Raw() // valid until Next; Token does not change it
			tok := z.Token()
			switch tok.Data {
			case "img":
				rewriteImg(&tok, opts, &info)
			case "a", "area":
				rewriteLink(&tok)
			default:
				if _, err := w.Write(raw); err != nil {
					return info, err
				}
				continue
			}
			if _, err := io.WriteString(w, tok.String()); err != nil {
				return info, err
			}
			continue
		}
		if _, err := w.Write(z.Raw()); err != nil {
			return info, err
		}
	}
}

func rewriteImg(tok *html.Token, opts SanitizeOptions, info *SanitizeInfo) {
	out := tok.Attr[:0]
	for _, a := range tok.Attr {
		if a.Key == "src" {
			src, keep := imgSrc(a.Val, opts, info)
			if !keep {
				continue
			}
			a.Val = src
		}
		out = append(out, a)
	}
	tok.Attr = out
}

// imgSrc decides what one image source becomes.
func imgSrc(src string, opts SanitizeOptions, info *SanitizeInfo) (string, bool) {
	scheme, rest, _ := strings.Cut(src, ":")
	switch strings.ToLower(scheme) {
	case "data":
		return src, true // bluemonday checked it is a base64 image
	case "cid":
		if opts.CID == nil {
			return "", false
		}
		id, err := url.PathUnescape(rest)
		if err != nil {
			return "", false
		}
		u, ok := opts.CID(id)
		if !ok {
			return "", false
		}
		info.InlineImages++
		return u, true
	case "http", "https":
		if opts.AllowRemoteImages {
			return src, true
		}
		info.BlockedImages++
		return BlockedImageSrc, true
	}
	return "", false
}

// rewriteLink makes a link open in a new browsing context, without
// referrer and without a handle back to the reader's window.
func rewriteLink(tok *html.Token) {
	out := tok.Attr[:0]
	hasHref := false
	for _, a := range tok.Attr {
		switch a.Key {
		case "target", "rel":
			continue
		case "href":
			hasHref = true
		}
		out = append(out, a)
	}
	if hasHref {
		out = append(out, html.Attribute{Key: "target", Val: "_blank"}, html.Attribute{Key: "rel", Val: "noopener noreferrer nofollow"})
	}
	tok.Attr = out
}

// cidRef matches what RFC 2392 puts after "cid:", for tests and callers
// that build resolvers: anything but spaces and angle brackets.
var cidRef = regexp.MustCompile(`^[^\s<>]+$`)

// NormalizeContentID returns a Content-ID header value (RFC 2045 §7,
// "<id@host>") in the form a cid: URL names it: without the angle
// brackets and surrounding spaces, lower-cased for comparison (RFC 2392
// ids are case-sensitive in theory, but mailers change case between the
// header and the reference, and two ids of one message that differ only
// in case do not occur in practice). It returns "" for a value that
// cannot be referenced.
func NormalizeContentID(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "<")
	v = strings.TrimSuffix(v, ">")
	v = strings.TrimSpace(v)
	if !cidRef.MatchString(v) {
		return ""
	}
	return strings.ToLower(v)
}
