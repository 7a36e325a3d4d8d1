// Package live is the hub of live sets: one owner goroutine per live set, in
// the whole cluster, holds its rep-timer state, clock, seq and replay window
// (and the set's lease); one writer goroutine per socket drains a bounded
// queue; events are committed to PostgreSQL in batches, fenced by the lease,
// and acknowledged only after the commit. The wire protocol is
// api/live-protocol.md; several nodes, DESIGN.md §7.
//
// A frame's way, in one pass: client.handle reads it and makes a command
// (client.target checks the caller may act on the set), Hub.route takes it to
// the set's owner (here, or over the Bus), owner.handle applies it to the rep
// timer (fold.go), owner.broadcast publishes the frames (Hub.publish: this
// node's relay of the set, and the other nodes), the outbox writes the event
// (committer.go), and owner.written sends the ack to the command's address
// (Hub.reply), on whichever node the socket is.
package live

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/reptimer"
)

// Config tunes the hub. Zero values take the defaults.
type Config struct {
	HoldTick         time.Duration // hold.tick interval (REPCUE_HOLD_TICK)
	SendQueue        int           // frames queued per socket before it is closed with 4008
	MaxSubscriptions int           // sets one socket may watch
	ReplayWindow     int           // broadcast frames kept per set for since_seq replays
	PingPeriod       time.Duration // how often the server pings each socket
	PongWait         time.Duration // a socket silent this long (no frame, no pong) is dropped
	IdleTimeout      time.Duration // an unwatched, quiet set's goroutine retires after this
	IdleCheck        time.Duration
	SessionCheck     time.Duration // how often sockets' sessions are checked (4001)
	FrameRate        int           // frames a socket may send per second, sustained
	FrameBurst       int           // and in a burst
	LeaseTTL         time.Duration // how long a set's lease outlives its node's last heartbeat (DESIGN.md §7: at most 5 s)
	MaxSockets       int           // live sockets one account may hold open across the cluster
	Bus              Bus           // the other nodes (nil: Solo, one node)
	Now              func() time.Time
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HoldTick, 250*time.Millisecond)
	def(&c.PingPeriod, 25*time.Second)
	def(&c.PongWait, 60*time.Second)
	def(&c.IdleTimeout, 5*time.Minute)
	def(&c.IdleCheck, 30*time.Second)
	def(&c.SessionCheck, 15*time.Second)
	// A beat every second and a lease of 4: a lost node's sets are free
	// within 4 s of its last beat, inside the 5 s DESIGN.md §7 allows.
	def(&c.LeaseTTL, 4*time.Second)
	if c.MaxSockets <= 0 {
		// A phone, a tablet, a browser tab or two, with room for reconnects
		// that overlap the old socket's close.
		c.MaxSockets = 20
	}
	if c.Bus == nil {
		c.Bus = Solo{}
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 100
	}
	if c.FrameRate <= 0 {
		c.FrameRate = 50
	}
	if c.FrameBurst <= 0 {
		c.FrameBurst = 100
	}
	if c.ReplayWindow < 256 {
		// The contract's minimum (DESIGN.md §4), and enough: a replay must fit
		// in three quarters of the send queue (192 frames of 256), so older
		// frames would only ever be answered with a snapshot; each frame kept
		// costs ~350 bytes per set (at 5,000 sets a 512-frame window held ~0.9 GB).
		c.ReplayWindow = 256
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Hub is one node's part of the live sets: its sockets, the sets it owns,
// and the relays that bring other nodes' sets to its sockets.
type Hub struct {
	cfg       Config
	node      uuid.UUID // this process in the cluster
	bus       Bus
	store     *postgres.Store
	log       *slog.Logger
	committer *committer
	metrics   *metrics

	ctx    context.Context
	cancel context.CancelFunc
	owners sync.WaitGroup // owner goroutines
	conns  sync.WaitGroup // Serve calls
	bg     sync.WaitGroup // committer, session checker and background lookups

	mu      sync.RWMutex
	sets    map[uuid.UUID]*owner               // sets this node owns
	relays  map[uuid.UUID]*relay               // sets this node's sockets watch
	clients map[uuid.UUID]map[*client]struct{} // by user
	sockets map[uint64]*client                 // by id, for answers addressed to them
	calls   map[uint64]chan result             // REST calls waiting for an owner's answer
	lastID  atomic.Uint64
	beatNow chan struct{}

	closing      atomic.Bool
	shutdownOnce sync.Once
	shutdownErr  error
}

// New starts a hub: this process joins the cluster as a new node. A first
// heartbeat or bus subscription that fails is logged and tried again by
// itself (the node is not ready until they succeed).
func New(store *postgres.Store, log *slog.Logger, cfg Config) *Hub {
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := newMetrics()
	h := &Hub{
		cfg: cfg, node: uuid.New(), bus: cfg.Bus, store: store, log: log, ctx: ctx, cancel: cancel, metrics: m,
		committer: newCommitter(store, log, m, commitWorkers, 4096, 1024),
		sets:      map[uuid.UUID]*owner{},
		relays:    map[uuid.UUID]*relay{},
		clients:   map[uuid.UUID]map[*client]struct{}{},
		sockets:   map[uint64]*client{},
		calls:     map[uint64]chan result{},
		beatNow:   make(chan struct{}, 1),
	}
	hbCtx, hbCancel := context.WithTimeout(ctx, 5*time.Second)
	if err := store.Heartbeat(hbCtx, h.node, cfg.LeaseTTL); err != nil {
		log.Warn("the node's first heartbeat failed; trying again", "err", err)
	}
	hbCancel()
	if err := h.bus.Start(h.node, h); err != nil {
		log.Error("the bus could not start; the node serves only its own sets", "err", err)
	}
	h.bg.Add(4)
	go func() { defer h.bg.Done(); h.committer.run(ctx) }()
	go func() { defer h.bg.Done(); h.checkSessions() }()
	go func() { defer h.bg.Done(); h.heartbeat() }()
	go func() { defer h.bg.Done(); h.keepWatching() }()
	return h
}

func (h *Hub) now() time.Time { return h.cfg.Now() }

// Node is this process's id in the cluster.
func (h *Hub) Node() uuid.UUID { return h.node }

// Ready says whether the node can serve every set: the bus reaches the
// other nodes (a single node always can).
func (h *Hub) Ready() error { return h.bus.Ready() }

// PongWait is how long a socket may stay silent (no frame, no pong) before the
// HTTP layer drops it.
func (h *Hub) PongWait() time.Duration { return h.cfg.PongWait }

// heartbeat keeps this node alive in the cluster, and with it every lease it
// holds: a node that stops (killed, paused, cut off from PostgreSQL) loses
// its sets after LeaseTTL. A fenced write (this node's lease lapsed while it
// was away) asks for a beat at once, so the node can claim sets again.
func (h *Hub) heartbeat() {
	beats := 0
	h.every(h.cfg.LeaseTTL/4, h.beatNow, func() {
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.LeaseTTL/2)
		defer cancel()
		if err := h.store.Heartbeat(ctx, h.node, h.cfg.LeaseTTL); err != nil && h.ctx.Err() == nil {
			h.log.Warn("the node's heartbeat failed; its leases lapse unless the next one succeeds", "err", err)
		}
		if beats++; beats%sweepEvery == 1 { // the first beat, then now and then
			h.store.ForgetDeadNodes(ctx)
		}
	})
}

// sweepEvery is how many beats pass between sweeps of long-dead nodes.
const sweepEvery = 240

// every runs fn every d, and whenever now delivers (nil: never), until the hub stops.
func (h *Hub) every(d time.Duration, now <-chan struct{}, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		case <-now:
		}
		fn()
	}
}

// beat asks the heartbeat for a beat now.
func (h *Hub) beat() {
	select {
	case h.beatNow <- struct{}{}:
	default:
	}
}

// owner returns this node's owner of the set, starting one (which claims the
// set's lease and loads it) if needed.
func (h *Hub) owner(setID uuid.UUID) *owner {
	h.mu.Lock()
	defer h.mu.Unlock()
	if o := h.sets[setID]; o != nil {
		return o
	}
	o := newOwner(h, setID)
	if h.ctx.Err() != nil || h.closing.Load() { // shutting down: an owner that takes nothing
		o.closed = true
		return o
	}
	h.sets[setID] = o
	h.owners.Add(1)
	go o.run()
	return o
}

func (h *Hub) localOwner(setID uuid.UUID) *owner {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.sets[setID]
}

// route takes a command to the set's owner: this node's, else the node that
// answers for it on the bus; when none does (none serves it, it is silent, or
// the bus is down), this node claims the set, and the lease decides: a set
// another live node holds is answered `unavailable` with the time its lease
// has left, and a node that stopped answering loses it when its lease lapses.
func (h *Hub) route(cmd command) error {
	for range 3 {
		if o := h.localOwner(cmd.Set); o != nil {
			if err := o.post(cmd); err != errGone {
				return err
			}
			continue
		}
		if h.closing.Load() {
			return errClosing // this node takes no set any more
		}
		if cmd.Hops == 0 { // a command forwarded once is never sent again: it may yet be applied
			switch err := h.bus.Forward(cmd); err {
			case errNoOwner, errBusDown:
			case errOwnerSilent:
				// The owner may yet apply it. Only a claim here (its lease
				// lapsed) may take it; else it is refused.
				cmd.Hops++
			default:
				return err // taken (nil), or refused by the owner
			}
		}
		if err := h.owner(cmd.Set).post(cmd); err != errGone {
			return err
		}
	}
	return errBusy
}

// refuse answers a command the set did not take, at its address.
func (h *Hub) refuse(cmd command, err error) {
	switch cmd.Kind {
	case cmdSubscribe:
		h.reply(cmd.From, nodeMsg{Frame: errorFor(err, cmd.Set.String(), ""), Unwatch: cmd.Set})
	case cmdPhase, cmdEndFrame, cmdCue, cmdMistake, cmdCueAck:
		h.reply(cmd.From, nodeMsg{Frame: errorFor(err, cmd.Set.String(), cmd.RawEventID)})
	case cmdUpload, cmdEnd:
		h.reply(cmd.From, nodeMsg{Result: &result{Err: toWire(err)}})
	}
}

// reroute routes again, from this node, a command the set's previous owner
// passed on (the set moved here); one it cannot place is refused.
func (h *Hub) reroute(cmd command) {
	h.background(func(context.Context) {
		if err := h.route(cmd); err != nil {
			h.refuse(cmd, err)
		}
	})
}

// forwardAfterClaim hands a command to the node that won the set's lease
// while this node tried to claim it (its bus subscription may lag its claim
// by a moment), once; if that node does not take it, the command is refused.
func (h *Hub) forwardAfterClaim(cmd command, refusal error) {
	if cmd.Hops > 0 || cmd.Kind == cmdRun {
		h.refuse(cmd, refusal)
		return
	}
	cmd.Hops++
	h.background(func(ctx context.Context) {
		for try := 0; try < 3 && ctx.Err() == nil; try++ {
			switch h.bus.Forward(cmd) {
			case nil:
				return
			case errNoOwner: // its subscription may not have reached the server yet
				time.Sleep(20 * time.Millisecond)
				continue
			}
			break // refused, or silent: never sent again
		}
		h.refuse(cmd, refusal)
	})
}

// publish is the owners' outlet: a set's frame goes to this node's watching
// sockets directly and to the other nodes over the bus.
func (h *Hub) publish(setID uuid.UUID, f busFrame) {
	h.mu.RLock()
	r := h.relays[setID]
	h.mu.RUnlock()
	if r != nil {
		r.deliver(f, false)
	}
	h.bus.Publish(setID, f)
}

// reply sends an owner's answer to its address: a socket or a REST call, on
// this node or another.
func (h *Hub) reply(to address, m nodeMsg) {
	m.Socket, m.Call = to.Socket, to.Call
	if to.Node == h.node {
		h.message(m)
		return
	}
	if err := h.bus.Send(to.Node, m); err != nil {
		h.log.Debug("an answer could not reach its node", "node", to.Node, "err", err)
	}
}

// message delivers an answer addressed to this node (Receiver).
func (h *Hub) message(m nodeMsg) {
	if m.Reroute != nil {
		h.reroute(*m.Reroute)
		return
	}
	if m.Call != 0 {
		h.mu.RLock()
		ch := h.calls[m.Call]
		h.mu.RUnlock()
		if ch != nil && m.Result != nil {
			select {
			case ch <- *m.Result:
			default:
			}
		}
		return
	}
	h.mu.RLock()
	c := h.sockets[m.Socket]
	h.mu.RUnlock()
	if c == nil {
		return // closed meanwhile
	}
	if m.Sync != nil {
		if sub := c.subscription(m.Sync.Set); sub != nil {
			sub.relay.synced(c, *m.Sync)
		}
	}
	if m.Unwatch != uuid.Nil {
		c.unwatch(m.Unwatch)
	}
	if m.Frame != nil {
		c.enqueue(m.Frame)
	}
}

// command takes a command another node forwarded (Receiver).
func (h *Hub) command(cmd command) error {
	if h.closing.Load() {
		return errClosing
	}
	cmd.run = nil
	return h.owner(cmd.Set).post(cmd)
}

// frame hands a set's frame from another node to the set's relay (Receiver).
func (h *Hub) frame(setID uuid.UUID, f busFrame) {
	h.mu.RLock()
	r := h.relays[setID]
	h.mu.RUnlock()
	if r != nil {
		r.deliver(f, true)
	}
}

// watch starts a socket's watch of a set on this node's relay of the set.
func (h *Hub) watch(setID uuid.UUID, c *client) *relay {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.relays[setID]
	if r == nil {
		r = newRelay(h, setID)
		h.relays[setID] = r
	}
	r.add(c)
	return r
}

// ownerLost makes this node's watchers of a set resync: the set's owner here
// has given it up to another node.
func (h *Hub) ownerLost(setID uuid.UUID) {
	h.mu.RLock()
	r := h.relays[setID]
	h.mu.RUnlock()
	if r != nil {
		r.resyncAll()
	}
}

// watched reports whether a socket of this node watches the set.
func (h *Hub) watched(setID uuid.UUID) bool {
	h.mu.RLock()
	r := h.relays[setID]
	h.mu.RUnlock()
	return r != nil && !r.empty()
}

// dropRelays forgets the relays no socket of this node watches any more.
func (h *Hub) dropRelays() []*relay {
	h.mu.Lock()
	defer h.mu.Unlock()
	var kept []*relay
	for id, r := range h.relays {
		if r.empty() {
			r.unwatch()
			delete(h.relays, id)
		} else {
			kept = append(kept, r)
		}
	}
	return kept
}

// keepWatching tells the owner of every set this node's sockets watch that
// they still do (an owner retires after IdleTimeout without a command), and
// so finds a set whose owner is gone: the keep-alive claims it. A watcher
// whose sync never came asks again.
func (h *Hub) keepWatching() {
	h.every(h.cfg.IdleCheck, nil, func() {
		// A few at a time: a keep-alive to a silent node waits out the
		// forward's timeout, and one lost node may own thousands of sets.
		var wg sync.WaitGroup
		slots := make(chan struct{}, 32)
		for _, r := range h.dropRelays() {
			if h.ctx.Err() != nil {
				break
			}
			r.askAgain(time.Now())
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-slots; wg.Done() }()
				_ = h.route(command{Kind: cmdWatch, Set: r.set, From: address{Node: h.node}, At: h.now()})
			}()
		}
		wg.Wait()
	})
}

// resubscribe asks the set's owner for a snapshot for one socket's watch.
func (h *Hub) resubscribe(c *client, setID uuid.UUID) {
	err := h.route(command{Kind: cmdSubscribe, Set: setID, Actor: c.user.UserID, From: c.addr(), At: h.now()})
	if err != nil {
		// The owner cannot answer now: the socket stops watching and is told,
		// so that it subscribes again rather than wait for frames.
		c.unwatch(setID)
		c.enqueue(errorFor(err, setID.String(), ""))
	}
}

// commitWorkers is how many transactions of live events run at once (each
// on its own pooled connection; postgres.Open sizes the pool for them).
const commitWorkers = 4

var errClosing = &domain.Error{Code: domain.CodeUnavailable, Message: "the server is shutting down", RetryAfter: time.Second}

// Admit counts a new live socket of a user against the account's cap, across
// every node; release gives the place back when the socket ends.
func (h *Hub) Admit(ctx context.Context, userID uuid.UUID) (release func(), err error) {
	ok, err := h.store.ReserveSocket(ctx, h.node, userID, h.cfg.MaxSockets)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &domain.Error{Code: domain.CodeTooManyRequests, Message: "too many live sockets open for this account", RetryAfter: 5 * time.Second}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := h.store.ReleaseSocket(ctx, h.node, userID); err != nil {
				h.log.Warn("a socket's place could not be given back; it lapses with the node", "err", err)
			}
		})
	}, nil
}

// Serve runs one socket until it closes. It blocks for the socket's whole life,
// as the WebSocket handler must.
func (h *Hub) Serve(p Principal, sock Socket) {
	h.conns.Add(1)
	defer h.conns.Done()
	c := newClient(h, p, sock)
	if h.closing.Load() {
		_ = sock.WriteClose(CloseGoingAway, "server going away")
		return
	}
	h.register(c)
	go c.writeLoop()
	for {
		data, err := sock.ReadMessage()
		if err != nil {
			if errors.Is(err, ErrTooBig) {
				c.close(CloseTooBig, "frame too big", false)
			}
			break
		}
		if c.isClosing() { // a close was decided while the frame arrived
			break
		}
		if h.closing.Load() {
			c.enqueue(errorFor(errClosing, peekSetID(data), peekEventID(data)))
			continue
		}
		c.handle(data, h.now())
	}
	c.close(CloseNormal, "", false) // no-op if a close was decided already
	<-c.written
	h.unregister(c)
}

// ErrTooBig is what a Socket's ReadMessage returns for a frame over MaxFrameBytes.
var ErrTooBig = errors.New("frame too big")

func (h *Hub) register(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c.id = h.lastID.Add(1)
	h.sockets[c.id] = c
	m := h.clients[c.user.UserID]
	if m == nil {
		m = map[*client]struct{}{}
		h.clients[c.user.UserID] = m
	}
	m[c] = struct{}{}
}

// unregister forgets a closed socket and ends its watches.
func (h *Hub) unregister(c *client) {
	for setID := range c.subscriptions() {
		c.unwatch(setID)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.sockets, c.id)
	if m := h.clients[c.user.UserID]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(h.clients, c.user.UserID)
		}
	}
}

// Sockets is how many live sockets a user has open on this node.
func (h *Hub) Sockets(userID uuid.UUID) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients[userID])
}

// Watching reports whether a user has a live socket open on any node.
func (h *Hub) Watching(ctx context.Context, userID uuid.UUID) bool {
	if h.Sockets(userID) > 0 {
		return true
	}
	n, err := h.store.SocketCount(ctx, userID)
	return err == nil && n > 0
}

func (h *Hub) clientsOf(userID uuid.UUID) []*client {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*client, 0, len(h.clients[userID]))
	for c := range h.clients[userID] {
		out = append(out, c)
	}
	return out
}

// notify delivers a per-user notice on this node and every other.
func (h *Hub) notify(n notice) {
	h.notice(n)
	h.bus.Notify(n)
}

// notice delivers a per-user notice to this node's sockets of its users (Receiver).
func (h *Hub) notice(n notice) {
	for _, user := range n.Users {
		for _, c := range h.clientsOf(user) {
			switch {
			case n.Close != 0:
				c.close(n.Close, n.Reason, false)
			case n.Unlinked != uuid.Nil:
				c.unlinked(n.Unlinked)
			case n.SkipWatchers != uuid.Nil && c.subscription(n.SkipWatchers) != nil:
			case n.Frame != nil:
				c.enqueue(n.Frame)
			}
		}
	}
}

// SetStarted tells every socket of the athlete's linked coaches, on every
// node, that a set began. It returns at once; the lookup runs on its own.
func (h *Hub) SetStarted(set domain.Set) {
	frame := encode(setStartedFrame{Type: "set.started", SetID: set.ID, AthleteID: set.AthleteID})
	h.background(func(ctx context.Context) { h.tellCoaches(ctx, set.ID, set.AthleteID, notice{Frame: frame}) })
}

// notifySetEnded gives the set's summary to linked coaches' sockets that do not
// watch the set (those that do got the broadcast set.ended).
func (h *Hub) notifySetEnded(setID, athleteID uuid.UUID, summary reptimer.Summary) {
	frame := encode(setEndedFrame{Type: "set.ended", SetID: setID, Summary: summary})
	h.background(func(ctx context.Context) {
		h.tellCoaches(ctx, setID, athleteID, notice{Frame: frame, SkipWatchers: setID})
	})
}

// background runs fn in a goroutine that Shutdown waits for.
func (h *Hub) background(fn func(ctx context.Context)) {
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
		defer cancel()
		fn(ctx)
	}()
}

// tellCoaches sends a notice to the athlete's linked coaches (links looked up now).
func (h *Hub) tellCoaches(ctx context.Context, setID, athleteID uuid.UUID, n notice) {
	coaches, err := h.store.LinkedCoaches(ctx, athleteID)
	if err != nil {
		h.log.Error("listing coaches to notify", "set", setID, "err", err)
		return
	}
	if len(coaches) > 0 {
		n.Users = coaches
		h.notify(n)
	}
}

// Unlinked stops a coach's access to an athlete's sets at once, on every
// node: every socket of the coach forgets that it may act on them, drops its
// watches of them and is told so. Call it once the unlink is committed.
func (h *Hub) Unlinked(coachID, athleteID uuid.UUID) {
	h.notify(notice{Users: []uuid.UUID{coachID}, Unlinked: athleteID})
}

// SignedOut closes every socket of a user, on every node, with 4001, as the
// session re-check would within SessionCheck: call it once the user's
// sessions have ended for good (the account was deleted).
func (h *Hub) SignedOut(userID uuid.UUID) {
	h.notify(notice{Users: []uuid.UUID{userID}, Close: CloseRevoked, Reason: "the account was deleted"})
}

// Upload applies offline events to a set through its owner, wherever it
// runs, and returns once they are committed.
func (h *Hub) Upload(ctx context.Context, setID, actor uuid.UUID, events []UploadEvent) (UploadResult, error) {
	res, err := h.ask(ctx, command{Kind: cmdUpload, Set: setID, Actor: actor, Upload: events}, "storing the events")
	return res.Upload, err
}

// End ends a set through its owner, wherever it runs, and returns the
// summary once it is stored.
func (h *Hub) End(ctx context.Context, setID, actor uuid.UUID) (reptimer.Summary, error) {
	res, err := h.ask(ctx, command{Kind: cmdEnd, Set: setID, Actor: actor}, "ending the set")
	return res.Summary, err
}

// ask sends a REST command to the set's owner and waits, within ctx, for its
// answer (which may come later, once a commit is done).
func (h *Hub) ask(ctx context.Context, cmd command, what string) (result, error) {
	ch := make(chan result, 1)
	h.mu.Lock()
	id := h.lastID.Add(1)
	h.calls[id] = ch
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.calls, id)
		h.mu.Unlock()
	}()
	cmd.From, cmd.At = address{Node: h.node, Call: id}, h.now()
	if err := h.route(cmd); err != nil {
		return result{}, err
	}
	select {
	case r := <-ch:
		return r, r.Err.err()
	case <-ctx.Done():
		return result{}, &domain.Error{Code: domain.CodeUnavailable, Message: what + " took too long", Err: ctx.Err()}
	}
}

// checkSessions closes, with 4001, the sockets whose session was revoked or
// whose account was disabled.
func (h *Hub) checkSessions() {
	h.every(h.cfg.SessionCheck, nil, func() {
		h.mu.RLock()
		var all []*client
		ids := map[uuid.UUID]bool{}
		for _, m := range h.clients {
			for c := range m {
				all = append(all, c)
				ids[c.user.SessionID] = true
			}
		}
		h.mu.RUnlock()
		if len(all) == 0 {
			return
		}
		list := make([]uuid.UUID, 0, len(ids))
		for id := range ids {
			list = append(list, id)
		}
		ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
		active, err := h.store.ActiveSessions(ctx, list)
		cancel()
		if err != nil {
			return // the database is away: keep the sockets rather than drop everyone
		}
		for _, c := range all {
			if !active[c.user.SessionID] {
				c.close(CloseRevoked, "session revoked: sign in again", false)
			}
		}
	})
}

// barrier waits until every owner has handled what was in its inbox, within
// ctx (an inbox that stays full for a second is skipped). With retry, each
// owner also writes again, now, what failed and waits to be retried.
func (h *Hub) barrier(ctx context.Context, retry bool) {
	h.inEveryOwner(ctx, func(o *owner) {
		o.runCompletions()
		if retry && !o.resync {
			o.retryWrites()
		}
	})
}

// inEveryOwner runs fn in every owner of this node, one after the other, and
// waits for each within ctx (an inbox that stays full for a second is skipped).
func (h *Hub) inEveryOwner(ctx context.Context, fn func(*owner)) {
	h.mu.RLock()
	owners := make([]*owner, 0, len(h.sets))
	for _, o := range h.sets {
		owners = append(owners, o)
	}
	h.mu.RUnlock()
	for _, o := range owners {
		done := make(chan struct{})
		if o.doSoon(func(o *owner) { fn(o); close(done) }) != nil {
			continue
		}
		select {
		case <-done:
		case <-ctx.Done():
			return
		}
	}
}

// Shutdown stops taking frames, commits what is pending — writes waiting to be
// retried are tried once more — and sends its acks, closes every socket with
// 1001 and waits for them, within ctx. Retries still failing are dropped
// unacknowledged (the phones resend them to the next process). Calling it
// again returns the first call's result.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.shutdownOnce.Do(func() { h.shutdownErr = h.shutdown(ctx) })
	return h.shutdownErr
}

func (h *Hub) shutdown(ctx context.Context) error {
	h.closing.Store(true)
	h.barrier(ctx, true) // every frame already read is applied and queued for writing
	drained := make(chan struct{})
	go func() { h.committer.drain(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
	}
	h.barrier(ctx, false) // the owners have turned the commits into acks
	h.handOver(ctx)       // the sets are free for other nodes before the sockets reconnect there
	h.mu.Lock()
	for _, m := range h.clients {
		for c := range m {
			c.close(CloseGoingAway, "server going away: reconnect", true)
		}
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.conns.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		h.mu.Lock()
		for _, m := range h.clients {
			for c := range m {
				c.sock.Interrupt() // out of time: stop waiting for slow writers
			}
		}
		h.mu.Unlock()
		<-done
	}
	h.cancel()
	h.owners.Wait()
	h.bg.Wait()
	h.leave() // and what the last heartbeat wrote back
	h.bus.Close()
	return err
}

// handOver gives up every set this node owns, once what was read is
// committed and acknowledged: the owners stop answering for them on the bus
// and forget their fencing tokens (a late write is refused), and the node
// leaves the cluster, so that another node takes a set on its next command
// rather than after the lease's lifetime — before this node's sockets close
// and their phones reconnect elsewhere.
func (h *Hub) handOver(ctx context.Context) {
	h.inEveryOwner(ctx, func(o *owner) {
		o.disown()
		o.lease = 0
	})
	h.leave()
}

// leave removes this node from the cluster: its leases and socket places go.
func (h *Hub) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.store.LeaveCluster(ctx, h.node); err != nil {
		h.log.Warn("leaving the cluster failed; this node's leases lapse by themselves", "err", err)
	}
}
