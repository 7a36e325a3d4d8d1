package live

import (
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/reptimer"
)

// outbox is a set's applied events on their way to the database: each event's
// number, whether it is written, being written or waiting to be tried again,
// and who waits for its commit (sockets to acknowledge, REST calls to answer).
// It belongs to the set's owner goroutine.
type outbox struct {
	events     map[uuid.UUID]*eventRecord
	ending     *eventRecord
	n          int
	pending    int            // writes with the committer
	retries    []*eventRecord // failed writes, tried again when retryTimer fires
	retryTimer *time.Timer    // armed while retries wait or a resync waits to be tried again
	resync     bool           // a write was refused for good: reload from storage once none is in flight
}

// eventRecord is an applied event on its way to the database.
type eventRecord struct {
	event     postgres.SetEvent
	ending    *postgres.SetEnding
	committed bool
	writing   bool
	waiters   []address     // sockets to acknowledge once committed
	onCommit  []func(error) // REST calls waiting for the commit
}

func newOutbox() outbox {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return outbox{events: map[uuid.UUID]*eventRecord{}, retryTimer: t}
}

// reset forgets what was in flight and knows the stored events as written.
func (b *outbox) reset(stored []postgres.SetEvent) {
	b.events, b.ending, b.n = map[uuid.UUID]*eventRecord{}, nil, 0
	for _, e := range stored {
		b.events[e.EventID] = &eventRecord{event: e, committed: true}
		b.n = max(b.n, e.N)
	}
}

// addWaiter adds a socket to acknowledge once the event is committed; a socket
// that resends while it already waits is acknowledged once.
func (r *eventRecord) addWaiter(a address) {
	if !slices.Contains(r.waiters, a) {
		r.waiters = append(r.waiters, a)
	}
}

// record numbers an applied event and remembers it; an event that ended the
// set carries the set's final summary to the database with it.
func (o *owner) record(e postgres.SetEvent, frames []reptimer.Frame) *eventRecord {
	o.n++
	e.SetID, e.N, e.Lease = o.id, o.n, o.lease
	rec := &eventRecord{event: e}
	for _, f := range frames {
		if f.Type == reptimer.FrameSetEnded {
			rec.ending = &postgres.SetEnding{SetID: o.id, EndedAt: e.At, Summary: o.m.state.Summary()}
			o.ending = rec
		}
	}
	o.events[e.EventID] = rec
	if rec.ending != nil {
		rec.ending.Rollup = o.rollup(e.At) // the progress figures, stored with the ending (rollup.go)
	}
	return rec
}

// write hands a record to the committer unless it is already on its way.
func (o *owner) write(rec *eventRecord) {
	if rec.writing || rec.committed {
		return
	}
	rec.writing = true
	o.pending++
	o.hub.committer.add(o.hub.ctx, write{event: rec.event, ending: rec.ending, done: func(err error) {
		o.complete(func(o *owner) { o.written(rec, err) })
	}})
}

// writeRefused reports whether the database refused a write for good (its n
// taken by another writer, a row it references gone, the lease gone to
// another node): trying it again can never succeed.
func writeRefused(err error) bool {
	switch domain.ErrorCode(err) {
	case domain.CodeConflict, domain.CodeNotFound, domain.CodeInvalid:
		return true
	}
	return false
}

// written is the committer's answer for one record: on success its waiters
// are acknowledged; a refusal for good reloads the set (or, when the lease
// has moved to another node, gives the set up); anything else is tried again.
func (o *owner) written(rec *eventRecord, err error) {
	o.pending--
	rec.writing = false
	waiters, callbacks := rec.waiters, rec.onCommit
	rec.waiters, rec.onCommit = nil, nil
	switch {
	case err == nil:
		rec.committed = true
		ack := o.ack(rec.event.EventID)
		for _, a := range waiters {
			o.hub.reply(a, nodeMsg{Frame: ack})
		}
		if rec.ending != nil {
			o.set.Status = domain.SetEnded
			o.hub.notifySetEnded(o.id, o.set.AthleteID, o.m.state.Summary())
		}
	case postgres.IsFenced(err):
		// Another node holds the set now (this process was paused or cut
		// off past its lease): nothing more of it is acknowledged here. The
		// phones resend to the new owner, whose epoch the watchers follow.
		if o.err == nil {
			o.hub.log.Warn("a live set's lease moved to another node; giving the set up", "set", o.id)
			o.hub.beat() // this node may have been away past its own lease
		}
		o.lease = 0
		for _, r := range o.retries {
			callbacks = append(callbacks, r.onCommit...)
		}
		o.retries = nil
		o.err = &domain.Error{Code: domain.CodeUnavailable, Message: "this set moved to another server, try again",
			RetryAfter: time.Second, Err: ownedBy{}}
		// Every socket waiting for an ack of this owner hears at once that
		// its event was not taken, and resends it (to the new owner).
		rec.waiters = waiters
		for _, r := range o.events {
			for _, a := range r.waiters {
				o.hub.reply(a, nodeMsg{Frame: errorFor(o.err, o.id.String(), r.event.EventID.String())})
			}
			r.waiters = nil
		}
		err = o.err
		o.leave(o.hub.reroute) // what waits goes to the new owner (or to a new claim here)
		o.hub.ownerLost(o.id)  // and this node's watchers resync from it
	case writeRefused(err):
		// What is live can no longer be stored as it is (another process wrote
		// this set too): the set reloads from storage once nothing of it is in
		// flight, and its watchers resync from a snapshot of a new epoch.
		// The sockets get no ack: the phone resends, onto the reloaded state.
		if !o.resync {
			o.hub.log.Warn("a live set's write was refused; reloading the set from storage", "set", o.id, "err", err)
		}
		o.resync = true
		err = errResync
	default:
		// The event is written again after a pause, so that what nobody resends
		// (coach cues, receipts) is stored once the database is back; the sockets
		// waiting for it keep waiting and get their ack from that write, so acks
		// resume by themselves. A phone's resend is written at once.
		rec.waiters = waiters
		if len(o.retries) == 0 {
			o.retryTimer.Reset(writeRetry)
		}
		o.retries = append(o.retries, rec)
	}
	for _, cb := range callbacks {
		cb(err)
	}
	if o.resync && o.pending == 0 && o.err == nil {
		o.reload()
	}
}

// writeRetry is the pause before a failed write is tried again.
const writeRetry = time.Second

// retryWrites writes again what failed, or tries a pending reload again.
func (o *owner) retryWrites() {
	if o.err != nil {
		return
	}
	if o.resync {
		if o.pending == 0 {
			o.reload()
		}
		return
	}
	retries := o.retries
	o.retries = nil
	for _, rec := range retries {
		o.write(rec)
	}
}

// reload replaces the set's state with what storage holds, under a new epoch,
// and tells the watchers, who resync from a snapshot. Writes that were waiting
// to be retried are dropped: unacknowledged, their phones resend them.
func (o *owner) reload() {
	for _, rec := range o.retries {
		for _, cb := range rec.onCommit {
			cb(errResync)
		}
	}
	o.retries = nil
	if err := o.loadStored(); err != nil {
		o.hub.log.Error("reloading a live set failed; trying again", "set", o.id, "err", err)
		o.retryTimer.Reset(writeRetry)
		return
	}
	o.resync = false
	o.hub.metrics.resyncs.Inc()
	o.announce()
}

// whenCommitted calls fn once every record is committed (or with the first error).
func (o *owner) whenCommitted(recs []*eventRecord, fn func(error)) {
	remaining := 0
	var firstErr error
	for _, rec := range recs {
		if rec.committed {
			continue
		}
		remaining++
		rec.onCommit = append(rec.onCommit, func(err error) {
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if remaining--; remaining == 0 {
				fn(firstErr)
			}
		})
		o.write(rec)
	}
	if remaining == 0 {
		fn(nil)
	}
}
