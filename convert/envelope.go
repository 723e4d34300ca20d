package convert

import (
	"io"

	"github.com/davmail/davmail/mailbox"
)

// ScanEnvelope reads a message from r to the end and returns its
// envelope: the same as Scan with default options, minus the work and
// allocations that only the parts need (this is the indexer's hot path). It never fails on malformed
// input: what cannot be parsed is left empty (zero Date, "text/plain"
// ContentType). The error is only for I/O failures of r.
func ScanEnvelope(r io.Reader) (mailbox.Envelope, error) {
	s := &scanner{opt: ScanOptions{}.withDefaults(), envOnly: true}
	st, err := s.run(r)
	if err != nil {
		return mailbox.Envelope{}, err
	}
	return st.Envelope, nil
}
