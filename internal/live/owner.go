package live

import (
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
	err      error // the set could not be loaded; every command answers it
	set      domain.Set
	epoch    string
	book     book
	state    reptimer.State
	ring     *ring
	subs     map[*client]struct{}
	events   map[uuid.UUID]*eventRecord
	ending   *eventRecord
	n        int
	pending  int // writes with the committer
	retrying int // failed writes waiting to be tried again
	timer    *time.Timer
	ticker   *time.Ticker
	ticking  bool
	lastUsed time.Time
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

func newOwner(h *Hub, id uuid.UUID) *owner {
	o := &owner{
		hub: h, id: id,
		inbox:  make(chan func(*owner), 1024),
		doneCh: make(chan struct{}, 1),
		subs:   map[*client]struct{}{},
		events: map[uuid.UUID]*eventRecord{},
		ring:   newRing(h.cfg.ReplayWindow),
		timer:  time.NewTimer(time.Hour),
		ticker: time.NewTicker(time.Hour),
	}
	o.timer.Stop()
	o.ticker.Stop()
	return o
}

var errBusy = &domain.Error{Code: domain.CodeUnavailable, Message: "the set is busy, try again", RetryAfter: time.Second}

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
			st, frames := reptimer.Advance(o.state, o.hub.now())
			o.state = st
			o.broadcast(frames)
			o.rearm()
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
// flight, nothing in the inbox, idle long enough (or the set failed to load).
func (o *owner) retire(force bool) bool {
	if len(o.subs) > 0 || o.pending > 0 || o.retrying > 0 {
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
	o.epoch = newEpoch()
	ctx, cancel := context.WithTimeout(o.hub.ctx, 10*time.Second)
	defer cancel()
	set, err := o.hub.store.FindSet(ctx, o.id)
	if err != nil {
		o.err = err
		return
	}
	cues, mistakes, err := o.hub.store.LoadCueBook(ctx, set.ExerciseID)
	if err != nil {
		o.err = err
		return
	}
	events, err := o.hub.store.SetEvents(ctx, o.id)
	if err != nil {
		o.err = err
		return
	}
	o.set, o.book = set, newBook(cues, mistakes)
	o.state, _ = Fold(set, o.book, events)
	for _, e := range events {
		o.events[e.EventID] = &eventRecord{event: e, committed: true}
		o.n = max(o.n, e.N)
	}
	if set.Status == domain.SetLive {
		st, _ := reptimer.Advance(o.state, o.hub.now())
		o.state = st
	}
	// The frames before now were never in this epoch's window: a since_seq
	// below the latest seq gets a snapshot, not an empty replay.
	o.ring.last = o.state.LastSeq()
	o.rearm()
}

// apply runs an event through the rep timer, broadcasts what it produced and
// re-arms the clock. Nothing changes when the timer refuses the event.
func (o *owner) apply(ev reptimer.Event, at time.Time) ([]reptimer.Frame, error) {
	st, frames, err := reptimer.Apply(o.state, ev, at)
	// Even a refused event may have let deadlines pass: keep what they produced.
	o.state = st
	o.broadcast(frames)
	o.rearm()
	if err != nil {
		return nil, err
	}
	return frames, nil
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

// rearm points the timer at the rep timer's next deadline and runs the hold
// ticker only while a hold counts down.
func (o *owner) rearm() {
	now := o.hub.now()
	if d := reptimer.NextDeadline(o.state); d.IsZero() {
		o.timer.Stop()
	} else {
		o.timer.Reset(max(d.Sub(now), 0))
	}
	hold := o.state.View(now).Hold
	switch active := hold != nil && !hold.Done; {
	case active && !o.ticking:
		o.ticker.Reset(o.hub.cfg.HoldTick)
		o.ticking = true
	case !active && o.ticking:
		o.ticker.Stop()
		o.ticking = false
	}
}

func (o *owner) tick() {
	v := o.state.View(o.hub.now())
	if v.Hold == nil || v.Hold.Done {
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
	last := o.state.LastSeq()
	if since != nil && (epoch == nil || *epoch == o.epoch) {
		if frames, ok := o.ring.since(*since); ok || *since == last {
			for _, f := range frames {
				if !c.enqueue(f) {
					delete(o.subs, c)
					return
				}
			}
			c.enqueue(encode(replayedFrame{Type: "replayed", SetID: o.id, Epoch: o.epoch, LastSeq: last}))
			return
		}
	}
	c.enqueue(encode(snapshotFrame{Type: "snapshot", SetID: o.id, Epoch: o.epoch, LastSeq: last, State: o.state.View(o.hub.now())}))
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
	if rec, seen := o.events[ev.eventID]; seen {
		// A resend: acknowledge it again once it is stored, apply it never again.
		if rec.committed {
			ev.client.enqueue(o.ack(ev.eventID))
			return
		}
		rec.waiters = append(rec.waiters, ev.client)
		o.write(rec)
		return
	}
	var tev reptimer.Event = reptimer.End{}
	if ev.typ == "rep.phase" {
		tev = reptimer.RepPhase{Phase: reptimer.Phase(ev.phase)}
	}
	frames, err := o.apply(tev, ev.at)
	if err != nil {
		ev.client.enqueue(errorFor(err, o.id.String(), ev.eventID.String()))
		return
	}
	rec := o.record(postgres.SetEvent{EventID: ev.eventID, Type: ev.typ, Phase: ev.phase, ActorID: ev.client.user.UserID,
		At: ev.at, ClientTS: ev.clientTS, Source: "live"}, frames)
	rec.waiters = append(rec.waiters, ev.client)
	o.write(rec)
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
		if f.Type == "set.ended" {
			rec.ending = &postgres.SetEnding{SetID: o.id, EndedAt: e.At, Summary: o.state.Summary()}
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

func (o *owner) written(rec *eventRecord, err error) {
	o.pending--
	rec.writing = false
	waiters, callbacks := rec.waiters, rec.onCommit
	rec.waiters, rec.onCommit = nil, nil
	if err == nil {
		rec.committed = true
		for _, c := range waiters {
			c.enqueue(o.ack(rec.event.EventID))
		}
		if rec.ending != nil {
			o.set.Status = domain.SetEnded
			o.hub.notifySetEnded(o.id, o.set.AthleteID, o.state.Summary())
		}
	}
	for _, cb := range callbacks {
		cb(err)
	}
	if err != nil {
		// The sockets get no ack (the phone resends, and a resend is written at
		// once); the event is also written again after a pause, so that events
		// nobody resends (coach cues, receipts) are stored once the database is back.
		o.retrying++
		time.AfterFunc(writeRetry, func() {
			_ = o.doSoon(func(o *owner) {
				o.retrying--
				o.write(rec)
			})
		})
	}
}

// writeRetry is the pause before a failed write is tried again.
const writeRetry = time.Second

// coachCommand is a cue or a mistake flag from a coach.
type coachCommand struct {
	client    *client
	at        time.Time
	cueID     *uuid.UUID
	text      string
	mistakeID *uuid.UUID
}

func (o *owner) coachCue(cmd coachCommand) {
	if o.fail(cmd.client, "") {
		return
	}
	e := postgres.SetEvent{EventID: uuid.New(), ActorID: cmd.client.user.UserID, At: cmd.at, Source: "live"}
	var ev reptimer.Event
	switch {
	case cmd.mistakeID != nil:
		e.Type, e.MistakeID = "mistake.flag", cmd.mistakeID
		ev = reptimer.FlagMistake{MistakeID: cmd.mistakeID.String()}
	case cmd.cueID != nil:
		cue, ok := o.book.cues[*cmd.cueID]
		if !ok {
			cmd.client.enqueue(errorFor(domain.NotFound("cue"), o.id.String(), ""))
			return
		}
		e.Type, e.CueID, e.Text = "cue.send", cmd.cueID, cue.Text
		ev = reptimer.CoachCue{ID: cue.ID.String(), Text: cue.Text}
	default:
		e.Type, e.Text = "cue.send", cmd.text
		ev = reptimer.CoachCue{Text: cmd.text}
	}
	frames, err := o.apply(ev, cmd.at)
	if err != nil {
		cmd.client.enqueue(errorFor(err, o.id.String(), ""))
		return
	}
	o.write(o.record(e, frames))
}

func (o *owner) cueAck(c *client, seq int64, at time.Time) {
	if o.fail(c, "") {
		return
	}
	frames, err := o.apply(reptimer.CueAck{CueSeq: seq}, at)
	if err != nil {
		c.enqueue(errorFor(err, o.id.String(), ""))
		return
	}
	if !slices.ContainsFunc(frames, func(f reptimer.Frame) bool { return f.Type == "cue.ack" }) {
		return // the same receipt again: already counted, nothing to store
	}
	o.write(o.record(postgres.SetEvent{EventID: uuid.New(), Type: "cue.ack", CueSeq: seq, ActorID: c.user.UserID, At: at, Source: "live"}, frames))
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

// upload applies offline events in the order of their own timestamps and
// replies once every accepted (or resent but unstored) event is committed.
func (o *owner) upload(actor uuid.UUID, events []UploadEvent, reply func(UploadResult, error)) {
	if o.err != nil {
		reply(UploadResult{}, o.err)
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
		var tev reptimer.Event = reptimer.End{}
		if ev.Type == "rep.phase" {
			tev = reptimer.RepPhase{Phase: reptimer.Phase(ev.Phase)}
		}
		frames, err := o.apply(tev, ev.At)
		if err != nil {
			res.Rejected = append(res.Rejected, Rejection{EventID: ev.EventID, Code: domain.ErrorCode(err)})
			continue
		}
		res.Accepted++
		waiting = append(waiting, o.record(postgres.SetEvent{EventID: ev.EventID, Type: ev.Type, Phase: ev.Phase,
			ActorID: actor, At: ev.At, Source: "upload"}, frames))
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
	if o.state.View(o.hub.now()).Status == domain.SetEnded {
		var recs []*eventRecord
		if o.ending != nil {
			recs = append(recs, o.ending)
		}
		o.whenCommitted(recs, func(err error) { reply(o.state.Summary(), err) })
		return
	}
	now := o.hub.now()
	frames, err := o.apply(reptimer.End{}, now)
	if err != nil {
		reply(reptimer.Summary{}, err)
		return
	}
	rec := o.record(postgres.SetEvent{EventID: uuid.New(), Type: "set.end", ActorID: actor, At: now, Source: "live"}, frames)
	o.whenCommitted([]*eventRecord{rec}, func(err error) { reply(o.state.Summary(), err) })
}
