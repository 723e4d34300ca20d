package davbench

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// digestHeader carries the SHA-256 of the message's body (the bytes after
// the blank line), so that a GET can be verified from its own bytes,
// without the client's memory.
const digestHeader = "X-Davbench-Digest"

// Message sizes: most mail is a few KiB of text; one in five here is
// larger, up to 64 KiB, so that reads and writes are not all one packet.
// Bounded well below any server's max-message-size.
const (
	smallMin = 256
	smallMax = 4 << 10
	largeMax = 64 << 10
	// largeOneIn: one message in largeOneIn is large.
	largeOneIn = 5
)

// doubt is what the client knows of a message's place.
type doubt int

const (
	sure         doubt = iota // every write to it was acknowledged or refused
	maybeCreated              // its PUT got no answer: absent or in folder
	maybeMoved                // its MOVE got no answer: in folder or in the other
)

// message is the model of one message a client PUT.
type message struct {
	name   string   // item name, "m<client>-<seq>.EML"
	msgID  string   // Message-ID header, with the angle brackets
	folder int      // 0 or 1: the scratch folder it is in (the source, if maybeMoved)
	sum    [32]byte // SHA-256 of every byte PUT
	size   int
	// read is the value of the last acknowledged PROPPATCH of
	// httpmail:read (false for a new message); readKnown is false after a
	// PROPPATCH with no answer.
	read      bool
	readKnown bool
	doubt     doubt
	moved     bool // an acknowledged MOVE put it where it is
	// lockToken is the token of a LOCK whose UNLOCK has not succeeded;
	// lockUnknown is set when a LOCK got no answer (a lock may exist
	// that the client cannot name, so no write touches it again).
	lockToken   string
	lockUnknown bool
	// tainted is set when a PROPPATCH got no answer: it may still be
	// running on the server, so no other write may race with it.
	tainted bool
}

// writable reports whether the client may send a write to m.
func (m *message) writable() bool {
	return m.doubt == sure && m.lockToken == "" && !m.lockUnknown && !m.tainted
}

// words are the body's vocabulary: plain ASCII and some UTF-8, so the
// bytes exercise 8-bit storage.
var words = strings.Fields("mail gateway folder index maildir webdav exchange quota lock move flag read " +
	"unread search message header body attachment déjà-vu naïve Grüße größe 東京 κόσμε")

// buildMessage returns an RFC 5322 message with CRLF line ends, a unique
// Subject and Message-ID, and the digest of its body in digestHeader.
func buildMessage(r *rand.Rand, tag string, client, seq int, user string, now time.Time) (msgID string, raw []byte) {
	size := smallMin + r.IntN(smallMax-smallMin)
	if r.IntN(largeOneIn) == 0 {
		size = smallMax + r.IntN(largeMax-smallMax)
	}
	var body bytes.Buffer
	for body.Len() < size {
		line := 0
		for line < 60 { // 60: lines stay under RFC 5322's 78 characters
			w := words[r.IntN(len(words))]
			body.WriteString(w)
			body.WriteByte(' ')
			line += len(w) + 1
		}
		body.WriteString("\r\n")
	}
	sum := sha256.Sum256(body.Bytes())
	msgID = fmt.Sprintf("<%s.c%d.%d@davbench.invalid>", tag, client, seq)
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: davbench <davbench@davbench.invalid>\r\n")
	fmt.Fprintf(&b, "To: %s <%s@davbench.invalid>\r\n", user, user)
	fmt.Fprintf(&b, "Subject: davbench %s client %d message %d\r\n", tag, client, seq)
	fmt.Fprintf(&b, "Date: %s\r\n", now.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: %s\r\n", msgID)
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\n")
	fmt.Fprintf(&b, "Content-Transfer-Encoding: 8bit\r\n")
	fmt.Fprintf(&b, "%s: sha256=%s\r\n", digestHeader, hex.EncodeToString(sum[:]))
	b.WriteString("\r\n")
	b.Write(body.Bytes())
	return msgID, b.Bytes()
}

// selfDigestOK reports whether raw's body matches the digest in its own
// header. A message without the header (not davbench's) fails.
func selfDigestOK(raw []byte) bool {
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		return false
	}
	want := ""
	for _, line := range strings.Split(string(head), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, digestHeader) {
			want = strings.TrimSpace(v)
		}
	}
	sum := sha256.Sum256(body)
	return want == "sha256="+hex.EncodeToString(sum[:])
}
