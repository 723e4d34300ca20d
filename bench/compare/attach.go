package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"
)

// Issue 4's performance cases, on the large message's base64 attachment
// (blob.bin, part 2; its decoded size is 57 bytes per 76-character line):
//
//   - att-<size>: sequential GET of the decoded attachment from davmail
//     against Dovecot's UID FETCH BINARY.PEEK[2] of the same part (RFC
//     3516), read by a streaming client in the same run; target ≥ 4×.
//   - att-<size>-x8-rss: davmail's peak RSS after 8 parallel downloads of
//     the attachment, < 100 MiB.
//   - att-range-1MiB: time to fetch the last MiB with a Range request
//     (seek, no decoding from the start): a few milliseconds.

const attName = "blob.bin"

// attDecodedSize is the decoded size of blob.bin in a message of total
// bytes: writeBigMessage writes whole lines of 57 raw bytes.
func (b *bench) attDecodedSize() int64 {
	lines := (b.bigSize - int64(len(bigHeader(b.o.msgSize))) - int64(len("--"+bigBoundary+"--\n"))) / (bigLineLen + 1)
	return lines * (bigLineLen / 4 * 3)
}

func (b *bench) attCases(ctx context.Context) []*Case {
	seq := &Case{Name: "att-" + b.bytesTag, Unit: "MB/s", Goal: RatioAtLeast, Target: 4,
		What: "GET of the decoded base64 attachment of that message from davmail, against Dovecot's UID FETCH BINARY.PEEK[2] of the same part; MB/s of decoded bytes"}
	rss := &Case{Name: fmt.Sprintf("att-%s-x%d-rss", b.bytesTag, b.o.parallel), Unit: "MiB", Goal: ValueBelow, Target: rssTargetGet,
		What: fmt.Sprintf("davmail peak RSS (VmHWM) of a fresh process after %d parallel downloads of the attachment", b.o.parallel)}
	rng := &Case{Name: "att-range-last-1MiB", Unit: "ms", Goal: ValueBelow, Target: 50,
		What: "Range request for the last MiB of the attachment: davmail seeks into the base64 body instead of decoding from the start"}
	cases := []*Case{seq, rss, rng}
	want := b.attDecodedSize()

	var dmSeq, dvSeq, dmRSS, dmRange []float64
	var dmErr, dvErr error
	dm, err := b.startDavmail(ctx, "att", b.largeRoot)
	var t target
	if err == nil {
		t, err = b.findBigHref(ctx, dm)
		t.url += "/" + attName
	}
	dmErr = err
	defer func() { dm.stop() }()

	dvDir := filepath.Join(b.tmp, "dovecot-att")
	defer b.removeRunDir(dvDir)
	dv, err := startDovecot(ctx, b.log, b.o.confDir, dvDir, b.largeRoot, b.o.runUser, "alice", b.pass)
	dvErr = err
	if err == nil {
		defer dv.stop()
	}
	if dmErr == nil { // warm-up: page cache, connection
		_, dmErr = get(ctx, b.client, t, want)
	}
	if dvErr == nil {
		_, dvErr = imapBinaryFetch(ctx, dv.addr, "alice", b.pass, want)
	}
	repeat := getRepeat(want)
	for i := 0; i < b.o.runs && ctx.Err() == nil; i++ {
		if dmErr == nil {
			rate, err := b.sequentialGets(ctx, repeat, func() (getResult, error) { return get(ctx, b.client, t, want) })
			if err != nil {
				dmErr = err
			} else {
				dmSeq = append(dmSeq, rate)
			}
		}
		if dvErr == nil {
			rate, err := b.sequentialGets(ctx, repeat, func() (getResult, error) { return imapBinaryFetch(ctx, dv.addr, "alice", b.pass, want) })
			if err != nil {
				dvErr = err
			} else {
				dvSeq = append(dvSeq, rate)
			}
		}
		if dmErr == nil {
			ms, err := rangeLastMiB(ctx, b.client, t, want)
			if err != nil {
				dmErr = err
			} else {
				dmRange = append(dmRange, ms)
			}
		}
		b.log.Info().Int("run", i+1).Floats64("davmail_MBps", tailOf(dmSeq, i)).Floats64("dovecot_MBps", tailOf(dvSeq, i)).Floats64("range_ms", tailOf(dmRange, i)).Msg("attachment get")
	}
	dm.stop()
	dm = nil
	for i := 0; i < b.o.runs && ctx.Err() == nil && dmErr == nil; i++ {
		p, err := b.startDavmail(ctx, "att-parallel", b.largeRoot)
		if err != nil {
			dmErr = err
			break
		}
		pt, err := b.findBigHref(ctx, p)
		pt.url += "/" + attName
		if err == nil {
			_, err = b.parallelGet(ctx, pt, want)
		}
		if hwm, herr := p.peakRSS(); herr == nil && err == nil {
			dmRSS = append(dmRSS, float64(hwm)/mib)
		}
		p.stop()
		dmErr = err
	}
	seq.Davmail, seq.Peer = newSeries("davmail", dmSeq), newSeries("dovecot", dvSeq)
	rss.Davmail = newSeries("davmail", dmRSS)
	rng.Davmail = newSeries("davmail", dmRange)
	for _, c := range cases {
		noteErr(c, "davmail", dmErr)
	}
	noteErr(seq, "dovecot", dvErr)
	return cases
}

// rangeLastMiB times a GET of the last MiB of t and checks its length.
func rangeLastMiB(ctx context.Context, c *http.Client, t target, size int64) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(t.user, t.pass)
	req.Header.Set("Range", "bytes=-1048576")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusPartialContent || n != min(size, 1<<20) {
		return 0, fmt.Errorf("range GET %s: %s, %d bytes", t.url, resp.Status, n)
	}
	return float64(elapsed.Microseconds()) / 1000, nil
}

// imapBinaryFetch logs in, selects INBOX and fetches BINARY.PEEK[2] of
// its one message (RFC 3516: the server decodes the part), streaming the
// literal to nowhere; it times the FETCH only and checks the length.
func imapBinaryFetch(ctx context.Context, addr, user, pass string, want int64) (getResult, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return getResult{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(requestTimeout))
	}
	ic := &imapConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}
	if _, err := ic.readLogical(nil); err != nil {
		return getResult{}, err
	}
	if err := ic.command("LOGIN "+imapQuote(user)+" "+imapQuote(pass), nil); err != nil {
		return getResult{}, err
	}
	if err := ic.command("SELECT INBOX", nil); err != nil {
		return getResult{}, err
	}
	start := time.Now()
	if _, err := io.WriteString(c, "f1 UID FETCH 1:* (BINARY.PEEK[2])\r\n"); err != nil {
		return getResult{}, err
	}
	var got int64
	for {
		line, err := readLine(ic.r)
		if err != nil {
			return getResult{}, err
		}
		if bytes.HasPrefix(line, []byte("f1 ")) {
			if !bytes.HasPrefix(line, []byte("f1 OK")) {
				return getResult{}, fmt.Errorf("imap FETCH BINARY: %q", trunc(line))
			}
			break
		}
		if n, ok := literalLen(line); ok {
			k, err := io.CopyN(io.Discard, ic.r, int64(n))
			got += k
			if err != nil {
				return getResult{}, err
			}
		}
	}
	elapsed := time.Since(start)
	if got != want {
		return getResult{}, fmt.Errorf("imap FETCH BINARY: %d bytes, want %d", got, want)
	}
	_ = ic.command("LOGOUT", nil)
	return getResult{elapsed: elapsed, bytes: got}, nil
}
