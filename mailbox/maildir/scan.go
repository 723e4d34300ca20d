package maildir

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/davmail/davmail/mailbox"
)

// Parsing parameters of a folder scan.
const (
	// parseChunk is how many new files are parsed and committed to the
	// index at a time: progress survives a cancelled first indexing of a
	// big folder, and memory for results stays bounded.
	parseChunk = 2048
	// bulkAt is the batch size from which index commits skip fsync until
	// the end of the batch (bbolt NoSync, then one Sync): the index is
	// rebuildable, and per-commit fsyncs would dominate a cold build.
	bulkAt = 1000
	// progressEvery and progressCount pace the progress log of a big
	// first indexing: every 2 s or every 10,000 messages.
	progressEvery = 2 * time.Second
	progressCount = 10000
)

// limboEntry is a message whose file vanished from its folder in this
// pass. If its base shows up in another folder in the same pass it was
// moved there (same ID, no parse); otherwise it is deleted.
type limboEntry struct {
	m   mailbox.Message
	r   fileRef
	fid uint32
}

// scanState is one folder's part in a pass.
type scanState struct {
	f                *folder
	target           bool // its new files are parsed in this pass
	curMt, newMt     int64
	scanCur, scanNew bool
	read             bool      // its directories were read in this pass
	pending          []fileRef // files not in the index, sorted by base
	incomplete       bool      // some files could not be indexed yet: rescan next time
}

// changes collects the index writes of a pass.
type changes struct {
	puts []putOp
	// renames are the records of messages whose file another program
	// renamed (flags, new/ → cur/): idempotent updates, written in
	// batches of renameBatch ahead of the rest (writeRenames).
	renames    []putOp
	dels       []delOp
	delFolders []uint32
	folders    map[*folder]bool // folders whose record must be written
	ms         uint64           // the modseq of this pass's changes, taken on first use
	t          time.Time
	b          *mbox
}

type putOp struct {
	fid uint32
	m   mailbox.Message
	r   fileRef
	st  []byte // structure record of a newly indexed message, else nil
}

type delOp struct {
	fid, uid uint32
	id       uint64
	hasProps bool
}

// modseq returns the modseq and time of this pass's changes, taking them
// on first use.
func (c *changes) modseq() (uint64, time.Time) {
	if c.ms == 0 {
		c.ms, c.t = c.b.bump()
	}
	return c.ms, c.t
}

// touched records a visible change of f.
func (c *changes) touched(f *folder) {
	f.touch(c.modseq())
	c.dirty(f)
}

// dirty records that f's index record must be written.
func (c *changes) dirty(f *folder) {
	if c.folders == nil {
		c.folders = make(map[*folder]bool)
	}
	c.folders[f] = true
}

func (c *changes) write(w *txw) error {
	for _, fid := range c.delFolders {
		if err := w.delFolder(fid); err != nil {
			return err
		}
	}
	for _, d := range c.dels {
		if err := w.delMsg(d.fid, d.uid, d.id, d.hasProps); err != nil {
			return err
		}
	}
	for i := range c.puts {
		p := &c.puts[i]
		if err := w.putMsg(p.fid, &p.m, p.r); err != nil {
			return err
		}
		if err := w.putStruct(p.m.ID, p.st); err != nil {
			return err
		}
	}
	for f := range c.folders {
		if c.b.folders[f.path] != f {
			continue // removed in this pass
		}
		if err := w.putFolder(f); err != nil {
			return err
		}
	}
	return nil
}

// staleState returns the scan state of f if its directories changed
// since its last complete scan (or that scan was within the time-stamp
// granularity of a change), nil if it is fresh.
func (b *mbox) staleState(f *folder) (*scanState, error) {
	if f.fid == 0 || !f.onDisk {
		return nil, nil
	}
	curMt, err := mtimeOf(filepath.Join(f.dir, "cur"))
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	newMt, err := mtimeOf(filepath.Join(f.dir, "new"))
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	g := b.s.opts.Granularity.Nanoseconds()
	st := &scanState{f: f, curMt: curMt, newMt: newMt}
	st.scanCur = f.scanned == 0 || curMt != f.curMtime || f.scanned-curMt < g
	st.scanNew = f.scanned == 0 || newMt != f.newMtime || f.scanned-newMt < g
	if !st.scanCur && !st.scanNew {
		return nil, nil
	}
	return st, nil
}

// sync brings the folder list and the folders at paths (every folder if
// all) up to date with the disk. Any change found may be half of a move
// between folders, so when a target changed, the other changed folders
// are read too (their new files are matched against vanished ones, not
// parsed).
func (b *mbox) sync(ctx context.Context, all bool, paths ...string) error {
	now := time.Now().UnixNano()
	c := &changes{b: b}
	limbo, err := b.syncRoot(c)
	if err != nil {
		return err
	}
	var targets []*folder
	if all {
		targets = b.sortedFolders()
	} else {
		for _, p := range paths {
			if f := b.folders[p]; f != nil {
				targets = append(targets, f)
			}
		}
	}
	var states []*scanState
	var seen map[*folder]bool // targets, when there are several
	if len(targets) > 1 {
		seen = make(map[*folder]bool, len(targets))
	}
	for _, f := range targets {
		if seen[f] {
			continue
		}
		if seen != nil {
			seen[f] = true
		}
		st, err := b.staleState(f)
		if err != nil {
			return err
		}
		if st != nil {
			st.target = true
			states = append(states, st)
		}
	}
	if len(states) == 0 && len(limbo) == 0 && len(c.folders) == 0 && len(c.delFolders) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if seen == nil {
		seen = make(map[*folder]bool, 1)
		for _, f := range targets {
			seen[f] = true
		}
	}
	if limbo == nil {
		limbo = make(map[string]*limboEntry)
	}
	for _, st := range states {
		if err := b.readFolder(st, limbo, c); err != nil {
			return err
		}
	}
	unmatched := len(limbo) > 0
	for _, st := range states {
		if len(st.pending) > 0 {
			unmatched = true
		}
	}
	if unmatched {
		for _, f := range b.sortedFolders() {
			if seen[f] {
				continue
			}
			st, err := b.staleState(f)
			if err != nil {
				return err
			}
			if st != nil {
				if err := b.readFolder(st, limbo, c); err != nil {
					return err
				}
				states = append(states, st)
			}
		}
	}
	// Moves: a base that vanished somewhere and appeared elsewhere. The
	// message keeps its ID and gets a new UID in its new folder (RFC 3501
	// §2.3.1.1).
	for _, st := range states {
		kept := st.pending[:0]
		for _, r := range st.pending {
			le := limbo[r.base()]
			if le == nil || st.f.uidsLeft() == 0 {
				// Not a move; or, beyond any real use, so many moves
				// in one pass that the folder's UIDs ran out: then it
				// is indexed as a new message once the folder has been
				// renumbered (indexNew), and its old entry is dropped.
				kept = append(kept, r)
				continue
			}
			delete(limbo, r.base())
			m := le.m
			m.UID = st.f.takeUID()
			m.Folder = st.f.path
			if st.f.taken(m.Name) {
				m.Name = mailbox.UniqueName(m.Name, st.f.taken)
			}
			m.Flags = infoFlags(r.info()) & allFlags
			m.Keywords = b.keywordsOf(r.info())
			m.Modseq, m.Modified = c.modseq()
			st.f.add(m, r)
			c.dels = append(c.dels, delOp{fid: le.fid, uid: le.m.UID, id: m.ID})
			c.puts = append(c.puts, putOp{fid: st.f.fid, m: m, r: r})
			c.touched(st.f)
		}
		st.pending = kept
	}
	for _, le := range limbo {
		c.dels = append(c.dels, delOp{fid: le.fid, uid: le.m.UID, id: le.m.ID, hasProps: le.m.HasDeadProps})
	}
	for _, st := range states {
		if len(st.pending) == 0 {
			b.recordScan(st, now, c)
		}
		st.f.maybeCompact()
	}
	if err := b.writeRenames(c); err != nil {
		return err
	}
	if err := b.commit(c.write); err != nil {
		return err
	}
	var errs []error
	for _, st := range states {
		if st.target && len(st.pending) > 0 {
			if err := b.indexNew(ctx, st, now); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// renameBatch bounds the records one transaction of writeRenames
// rewrites. A bbolt transaction holds every page it modifies in memory
// until it commits; records of a large folder are spread over the whole
// index, so 20,000 flag changes in one transaction (another IMAP client
// marking a 100,000-message folder read) made about every page of a
// 68 MB index dirty and raised the listing's peak RSS from 160 to 270
// MiB. 1,024 records touch at most 1,024 leaf pages (4 MiB).
const renameBatch = 1024

// writeRenames writes the renamed messages' records in transactions of
// renameBatch, before the pass's main commit. Each record is the whole
// message, so a batch written before a failure or a crash is simply
// written again by the next pass, which finds the same names on disk
// (the folder's scan mtimes are recorded only by the main commit).
func (b *mbox) writeRenames(c *changes) error {
	for len(c.renames) > 0 {
		batch := c.renames[:min(len(c.renames), renameBatch)]
		err := b.commit(func(w *txw) error {
			for i := range batch {
				if err := w.putMsg(batch[i].fid, &batch[i].m, batch[i].r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		c.renames = c.renames[len(batch):]
	}
	return nil
}

// recordScan remembers the directory mtimes a complete scan saw.
func (b *mbox) recordScan(st *scanState, now int64, c *changes) {
	f := st.f
	f.curMtime, f.newMtime, f.scanned = st.curMt, st.newMt, now
	c.dirty(f)
}

// sortedFolders returns the folders in path order, for deterministic
// passes.
func (b *mbox) sortedFolders() []*folder {
	out := make([]*folder, 0, len(b.folders))
	for _, f := range b.folders {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return inboxFirst(out[i].path, out[j].path) })
	return out
}

// readFolder reads the changed directories of a folder and compares them
// with the index: renamed files update flags, vanished ones go to limbo,
// new ones to st.pending.
//
// The directories are read in batches and each name is looked up among
// the folder's entries sorted by base, rather than collected into a map
// of every name first: a rescan of a 100,000-message folder (after one
// flag changed in it) then holds about 6 MB of transient state (the
// sorted entries and what each matched) instead of 35 MB (every name
// string and a map of them), and its garbage does not raise the heap
// that the listing process keeps (docs/performance.md).
func (b *mbox) readFolder(st *scanState, limbo map[string]*limboEntry, c *changes) error {
	f := st.f
	b.s.stats.scans.Add(1)
	st.read = true
	type dirent struct {
		name  string
		inNew bool
		found bool
	}
	// The folder's entries in iteration order, then stably sorted by
	// base: of two entries with one base (which the index never makes),
	// the first in iteration order is the one a file can match, as with
	// the map this replaces.
	type slot struct {
		uid uint32
		r   fileRef
	}
	slots := make([]slot, 0, f.count())
	f.each(func(m *mailbox.Message, r fileRef) bool {
		slots = append(slots, slot{m.UID, r})
		return true
	})
	slices.SortStableFunc(slots, func(a, b slot) int { return strings.Compare(a.r.base(), b.r.base()) })
	matched := make([]dirent, len(slots))
	lookup := func(base string) int {
		i, ok := slices.BinarySearchFunc(slots, base, func(s slot, base string) int { return strings.Compare(s.r.base(), base) })
		if !ok {
			return -1
		}
		return i
	}
	// Files the index does not know: new deliveries, usually few (all of
	// them when a folder is first indexed).
	extra := make(map[string]dirent)
	// keep stores a directory name, reusing the indexed string when it is
	// the same, so that the batch's strings can be collected.
	keep := func(i int, n string, inNew bool) {
		if n == slots[i].r.name {
			n = slots[i].r.name
		}
		matched[i] = dirent{name: n, inNew: inNew, found: true}
	}
	if st.scanCur {
		err := readDirBatches(filepath.Join(f.dir, "cur"), func(names []string) {
			for _, n := range names {
				base, _, ok := parseName(n)
				if !ok {
					continue
				}
				// Two names for one base (a crash in a rename): take
				// one deterministically, the greater.
				if i := lookup(base); i >= 0 {
					if d := matched[i]; !d.found || d.name <= n {
						keep(i, n, false)
					}
				} else if d, dup := extra[base]; !dup || d.name <= n {
					extra[base] = dirent{name: n, found: true}
				}
			}
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("maildir: %w", err)
		}
	}
	if st.scanNew {
		err := readDirBatches(filepath.Join(f.dir, "new"), func(names []string) {
			for _, n := range names {
				base, _, ok := parseName(n)
				if !ok {
					continue
				}
				// In cur/ too: cur/ wins, it is where a message goes next.
				if i := lookup(base); i >= 0 {
					if !matched[i].found {
						keep(i, n, true)
					}
				} else if _, dup := extra[base]; !dup {
					extra[base] = dirent{name: n, inNew: true, found: true}
				}
			}
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("maildir: %w", err)
		}
	}
	type ren struct {
		uid uint32
		r   fileRef
	}
	var renamed []ren
	var vanished []uint32
	for i, sl := range slots {
		r := sl.r
		if d := matched[i]; d.found {
			if d.name != r.name || d.inNew != r.inNew {
				nr, _ := newFileRef(d.name, d.inNew)
				renamed = append(renamed, ren{sl.uid, nr})
			}
		} else if (r.inNew && st.scanNew) || (!r.inNew && st.scanCur) {
			vanished = append(vanished, sl.uid)
		}
	}
	// Renames and removals are applied in UID order, as the iteration
	// over the folder gave them before.
	slices.SortFunc(renamed, func(a, b ren) int { return cmp.Compare(a.uid, b.uid) })
	slices.Sort(vanished)
	for _, x := range renamed {
		m, _, _ := f.get(x.uid)
		flags, kw := infoFlags(x.r.info())&allFlags, b.keywordsOf(x.r.info())
		if flags == m.Flags && slices.Equal(kw, m.Keywords) {
			f.setFile(x.uid, x.r) // e.g. new/ → cur/ without flags: nothing visible changed
		} else {
			m.Flags, m.Keywords = flags, kw
			m.Modseq, m.Modified = c.modseq()
			f.update(m, x.r)
			c.touched(f)
		}
		c.renames = append(c.renames, putOp{fid: f.fid, m: m, r: x.r})
	}
	for _, uid := range vanished {
		m, r, _ := f.get(uid)
		f.remove(uid)
		if old := limbo[r.base()]; old != nil {
			c.dels = append(c.dels, delOp{fid: old.fid, uid: old.m.UID, id: old.m.ID, hasProps: old.m.HasDeadProps})
		}
		limbo[r.base()] = &limboEntry{m: m, r: r, fid: f.fid}
		c.touched(f)
	}
	// New files get IDs and UIDs in arrival order as far as their names tell: by
	// the leading time stamp of the base, then bytewise (the sort key is
	// computed once per file, not per comparison).
	type keyed struct {
		r    fileRef
		n    uint64
		hasN bool
	}
	pend := make([]keyed, 0, len(extra))
	for _, d := range extra {
		if r, ok := newFileRef(d.name, d.inNew); ok {
			n, hasN := leadingNumber(r.base())
			pend = append(pend, keyed{r, n, hasN})
		}
	}
	slices.SortFunc(pend, func(a, b keyed) int {
		if a.hasN != b.hasN {
			if a.hasN {
				return -1
			}
			return 1
		}
		if a.n != b.n {
			return cmp.Compare(a.n, b.n)
		}
		return strings.Compare(a.r.base(), b.r.base())
	})
	st.pending = make([]fileRef, len(pend))
	for i, k := range pend {
		st.pending[i] = k.r
	}
	return nil
}

// parsed is the result of parsing one file.
type parsed struct {
	env   mailbox.Envelope
	st    []byte // structure record (structure.go); nil if the scan panicked
	size  int64
	mtime time.Time
	err   error
}

// parseFile opens a message file and scans its envelope.
func (s *Store) parseFile(path string) (p parsed) {
	fh, size, mtime, err := openScan(path, &s.noatimeRefused)
	if err != nil {
		return parsed{err: err}
	}
	defer fh.Close()
	s.stats.parsed.Add(1)
	p = parsed{size: size, mtime: mtime}
	defer func() {
		// A malformed message must never take the server down: list it
		// with an empty envelope.
		if r := recover(); r != nil {
			s.log.Error().Str("file", path).Interface("panic", r).Msg("envelope scan panicked; message listed without envelope")
			p.env = mailbox.Envelope{}
		}
	}()
	env, st, err := scanMessage(fh)
	if err != nil {
		return parsed{err: err}
	}
	p.env, p.st = env, st
	return p
}

// parseFiles parses batch (files of dir) into out, in parallel.
func (s *Store) parseFiles(ctx context.Context, dir string, batch []fileRef, out []parsed) {
	workers := min(s.opts.Workers, len(batch))
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(batch) {
				return
			}
			if err := ctx.Err(); err != nil {
				out[i] = parsed{err: err}
				continue
			}
			out[i] = s.parseFile(filepath.Join(dir, batch[i].sub(), batch[i].name))
		}
	}
	if workers <= 1 {
		work()
		return
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(work)
	}
	wg.Wait()
}

// indexNew parses and indexes the new files of a folder, in chunks, each
// committed on its own so that the work done survives a cancellation.
func (b *mbox) indexNew(ctx context.Context, st *scanState, now int64) error {
	f := st.f
	total := len(st.pending)
	bulk := total >= bulkAt
	if bulk {
		b.db.NoSync = true
		defer func() {
			b.db.NoSync = false
			if err := b.db.Sync(); err != nil {
				b.fail(err)
			}
		}()
	}
	// New messages get new UIDs, so they are appended to base: make room
	// once rather than letting append grow (and leave slack) 17 times
	// for 100,000 messages.
	f.base = slices.Grow(f.base, total)
	f.bfiles = slices.Grow(f.bfiles, total)
	if n := f.count(); total > n {
		// The same for the maps when the batch at least doubles the
		// folder (a first indexing): copying what is there costs less
		// than the rehashes it saves.
		byName, byID := make(map[string]uint32, n+total), make(map[uint64]uint32, n+total)
		maps.Copy(byName, f.byName)
		maps.Copy(byID, f.byID)
		f.byName, f.byID = byName, byID
	}
	log := b.log.With().Str("folder", f.path).Logger()
	start := time.Now()
	lastLog, lastCount := start, 0
	results := make([]parsed, min(total, parseChunk))
	indexed := 0
	for off := 0; off < total; off += parseChunk {
		if err := ctx.Err(); err != nil {
			if bulk {
				log.Info().Int("done", off).Int("total", total).Msg("indexing folder interrupted; it continues on the next access")
			}
			return err
		}
		batch := st.pending[off:min(off+parseChunk, total)]
		// Nothing of f is in flight between chunks: the place to make
		// room for the chunk's UIDs.
		if err := b.ensureUIDs(f, len(batch)); err != nil {
			return err
		}
		res := results[:len(batch)]
		b.s.parseFiles(ctx, f.dir, batch, res)
		c := &changes{b: b}
		c.dirty(f)
		for i, r := range batch {
			p := &res[i]
			if p.err != nil {
				if errors.Is(p.err, fs.ErrNotExist) || ctx.Err() != nil {
					st.incomplete = true // renamed or removed meanwhile: the next scan sees where it went
				} else {
					log.Warn().Err(p.err).Str("file", r.name).Msg("cannot index message file; skipped until the folder changes")
				}
				continue
			}
			ms, _ := c.modseq()
			m := mailbox.Message{
				ID:           b.nextID(),
				UID:          f.takeUID(),
				Folder:       f.path,
				Name:         mailbox.UniqueName(derivedName(p.env.Subject), f.taken),
				Size:         p.size,
				Flags:        infoFlags(r.info()) & allFlags,
				Keywords:     b.keywordsOf(r.info()),
				InternalDate: p.mtime,
				Modified:     p.mtime,
				Modseq:       ms,
				Envelope:     p.env,
			}
			f.add(m, r)
			c.puts = append(c.puts, putOp{fid: f.fid, m: m, r: r, st: p.st})
			indexed++
		}
		if len(c.puts) > 0 {
			c.touched(f)
		}
		done := off + len(batch)
		if done == total && !st.incomplete && ctx.Err() == nil {
			b.recordScan(st, now, c)
		}
		if err := b.commit(c.write); err != nil {
			return err
		}
		if bulk && done < total && (done-lastCount >= progressCount || time.Since(lastLog) >= progressEvery) {
			el := time.Since(start)
			log.Info().Int("done", done).Int("total", total).Float64("per_sec", float64(done)/el.Seconds()).Msg("indexing folder")
			lastLog, lastCount = time.Now(), done
		}
	}
	if bulk {
		el := time.Since(start)
		log.Info().Int("messages", indexed).Dur("took", el).Float64("per_sec", float64(total)/el.Seconds()).Msg("indexed folder")
	}
	return ctx.Err()
}

// syncRoot rescans the Maildir root for the folder list when its mtime
// changed (or the last scan was within the granularity of a change).
// Messages of folders that vanished go to the returned limbo.
func (b *mbox) syncRoot(c *changes) (map[string]*limboEntry, error) {
	now := time.Now().UnixNano()
	mt, err := mtimeOf(b.root)
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	if mt < 0 {
		return nil, fmt.Errorf("maildir: mailbox of %q: %w", b.user, mailbox.ErrNotFound)
	}
	if mt == b.meta.rootMtime && b.meta.rootScanned-mt >= b.s.opts.Granularity.Nanoseconds() {
		return nil, nil
	}
	limbo := make(map[string]*limboEntry)
	b.s.stats.rootScans.Add(1)
	ents, err := os.ReadDir(b.root)
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	kw := b.kwMtime
	b.loadKeywords()
	if b.kwMtime != kw {
		b.refreshKeywords()
	}
	want := map[string]bool{mailbox.Inbox: true} // path → has its own directory
	for _, e := range ents {
		p, ok := pathFromDir(e.Name())
		if !ok {
			continue
		}
		isDir := e.IsDir()
		if !isDir && e.Type()&fs.ModeSymlink != 0 {
			st, err := os.Stat(filepath.Join(b.root, e.Name()))
			isDir = err == nil && st.IsDir()
		}
		if !isDir {
			continue
		}
		want[p] = true
		for q := mailbox.Parent(p); q != ""; q = mailbox.Parent(q) {
			if _, ok := want[q]; !ok {
				want[q] = false
			}
		}
	}
	if max := b.s.opts.MaxFolders; max >= 0 && len(want) > max {
		paths := make([]string, 0, len(want))
		for p := range want {
			paths = append(paths, p)
		}
		sortPaths(paths) // ancestors sort before descendants
		b.log.Warn().Int("folders", len(want)).Int("max", max).Msg("more folders on disk than max-folders; ignoring the rest")
		for _, p := range paths[max:] {
			if p != mailbox.Inbox {
				delete(want, p)
			}
		}
	}
	for _, f := range b.sortedFolders() {
		p := f.path
		if p == "" {
			continue
		}
		onDisk, ok := want[p]
		if ok && (onDisk || !f.onDisk) {
			continue
		}
		// Gone, or its directory went away while subfolders keep it
		// listed: its messages vanished.
		f.each(func(m *mailbox.Message, r fileRef) bool {
			limbo[r.base()] = &limboEntry{m: *m, r: r, fid: f.fid}
			return true
		})
		if !ok {
			delete(b.folders, p)
			c.delFolders = append(c.delFolders, f.fid)
			if parent := b.folders[mailbox.Parent(p)]; parent != nil {
				c.touched(parent)
			}
			continue
		}
		nf := newFolder(f.fid, f.folderRec, f.dir)
		nf.onDisk, nf.scanned = false, 0
		b.folders[p] = nf
		c.touched(nf)
	}
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sortPaths(paths)
	for _, p := range paths {
		onDisk := want[p]
		f := b.folders[p]
		switch {
		case f == nil:
			dn, err := dirName(p)
			if err != nil {
				continue
			}
			b.meta.lastFid++
			f = newFolder(b.meta.lastFid, folderRec{path: p, onDisk: onDisk, uidValidity: b.newUIDValidity()}, filepath.Join(b.root, dn))
			b.folders[p] = f
			c.touched(f)
			if parent := b.folders[mailbox.Parent(p)]; parent != nil {
				c.touched(parent)
			}
		case onDisk && !f.onDisk:
			f.onDisk, f.scanned = true, 0
			c.dirty(f)
		}
	}
	b.meta.rootMtime, b.meta.rootScanned = mt, now
	return limbo, nil
}

// refreshKeywords recomputes Message.Keywords after dovecot-keywords
// changed. Keywords are not stored in the index (they follow from the
// file name and the mapping), so only memory changes.
func (b *mbox) refreshKeywords() {
	for _, f := range b.folders {
		var upd []putOp
		f.each(func(m *mailbox.Message, r fileRef) bool {
			if kw := b.keywordsOf(r.info()); !slices.Equal(kw, m.Keywords) {
				nm := *m
				nm.Keywords = kw
				upd = append(upd, putOp{m: nm, r: r})
			}
			return true
		})
		for _, u := range upd {
			f.update(u.m, u.r)
		}
	}
}
