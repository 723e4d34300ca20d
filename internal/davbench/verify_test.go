package davbench

import (
	"io"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// modelClient is a client with a model and no server: for the checks the
// run makes on listings and search results.
func modelClient(t *testing.T) *client {
	t.Helper()
	cfg, err := Config{URL: "http://127.0.0.1:1", Users: []User{{"alice", "pw"}}, Clients: 1}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{cfg: cfg, log: zerolog.New(io.Discard), tag: "t"}
	c := newClient(e, 0)
	add := func(name string, folder int, read bool, d doubt) {
		m := &message{name: name, folder: folder, read: read, readKnown: true, doubt: d}
		c.msgs = append(c.msgs, m)
		c.byName[name] = m
	}
	add("a-unread.EML", 0, false, sure)
	add("a-read.EML", 0, true, sure)
	add("b-unread.EML", 1, false, sure)
	add("a-maybe.EML", 0, false, maybeCreated)
	add("moving.EML", 0, false, maybeMoved)
	return c
}

func kinds(c *client) string {
	var k []string
	for _, is := range c.issues {
		k = append(k, is.Kind+":"+is.Name)
	}
	return strings.Join(k, " ")
}

func TestVerifyListing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     int
		items []item
		want  string
	}{
		{"exact", 0, []item{{name: "a-unread.EML", hasRead: true}, {name: "a-read.EML", read: true, hasRead: true}}, ""},
		{"with the doubtful ones", 0, []item{{name: "a-unread.EML"}, {name: "a-read.EML"}, {name: "a-maybe.EML"}, {name: "moving.EML"}}, ""},
		{"moved one in the other folder", 1, []item{{name: "b-unread.EML"}, {name: "moving.EML"}}, ""},
		{"missing", 0, []item{{name: "a-unread.EML"}}, "missing:a-read.EML"},
		{"stranger", 1, []item{{name: "b-unread.EML"}, {name: "x.EML"}}, "unexpected:x.EML"},
		{"misplaced", 1, []item{{name: "b-unread.EML"}, {name: "a-maybe.EML"}}, "misplaced:a-maybe.EML"},
		{"twice", 1, []item{{name: "b-unread.EML"}, {name: "b-unread.EML"}}, "duplicate:b-unread.EML"},
		{"read flag", 1, []item{{name: "b-unread.EML", read: true, hasRead: true}}, "read-flag:b-unread.EML"},
	} {
		c := modelClient(t)
		c.verifyListing(tc.f, tc.items)
		if got := kinds(c); got != tc.want {
			t.Errorf("%s: issues %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestVerifySearch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     int
		found []string
		want  string
	}{
		{"exact", 0, []string{"a-unread.EML"}, ""},
		{"with the doubtful ones", 0, []string{"a-unread.EML", "a-maybe.EML", "moving.EML"}, ""},
		{"missed an unread one", 0, nil, "search:a-unread.EML"},
		{"found a read one", 0, []string{"a-unread.EML", "a-read.EML"}, "search:a-read.EML"},
		{"found one of the other folder", 1, []string{"b-unread.EML", "a-unread.EML"}, "search:a-unread.EML"},
		{"found a stranger", 1, []string{"b-unread.EML", "x.EML"}, "search:x.EML"},
	} {
		c := modelClient(t)
		c.verifySearch(tc.f, tc.found)
		if got := kinds(c); got != tc.want {
			t.Errorf("%s: issues %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestReadListingAndLockTokens(t *testing.T) {
	body := `<?xml version="1.0"?><a:multistatus xmlns:a="DAV:" xmlns:d="urn:schemas:httpmail:" xmlns:m="urn:schemas:mailheader:">` +
		`<a:response><a:href>http://h/exchange/alice/f/</a:href><a:propstat><a:status>HTTP/1.1 200 OK</a:status><a:prop><a:displayname>f</a:displayname></a:prop></a:propstat></a:response>` +
		`<a:response><a:href>http://h/exchange/alice/f/a%20b.EML</a:href><a:propstat><a:status>HTTP/1.1 200 OK</a:status><a:prop><d:read>1</d:read><m:message-id>&lt;x@y&gt;</m:message-id></a:prop></a:propstat></a:response>` +
		`<a:response><a:href>/exchange/alice/f/c.EML</a:href><a:propstat><a:status>HTTP/1.1 200 OK</a:status><a:prop><d:read>0</d:read></a:prop></a:propstat>` +
		`<a:propstat><a:status>HTTP/1.1 404 Not Found</a:status><a:prop><m:message-id/></a:prop></a:propstat></a:response></a:multistatus>`
	items, err := readListing(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []item{{name: "a b.EML", msgID: "<x@y>", read: true, hasRead: true}, {name: "c.EML", hasRead: true}}
	if len(items) != 2 || items[0] != want[0] || items[1] != want[1] {
		t.Errorf("readListing = %+v, want %+v", items, want)
	}
	toks, err := lockTokens(strings.NewReader(`<a:prop xmlns:a="DAV:"><a:lockdiscovery><a:activelock><a:locktoken><a:href>opaquelocktoken:1</a:href></a:locktoken>` +
		`<a:lockroot><a:href>/not/a/token</a:href></a:lockroot></a:activelock></a:lockdiscovery></a:prop>`))
	if err != nil || len(toks) != 1 || toks[0] != "opaquelocktoken:1" {
		t.Errorf("lockTokens = %v, %v", toks, err)
	}
}
