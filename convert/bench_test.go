package convert

import (
	"bytes"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// tinyMessage is a ~600-byte message as the bulk of a mailbox looks.
const tinyMessage = "Return-Path: <alice.anderson@example.com>\n" +
	"Received: from mx3.example.net (mx3.example.net [192.0.2.17])\n" +
	"\tby mail.example.com with ESMTPS id 5f3a91c2\n" +
	"\tfor <bob@example.com>; Tue, 14 Nov 2023 22:13:20 +0100\n" +
	"From: =?utf-8?q?Alice_Anderson?= <alice.anderson@example.com>\n" +
	"To: Bob <bob@example.com>\n" +
	"Subject: Quarterly report budget 4711\n" +
	"Date: Tue, 14 Nov 2023 22:13:20 +0100\n" +
	"Message-ID: <4711.1f2e3d4c5b6a7988@mkcorpus.example>\n" +
	"MIME-Version: 1.0\n" +
	"Content-Type: text/plain; charset=us-ascii\n" +
	"\n" +
	"bulk notice 4711\n" +
	"Hello Bob, the quarterly report is attached to the project page; the budget\n" +
	"review meeting moves to Friday. Please update the forecast before the deadline.\n"

func BenchmarkScanTiny(b *testing.B) {
	msg := []byte(tinyMessage)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var r bytes.Reader
	for b.Loop() {
		r.Reset(msg)
		if _, err := Scan(&r, ScanOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScanEnvelopeTiny(b *testing.B) {
	msg := []byte(tinyMessage)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var r bytes.Reader
	for b.Loop() {
		r.Reset(msg)
		if _, err := ScanEnvelope(&r); err != nil {
			b.Fatal(err)
		}
	}
}

// largeMessage returns a multipart message with a text part and a
// base64 attachment of size bytes, in 76-column lines.
func largeMessage(size int) []byte {
	var buf bytes.Buffer
	buf.WriteString("From: a@example.com\nSubject: large\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"big\"\n\n--big\nContent-Type: text/plain\n\nsee attachment\n--big\nContent-Type: application/zip; name=\"a.zip\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"a.zip\"\n\n")
	data := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(data)
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		buf.WriteString(enc[:76])
		buf.WriteByte('\n')
		enc = enc[76:]
	}
	buf.WriteString(enc)
	buf.WriteString("\n--big--\n")
	return buf.Bytes()
}

func BenchmarkScanLarge(b *testing.B) {
	for _, mib := range []int{2, 20} {
		b.Run(strconv.Itoa(mib)+"MiB", func(b *testing.B) {
			msg := largeMessage(mib << 20)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			var r bytes.Reader
			for b.Loop() {
				r.Reset(msg)
				st, err := Scan(&r, ScanOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if st.Parts[2].DecodedSize != int64(mib<<20) {
					b.Fatalf("DecodedSize %d", st.Parts[2].DecodedSize)
				}
			}
		})
	}
}

// BenchmarkScanQP measures a quoted-printable body, the slowest decoder.
func BenchmarkScanQP(b *testing.B) {
	line := strings.Repeat("Gr=C3=BC=C3=9Fe aus M=C3=BCnchen, caf=C3=A9 na=C3=AFve =\n", 1)
	body := strings.Repeat(line, (1<<20)/len(line))
	msg := []byte("Subject: qp\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" + body)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var r bytes.Reader
	for b.Loop() {
		r.Reset(msg)
		if _, err := Scan(&r, ScanOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewDecoderBase64 decodes the 2 MiB attachment body, as a
// GET of the attachment would.
func BenchmarkNewDecoderBase64(b *testing.B) {
	msg := largeMessage(2 << 20)
	st, err := Scan(bytes.NewReader(msg), ScanOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p := st.Parts[2]
	body := msg[p.BodyStart:p.BodyEnd]
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var r bytes.Reader
	for b.Loop() {
		r.Reset(body)
		n, err := io.Copy(io.Discard, NewDecoder(p.Encoding, &r))
		if err != nil || n != p.DecodedSize {
			b.Fatalf("decoded %d bytes (%v), want %d", n, err, p.DecodedSize)
		}
	}
}

// BenchmarkPartReader reads the decoded attachment of largeMessage as a
// GET of the attachment does (through a 32 KiB copy buffer). Bytes
// allocated per read must not grow with the size (2 vs 20 MiB).
func BenchmarkPartReader(b *testing.B) {
	for _, mib := range []int{2, 20} {
		b.Run(strconv.Itoa(mib)+"MiB", func(b *testing.B) {
			msg := largeMessage(mib << 20)
			st, err := Scan(bytes.NewReader(msg), ScanOptions{})
			if err != nil {
				b.Fatal(err)
			}
			p := &st.Parts[2]
			src := bytes.NewReader(msg)
			buf := make([]byte, 32<<10)
			b.SetBytes(p.DecodedSize)
			b.ReportAllocs()
			for b.Loop() {
				n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{NewPartReader(src, p)}, buf)
				if err != nil || n != p.DecodedSize {
					b.Fatalf("read %d (%v), want %d", n, err, p.DecodedSize)
				}
			}
		})
	}
}
