package dav_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/mailbox"
	"github.com/davmail/davmail/mailbox/maildir"
)

// TestRawGetWriters: a raw GET is byte-exact through both of its writers,
// the block copy (while few downloads are in flight) and sendfile
// (while more than half the cores' worth are): the test holds that many
// downloads open, stalled on an unread socket, and checks that the next
// GET, whole and by Range, went by sendfile.
func TestRawGetWriters(t *testing.T) {
	root, index := t.TempDir(), t.TempDir()
	st, err := maildir.Open(maildir.Options{Root: root, IndexDir: index, Logger: zerolog.Nop(), CreateMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := newTestServer(t, dav.Config{Store: st, MaxMessageSize: 64 << 20, MaxResponseSize: 64 << 20})
	// 16 MiB: far more than loopback socket buffers hold, so a download
	// whose client does not read stays in flight.
	body := make([]byte, 16<<20)
	rand.NewChaCha8([32]byte{3}).Read(body)
	msg := append([]byte("Subject: big\r\n\r\n"), bytes.ReplaceAll(body, []byte("\n"), []byte("x"))...)
	mb, err := st.Mailbox(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	m, err := mb.Append(context.Background(), mailbox.Inbox, bytes.NewReader(msg), mailbox.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	href := "/exchange/alice/Inbox/" + m.Name
	get := func(rangeHdr string) []byte {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL+href, nil)
		req.SetBasicAuth("alice", testPasswords["alice"])
		req.Header.Set("Translate", "f")
		if rangeHdr != "" {
			req.Header.Set("Range", rangeHdr)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Alone: the block writer.
	if got := get(""); !bytes.Equal(got, msg) {
		t.Fatalf("GET alone: %d bytes, equal %v", len(got), bytes.Equal(got, msg))
	}
	if n := dav.SendfileGets(ts.h); n != 0 {
		t.Fatalf("a lone download went by sendfile (%d)", n)
	}
	// Hold half the cores' worth of downloads open: raw sockets whose
	// responses nobody reads.
	hold := max(1, runtime.GOMAXPROCS(0)/2)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	auth := "Basic YWxpY2U6YWxpY2UtcHc=" // alice:alice-pw
	for range hold {
		c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nTranslate: f\r\n\r\n", href, auth)
		// The status line arrives once the handler writes: it is then
		// in flight, blocked on the full socket.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReaderSize(c, 64).ReadString('\n')
		if err != nil || !strings.Contains(line, "200") {
			t.Fatalf("held download: %q %v", line, err)
		}
	}
	if got := get(""); !bytes.Equal(got, msg) {
		t.Fatalf("GET beside %d held downloads: %d bytes, equal %v", hold, len(got), bytes.Equal(got, msg))
	}
	if got := get("bytes=1000-2999"); !bytes.Equal(got, msg[1000:3000]) {
		t.Errorf("Range GET beside held downloads: %d bytes", len(got))
	}
	if n := dav.SendfileGets(ts.h); n != 2 {
		t.Errorf("%d of 2 downloads beside %d held ones went by sendfile", n, hold)
	}
}
