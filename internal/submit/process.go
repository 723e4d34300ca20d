package submit

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// process handles one due item: expiry, one delivery attempt, the bounce
// of what failed, then removal or the next due time. Only one worker holds
// an item at a time (it is out of the index while in flight).
func (q *Queue) process(e *entry) {
	now := q.opts.Now()
	log := q.log.With().Str("id", e.id).Logger()

	// The relay is known to be unavailable: wait for it without touching
	// the disk (but not past the item's expiry).
	if e.pending && now.UnixNano() < e.expires {
		q.mu.Lock()
		hold := q.relayHold
		q.mu.Unlock()
		if now.Before(hold) {
			q.reschedule(e, minTime(hold, time.Unix(0, e.expires)))
			return
		}
	}

	rec, err := q.l.readRecord(e.id)
	var ce *corruptError
	switch {
	case errors.As(err, &ce):
		log.Error().Err(err).Msg("unreadable queue record moved to dead/")
		if err := q.l.bury(e.id); err != nil {
			log.Error().Err(err).Msg("cannot move the item to dead/; it stays out of the queue until restart")
		}
		q.forget(e)
		return
	case err != nil:
		log.Error().Err(err).Msg("cannot read the queue record; trying again later")
		q.reschedule(e, now.Add(q.opts.RetryInitial))
		return
	}

	if rec.count(rcptPending) > 0 && !now.Before(rec.Created.Add(q.opts.MaxAge)) {
		q.expire(rec)
		log.Warn().Int("attempts", rec.Attempts).Dur("age", now.Sub(rec.Created)).Msg("delivery time expired")
	}

	if rec.count(rcptPending) > 0 {
		if done := q.attempt(e, rec, now, log); done {
			return
		}
	}

	if rec.count(rcptFailed) > 0 {
		q.bounce(rec, now, log)
	}

	if rec.count(rcptPending) == 0 && rec.count(rcptFailed) == 0 {
		q.finish(e, rec, log)
		return
	}
	if rec.count(rcptPending) == 0 && rec.BounceFailures > 0 && now.Sub(rec.BounceSince) >= q.opts.MaxAge {
		log.Error().Str("user", rec.User).Int("bounce_failures", rec.BounceFailures).
			Msg("giving up storing the bounce; the message and its record are in dead/")
		if err := q.l.bury(e.id); err != nil {
			log.Error().Err(err).Msg("cannot move the item to dead/")
		}
		q.forget(e)
		return
	}

	var next time.Time
	if rec.count(rcptPending) > 0 {
		next = minTime(now.Add(q.backoff(rec.Attempts)), rec.Created.Add(q.opts.MaxAge))
	} else {
		next = now.Add(q.backoff(rec.BounceFailures))
	}
	rec.Next = next
	rec.InFlight = false
	if err := q.l.writeRecord(rec); err != nil {
		// The item stays queued in memory; the older record on disk is
		// still valid (at worst it says in flight, and is retried).
		log.Error().Err(err).Msg("cannot update the queue record")
	}
	e.pending = rec.count(rcptPending) > 0
	q.reschedule(e, next)
}

// attempt makes one delivery attempt for the pending recipients of rec
// whose domain is not held back. It returns true when it disposed of the
// item (removed, rescheduled, or left in flight by a shutdown).
//
// When the relay takes the message for some recipients but refuses others
// as too many for one transaction, those go in another transaction at
// once: each round delivers to at least one recipient, so the loop ends.
func (q *Queue) attempt(e *entry, rec *record, now time.Time, log zerolog.Logger) bool {
	next := make([]bool, len(rec.Rcpts)) // refused as too many: for the next round
	for round := 0; ; round++ {
		var idx []int
		var earliest time.Time
		q.mu.Lock()
		for i := range rec.Rcpts {
			r := &rec.Rcpts[i]
			if r.State != rcptPending || round > 0 && !next[i] {
				continue
			}
			if hold := q.domains.heldUntil(domainOf(r.Addr)); now.Before(hold) {
				if earliest.IsZero() || hold.Before(earliest) {
					earliest = hold
				}
				continue
			}
			idx = append(idx, i)
		}
		q.mu.Unlock()
		if len(idx) == 0 {
			if round > 0 {
				return false
			}
			// Every pending recipient's domain is backing off: come back
			// then, without counting an attempt.
			q.reschedule(e, minTime(earliest, rec.Created.Add(q.opts.MaxAge)))
			return true
		}

		// Durably in flight before the first byte goes to the relay.
		rec.InFlight = true
		if round == 0 {
			rec.Attempts++
		}
		if err := q.l.writeRecord(rec); err != nil {
			log.Error().Err(err).Msg("cannot mark the item in flight; delivery postponed")
			if round == 0 {
				rec.Attempts--
			}
			rec.InFlight = false
			q.reschedule(e, now.Add(q.opts.RetryInitial))
			return true
		}

		a := q.deliver(q.runCtx, rec, idx)
		if a.aborted && !a.dataOK {
			// Shutdown: the record says in flight; the next Open retries it.
			log.Info().Msg("delivery interrupted by shutdown; it is retried at the next start")
			return true
		}

		var nDone, nFailed, nDeferred, nTooMany int
		var firstProblem *outcome
		clear(next)
		for k, i := range idx {
			o := a.out[k]
			r := &rec.Rcpts[i]
			r.State, r.Code, r.Enhanced, r.Reply = o.state, o.code, o.enhanced, o.reply
			switch {
			case o.state == rcptDone:
				nDone++
			case o.state == rcptFailed:
				nFailed++
			case o.tooMany:
				nTooMany++
				next[i] = true
			default:
				nDeferred++
			}
			if o.state != rcptDone && !o.tooMany && firstProblem == nil {
				firstProblem = &a.out[k]
			}
		}

		if rec.count(rcptPending) == 0 && rec.count(rcptFailed) == 0 {
			// Everything delivered: removing the item is the first thing
			// done after the relay's 250 (see the package doc on
			// duplicates).
			q.finish(e, rec, log)
			q.delivered.Add(uint64(nDone))
			q.relayOK()
			q.noteDomains(rec, idx, a, now)
			log.Info().Int("rcpts", nDone).Int("attempts", rec.Attempts).Msg("delivered")
			return true
		}
		rec.InFlight = false
		if a.dataOK {
			// Same rule: the delivered recipients are recorded before
			// anything else, so they are never sent to again.
			if err := q.l.writeRecord(rec); err != nil {
				log.Error().Err(err).Msg("cannot record delivered recipients; a restart would send to them again")
			}
		}
		q.delivered.Add(uint64(nDone))
		q.deferred.Add(uint64(nDeferred))
		if a.relayErr != nil {
			q.relayFailed(now)
		} else {
			q.relayOK()
		}
		q.noteDomains(rec, idx, a, now)

		ev := log.Info()
		if nDeferred > 0 || nFailed > 0 {
			ev = log.Warn()
		}
		ev = ev.Int("attempt", rec.Attempts).Int("delivered", nDone).Int("deferred", nDeferred).Int("failed", nFailed).Int("next_transaction", nTooMany)
		if firstProblem != nil {
			ev = ev.Str("reply", diagnostic(rcptInfo{Code: firstProblem.code, Enhanced: firstProblem.enhanced, Reply: firstProblem.reply}))
		}
		ev.Msg("delivery attempt")
		if !a.dataOK || nTooMany == 0 {
			return false
		}
	}
}

// noteDomains updates the per-domain backoff hints from an attempt.
func (q *Queue) noteDomains(rec *record, idx []int, a attempt, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for k, i := range idx {
		d := domainOf(rec.Rcpts[i].Addr)
		switch o := a.out[k]; {
		case o.state == rcptDone:
			q.domains.delivered(d)
		case o.domainHint:
			q.domains.deferred(d, now, q.backoff)
		}
	}
}

func (q *Queue) relayFailed(now time.Time) {
	q.mu.Lock()
	q.relayFailures++
	q.relayHold = now.Add(q.backoff(q.relayFailures))
	q.mu.Unlock()
}

func (q *Queue) relayOK() {
	q.mu.Lock()
	q.relayFailures = 0
	q.relayHold = time.Time{}
	q.mu.Unlock()
}

// expire turns the pending recipients of rec into failures (RFC 3463
// 4.4.7, delivery time expired), quoting the relay's last reply.
func (q *Queue) expire(rec *record) {
	for i := range rec.Rcpts {
		r := &rec.Rcpts[i]
		if r.State != rcptPending {
			continue
		}
		last := diagnostic(*r)
		if last == "" {
			last = "none"
		}
		r.State, r.Code, r.Enhanced = rcptFailed, 0, "4.4.7"
		r.Reply = clean(fmt.Sprintf("not delivered within %s (%d attempts); last reply: %s", q.opts.MaxAge, rec.Attempts, last))
	}
}

// bounce stores the notification for the failed recipients of rec, or
// drops it for a null reverse-path; on success they become reported.
func (q *Queue) bounce(rec *record, now time.Time, log zerolog.Logger) {
	n := rec.count(rcptFailed)
	markReported := func() {
		for i := range rec.Rcpts {
			if rec.Rcpts[i].State == rcptFailed {
				rec.Rcpts[i].State = rcptReported
			}
		}
		q.bounced.Add(uint64(n))
	}
	if rec.From == "" || rec.User == "" {
		// RFC 5321 §4.5.5: never bounce a message with a null
		// reverse-path (it is a bounce itself); nobody to tell.
		log.Warn().Int("failed", n).Msg("undeliverable message with a null sender dropped without a bounce")
		markReported()
		return
	}
	msg, err := q.buildBounce(rec, now)
	if err == nil {
		err = q.opts.Bounce(q.runCtx, rec.User, bytes.NewReader(msg))
	}
	if err != nil {
		if rec.BounceFailures == 0 {
			rec.BounceSince = now
		}
		rec.BounceFailures++
		log.Error().Err(err).Str("user", rec.User).Int("bounce_failures", rec.BounceFailures).Msg("cannot store the bounce; retrying later")
		return
	}
	log.Info().Str("user", rec.User).Int("failed", n).Msg("bounce stored")
	markReported()
}

// finish removes a completed item from disk and from the index.
func (q *Queue) finish(e *entry, rec *record, log zerolog.Logger) {
	if err := q.l.remove(rec.ID); err != nil {
		// Out of the index anyway: this process never sends it again. A
		// restart might (see the package doc).
		log.Error().Err(err).Msg("cannot remove a completed queue item")
	}
	q.forget(e)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
