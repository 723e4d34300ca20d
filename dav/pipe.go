package dav

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

// pipeBlock is the size of one block of a pipelined response body:
// large enough that each write(2) hands the kernel a good share of a
// loopback socket's buffer (a few hundred KiB to a few MiB with Linux's
// autotuning) and the per-call costs vanish; two blocks per download, so
// eight parallel downloads hold 8 MiB.
const pipeBlock = 512 << 10

// pipeBufs recycles the blocks of pipelined responses: a fixed amount of
// memory per download, whatever the size of the content (brief,
// failure 1), and no allocation per request once warm. A free list of
// at most pipeKeep blocks rather than a sync.Pool, which the GC empties:
// a long download spans collections, and its successor would allocate
// its blocks again.
type pipeBufs struct{ free chan *[pipeBlock]byte }

// pipeKeep bounds the idle blocks kept: eight downloads' worth (two
// blocks of 512 KiB each), 8 MiB in all; beyond it blocks go to the GC.
const pipeKeep = 16

func newPipeBufs() *pipeBufs {
	return &pipeBufs{free: make(chan *[pipeBlock]byte, pipeKeep)}
}

func (p *pipeBufs) get() *[pipeBlock]byte {
	select {
	case b := <-p.free:
		return b
	default:
		return new([pipeBlock]byte)
	}
}

func (p *pipeBufs) put(b *[pipeBlock]byte) {
	select {
	case p.free <- b:
	default:
	}
}

// pipeWriter is the ResponseWriter handed to http.ServeContent for
// content that the process produces itself (decoded attachments): its
// ReadFrom, which ServeContent's io.CopyN calls, reads the source on a
// second goroutine into one block while the handler writes the other.
// Decoding and the socket copy then overlap on two cores instead of
// taking turns, and each write is a whole block rather than the 32 KiB
// that net/http's generic copy would use.
type pipeWriter struct {
	http.ResponseWriter
	bufs *pipeBufs
}

// Unwrap is for http.ResponseController.
func (p pipeWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

type pipeFill struct {
	b   *[pipeBlock]byte
	n   int
	err error
}

// ReadFrom copies src to the response until src ends or a write fails.
// It returns only after the reading goroutine has stopped, so the caller
// may close what src reads from.
func (p pipeWriter) ReadFrom(src io.Reader) (int64, error) {
	free := make(chan *[pipeBlock]byte, 2)
	full := make(chan pipeFill, 2)
	stop := make(chan struct{})
	a, b := p.bufs.get(), p.bufs.get()
	free <- a
	free <- b
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			var blk *[pipeBlock]byte
			select {
			case blk = <-free:
			case <-stop:
				return
			}
			n, err := io.ReadFull(src, blk[:])
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			}
			// full has room for both blocks: this never blocks.
			full <- pipeFill{blk, n, err}
			if err != nil {
				return
			}
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
		p.bufs.put(a)
		p.bufs.put(b)
	}()
	var written int64
	for f := range full {
		if f.n > 0 {
			n, err := p.ResponseWriter.Write(f.b[:f.n])
			written += int64(n)
			if err != nil {
				return written, err
			}
		}
		if f.err == io.EOF {
			return written, nil
		}
		if f.err != nil {
			return written, f.err
		}
		free <- f.b
	}
	return written, nil // not reached: the reader ends with an error
}

// blockWriter is the ResponseWriter handed to http.ServeContent for a
// message file while few downloads are in flight: its ReadFrom reads one
// pipeBlock at a time and writes it, on the handler's goroutine.
//
// For a file this beats both pipeWriter and sendfile on a loaded
// machine, because the bench client needs a core too. Measured on the
// 2-core bench machine, 213 MB file, CPU seconds per GB (server, client)
// and median throughput against Apache in the same run:
//   - this copy: 0.46, 0.44, 1.04x;
//   - pipeWriter: 0.56, 0.47, 0.87x (the hand-offs between its two
//     goroutines cost more than the overlap wins when no core is idle);
//   - sendfile: 0.17, 0.66, 0.82x (cheap for the server, but on
//     loopback the client's copy out of page-cache-backed buffers costs
//     more).
//
// Apache (0.47, 0.46) writes from 4 MiB mmap windows; a plain read into
// a block that stays in the L2 cache costs about the same without a
// mapping that a truncated file would turn into SIGBUS.
type blockWriter struct {
	http.ResponseWriter
	bufs *pipeBufs
}

// Unwrap is for http.ResponseController.
func (b blockWriter) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// ReadFrom copies src to the response in whole blocks until src ends or a
// write fails; src is not read after it returns.
func (b blockWriter) ReadFrom(src io.Reader) (int64, error) {
	blk := b.bufs.get()
	defer b.bufs.put(blk)
	var written int64
	for {
		n, err := io.ReadFull(src, blk[:])
		if n > 0 {
			m, werr := b.ResponseWriter.Write(blk[:n])
			written += int64(m)
			if werr != nil {
				return written, werr
			}
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return written, nil
		case err != nil:
			return written, err
		}
	}
}
