package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// makeCorpus builds mkcorpus from mkcorpusDir and writes the big-folder
// corpus into out: alice with an empty INBOX and the folder "Bulk" of n
// small messages (alice/Maildir/.Bulk).
func makeCorpus(ctx context.Context, log zerolog.Logger, mkcorpusDir, binDir, out string, n int) error {
	bin := filepath.Join(binDir, "mkcorpus")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = mkcorpusDir
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build mkcorpus in %s: %w\n%s", mkcorpusDir, err, b)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "-out", out, "-users", "alice", "-messages", "0",
		"-large", "0", "-malformed=false", "-bigfolder", fmt.Sprint(n))
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkcorpus: %w\n%s", err, b)
	}
	log.Info().Int("messages", n).Stringer("took", time.Since(start).Round(time.Millisecond)).Str("dir", out).Msg("corpus generated")
	return nil
}

// settleNew moves every message of dir/new into dir/cur with an empty
// info suffix ":2,", as Dovecot (or any IMAP server) does on the first
// SELECT. mkcorpus leaves ~5% of the Bulk folder in new/; settling them
// first makes cur/ hold the whole folder, so Apache (which serves the
// single cur/ directory), Dovecot and davmail all list the same n files,
// and a read-write Dovecot SELECT cannot change the corpus between runs.
func settleNew(maildir string) (int, error) {
	ents, err := os.ReadDir(filepath.Join(maildir, "new"))
	if err != nil {
		return 0, err
	}
	moved := 0
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		name := e.Name()
		if !strings.Contains(name, ":2,") {
			name += ":2,"
		}
		if err := os.Rename(filepath.Join(maildir, "new", e.Name()), filepath.Join(maildir, "cur", name)); err != nil {
			return moved, err
		}
		moved++
	}
	return moved, nil
}

// countFiles counts regular files in dir.
func countFiles(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if e.Type().IsRegular() {
			n++
		}
	}
	return n, nil
}

// makeWorldReadable gives "other" read access to every file and search
// access to every directory under root, so Apache's and Dovecot's
// unprivileged users can read the corpus without owning it.
func makeWorldReadable(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		m := info.Mode().Perm()
		want := m | 0o444
		if d.IsDir() {
			want |= 0o111
		}
		if want != m {
			return os.Chmod(p, want)
		}
		return nil
	})
}

// openAncestors gives search (x) permission to "other" on every directory
// from dir up to /, so an unprivileged server can reach dir. Only
// directories the harness created (the temp root) need it in practice;
// /tmp is already 1777.
func openAncestors(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, info.Mode().Perm()|0o011); err != nil {
				return err
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// Large-message layout. The boundary and header are fixed so the file is
// byte-for-byte reproducible.
const (
	bigBoundary = "davmail-bench-boundary-0001"
	bigLineLen  = 76 // RFC 2045 §6.8: base64 lines at most 76 characters
	bigSeed     = 20240101
)

// writeBigMessage writes a multipart/mixed message of about size bytes
// (an attachment of deterministic pseudo-random bytes, base64 encoded)
// into maildir/cur the Maildir way: tmp, fsync, rename. The name carries
// S=<size>. It returns the path and the exact size. An existing file with
// the same size is reused.
// bigHeader is everything of the large message before its base64 lines.
func bigHeader(size int64) string {
	return fmt.Sprintf("From: Bench Sender <bench@example.com>\n"+
		"To: Alice <alice@example.com>\n"+
		"Subject: davmail bench large attachment %d bytes\n"+
		"Date: Mon, 01 Jan 2024 00:00:00 +0000\n"+
		"Message-ID: <bench-large-%d@davmail.example>\n"+
		"MIME-Version: 1.0\n"+
		"Content-Type: multipart/mixed; boundary=\"%s\"\n"+
		"\n"+
		"--%s\n"+
		"Content-Type: text/plain; charset=us-ascii\n"+
		"\n"+
		"This message carries one large deterministic attachment.\n"+
		"\n"+
		"--%s\n"+
		"Content-Type: application/octet-stream; name=\"blob.bin\"\n"+
		"Content-Disposition: attachment; filename=\"blob.bin\"\n"+
		"Content-Transfer-Encoding: base64\n"+
		"\n", size, size, bigBoundary, bigBoundary, bigBoundary)
}

func writeBigMessage(maildir string, size int64) (string, int64, error) {
	header := bigHeader(size)
	trailer := "--" + bigBoundary + "--\n"
	// Each 57 raw bytes become one 76-character base64 line plus LF.
	const rawPerLine = bigLineLen / 4 * 3
	lines := (size - int64(len(header)) - int64(len(trailer))) / (bigLineLen + 1)
	if lines < 1 {
		lines = 1
	}
	total := int64(len(header)) + lines*(bigLineLen+1) + int64(len(trailer))
	name := fmt.Sprintf("1800000000.M1P1.davmailbench,S=%d:2,S", total)
	final := filepath.Join(maildir, "cur", name)
	if fi, err := os.Stat(final); err == nil && fi.Size() == total {
		return final, total, nil
	}
	tmp := filepath.Join(maildir, "tmp", name[:strings.Index(name, ":")])
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp) // no-op after the rename
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(bigSeed, uint64(size)))
	var raw [rawPerLine]byte
	var enc [bigLineLen + 1]byte
	enc[bigLineLen] = '\n'
	io.WriteString(w, header)
	for i := int64(0); i < lines; i++ {
		for j := 0; j < rawPerLine; j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < rawPerLine; k++ {
				raw[j+k] = byte(v >> (8 * k))
			}
		}
		base64.StdEncoding.Encode(enc[:bigLineLen], raw[:])
		w.Write(enc[:])
	}
	io.WriteString(w, trailer)
	if err := w.Flush(); err != nil {
		f.Close()
		return "", 0, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", 0, err
	}
	if err := f.Close(); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", 0, err
	}
	fi, err := os.Stat(final)
	if err != nil {
		return "", 0, err
	}
	if fi.Size() != total {
		return "", 0, fmt.Errorf("large message: wrote %d bytes, planned %d", fi.Size(), total)
	}
	return final, total, nil
}
