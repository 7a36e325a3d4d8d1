// Package live is the hub of live sets: one owner goroutine per live set holds
// its rep-timer state, clock, seq and replay window; one writer goroutine per
// socket drains a bounded queue; events are committed to PostgreSQL in batches
// and acknowledged only after the commit. The wire protocol is api/live-protocol.md.
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

// Hub owns every live socket and every live set of this node.
type Hub struct {
	cfg       Config
	store     *postgres.Store
	log       *slog.Logger
	committer *committer
	metrics   *metrics

	ctx    context.Context
	cancel context.CancelFunc
	owners sync.WaitGroup // owner goroutines
	conns  sync.WaitGroup // Serve calls
	bg     sync.WaitGroup // committer, session checker and background lookups

	mu      sync.Mutex
	sets    map[uuid.UUID]*owner
	clients map[uuid.UUID]map[*client]struct{} // by user

	closing      atomic.Bool
	shutdownOnce sync.Once
	shutdownErr  error
}

// New starts a hub.
func New(store *postgres.Store, log *slog.Logger, cfg Config) *Hub {
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := newMetrics()
	h := &Hub{
		cfg: cfg, store: store, log: log, ctx: ctx, cancel: cancel, metrics: m,
		committer: newCommitter(store, log, m, commitWorkers, 4096, 1024),
		sets:      map[uuid.UUID]*owner{},
		clients:   map[uuid.UUID]map[*client]struct{}{},
	}
	h.bg.Add(2)
	go func() { defer h.bg.Done(); h.committer.run(ctx) }()
	go func() { defer h.bg.Done(); h.checkSessions() }()
	return h
}

func (h *Hub) now() time.Time { return h.cfg.Now() }

// PongWait is how long a socket may stay silent (no frame, no pong) before the
// HTTP layer drops it.
func (h *Hub) PongWait() time.Duration { return h.cfg.PongWait }

// owner returns the set's owner, starting one (which loads the set) if needed.
func (h *Hub) owner(setID uuid.UUID) *owner {
	h.mu.Lock()
	defer h.mu.Unlock()
	if o := h.sets[setID]; o != nil {
		return o
	}
	o := newOwner(h, setID)
	if h.ctx.Err() != nil { // shut down: an owner that takes nothing
		o.closed = true
		return o
	}
	h.sets[setID] = o
	h.owners.Add(1)
	go o.run()
	return o
}

// commitWorkers is how many transactions of live events run at once (each
// on its own pooled connection; postgres.Open sizes the pool for them).
const commitWorkers = 4

var errClosing = &domain.Error{Code: domain.CodeUnavailable, Message: "the server is shutting down", RetryAfter: time.Second}

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
	m := h.clients[c.user.UserID]
	if m == nil {
		m = map[*client]struct{}{}
		h.clients[c.user.UserID] = m
	}
	m[c] = struct{}{}
}

// unregister forgets a closed socket. Its sets are told when their inboxes
// have room; a set whose inbox is full drops the socket by itself (a broadcast
// or the idle check finds it closed), so a dead socket never keeps a set alive.
func (h *Hub) unregister(c *client) {
	for _, sub := range c.subscriptions() {
		_ = sub.owner.do(func(o *owner) { o.unsubscribe(c) })
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.clients[c.user.UserID]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(h.clients, c.user.UserID)
		}
	}
}

// Sockets is how many live sockets a user has open on this node.
func (h *Hub) Sockets(userID uuid.UUID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients[userID])
}

func (h *Hub) clientsOf(userID uuid.UUID) []*client {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*client, 0, len(h.clients[userID]))
	for c := range h.clients[userID] {
		out = append(out, c)
	}
	return out
}

// SetStarted tells every socket of the athlete's linked coaches that a set
// began. It returns at once; the lookup runs on its own.
func (h *Hub) SetStarted(set domain.Set) {
	frame := encode(setStartedFrame{Type: "set.started", SetID: set.ID, AthleteID: set.AthleteID})
	h.background(func(ctx context.Context) { h.tellCoaches(ctx, set.ID, set.AthleteID, frame, false) })
}

// notifySetEnded gives the set's summary to linked coaches' sockets that do not
// watch the set (those that do got the broadcast set.ended).
func (h *Hub) notifySetEnded(setID, athleteID uuid.UUID, summary reptimer.Summary) {
	frame := encode(setEndedFrame{Type: "set.ended", SetID: setID, Summary: summary})
	h.background(func(ctx context.Context) { h.tellCoaches(ctx, setID, athleteID, frame, true) })
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

// tellCoaches sends a frame to every socket of the athlete's linked coaches
// (links looked up now), skipping those that watch the set when skipWatchers.
func (h *Hub) tellCoaches(ctx context.Context, setID, athleteID uuid.UUID, frame []byte, skipWatchers bool) {
	coaches, err := h.store.LinkedCoaches(ctx, athleteID)
	if err != nil {
		h.log.Error("listing coaches to notify", "set", setID, "err", err)
		return
	}
	for _, coach := range coaches {
		for _, c := range h.clientsOf(coach) {
			if !skipWatchers || c.subscription(setID) == nil {
				c.enqueue(frame)
			}
		}
	}
}

// Unlinked stops a coach's access to an athlete's sets at once: every socket
// of the coach forgets that it may act on them, drops its subscriptions to
// them and is told so. Call it once the unlink is committed.
func (h *Hub) Unlinked(coachID, athleteID uuid.UUID) {
	for _, c := range h.clientsOf(coachID) {
		c.forgetAthlete(athleteID) // first: a subscription made after this looks again
		for setID, sub := range c.subscriptions() {
			if sub.athleteID != athleteID {
				continue
			}
			c.setSubscription(setID, nil)
			// Told from the set's goroutine, so that no frame of the set follows it.
			frame := encode(unsubscribedFrame{Type: "unsubscribed", SetID: setID, Reason: "unlinked"})
			if err := sub.owner.doSoon(func(o *owner) { o.unsubscribe(c); c.enqueue(frame) }); err != nil {
				// The set cannot take it: end the coach's socket rather than let it watch on.
				c.close(CloseGoingAway, "server busy: reconnect", false)
			}
		}
	}
}

// SignedOut closes every socket of a user at once with 4001, as the session
// re-check would within SessionCheck: call it once the user's sessions have
// ended for good (the account was deleted).
func (h *Hub) SignedOut(userID uuid.UUID) {
	for _, c := range h.clientsOf(userID) {
		c.close(CloseRevoked, "the account was deleted", false)
	}
}

// Upload applies offline events to a set through its owner and returns once
// they are committed.
func (h *Hub) Upload(ctx context.Context, setID, actor uuid.UUID, events []UploadEvent) (UploadResult, error) {
	return ask(ctx, h, setID, "storing the events", func(o *owner, reply func(UploadResult, error)) {
		o.upload(actor, events, reply)
	})
}

// End ends a set through its owner and returns the summary once it is stored.
func (h *Hub) End(ctx context.Context, setID, actor uuid.UUID) (reptimer.Summary, error) {
	return ask(ctx, h, setID, "ending the set", func(o *owner, reply func(reptimer.Summary, error)) {
		o.end(actor, reply)
	})
}

// ask runs fn in the set's goroutine and waits, within ctx, for the answer it
// gives to reply (which may come later, once a commit is done).
func ask[T any](ctx context.Context, h *Hub, setID uuid.UUID, what string, fn func(o *owner, reply func(T, error))) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	var zero T
	if err := h.owner(setID).do(func(o *owner) { fn(o, func(v T, err error) { ch <- result{v, err} }) }); err != nil {
		return zero, err
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, &domain.Error{Code: domain.CodeUnavailable, Message: what + " took too long", Err: ctx.Err()}
	}
}

// checkSessions closes, with 4001, the sockets whose session was revoked or
// whose account was disabled.
func (h *Hub) checkSessions() {
	t := time.NewTicker(h.cfg.SessionCheck)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		var all []*client
		ids := map[uuid.UUID]bool{}
		for _, m := range h.clients {
			for c := range m {
				all = append(all, c)
				ids[c.user.SessionID] = true
			}
		}
		h.mu.Unlock()
		if len(all) == 0 {
			continue
		}
		list := make([]uuid.UUID, 0, len(ids))
		for id := range ids {
			list = append(list, id)
		}
		ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
		active, err := h.store.ActiveSessions(ctx, list)
		cancel()
		if err != nil {
			continue // the database is away: keep the sockets rather than drop everyone
		}
		for _, c := range all {
			if !active[c.user.SessionID] {
				c.close(CloseRevoked, "session revoked: sign in again", false)
			}
		}
	}
}

// barrier waits until every owner has handled what was in its inbox, within
// ctx (an inbox that stays full for a second is skipped). With retry, each
// owner also writes again, now, what failed and waits to be retried.
func (h *Hub) barrier(ctx context.Context, retry bool) {
	h.mu.Lock()
	owners := make([]*owner, 0, len(h.sets))
	for _, o := range h.sets {
		owners = append(owners, o)
	}
	h.mu.Unlock()
	for _, o := range owners {
		done := make(chan struct{})
		err := o.doSoon(func(o *owner) {
			o.runCompletions()
			if retry && !o.resync {
				o.retryWrites()
			}
			close(done)
		})
		if err != nil {
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
	return err
}
