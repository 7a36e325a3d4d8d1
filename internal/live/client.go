package live

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/repcue/repcue/internal/domain"
)

// Socket is one WebSocket connection as the hub uses it. The HTTP layer adapts
// the real connection; tests use fakes. ReadMessage is only called by the
// connection's reader, the write methods only by its writer goroutine;
// Interrupt may be called from anywhere and makes a blocked ReadMessage return.
type Socket interface {
	ReadMessage() ([]byte, error)
	WriteMessage(data []byte) error
	WritePing() error
	WriteClose(code int, reason string) error
	Interrupt()
}

// Close codes of the live protocol.
const (
	CloseNormal      = 1000
	CloseGoingAway   = 1001
	CloseTooBig      = 1009
	CloseRevoked     = 4001
	CloseTooSlow     = 4008
	closeNoneWritten = 0
)

// Principal is the authenticated user of a socket.
type Principal struct {
	UserID    uuid.UUID
	Role      domain.Role
	SessionID uuid.UUID
}

// client is one socket of one user. Its reader (the Serve call) handles frames;
// its writer goroutine drains the bounded send queue, so a slow socket never
// blocks anyone else: when the queue is full the socket is closed with 4008.
type client struct {
	hub    *Hub
	id     uint64 // the socket's address on this node
	user   Principal
	sock   Socket
	sendMu sync.Mutex // one enqueue at a time, so a replay can know it fits
	send   chan []byte

	closing   chan struct{} // closed once a close has been decided
	closeOnce sync.Once
	closeCode int
	closeText string
	flush     bool          // send what is queued before the close frame
	written   chan struct{} // closed when the writer has exited

	mu   sync.Mutex
	subs map[uuid.UUID]*subscription // sets this socket watches

	authMu  sync.Mutex
	access  map[uuid.UUID]access // sets this socket was allowed or refused, so frames for them cost no query
	authGen uint64               // counts the unlinks that reached this socket

	frames *rate.Limiter // frames a socket may send (reader only)
}

// access is the cached answer to "may this socket's user act on this set?":
// the set's athlete, or the refusal (kept for a few seconds: a link made
// since is then seen). An unlink forgets the athlete's entries at once.
type access struct {
	athleteID uuid.UUID
	err       error
	until     time.Time // zero: until an unlink
}

const (
	maxCachedAccess = 256
	refusalKeptFor  = 5 * time.Second
)

// subscription records what the socket knows of a set it watches.
type subscription struct {
	athleteID uuid.UUID
	relay     *relay
}

// addr is where owners send this socket's answers.
func (c *client) addr() address { return address{Node: c.hub.node, Socket: c.id} }

func newClient(h *Hub, p Principal, sock Socket) *client {
	return &client{
		hub: h, user: p, sock: sock,
		send:    make(chan []byte, h.cfg.SendQueue),
		closing: make(chan struct{}),
		written: make(chan struct{}),
		subs:    map[uuid.UUID]*subscription{},
		access:  map[uuid.UUID]access{},
		frames:  rate.NewLimiter(rate.Limit(h.cfg.FrameRate), h.cfg.FrameBurst),
	}
}

// enqueue hands a frame to the writer. It never blocks: a full queue means the
// socket cannot keep up and is closed with 4008.
func (c *client) enqueue(frame []byte) bool {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.enqueueLocked(frame)
}

func (c *client) enqueueLocked(frame []byte) bool {
	select {
	case <-c.closing:
		return false
	default:
	}
	select {
	case c.send <- frame:
		return true
	default:
		c.hub.metrics.slowCloses.Inc()
		c.close(CloseTooSlow, "too slow: reconnect and resubscribe with since_seq and epoch", false)
		return false
	}
}

// Outcomes of enqueueReplay.
const (
	replayQueued = iota
	replayTooLong
	replayClosed
)

// enqueueReplay queues a whole replay, or nothing when it does not fit: it must
// leave a quarter of the send queue free for the frames that follow, so that a
// resubscribe is never what closes a socket with 4008.
func (c *client) enqueueReplay(frames [][]byte) int {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.isClosing() {
		return replayClosed
	}
	if room := cap(c.send) - len(c.send) - cap(c.send)/4; len(frames) > room {
		c.hub.metrics.replaysAsSnapshot.Inc()
		return replayTooLong
	}
	for _, f := range frames {
		if !c.enqueueLocked(f) {
			return replayClosed
		}
	}
	return replayQueued
}

// close decides how the socket ends; it never blocks (the set's goroutine calls
// it for a slow socket). The writer sends the close frame: with flush, after
// what is queued; without, next. The reader is woken at once unless flushing.
func (c *client) close(code int, reason string, flush bool) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText, c.flush = code, reason, flush
		close(c.closing)
		if !flush {
			c.sock.Interrupt()
		}
	})
}

func (c *client) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// maxWriteBytes bounds the frames joined into one message: the writer stops
// taking more from the queue once the message holds this many bytes.
const maxWriteBytes = 32 << 10

// writeLoop sends what the socket's queue holds. Frames queued at the same
// moment go out as one message, newline-separated, in one write (DESIGN.md §4):
// under load a socket costs one write for many frames, and nothing waits for
// more frames to arrive.
func (c *client) writeLoop() {
	defer close(c.written)
	ping := time.NewTicker(c.hub.cfg.PingPeriod)
	defer ping.Stop()
	var buf []byte // reused for joined messages (a lone frame is written as it is)
	for {
		if c.isClosing() { // a decided close goes before anything still queued
			c.finish(buf)
			return
		}
		select {
		case frame := <-c.send:
			if err := c.sock.WriteMessage(c.join(frame, &buf)); err != nil {
				c.close(closeNoneWritten, "", false) // unless a close was decided already
				c.finish(buf)
				return
			}
		case <-ping.C:
			if err := c.sock.WritePing(); err != nil {
				c.close(closeNoneWritten, "", false)
				c.finish(buf)
				return
			}
		case <-c.closing:
			c.finish(buf)
			return
		}
	}
}

// join returns first together with every frame queued behind it right now,
// newline-separated, up to maxWriteBytes: first itself when nothing else is
// queued, else a message built in *buf. It stops early once a close has been
// decided, so that a close without flush still goes out next.
func (c *client) join(first []byte, buf *[]byte) []byte {
	var next []byte
	select {
	case next = <-c.send:
	default:
		return first
	}
	b := append((*buf)[:0], first...)
	b = append(append(b, '\n'), next...)
	for len(b) < maxWriteBytes && !c.isClosing() {
		select {
		case f := <-c.send:
			b = append(append(b, '\n'), f...)
			continue
		default:
		}
		break
	}
	if cap(b) <= 2*maxWriteBytes { // keep a buffer of the usual size, not a rare giant
		*buf = b
	}
	return b
}

// finish writes the close frame (after the queue, when flushing) and wakes the reader.
func (c *client) finish(buf []byte) {
	if c.flush {
		c.drainQueue(buf)
	}
	if c.closeCode != closeNoneWritten {
		_ = c.sock.WriteClose(c.closeCode, c.closeText)
	}
	c.sock.Interrupt()
}

// drainQueue writes what is queued, joined as writeLoop joins it.
func (c *client) drainQueue(buf []byte) {
	for {
		select {
		case frame := <-c.send:
			if c.sock.WriteMessage(c.joinAll(frame, &buf)) != nil {
				return
			}
		default:
			return
		}
	}
}

// joinAll is join for a flushing close: the close is decided already and
// everything queued goes out before it.
func (c *client) joinAll(first []byte, buf *[]byte) []byte {
	b := append((*buf)[:0], first...)
	for len(b) < maxWriteBytes {
		select {
		case f := <-c.send:
			b = append(append(b, '\n'), f...)
			continue
		default:
		}
		break
	}
	*buf = b
	return b
}

func (c *client) subscription(setID uuid.UUID) *subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subs[setID]
}

func (c *client) setSubscription(setID uuid.UUID, s *subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s == nil {
		delete(c.subs, setID)
	} else {
		c.subs[setID] = s
	}
}

func (c *client) subscriptions() map[uuid.UUID]*subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[uuid.UUID]*subscription, len(c.subs))
	for k, v := range c.subs {
		out[k] = v
	}
	return out
}

// handle reads one frame and acts on it. A refused frame answers an error frame
// and changes nothing.
func (c *client) handle(data []byte, receivedAt time.Time) {
	if !c.frames.AllowN(receivedAt, 1) {
		c.enqueue(errorFor(domain.Errorf(domain.CodeTooManyRequests, "too many frames: at most %d a second", c.hub.cfg.FrameRate),
			peekSetID(data), peekEventID(data)))
		return
	}
	var ft frameType
	if err := json.Unmarshal(data, &ft); err != nil || ft.Type == "" {
		c.enqueue(errorFor(domain.Invalid("type", "a frame is a JSON object with a type"), peekSetID(data), peekEventID(data)))
		return
	}
	var err error
	var setID, eventID string
	switch ft.Type {
	case "subscribe":
		var f subscribeFrame
		if err = decodeFrame(data, &f); err == nil {
			setID = f.SetID
			err = c.subscribe(f, receivedAt)
		}
	case "unsubscribe":
		var f setFrame
		if err = decodeFrame(data, &f); err == nil {
			setID = f.SetID
			err = c.unsubscribe(f.SetID)
		}
	case "rep.phase":
		var f repPhaseFrame
		if err = decodeFrame(data, &f); err == nil {
			setID, eventID = f.SetID, f.EventID
			err = c.repPhase(f, receivedAt)
		}
	case "set.end":
		var f setEndFrame
		if err = decodeFrame(data, &f); err == nil {
			setID, eventID = f.SetID, f.EventID
			err = c.setEnd(f, receivedAt)
		}
	case "cue.send":
		var f cueSendFrame
		if err = decodeFrame(data, &f); err == nil {
			setID, eventID = f.SetID, optionalString(f.EventID)
			err = c.cueSend(f, receivedAt)
		}
	case "mistake.flag":
		var f mistakeFlagFrame
		if err = decodeFrame(data, &f); err == nil {
			setID, eventID = f.SetID, optionalString(f.EventID)
			err = c.mistakeFlag(f, receivedAt)
		}
	case "cue.ack":
		var f cueAckFrame
		if err = decodeFrame(data, &f); err == nil {
			setID = f.SetID
			err = c.cueAck(f, receivedAt)
		}
	case "ping":
		var f pingFrame
		if err = decodeFrame(data, &f); err == nil {
			if f.ClientTS == nil {
				err = domain.Invalid("client_ts", "client_ts is required")
			} else {
				c.enqueue(encode(pongFrame{Type: "pong", ClientTS: *f.ClientTS, ServerTS: receivedAt.UnixMilli()}))
			}
		}
	default:
		err = domain.Invalid("type", "unknown frame type %q", ft.Type)
	}
	if err != nil {
		if setID == "" {
			setID = peekSetID(data)
		}
		if eventID == "" {
			eventID = peekEventID(data)
		}
		c.enqueue(errorFor(err, setID, eventID))
	}
}

// authorise answers whether the socket's user may see the set, and whose set
// it is: from the socket's cache, else from the database (set and link), then
// cached. It also returns the unlink count it started from (see authChanged).
func (c *client) authorise(setID uuid.UUID) (uint64, uuid.UUID, error) {
	c.authMu.Lock()
	a, ok := c.access[setID]
	gen := c.authGen
	c.authMu.Unlock()
	if ok && (a.until.IsZero() || time.Now().Before(a.until)) {
		return gen, a.athleteID, a.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	set, err := c.hub.store.VisibleSet(ctx, c.user.UserID, c.user.Role, setID)
	a = access{athleteID: set.AthleteID, err: err}
	switch {
	case err == nil:
	case domain.ErrorCode(err) == domain.CodeNotFound:
		a.until = time.Now().Add(refusalKeptFor)
	default:
		return gen, a.athleteID, err // the database is away: nothing learnt
	}
	c.authMu.Lock()
	if c.authGen == gen { // no unlink since the lookup began: the answer still holds
		if len(c.access) >= maxCachedAccess {
			clear(c.access)
		}
		c.access[setID] = a
	}
	c.authMu.Unlock()
	return gen, a.athleteID, err
}

// authChanged reports whether an unlink reached the socket since gen.
func (c *client) authChanged(gen uint64) bool {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	return c.authGen != gen
}

// forgetAthlete drops what the socket knew about its access to an athlete's sets.
func (c *client) forgetAthlete(athleteID uuid.UUID) {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	c.authGen++
	for id, a := range c.access {
		if a.athleteID == athleteID {
			delete(c.access, id)
		}
	}
}

// target finds the set a frame names and checks the caller may act on it:
// athleteOnly → only the owning athlete; otherwise the athlete or a linked
// coach (coach commands additionally need the coach role, checked by the
// caller). It returns the command for the set, addressed to this socket.
func (c *client) target(kind cmdKind, rawID string, athleteOnly bool, at time.Time) (command, error) {
	setID, err := parseID("set_id", rawID)
	if err != nil {
		return command{}, err
	}
	var athleteID uuid.UUID
	if sub := c.subscription(setID); sub != nil {
		athleteID = sub.athleteID
	} else if _, athleteID, err = c.authorise(setID); err != nil {
		return command{}, err
	}
	if athleteOnly && athleteID != c.user.UserID {
		return command{}, domain.Errorf(domain.CodeForbidden, "only the athlete of this set may do that")
	}
	return command{Kind: kind, Set: setID, Actor: c.user.UserID, From: c.addr(), At: at}, nil
}

func (c *client) subscribe(f subscribeFrame, at time.Time) error {
	setID, err := parseID("set_id", f.SetID)
	if err != nil {
		return err
	}
	if f.SinceSeq != nil && *f.SinceSeq < 0 {
		return domain.Invalid("since_seq", "since_seq must not be negative")
	}
	if c.subscription(setID) == nil {
		if len(c.subscriptions()) >= c.hub.cfg.MaxSubscriptions {
			return domain.Errorf(domain.CodeTooManyRequests, "a socket may watch at most %d sets", c.hub.cfg.MaxSubscriptions)
		}
	}
	gen, athleteID, err := c.authorise(setID)
	if err != nil {
		return err
	}
	r := c.hub.watch(setID, c)
	c.setSubscription(setID, &subscription{athleteID: athleteID, relay: r})
	err = c.hub.route(command{Kind: cmdSubscribe, Set: setID, Actor: c.user.UserID, From: c.addr(), At: at, Since: f.SinceSeq, Epoch: f.Epoch})
	if err != nil {
		c.unwatch(setID)
		return err
	}
	if c.user.Role == domain.RoleCoach && c.authChanged(gen) {
		// An unlink reached this socket between the check and the
		// subscription (a later one finds the subscription and ends it):
		// look again in the database.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ok, err := c.hub.store.CanWatch(ctx, c.user.UserID, c.user.Role, athleteID)
		if err == nil && !ok {
			err = domain.NotFound("set")
		}
		if err != nil {
			c.unwatch(setID)
			return err
		}
	}
	return nil
}

// unwatch ends the socket's watch of a set.
func (c *client) unwatch(setID uuid.UUID) {
	if sub := c.subscription(setID); sub != nil {
		c.setSubscription(setID, nil)
		sub.relay.remove(c, nil)
	}
}

// unlinked ends the socket's access to an athlete's sets: what it knew of it
// is forgotten, and every watch of them ends with `unsubscribed`.
func (c *client) unlinked(athleteID uuid.UUID) {
	c.forgetAthlete(athleteID) // first: a subscription made after this looks again
	for setID, sub := range c.subscriptions() {
		if sub.athleteID != athleteID {
			continue
		}
		c.setSubscription(setID, nil)
		sub.relay.remove(c, encode(unsubscribedFrame{Type: "unsubscribed", SetID: setID, Reason: "unlinked"}))
	}
}

func (c *client) unsubscribe(rawID string) error {
	setID, err := parseID("set_id", rawID)
	if err != nil {
		return err
	}
	c.unwatch(setID) // not watching: nothing to do
	return nil
}

func (c *client) repPhase(f repPhaseFrame, at time.Time) error {
	eventID, err := parseID("event_id", f.EventID)
	if err != nil {
		return err
	}
	switch f.Phase {
	case "up", "top", "down", "bottom":
	default:
		return domain.Invalid("phase", "phase must be up, top, down or bottom")
	}
	cmd, err := c.target(cmdPhase, f.SetID, true, at)
	if err != nil {
		return err
	}
	cmd.EventID, cmd.RawEventID, cmd.Phase, cmd.ClientTS = eventID, f.EventID, f.Phase, f.ClientTS
	return c.hub.route(cmd)
}

func (c *client) setEnd(f setEndFrame, at time.Time) error {
	eventID, err := parseID("event_id", f.EventID)
	if err != nil {
		return err
	}
	cmd, err := c.target(cmdEndFrame, f.SetID, true, at)
	if err != nil {
		return err
	}
	cmd.EventID, cmd.RawEventID = eventID, f.EventID
	return c.hub.route(cmd)
}

func (c *client) coachTarget(kind cmdKind, rawID string, rawEventID *string, at time.Time) (command, error) {
	var eventID uuid.UUID
	if rawEventID != nil {
		var err error
		if eventID, err = parseID("event_id", *rawEventID); err != nil {
			return command{}, err
		}
	}
	if c.user.Role != domain.RoleCoach {
		return command{}, domain.Errorf(domain.CodeForbidden, "only a linked coach may do that")
	}
	cmd, err := c.target(kind, rawID, false, at)
	cmd.EventID, cmd.RawEventID = eventID, optionalString(rawEventID)
	return cmd, err
}

func optionalString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (c *client) cueSend(f cueSendFrame, at time.Time) error {
	var cueID *uuid.UUID
	var text string
	if f.EventID != nil {
		if _, err := parseID("event_id", *f.EventID); err != nil {
			return err
		}
	}
	switch {
	case f.CueID != nil && f.Text != nil:
		return domain.Invalid("cue_id", "send either cue_id or text, not both")
	case f.CueID != nil:
		id, err := parseID("cue_id", *f.CueID)
		if err != nil {
			return err
		}
		cueID = &id
	case f.Text != nil:
		t, err := domain.CleanCueText("text", *f.Text)
		if err != nil {
			return err
		}
		text = t
	default:
		return domain.Invalid("cue_id", "cue_id or text is required")
	}
	cmd, err := c.coachTarget(cmdCue, f.SetID, f.EventID, at)
	if err != nil {
		return err
	}
	cmd.CueID, cmd.Text = cueID, text
	return c.hub.route(cmd)
}

func (c *client) mistakeFlag(f mistakeFlagFrame, at time.Time) error {
	if f.EventID != nil {
		if _, err := parseID("event_id", *f.EventID); err != nil {
			return err
		}
	}
	id, err := parseID("mistake_id", f.MistakeID)
	if err != nil {
		return err
	}
	cmd, err := c.coachTarget(cmdMistake, f.SetID, f.EventID, at)
	if err != nil {
		return err
	}
	cmd.MistakeID = &id
	return c.hub.route(cmd)
}

func (c *client) cueAck(f cueAckFrame, at time.Time) error {
	if f.CueSeq == nil || *f.CueSeq < 1 {
		return domain.Invalid("cue_seq", "cue_seq must be the seq of a cue frame")
	}
	cmd, err := c.target(cmdCueAck, f.SetID, true, at)
	if err != nil {
		return err
	}
	cmd.CueSeq = *f.CueSeq
	return c.hub.route(cmd)
}

// peekSetID and peekEventID recover the ids of a refused frame for its error
// frame, when they are short strings.
func peekSetID(data []byte) string {
	var f struct {
		SetID any `json:"set_id"`
	}
	_ = json.Unmarshal(data, &f)
	return shortString(f.SetID)
}

func peekEventID(data []byte) string {
	var f struct {
		EventID any `json:"event_id"`
	}
	_ = json.Unmarshal(data, &f)
	return shortString(f.EventID)
}

func shortString(v any) string {
	if s, ok := v.(string); ok && len(s) <= 64 {
		return s
	}
	return ""
}
