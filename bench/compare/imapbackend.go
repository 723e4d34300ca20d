package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Issue 8's performance cases: davmail in front of Dovecot through its
// IMAP backend (mailbox/imap, "davmail serve --imap-upstream HOST:PORT
// --imap-tls none"), users logging in upstream with their own passwords
// (no users file).
//
//   - imap-listing-<n>-warm: warm Depth 1 PROPFIND of Bulk through the IMAP
//     backend against the same PROPFIND from davmail on the Maildir backend
//     (both indexes built); target ≤ 1.5×.
//   - imap-listing-<n>-cold: a new davmail with an empty index over a new
//     Dovecot with empty INDEX and CONTROL directories, from exec to the
//     last byte of its first PROPFIND, against a new Dovecot's own
//     connect+LOGIN+SELECT+UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE);
//     target ≤ 1.5×. Both sides start with nothing indexed.
//   - imap-listing-<n>-cold-upstream-warm: the same first PROPFIND by a new
//     davmail (empty index) in front of a Dovecot whose index is built,
//     against that Dovecot's warm FETCH; for context (a gateway added in
//     front of a running server).
//   - imap-listing-<n>-rss: davmail's peak RSS after its cold listing
//     through the IMAP backend; for context.
//   - imap-get-<size>: raw GET of the large message through the IMAP
//     backend against a Go client's UID FETCH BODY.PEEK[] of the same
//     message streamed from the same Dovecot; target ≥ 1/1.5 of Dovecot's
//     throughput.
//   - imap-get-<size>-rss: davmail's peak RSS after all those GETs and a
//     round of -parallel simultaneous ones; < 100 MiB.

const (
	// imapTarget is issue 8's factor: within 1.5× of the reference.
	imapTarget = 1.5
	// imapCopyBuf is the Go IMAP client's read size for the message
	// literal, as large as the HTTP client's (copyBufSize), so that
	// neither client is the bottleneck.
	imapCopyBuf = copyBufSize
)

// imapBackendCases runs the listing cases, then the GET cases.
func (b *bench) imapBackendCases(ctx context.Context) []*Case {
	cases := b.imapListingCases(ctx)
	if ctx.Err() == nil {
		cases = append(cases, b.imapGetCases(ctx)...)
	}
	return cases
}

// startDavmailIMAP starts davmail on its IMAP backend in front of
// upstream, with a new, empty data (index) directory. It gets no users
// file (the path given does not exist): alice logs in upstream with the
// Dovecot password. --maildir-root is an empty directory nothing is read
// from.
func (b *bench) startDavmailIMAP(ctx context.Context, name, upstream string) (*davmailServer, string, error) {
	if b.bin == "" {
		return nil, "", fmt.Errorf("davmail unavailable: %w", b.binErr)
	}
	b.dmCount++
	dir := filepath.Join(b.tmp, fmt.Sprintf("davmail-%02d-%s", b.dmCount, name))
	data := filepath.Join(dir, "data")
	// The cold cases need a fresh index: refuse a leftover directory.
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		return nil, dir, fmt.Errorf("davmail data dir %s already exists (stat: %v): the index would not be empty", data, err)
	}
	dm, err := startDavmail(ctx, b.log, davmailOpts{
		bin: b.bin, maildirRoot: filepath.Join(dir, "maildir-unused"),
		usersFile: filepath.Join(dir, "users-absent"),
		dataDir:   data, logFile: filepath.Join(dir, "davmail.log"),
		// As startDavmail's callers: the 100k listing and the 200 MB
		// message are over the default response cap.
		maxMessage: "1GiB", maxResponse: "1GiB",
		extra: []string{"--imap-upstream", upstream, "--imap-tls", "none"},
	})
	return dm, dir, err
}

// startDovecotRun starts a Dovecot over mailRoot in a new directory
// tmp/<name>, so its INDEX and CONTROL directories are empty.
func (b *bench) startDovecotRun(ctx context.Context, name, mailRoot string) (*dovecot, string, error) {
	dir := filepath.Join(b.tmp, name)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		return nil, dir, fmt.Errorf("dovecot dir %s already exists (stat: %v): its index would not be empty", dir, err)
	}
	dv, err := startDovecot(ctx, b.log, b.o.confDir, dir, mailRoot, b.o.runUser, "alice", b.pass)
	return dv, dir, err
}

// dovecotListing is one timed connect+LOGIN+SELECT+UID FETCH of Bulk,
// checked for completeness.
func (b *bench) dovecotListing(ctx context.Context, dv *dovecot) (imapFetchResult, error) {
	lctx, cancel := context.WithTimeout(ctx, listingTimeout)
	defer cancel()
	r, err := imapListing(lctx, dv.addr, "alice", b.pass, "Bulk")
	if err != nil {
		return r, fmt.Errorf("%w\n%s", err, dv.logTail())
	}
	if r.fetched != b.n {
		return r, fmt.Errorf("%w: dovecot fetched %d of %d messages", errIncomplete, r.fetched, b.n)
	}
	return r, nil
}

// imapListingCases measures the big folder through the IMAP backend.
func (b *bench) imapListingCases(ctx context.Context) []*Case {
	n := b.n
	warm := &Case{Name: "imap-listing-" + b.sizeTag + "-warm", Unit: "s", Goal: RatioAtMost, Target: imapTarget,
		What: fmt.Sprintf("warm Depth 1 PROPFIND of the %d-message Bulk folder through the IMAP backend in front of Dovecot, against the same PROPFIND from davmail on the Maildir backend over the same Maildir; both indexes built, one untimed request each", n)}
	cold := &Case{Name: "imap-listing-" + b.sizeTag + "-cold", Unit: "s", Goal: RatioAtMost, Target: imapTarget,
		What: "nothing indexed on either side: a new davmail (empty index) over a new Dovecot (empty INDEX and CONTROL), exec to the last byte of its first PROPFIND, against a new Dovecot's connect+LOGIN+SELECT+UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)"}
	coldWU := &Case{Name: "imap-listing-" + b.sizeTag + "-cold-upstream-warm", Unit: "s", Goal: Info,
		What: "a new davmail (empty index) in front of a Dovecot whose index is built, exec to the last byte of its first PROPFIND, against a warm Dovecot's FETCH (a new connection to the peer instance after its cold listing); at most 3 runs"}
	rss := &Case{Name: "imap-listing-" + b.sizeTag + "-rss", Unit: "MiB", Goal: Info,
		What: "davmail peak RSS (VmHWM) after its cold listing through the IMAP backend, one process per run"}
	cases := []*Case{warm, cold, coldWU, rss}

	var dmCold, dvCold, dmColdWU, dvWarm, dmWarm, mdWarm, dmRSS []float64
	var dmErr, dvErr, mdErr error
	// The last run's davmail and its Dovecot serve the warm case.
	var keepDM *davmailServer
	var keepDV *dovecot
	var keepDirs []string
	defer func() {
		keepDM.stop()
		keepDV.stop()
		for _, d := range keepDirs {
			b.removeRunDir(d)
		}
	}()

	coldListing := func(name, upstream string) (*davmailServer, string, float64, error) {
		dm, dir, err := b.startDavmailIMAP(ctx, name, upstream)
		if err != nil {
			return nil, dir, 0, err
		}
		r, err := b.davmailListing(ctx, dm, n)
		if err != nil {
			dm.stop()
			return nil, dir, 0, fmt.Errorf("%w\n%s", err, fileTail(filepath.Join(dir, "davmail.log")))
		}
		// From exec to the last byte, as listing-<n>-cold.
		return dm, dir, r.end.Sub(dm.started).Seconds(), nil
	}

	// The context case (cold-upstream-warm) is not judged: at most 3
	// runs of it, which keeps -short's addition near a minute.
	infoRuns := min(b.o.runs, 3)
	for i := 0; i < b.o.runs && ctx.Err() == nil; i++ {
		last := i == b.o.runs-1
		// Peer: a new Dovecot, its first listing.
		if dvErr == nil {
			dv, dir, err := b.startDovecotRun(ctx, fmt.Sprintf("imapb-dovecot-peer-%02d", i), b.corpus)
			if err == nil {
				var r imapFetchResult
				if r, err = b.dovecotListing(ctx, dv); err == nil {
					dvCold = append(dvCold, r.elapsed.Seconds())
					// Now warm (index and cache built by that FETCH):
					// the reference of the context case, on a new
					// connection as listing-<n>-warm-imap.
					if i < infoRuns {
						if r, err = b.dovecotListing(ctx, dv); err == nil {
							dvWarm = append(dvWarm, r.elapsed.Seconds())
						}
					}
				}
				dv.stop()
			}
			b.removeRunDir(dir)
			dvErr = err
		}
		if dmErr != nil || ctx.Err() != nil {
			continue
		}
		// davmail: a new Dovecot and a new davmail, nothing indexed.
		up, upDir, err := b.startDovecotRun(ctx, fmt.Sprintf("imapb-dovecot-up-%02d", i), b.corpus)
		if err != nil {
			dmErr = fmt.Errorf("upstream %w", err)
			continue
		}
		dm, dir, s, err := coldListing("imapb-cold", up.addr)
		if err == nil {
			dmCold = append(dmCold, s)
			if hwm, err := dm.peakRSS(); err == nil {
				dmRSS = append(dmRSS, float64(hwm)/mib)
			}
			dm.stop()
			b.removeRunDir(dir)
			// The same Dovecot, now indexed: a new davmail (empty
			// index) in front of it, for the context case.
			if i < infoRuns || last {
				dm, dir, s, err = coldListing("imapb-cold-wu", up.addr)
				if err == nil && i < infoRuns {
					dmColdWU = append(dmColdWU, s)
				}
			}
		}
		b.log.Info().Int("run", i+1).Floats64("davmail_imap_cold_s", tailOf(dmCold, i)).Floats64("dovecot_cold_s", tailOf(dvCold, i)).
			Floats64("davmail_imap_cold_upstream_warm_s", tailOf(dmColdWU, i)).Floats64("dovecot_warm_s", tailOf(dvWarm, i)).Msg("imap backend listing")
		if err != nil || !last {
			dm.stop()
			up.stop()
			b.removeRunDir(dir)
			b.removeRunDir(upDir)
			dmErr = err
			continue
		}
		keepDM, keepDV, keepDirs = dm, up, []string{dir, upDir}
	}

	// Warm: the kept IMAP-backend davmail against a Maildir davmail over
	// the same corpus, one untimed listing each, then interleaved.
	var md *davmailServer
	defer func() { md.stop() }()
	if ctx.Err() == nil {
		if md, mdErr = b.startDavmail(ctx, "imapb-maildir", b.corpus); mdErr == nil {
			_, mdErr = b.davmailListing(ctx, md, n)
		}
	}
	if keepDM != nil {
		_, dmErr = b.davmailListing(ctx, keepDM, n)
	}
	for i := 0; i < b.o.runs && ctx.Err() == nil; i++ {
		if dmErr == nil && keepDM != nil {
			r, err := b.davmailListing(ctx, keepDM, n)
			if dmErr = err; err == nil {
				dmWarm = append(dmWarm, r.elapsed.Seconds())
			}
		}
		if mdErr == nil {
			r, err := b.davmailListing(ctx, md, n)
			if mdErr = err; err == nil {
				mdWarm = append(mdWarm, r.elapsed.Seconds())
			}
		}
		b.log.Info().Int("run", i+1).Floats64("davmail_imap_warm_s", tailOf(dmWarm, i)).Floats64("davmail_maildir_warm_s", tailOf(mdWarm, i)).Msg("imap backend listing")
	}
	warm.Davmail, warm.Peer = newSeries("davmail-imap", dmWarm), newSeries("maildir", mdWarm)
	cold.Davmail, cold.Peer = newSeries("davmail-imap", dmCold), newSeries("dovecot", dvCold)
	coldWU.Davmail, coldWU.Peer = newSeries("davmail-imap", dmColdWU), newSeries("dovecot", dvWarm)
	rss.Davmail = newSeries("davmail-imap", dmRSS)
	for _, c := range cases {
		noteErr(c, "davmail-imap", dmErr)
	}
	noteErr(warm, "davmail-maildir", mdErr)
	noteErr(cold, "dovecot", dvErr)
	noteErr(coldWU, "dovecot", dvErr)
	return cases
}

// imapGetCases measures GET of the large message through the IMAP backend
// against a Go client fetching it from the same Dovecot.
func (b *bench) imapGetCases(ctx context.Context) []*Case {
	seq := &Case{Name: "imap-get-" + b.bytesTag, Unit: "MB/s", Goal: RatioAtLeast, Target: 1 / imapTarget,
		What: fmt.Sprintf("raw GET of the %d-byte message through the IMAP backend (UID FETCH BODY.PEEK[] streamed), one at a time, %d per sample, against a Go client's UID FETCH BODY.PEEK[] of the same message from the same Dovecot (login untimed, the literal read in %d KiB reads); MB/s of the bytes served (CRLF)", b.bigSize, getRepeat(b.bigSize), imapCopyBuf>>10)}
	rss := &Case{Name: "imap-get-" + b.bytesTag + "-rss", Unit: "MiB", Goal: ValueBelow, Target: rssTargetGet,
		What: fmt.Sprintf("davmail peak RSS (VmHWM) of the IMAP-backend process of imap-get-%s after each run's GETs and a round of %d simultaneous GETs (one process: start-up, Inbox listing and every GET so far)", b.bytesTag, b.o.parallel)}
	cases := []*Case{seq, rss}

	var dmSeq, dvSeq, dmRSS []float64
	var dmErr, dvErr error
	dv, dvDir, err := b.startDovecotRun(ctx, "imapb-dovecot-large", b.largeRoot)
	defer b.removeRunDir(dvDir)
	if err != nil {
		for _, c := range cases {
			noteErr(c, "dovecot", err)
		}
		return cases
	}
	defer dv.stop()

	// The Go client first: the size Dovecot serves (LF stored, CRLF
	// served) is what davmail must serve too.
	want := int64(-1)
	if r, err := imapBodyGets(ctx, dv.addr, "alice", b.pass, 1, -1); err != nil {
		dvErr = err
	} else {
		want = r.bytes
	}
	dm, dmDir, err := b.startDavmailIMAP(ctx, "imapb-get", dv.addr)
	defer func() {
		dm.stop()
		b.removeRunDir(dmDir)
	}()
	var t target
	if err == nil {
		t, err = b.findBigHref(ctx, dm)
	}
	if err == nil { // warm-up, checked against Dovecot's size when known
		var r getResult
		if r, err = get(ctx, b.client, t, want); err == nil && r.bytes < b.bigSize {
			err = fmt.Errorf("GET %s: %d bytes, want ≥ %d", t.url, r.bytes, b.bigSize)
		}
	}
	dmErr = err

	repeat := getRepeat(b.bigSize)
	for i := 0; i < b.o.runs && ctx.Err() == nil; i++ {
		if dmErr == nil {
			rate, err := b.sequentialGets(ctx, repeat, func() (getResult, error) { return get(ctx, b.client, t, want) })
			if dmErr = err; err == nil {
				dmSeq = append(dmSeq, rate)
			}
		}
		if dvErr == nil {
			r, err := imapBodyGets(ctx, dv.addr, "alice", b.pass, repeat, want)
			if dvErr = err; err == nil {
				dvSeq = append(dvSeq, float64(r.bytes)/mb/r.elapsed.Seconds())
			}
		}
		var parRate float64
		if dmErr == nil {
			// Memory with simultaneous downloads (untimed for the
			// target; the pool holds 4 upstream connections per user,
			// so some wait).
			if parRate, dmErr = b.parallelGet(ctx, t, want); dmErr == nil {
				if hwm, err := dm.peakRSS(); err == nil {
					dmRSS = append(dmRSS, float64(hwm)/mib)
				}
			}
		}
		b.log.Info().Int("run", i+1).Int("gets_per_sample", repeat).Floats64("davmail_imap_MBps", tailOf(dmSeq, i)).
			Floats64("dovecot_MBps", tailOf(dvSeq, i)).Float64("davmail_imap_parallel_MBps", parRate).
			Floats64("davmail_imap_rss_MiB", tailOf(dmRSS, i)).Msg("imap backend get")
	}

	seq.Davmail, seq.Peer = newSeries("davmail-imap", dmSeq), newSeries("dovecot", dvSeq)
	rss.Davmail = newSeries("davmail-imap", dmRSS)
	for _, c := range cases {
		noteErr(c, "davmail-imap", dmErr)
	}
	noteErr(seq, "dovecot", dvErr)
	return cases
}

// imapBodyGets logs in (untimed), selects INBOX and fetches BODY.PEEK[] of
// every message in it (the one large message) n times on that
// connection, streaming each literal to nowhere. It returns the bytes of
// one fetch and the summed time of the n FETCH commands. want ≥ 0 checks
// every fetch's size.
func imapBodyGets(ctx context.Context, addr, user, pass string, n int, want int64) (getResult, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return getResult{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	c.SetDeadline(time.Now().Add(requestTimeout))
	ic := &imapConn{c: c, r: bufio.NewReaderSize(c, 64<<10)} // as the HTTP client's ReadBufferSize
	if line, err := ic.readLogical(nil); err != nil || !bytes.HasPrefix(line, []byte("* OK")) {
		return getResult{}, fmt.Errorf("imap greeting: %q, %v", trunc(line), err)
	}
	if err := ic.command("LOGIN "+imapQuote(user)+" "+imapQuote(pass), nil); err != nil {
		return getResult{}, err
	}
	if err := ic.command("SELECT INBOX", nil); err != nil {
		return getResult{}, err
	}
	buf := make([]byte, imapCopyBuf)
	var total getResult
	for k := 0; k < n && ctx.Err() == nil; k++ {
		c.SetDeadline(time.Now().Add(requestTimeout))
		r, err := ic.fetchBody(buf)
		if err != nil {
			return getResult{}, err
		}
		if want >= 0 && r.bytes != want {
			return getResult{}, fmt.Errorf("imap FETCH BODY[]: %d bytes, want %d", r.bytes, want)
		}
		total.elapsed += r.elapsed
		total.bytes = r.bytes
	}
	if err := ctx.Err(); err != nil {
		return getResult{}, err
	}
	_ = ic.command("LOGOUT", nil) // not timed; the server may just close
	if n > 1 {
		total.bytes *= int64(n)
	}
	return total, nil
}

// fetchBody sends one UID FETCH 1:* (BODY.PEEK[]) and reads its answer up
// to the tagged OK, reading literals into buf and discarding them; it
// times the command from sending to the tagged OK.
func (ic *imapConn) fetchBody(buf []byte) (getResult, error) {
	ic.tag++
	tag := []byte("g" + fmt.Sprint(ic.tag) + " ")
	start := time.Now()
	if _, err := ic.c.Write(append(tag, "UID FETCH 1:* (BODY.PEEK[])\r\n"...)); err != nil {
		return getResult{}, err
	}
	var got int64
	for lines := 0; ; lines++ {
		if lines > 1000 { // one FETCH line, its ")" and the tag: a bound
			return getResult{}, errors.New("imap FETCH BODY[]: too many response lines")
		}
		line, err := readLine(ic.r)
		if err != nil {
			return getResult{}, fmt.Errorf("imap FETCH BODY[]: %w", err)
		}
		if bytes.HasPrefix(line, tag) {
			if !bytes.HasPrefix(line[len(tag):], []byte("OK")) {
				return getResult{}, fmt.Errorf("imap FETCH BODY[]: %q", trunc(line))
			}
			break
		}
		n, ok := literalLen(line)
		if !ok {
			continue
		}
		for rem := int64(n); rem > 0; {
			k, err := ic.r.Read(buf[:min(rem, int64(len(buf)))])
			got += int64(k)
			rem -= int64(k)
			if err != nil {
				return getResult{}, fmt.Errorf("imap FETCH BODY[]: after %d bytes: %w", got, err)
			}
		}
	}
	elapsed := time.Since(start)
	if got == 0 {
		return getResult{}, errors.New("imap FETCH BODY[]: no literal (empty INBOX?)")
	}
	return getResult{elapsed: elapsed, bytes: got}, nil
}

// fileTail returns the end of a log file, for error reports.
func fileTail(path string) string {
	b, _ := os.ReadFile(path)
	return tail(b)
}
