package live

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/reptimer"
)

// owner is the one goroutine that holds a set's live state: the rep timer's
// state, its clock, the seq and the replay window, and the set's subscribers.
// Every change of the set goes through its inbox, so there are no locks on the
// state and every subscriber sees the same frames in the same order.
type owner struct {
	hub   *Hub
	id    uuid.UUID
	inbox chan func(*owner)

	mu     sync.RWMutex // guards closed against posts racing the exit
	closed bool

	doneMu sync.Mutex // completions from the committer, which must never block
	done   []func(*owner)
	doneCh chan struct{}

	// Below: owned by the goroutine.
	err        error // the set could not be loaded; every command answers it
	set        domain.Set
	epoch      string
	book       book
	m          machine // the rep timer, and what storage needs to rebuild it
	ring       *ring
	subs       map[*client]struct{}
	events     map[uuid.UUID]*eventRecord
	ending     *eventRecord
	n          int
	pending    int            // writes with the committer
	retries    []*eventRecord // failed writes, tried again when retryTimer fires
	retryTimer *time.Timer    // armed while retries wait or a resync waits to be tried again
	resync     bool           // a write was refused for good: reload from storage once none is in flight
	timer      *time.Timer    // the rep timer's next clock deadline
	ticker     *time.Ticker   // hold.tick while the clock counts a hold down
	ticking    bool
	lastUsed   time.Time
}

// eventRecord is an applied event on its way to the database.
type eventRecord struct {
	event     postgres.SetEvent
	ending    *postgres.SetEnding
	committed bool
	writing   bool
	waiters   []*client     // sockets to acknowledge once committed
	onCommit  []func(error) // REST calls waiting for the commit
}

// addWaiter adds a socket to acknowledge once the event is committed; a socket
// that resends while it already waits is acknowledged once.
func (r *eventRecord) addWaiter(c *client) {
	if !slices.Contains(r.waiters, c) {
		r.waiters = append(r.waiters, c)
	}
}

func newOwner(h *Hub, id uuid.UUID) *owner {
	o := &owner{
		hub: h, id: id,
		inbox:      make(chan func(*owner), 1024),
		doneCh:     make(chan struct{}, 1),
		subs:       map[*client]struct{}{},
		events:     map[uuid.UUID]*eventRecord{},
		ring:       newRing(h.cfg.ReplayWindow),
		timer:      time.NewTimer(time.Hour),
		ticker:     time.NewTicker(time.Hour),
		retryTimer: time.NewTimer(time.Hour),
	}
	o.timer.Stop()
	o.ticker.Stop()
	o.retryTimer.Stop()
	return o
}

var (
	errBusy   = &domain.Error{Code: domain.CodeUnavailable, Message: "the set is busy, try again", RetryAfter: time.Second}
	errResync = &domain.Error{Code: domain.CodeUnavailable, Message: "the set is being reloaded from storage, try again", RetryAfter: time.Second}
)

// do runs fn in the set's goroutine. If this owner has just retired, the hub's
// current owner of the set takes the command.
func (o *owner) do(fn func(*owner)) error {
	for attempt := 0; attempt < 3; attempt++ {
		o.mu.RLock()
		if !o.closed {
			select {
			case o.inbox <- fn:
				o.mu.RUnlock()
				return nil
			default:
				o.mu.RUnlock()
				return errBusy
			}
		}
		o.mu.RUnlock()
		o = o.hub.owner(o.id)
	}
	return errBusy
}

// doSoon is do for commands that must not be dropped when the inbox is full
// for a moment: it retries for up to a second.
func (o *owner) doSoon(fn func(*owner)) error {
	var err error
	for i := 0; i < 100; i++ {
		if err = o.do(fn); err != errBusy {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// runCompletions applies what the committer reported.
func (o *owner) runCompletions() {
	o.doneMu.Lock()
	done := o.done
	o.done = nil
	o.doneMu.Unlock()
	for _, fn := range done {
		fn(o)
	}
}

// complete queues a completion from the committer without ever blocking it.
func (o *owner) complete(fn func(*owner)) {
	o.doneMu.Lock()
	o.done = append(o.done, fn)
	o.doneMu.Unlock()
	select {
	case o.doneCh <- struct{}{}:
	default:
	}
}

func (o *owner) run() {
	defer o.hub.owners.Done()
	o.load()
	idle := time.NewTicker(o.hub.cfg.IdleCheck)
	defer idle.Stop()
	defer o.timer.Stop()
	defer o.ticker.Stop()
	defer o.retryTimer.Stop() // no retry outlives the hub
	for {
		select {
		case fn := <-o.inbox:
			fn(o)
			o.lastUsed = o.hub.now()
			if o.err != nil && o.retire(true) {
				return
			}
		case <-o.doneCh:
			o.runCompletions()
		case <-o.timer.C:
			o.clockTick()
		case <-o.retryTimer.C:
			o.retryWrites()
		case <-o.ticker.C:
			o.tick()
		case <-idle.C:
			if o.retire(false) {
				return
			}
		case <-o.hub.ctx.Done():
			o.mu.Lock()
			o.closed = true
			o.mu.Unlock()
			return
		}
	}
}

// retire ends the goroutine when nobody needs it: no subscribers, no writes in
// flight or waiting to be retried, nothing in the inbox, idle long enough (or
// the set failed to load). A subscriber whose socket has closed no longer
// counts, whether or not its unsubscribe reached the inbox.
func (o *owner) retire(force bool) bool {
	for c := range o.subs {
		if c.isClosing() {
			delete(o.subs, c)
		}
	}
	if len(o.subs) > 0 || o.pending > 0 || len(o.retries) > 0 || o.resync {
		return false
	}
	if !force && o.hub.now().Sub(o.lastUsed) < o.hub.cfg.IdleTimeout {
		return false
	}
	o.hub.mu.Lock()
	defer o.hub.mu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.inbox) > 0 {
		return false
	}
	o.closed = true
	if o.hub.sets[o.id] == o {
		delete(o.hub.sets, o.id)
	}
	return true
}

func newEpoch() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// load rebuilds the set from the database: a new epoch, since whatever was in
// memory before (another process, an earlier owner) is gone.
func (o *owner) load() {
	o.lastUsed = o.hub.now()
	o.err = o.loadStored()
}

// loadStored replaces the set's state with what storage holds, under a new
// epoch, and lets the clock catch up with now.
func (o *owner) loadStored() error {
	ctx, cancel := context.WithTimeout(o.hub.ctx, 10*time.Second)
	defer cancel()
	set, err := o.hub.store.FindSet(ctx, o.id)
	if err != nil {
		return err
	}
	cues, mistakes, err := o.hub.store.SetCueBook(ctx, o.id)
	if err != nil {
		return err
	}
	events, err := o.hub.store.SetEvents(ctx, o.id)
	if err != nil {
		return err
	}
	o.epoch = newEpoch()
	o.set, o.book = set, newBook(cues, mistakes)
	o.m, _ = fold(set, o.book, events)
	o.events, o.ending, o.n = map[uuid.UUID]*eventRecord{}, nil, 0
	for _, e := range events {
		o.events[e.EventID] = &eventRecord{event: e, committed: true}
		o.n = max(o.n, e.N)
	}
	if set.Status == domain.SetLive {
		o.m.tick(o.hub.now()) // stored with the next event, like any clock reading
	}
	// The frames before now were never in this epoch's window: a since_seq
	// below the latest seq gets a snapshot, not an empty replay.
	o.ring = newRing(o.hub.cfg.ReplayWindow)
	o.ring.last = o.m.state.LastSeq()
	o.rearm()
	return nil
}

// clockTick is the server's clock reaching a deadline of the rep timer.
func (o *owner) clockTick() {
	o.broadcast(o.m.tick(o.hub.now()))
	o.rearm()
}

// applyEvent runs an event through the rep timer, broadcasts what it produced
// and re-arms the clock. It returns the event as it is to be stored; no frames
// (and no error) means there is nothing to store. Nothing changes when the
// timer refuses the event.
func (o *owner) applyEvent(e postgres.SetEvent) (postgres.SetEvent, []reptimer.Frame, error) {
	if o.resync {
		return e, nil, errResync
	}
	e, frames, err := o.m.apply(e)
	if err != nil {
		return e, nil, err
	}
	o.broadcast(frames)
	o.rearm()
	return e, frames, nil
}

func (o *owner) broadcast(frames []reptimer.Frame) {
	for _, f := range frames {
		b := encodeBroadcast(f, o.id, o.epoch)
		o.ring.push(f.Seq, b)
		for c := range o.subs {
			if !c.enqueue(b) {
				delete(o.subs, c)
			}
		}
	}
}

// rearm points the timer at the rep timer's next clock deadline and runs the
// hold ticker only while the clock counts a hold down.
func (o *owner) rearm() {
	now := o.hub.now()
	if d := reptimer.NextDeadline(o.m.state); d.IsZero() {
		o.timer.Stop()
	} else {
		o.timer.Reset(max(d.Sub(now), 0))
	}
	switch active := reptimer.HoldCounting(o.m.state); {
	case active && !o.ticking:
		o.ticker.Reset(o.hub.cfg.HoldTick)
		o.ticking = true
	case !active && o.ticking:
		o.ticker.Stop()
		o.ticking = false
	}
}

func (o *owner) tick() {
	v := o.m.state.View(o.hub.now())
	if !reptimer.HoldCounting(o.m.state) || v.Hold == nil {
		o.rearm()
		return
	}
	b := encode(holdTickFrame{Type: "hold.tick", SetID: o.id, Rep: v.Rep, RemainingMS: v.Hold.RemainingMS})
	for c := range o.subs {
		if !c.enqueue(b) {
			delete(o.subs, c)
		}
	}
}

func (o *owner) fail(c *client, eventID string) bool {
	if o.err == nil {
		return false
	}
	c.setSubscription(o.id, nil)
	c.enqueue(errorFor(o.err, o.id.String(), eventID))
	return true
}

func (o *owner) subscribe(c *client, since *int64, epoch *string) {
	if o.fail(c, "") {
		return
	}
	o.subs[c] = struct{}{}
	last := o.m.state.LastSeq()
	if since != nil && (epoch == nil || *epoch == o.epoch) {
		if frames, ok := o.ring.since(*since); ok || *since == last {
			replay := append(frames, encode(replayedFrame{Type: "replayed", SetID: o.id, Epoch: o.epoch, LastSeq: last}))
			switch c.enqueueReplay(replay) {
			case replayQueued:
				return
			case replayClosed:
				delete(o.subs, c)
				return
			}
			// Too long for the socket's queue: a snapshot instead (DESIGN.md §4),
			// never a 4008 that the client would answer with the same resubscribe.
		}
	}
	o.snapshot(c)
}

// snapshot sends the set's current state to one subscriber.
func (o *owner) snapshot(c *client) bool {
	return c.enqueue(encode(snapshotFrame{Type: "snapshot", SetID: o.id, Epoch: o.epoch, LastSeq: o.m.state.LastSeq(),
		State: o.m.state.View(o.hub.now())}))
}

func (o *owner) unsubscribe(c *client) { delete(o.subs, c) }

// athleteEvent is a rep phase or set.end from the athlete's phone.
type athleteEvent struct {
	client   *client
	eventID  uuid.UUID
	typ      string
	phase    string
	clientTS *int64
	at       time.Time
}

func (o *owner) athleteEvent(ev athleteEvent) {
	if o.fail(ev.client, ev.eventID.String()) {
		return
	}
	if o.resent(ev.client, ev.eventID) {
		return
	}
	e, frames, err := o.applyEvent(postgres.SetEvent{EventID: ev.eventID, Type: ev.typ, Phase: ev.phase,
		ActorID: ev.client.user.UserID, At: ev.at, ClientTS: ev.clientTS, Source: "live"})
	if err != nil {
		ev.client.enqueue(errorFor(err, o.id.String(), ev.eventID.String()))
		return
	}
	rec := o.record(e, frames)
	rec.waiters = append(rec.waiters, ev.client)
	o.write(rec)
}

// resent handles an event id the set has seen: a resend by the same user is
// acknowledged again once it is stored and applied never again; an id another
// user's event has taken is refused. It reports whether the id was seen.
func (o *owner) resent(c *client, eventID uuid.UUID) bool {
	rec, seen := o.events[eventID]
	switch {
	case !seen:
		return false
	case rec.event.ActorID != c.user.UserID:
		c.enqueue(errorFor(domain.Errorf(domain.CodeConflict, "event_id is already taken by another event of this set"), o.id.String(), eventID.String()))
	case rec.committed:
		c.enqueue(o.ack(eventID))
	default:
		rec.addWaiter(c)
		o.write(rec)
	}
	return true
}

func (o *owner) ack(eventID uuid.UUID) []byte {
	return encode(ackFrame{Type: "ack", SetID: o.id, EventID: eventID})
}

// record numbers an applied event and remembers it; an event that ended the
// set carries the set's final summary to the database with it.
func (o *owner) record(e postgres.SetEvent, frames []reptimer.Frame) *eventRecord {
	o.n++
	e.SetID, e.N = o.id, o.n
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
// taken by another writer, a row it references gone): trying it again can
// never succeed.
func writeRefused(err error) bool {
	switch domain.ErrorCode(err) {
	case domain.CodeConflict, domain.CodeNotFound, domain.CodeInvalid:
		return true
	}
	return false
}

func (o *owner) written(rec *eventRecord, err error) {
	o.pending--
	rec.writing = false
	waiters, callbacks := rec.waiters, rec.onCommit
	rec.waiters, rec.onCommit = nil, nil
	switch {
	case err == nil:
		rec.committed = true
		for _, c := range waiters {
			c.enqueue(o.ack(rec.event.EventID))
		}
		if rec.ending != nil {
			o.set.Status = domain.SetEnded
			o.hub.notifySetEnded(o.id, o.set.AthleteID, o.m.state.Summary())
		}
	case writeRefused(err):
		// What is live can no longer be stored as it is (another process wrote
		// this set too): the set reloads from storage once nothing of it is in
		// flight, and its subscribers resync from a snapshot of a new epoch.
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
	if o.resync && o.pending == 0 {
		o.reload()
	}
}

// writeRetry is the pause before a failed write is tried again.
const writeRetry = time.Second

// retryWrites writes again what failed, or tries a pending reload again.
func (o *owner) retryWrites() {
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
// and sends every subscriber a snapshot of it. Writes that were waiting to be
// retried are dropped: unacknowledged, their phones resend them.
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
	for c := range o.subs {
		if !o.snapshot(c) {
			delete(o.subs, c)
		}
	}
}

// coachCommand is a cue or a mistake flag from a coach. With an eventID the
// coach's socket is acknowledged once the event is committed, and a resend is
// acknowledged again and applied once (DESIGN.md §4); without one the event
// gets a server-made id and no ack.
type coachCommand struct {
	client    *client
	at        time.Time
	cueID     *uuid.UUID
	text      string
	mistakeID *uuid.UUID
	eventID   *uuid.UUID
}

func (o *owner) coachCue(cmd coachCommand) {
	rawEventID := ""
	eventID := uuid.New()
	if cmd.eventID != nil {
		rawEventID, eventID = cmd.eventID.String(), *cmd.eventID
	}
	if o.fail(cmd.client, rawEventID) {
		return
	}
	if cmd.eventID != nil && o.resent(cmd.client, eventID) {
		return
	}
	e := postgres.SetEvent{EventID: eventID, ActorID: cmd.client.user.UserID, At: cmd.at, Source: "live"}
	switch {
	case cmd.mistakeID != nil:
		e.Type, e.MistakeID = "mistake.flag", cmd.mistakeID
	case cmd.cueID != nil:
		cue, ok := o.book.cues[*cmd.cueID]
		if !ok {
			cmd.client.enqueue(errorFor(domain.NotFound("cue"), o.id.String(), rawEventID))
			return
		}
		e.Type, e.CueID, e.Text = "cue.send", cmd.cueID, cue.Text
	default:
		e.Type, e.Text = "cue.send", cmd.text
	}
	e, frames, err := o.applyEvent(e)
	if err != nil {
		cmd.client.enqueue(errorFor(err, o.id.String(), rawEventID))
		return
	}
	rec := o.record(e, frames)
	if cmd.eventID != nil {
		rec.waiters = append(rec.waiters, cmd.client)
	}
	o.write(rec)
}

func (o *owner) cueAck(c *client, seq int64, at time.Time) {
	if o.fail(c, "") {
		return
	}
	e, frames, err := o.applyEvent(postgres.SetEvent{EventID: uuid.New(), Type: "cue.ack", CueSeq: seq, ActorID: c.user.UserID, At: at, Source: "live"})
	if err != nil {
		c.enqueue(errorFor(err, o.id.String(), ""))
		return
	}
	if len(frames) == 0 {
		return // the same receipt again: already counted, nothing to store
	}
	o.write(o.record(e, frames))
}

// UploadEvent is one event recorded offline by the phone.
type UploadEvent struct {
	EventID uuid.UUID
	Type    string // rep.phase or set.end
	Phase   string
	At      time.Time
}

// Rejection is an uploaded event the rep timer refused.
type Rejection struct {
	EventID uuid.UUID   `json:"event_id"`
	Code    domain.Code `json:"code"`
}

// UploadResult counts what an upload did.
type UploadResult struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   []Rejection `json:"rejected"`
}

// upload applies offline events in the order of their own timestamps, each at
// its own time, and replies once every accepted (or resent but unstored) event
// is committed.
func (o *owner) upload(actor uuid.UUID, events []UploadEvent, reply func(UploadResult, error)) {
	if o.err != nil || o.resync {
		reply(UploadResult{}, cmp.Or(o.err, error(errResync)))
		return
	}
	sorted := append([]UploadEvent(nil), events...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].At.Before(sorted[j].At) })
	res := UploadResult{Rejected: []Rejection{}}
	var waiting []*eventRecord
	for _, ev := range sorted {
		if rec, seen := o.events[ev.EventID]; seen {
			res.Duplicates++
			if !rec.committed {
				waiting = append(waiting, rec)
			}
			continue
		}
		e, frames, err := o.applyEvent(postgres.SetEvent{EventID: ev.EventID, Type: ev.Type, Phase: ev.Phase,
			ActorID: actor, At: ev.At, Source: "upload"})
		if err != nil {
			res.Rejected = append(res.Rejected, Rejection{EventID: ev.EventID, Code: domain.ErrorCode(err)})
			continue
		}
		res.Accepted++
		waiting = append(waiting, o.record(e, frames))
	}
	o.whenCommitted(waiting, func(err error) { reply(res, err) })
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

// end ends the set from REST and replies with the summary once it is stored.
// Ending a set that has ended answers its summary again.
func (o *owner) end(actor uuid.UUID, reply func(reptimer.Summary, error)) {
	if o.err != nil {
		reply(reptimer.Summary{}, o.err)
		return
	}
	if o.m.state.View(o.hub.now()).Status == domain.SetEnded {
		var recs []*eventRecord
		if o.ending != nil {
			recs = append(recs, o.ending)
		}
		o.whenCommitted(recs, func(err error) { reply(o.m.state.Summary(), err) })
		return
	}
	e, frames, err := o.applyEvent(postgres.SetEvent{EventID: uuid.New(), Type: "set.end", ActorID: actor, At: o.hub.now(), Source: "live"})
	if err != nil {
		reply(reptimer.Summary{}, err)
		return
	}
	rec := o.record(e, frames)
	o.whenCommitted([]*eventRecord{rec}, func(err error) { reply(o.m.state.Summary(), err) })
}
