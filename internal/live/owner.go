package live

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/reptimer"
)

// owner is the one goroutine, in the whole cluster, that holds a set's live
// state: the rep timer's state, its clock, the seq and the replay window. It
// holds the set's lease (its fencing token goes with every write), takes
// commands from its inbox whichever node they came from, publishes what they
// produce to the hub's outlet and answers each at the command's address.
type owner struct {
	hub   *Hub
	id    uuid.UUID
	inbox chan command

	mu     sync.RWMutex // guards closed against posts racing the exit
	closed bool

	doneMu sync.Mutex // completions from the committer, which must never block
	done   []func(*owner)
	doneCh chan struct{}

	// Below: owned by the goroutine.
	err      error // the set could not be loaded (or is owned elsewhere); every command answers it
	lease    int64 // the fencing token of this node's lease on the set (0: none)
	stopOwn  func()
	set      domain.Set
	epoch    string
	book     book
	m        machine // the rep timer, and what storage needs to rebuild it
	ring     *ring
	outbox                // applied events on their way to the database, and who waits for them
	timer    *time.Timer  // the rep timer's next clock deadline
	ticker   *time.Ticker // hold.tick while the clock counts a hold down
	ticking  bool
	lastUsed time.Time
	// athleteHere is when a command of the set's athlete last came from a
	// socket of this node (a set moves to its athlete's node, but never away
	// from a node the athlete still uses).
	athleteHere time.Time
	left        bool // the set moved on (to its athlete's node, or its lease to another): no more commands
}

func newOwner(h *Hub, id uuid.UUID) *owner {
	o := &owner{
		hub: h, id: id,
		inbox:  make(chan command, 1024),
		doneCh: make(chan struct{}, 1),
		ring:   newRing(h.cfg.ReplayWindow),
		timer:  time.NewTimer(time.Hour),
		ticker: time.NewTicker(time.Hour),
	}
	o.outbox = newOutbox()
	o.timer.Stop()
	o.ticker.Stop()
	return o
}

var (
	errBusy   = &domain.Error{Code: domain.CodeUnavailable, Message: "the set is busy, try again", RetryAfter: time.Second}
	errResync = &domain.Error{Code: domain.CodeUnavailable, Message: "the set is being reloaded from storage, try again", RetryAfter: time.Second}
	errGone   = errors.New("the set's owner has retired")
)

// post puts a command in the inbox without waiting: a full inbox refuses it
// (errBusy), a retired owner answers errGone (the caller finds the new one).
func (o *owner) post(cmd command) error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		return errGone
	}
	select {
	case o.inbox <- cmd:
		return nil
	default:
		return errBusy
	}
}

// do runs fn in the set's goroutine (this node's housekeeping and tests). If
// this owner has just retired, the hub's current owner of the set takes it.
func (o *owner) do(fn func(*owner)) error {
	for attempt := 0; attempt < 3; attempt++ {
		err := o.post(command{Kind: cmdRun, Set: o.id, run: fn})
		if err != errGone || o.hub.closing.Load() { // shutting down: no new owner to ask
			return err
		}
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
		case cmd := <-o.inbox:
			o.handle(cmd)
			o.lastUsed = o.hub.now()
			if o.left && o.pending == 0 {
				return
			}
		case <-o.doneCh:
			o.runCompletions()
			if o.left && o.pending == 0 {
				return
			}
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
			continue
		case <-o.hub.ctx.Done():
			o.mu.Lock()
			o.closed = true
			o.mu.Unlock()
			o.disown() // the lease goes with the node (Shutdown)
			return
		}
		if o.err != nil && o.retire(true) {
			return
		}
	}
}

// handle is the one place a command meets the set.
func (o *owner) handle(cmd command) {
	if cmd.Kind == cmdRun {
		cmd.run(o)
		return
	}
	if o.err != nil {
		var holder ownedBy
		if errors.As(o.err, &holder) {
			o.hub.forwardAfterClaim(cmd, o.err)
			return
		}
		o.refuse(cmd, o.err)
		return
	}
	if o.athleteCommand(cmd) {
		if cmd.From.Node == o.hub.node {
			o.athleteHere = o.hub.now()
		} else if o.movable() {
			o.moveTo(cmd)
			return
		}
	}
	switch cmd.Kind {
	case cmdSubscribe:
		o.subscribe(cmd)
	case cmdPhase, cmdEndFrame:
		o.athleteEvent(cmd)
	case cmdCue, cmdMistake:
		o.coachCue(cmd)
	case cmdCueAck:
		o.cueAck(cmd)
	case cmdUpload:
		o.upload(cmd)
	case cmdEnd:
		o.end(cmd)
	case cmdWatch: // a node's sockets still watch: lastUsed is all it needs
	}
}

// refuse answers a command the set did not take, at its address.
func (o *owner) refuse(cmd command, err error) { o.hub.refuse(cmd, err) }

// athleteCommand reports whether a command comes from the set's athlete's
// phone (what must stay quick: phase → timer → ack).
func (o *owner) athleteCommand(cmd command) bool {
	switch cmd.Kind {
	case cmdSubscribe, cmdPhase, cmdEndFrame, cmdCueAck:
		return cmd.Actor == o.set.AthleteID && cmd.From.Node != uuid.Nil
	}
	return false
}

// athleteAffinity is how long a set stays on a node after its athlete's
// last command from there: an athlete with sockets on two nodes (a phone and
// a browser) does not make the set bounce between them.
const athleteAffinity = 30 * time.Second

// movable reports whether the set may move now: live, nothing in flight, no
// hold being timed, and its athlete not seen on this node lately.
func (o *owner) movable() bool {
	return o.set.Status == domain.SetLive && o.pending == 0 && len(o.retries) == 0 && !o.resync &&
		!reptimer.HoldCounting(o.m.state) && o.hub.now().Sub(o.athleteHere) > athleteAffinity
}

// moveTo hands the set to the node of its athlete's socket (DESIGN.md §7:
// phase → timer → ack stays on one node; only the fan-out to coaches crosses
// NATS): this owner stops answering for the set, gives its lease back and
// sends that node the command, and whatever else was waiting in the inbox,
// to route again there, where it claims the set under a new epoch.
func (o *owner) moveTo(cmd command) {
	o.hub.metrics.moves.Inc()
	o.release()
	to := cmd.From.Node
	o.hub.reply(address{Node: to}, nodeMsg{Reroute: &cmd})
	o.leave(func(next command) { o.hub.reply(address{Node: to}, nodeMsg{Reroute: &next}) })
}

// leave stops taking commands for the set: the hub forgets this owner, so
// that the next command starts from scratch (a new owner, here or where the
// set went), and what waited in the inbox goes to pass. The goroutine ends
// once its writes in flight are done.
func (o *owner) leave(pass func(command)) {
	o.disown()
	o.hub.mu.Lock()
	o.mu.Lock()
	o.closed, o.left = true, true
	if o.hub.sets[o.id] == o {
		delete(o.hub.sets, o.id)
	}
	o.mu.Unlock()
	o.hub.mu.Unlock()
	o.timer.Stop() // its clock is the new owner's now
	o.ticker.Stop()
	o.ticking = false
	for {
		select {
		case next := <-o.inbox:
			if next.Kind == cmdRun {
				next.run(o)
				continue
			}
			pass(next)
		default:
			return
		}
	}
}

// retire ends the goroutine when nobody needs it: no writes in flight or
// waiting to be retried, nothing in the inbox, no socket of this node
// watching, and no command (another node's keep-alive for its watchers
// included) for IdleTimeout — or at once when the set could not be loaded or
// is owned elsewhere. A watcher whose socket has closed no longer counts.
func (o *owner) retire(force bool) bool {
	if o.pending > 0 || (o.err == nil && (len(o.retries) > 0 || o.resync)) {
		return false
	}
	if !force && o.hub.watched(o.id) {
		return false
	}
	if !force && o.hub.now().Sub(o.lastUsed) < o.hub.cfg.IdleTimeout {
		return false
	}
	o.hub.mu.Lock()
	o.mu.Lock()
	if len(o.inbox) > 0 {
		o.mu.Unlock()
		o.hub.mu.Unlock()
		return false
	}
	o.closed = true
	if o.hub.sets[o.id] == o {
		delete(o.hub.sets, o.id)
	}
	o.mu.Unlock()
	o.hub.mu.Unlock()
	o.release()
	return true
}

// disown stops answering for the set on the bus.
func (o *owner) disown() {
	if o.stopOwn != nil {
		o.stopOwn()
		o.stopOwn = nil
	}
}

// release gives the set's lease back, so that any node may take the set at
// once rather than after the lease's lifetime.
func (o *owner) release() {
	o.disown()
	if o.lease == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := o.hub.store.ReleaseLease(ctx, o.id, o.lease); err != nil {
		o.hub.log.Warn("releasing a set's lease failed; it lapses by itself", "set", o.id, "err", err)
	}
	o.lease = 0
}

func newEpoch() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// load takes the set's lease for this node and rebuilds the set from the
// database under a new epoch, since whatever was in memory before (another
// node, an earlier owner) is gone.
func (o *owner) load() {
	o.lastUsed = o.hub.now()
	if o.err = o.claim(); o.err != nil {
		return
	}
	if o.err = o.loadStored(); o.err != nil {
		return
	}
	o.announce()
}

// claim takes the set's lease: a new fencing token, which every write of this
// owner carries into its commit. A set another live node holds is refused
// with the time until that node's lease would lapse.
func (o *owner) claim() error {
	ctx, cancel := context.WithTimeout(o.hub.ctx, 5*time.Second)
	defer cancel()
	token, holder, expiresIn, err := o.hub.store.AcquireLease(ctx, o.id, o.hub.node)
	if err != nil {
		return err
	}
	if token == 0 {
		return &domain.Error{Code: domain.CodeUnavailable, Message: "this set is live on another server, try again",
			RetryAfter: max(time.Second, expiresIn.Round(time.Second)), Err: ownedBy{holder}}
	}
	o.lease = token
	o.stopOwn = o.hub.bus.Own(o.id)
	return nil
}

// ownedBy says which node holds a set's lease.
type ownedBy struct{ node uuid.UUID }

func (e ownedBy) Error() string { return "owned by node " + e.node.String() }

// announce tells every node watching the set that it has a new epoch, so
// that their sockets resync from a snapshot rather than wait for a frame.
func (o *owner) announce() {
	o.hub.publish(o.id, busFrame{Seq: o.m.state.LastSeq(), Epoch: o.epoch})
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
	o.outbox.reset(events)
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

// broadcast publishes the set's numbered frames: kept for replays, and sent
// to every watching socket on every node.
func (o *owner) broadcast(frames []reptimer.Frame) {
	for _, f := range frames {
		b := encodeBroadcast(f, o.id, o.epoch)
		o.ring.push(f.Seq, b)
		o.hub.publish(o.id, busFrame{Seq: f.Seq, Epoch: o.epoch, Data: b})
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
	o.hub.publish(o.id, busFrame{Epoch: o.epoch, Data: b})
}

// subscribe answers a socket that starts watching (or resyncs): every
// broadcast frame after since_seq again and `replayed`, when this epoch's
// window still holds them and they fit a socket's queue; else a snapshot.
func (o *owner) subscribe(cmd command) {
	last := o.m.state.LastSeq()
	msg := syncMsg{Set: o.id, Socket: cmd.From.Socket, Epoch: o.epoch, LastSeq: last}
	if cmd.Since != nil && (cmd.Epoch == nil || *cmd.Epoch == o.epoch) {
		// A replay must leave a quarter of a socket's queue free for what
		// follows; a longer one would only end in 4008 (DESIGN.md §4).
		if frames, ok := o.ring.since(*cmd.Since); (ok || *cmd.Since == last) && len(frames) < o.hub.cfg.SendQueue*3/4 {
			for _, f := range frames {
				msg.Frames = append(msg.Frames, f)
			}
			msg.Frames = append(msg.Frames, encode(replayedFrame{Type: "replayed", SetID: o.id, Epoch: o.epoch, LastSeq: last}))
			msg.Replay = true
		} else if ok {
			o.hub.metrics.replaysAsSnapshot.Inc()
		}
	}
	if !msg.Replay {
		msg.Frames = []json.RawMessage{o.snapshot()}
	}
	o.hub.reply(cmd.From, nodeMsg{Sync: &msg})
}

// snapshot is the set's current state, for one socket.
func (o *owner) snapshot() []byte {
	return encode(snapshotFrame{Type: "snapshot", SetID: o.id, Epoch: o.epoch, LastSeq: o.m.state.LastSeq(),
		State: o.m.state.View(o.hub.now())})
}

// athleteEvent is a rep phase or set.end from the athlete's phone.
func (o *owner) athleteEvent(cmd command) {
	if o.resent(cmd) {
		return
	}
	e := postgres.SetEvent{EventID: cmd.EventID, Type: "rep.phase", Phase: cmd.Phase,
		ActorID: cmd.Actor, At: cmd.At, ClientTS: cmd.ClientTS, Source: "live"}
	if cmd.Kind == cmdEndFrame {
		e.Type, e.Phase = "set.end", ""
	}
	e, frames, err := o.applyEvent(e)
	if err != nil {
		o.refuse(cmd, err)
		return
	}
	rec := o.record(e, frames)
	rec.waiters = append(rec.waiters, cmd.From)
	o.write(rec)
}

// resent handles an event id the set has seen: a resend by the same user is
// acknowledged again once it is stored and applied never again; an id another
// user's event has taken is refused. It reports whether the id was seen.
func (o *owner) resent(cmd command) bool {
	rec, seen := o.events[cmd.EventID]
	switch {
	case !seen:
		return false
	case rec.event.ActorID != cmd.Actor:
		o.refuse(cmd, domain.Errorf(domain.CodeConflict, "event_id is already taken by another event of this set"))
	case rec.committed:
		o.hub.reply(cmd.From, nodeMsg{Frame: o.ack(cmd.EventID)})
	default:
		rec.addWaiter(cmd.From)
		o.write(rec)
	}
	return true
}

func (o *owner) ack(eventID uuid.UUID) []byte {
	return encode(ackFrame{Type: "ack", SetID: o.id, EventID: eventID})
}

// coachCue is a cue or a mistake flag from a coach. With an event_id the
// coach's socket is acknowledged once the event is committed, and a resend is
// acknowledged again and applied once (DESIGN.md §4); without one the event
// gets a server-made id and no ack.
func (o *owner) coachCue(cmd command) {
	withID := cmd.EventID != uuid.Nil
	if withID && o.resent(cmd) {
		return
	}
	e := postgres.SetEvent{EventID: cmd.EventID, ActorID: cmd.Actor, At: cmd.At, Source: "live"}
	if !withID {
		e.EventID = uuid.New()
	}
	switch {
	case cmd.Kind == cmdMistake:
		e.Type, e.MistakeID = "mistake.flag", cmd.MistakeID
	case cmd.CueID != nil:
		cue, ok := o.book.cues[*cmd.CueID]
		if !ok {
			o.refuse(cmd, domain.NotFound("cue"))
			return
		}
		e.Type, e.CueID, e.Text = "cue.send", cmd.CueID, cue.Text
	default:
		e.Type, e.Text = "cue.send", cmd.Text
	}
	e, frames, err := o.applyEvent(e)
	if err != nil {
		o.refuse(cmd, err)
		return
	}
	rec := o.record(e, frames)
	if withID {
		rec.waiters = append(rec.waiters, cmd.From)
	}
	o.write(rec)
}

func (o *owner) cueAck(cmd command) {
	e, frames, err := o.applyEvent(postgres.SetEvent{EventID: uuid.New(), Type: "cue.ack", CueSeq: cmd.CueSeq, ActorID: cmd.Actor, At: cmd.At, Source: "live"})
	if err != nil {
		o.refuse(cmd, err)
		return
	}
	if len(frames) == 0 {
		return // the same receipt again: already counted, nothing to store
	}
	o.write(o.record(e, frames))
}

// UploadEvent is one event recorded offline by the phone.
type UploadEvent struct {
	EventID uuid.UUID `json:"id"`
	Type    string    `json:"type"` // rep.phase or set.end
	Phase   string    `json:"phase,omitempty"`
	At      time.Time `json:"at"`
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
// its own time, and answers once every accepted (or resent but unstored)
// event is committed.
func (o *owner) upload(cmd command) {
	if o.resync {
		o.refuse(cmd, errResync)
		return
	}
	sorted := append([]UploadEvent(nil), cmd.Upload...)
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
			ActorID: cmd.Actor, At: ev.At, Source: "upload"})
		if err != nil {
			res.Rejected = append(res.Rejected, Rejection{EventID: ev.EventID, Code: domain.ErrorCode(err)})
			continue
		}
		res.Accepted++
		waiting = append(waiting, o.record(e, frames))
	}
	o.whenCommitted(waiting, func(err error) {
		o.hub.reply(cmd.From, nodeMsg{Result: &result{Upload: res, Err: toWire(err)}})
	})
}

// end ends the set from REST and answers with the summary once it is stored.
// Ending a set that has ended answers its summary again.
func (o *owner) end(cmd command) {
	answer := func(err error) {
		o.hub.reply(cmd.From, nodeMsg{Result: &result{Summary: o.m.state.Summary(), Err: toWire(err)}})
	}
	if o.m.state.View(o.hub.now()).Status == domain.SetEnded {
		var recs []*eventRecord
		if o.ending != nil {
			recs = append(recs, o.ending)
		}
		o.whenCommitted(recs, answer)
		return
	}
	e, frames, err := o.applyEvent(postgres.SetEvent{EventID: uuid.New(), Type: "set.end", ActorID: cmd.Actor, At: cmd.At, Source: "live"})
	if err != nil {
		answer(err)
		return
	}
	o.whenCommitted([]*eventRecord{o.record(e, frames)}, answer)
}
