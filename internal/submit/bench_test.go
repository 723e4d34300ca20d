package submit

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// BenchmarkPrepareRFC822 prepares a 1 MiB message: memory per call must
// not depend on the message size (two 32 KiB buffers and the header).
func BenchmarkPrepareRFC822(b *testing.B) {
	body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 1<<14)
	raw := simpleMsg + body
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PrepareRFC822(strings.NewReader(raw), alice, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnqueueDeliver measures a durable enqueue (four fsyncs) and the
// delivery of a small message to a local relay.
func BenchmarkEnqueueDeliver(b *testing.B) {
	r := newRelay(b, relayOpts{})
	q, err := Open(b.TempDir(), Options{Relay: r.addr, TLS: TLSNone, HelloName: "gw.test",
		RetryInitial: time.Millisecond, Bounce: (&bounces{}).store}, zerologTo(io.Discard))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close(context.Background())
	var out bytes.Buffer
	env, err := PrepareRFC822(strings.NewReader(simpleMsg), alice, &out)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := q.EnqueueReader(context.Background(), env, bytes.NewReader(out.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for q.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}
