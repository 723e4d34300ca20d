package convert_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/davmail/davmail/convert"
)

func ExampleScan() {
	raw := "From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\n" +
		"Subject: Report\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n" +
		"\r\n" +
		"--b\r\n" +
		"Content-Type: text/plain\r\n" +
		"\r\n" +
		"See attached.\r\n" +
		"--b\r\n" +
		"Content-Type: application/pdf\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename*=utf-8''Q3%20%E2%82%AC.pdf\r\n" +
		"\r\n" +
		"JVBERi0xLjQK\r\n" +
		"--b--\r\n"
	st, err := convert.Scan(strings.NewReader(raw), convert.ScanOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(st.Envelope.From, "|", st.Envelope.Subject, "| attachments:", st.Envelope.HasAttachments)
	for _, p := range st.Parts {
		fmt.Printf("%q %s %q encoded=%d decoded=%d\n", p.Path, p.ContentType, p.FileName, p.EncodedSize, p.DecodedSize)
	}
	// Serve the attachment decoded: exactly DecodedSize bytes.
	pdf := st.Parts[2]
	body := io.NewSectionReader(strings.NewReader(raw), pdf.BodyStart, pdf.EncodedSize)
	var out bytes.Buffer
	io.Copy(&out, convert.NewDecoder(pdf.Encoding, body))
	fmt.Printf("%q\n", out.String())
	// Output:
	// Jürgen <j@example.org> | Report | attachments: true
	// "" multipart/mixed "" encoded=212 decoded=212
	// "1" text/plain "" encoded=13 decoded=13
	// "2" application/pdf "Q3 €.pdf" encoded=12 decoded=9
	// "%PDF-1.4\n"
}
