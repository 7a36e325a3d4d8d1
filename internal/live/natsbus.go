package live

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/repcue/repcue/internal/domain"
)

// NATS subjects of the cluster (core NATS, no JetStream: what the bus carries
// is live, and storage is PostgreSQL's):
//
//	repcue.cmd.<set>   commands for the set's owner (request/reply: the reply says taken or refused)
//	repcue.set.<set>   the set's frames, for the nodes whose sockets watch it
//	repcue.node.<node> answers for one node's sockets and REST calls
//	repcue.notice      per-user notices, for every node
const (
	subjectCmd    = "repcue.cmd."
	subjectSet    = "repcue.set."
	subjectNode   = "repcue.node."
	subjectNotice = "repcue.notice"
)

// forwardTimeout bounds how long a node waits for an owner to take a command.
const forwardTimeout = 2 * time.Second

// NATS is the bus of a cluster of nodes over a NATS server or cluster.
type NATS struct {
	nc  *nats.Conn
	log *slog.Logger
	to  Receiver

	cmds   chan *nats.Msg // commands for the sets this node owns
	frames chan *nats.Msg // frames of the sets this node watches
	out    chan outMsg    // what this node publishes, in order, by one goroutine
	stop   chan struct{}
	wg     sync.WaitGroup
	subs   []*nats.Subscription
	// up follows the connection (its handlers set it): asked on every frame
	// published, it must not take the connection's lock.
	up atomic.Bool
}

// DialNATS connects to NATS. It returns at once even when NATS is not up yet:
// the connection is made, and made again after any loss, in the background,
// and Ready says how it stands. Nothing is buffered while disconnected, so a
// command is refused at once rather than silently delayed.
func DialNATS(url, name string, log *slog.Logger) (*NATS, error) {
	b := &NATS{log: log, cmds: make(chan *nats.Msg, 8192), frames: make(chan *nats.Msg, 1<<16),
		out: make(chan outMsg, 1<<16), stop: make(chan struct{})}
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.NoEcho(), // what this node publishes it has delivered to its own sockets already
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectBufSize(-1),
		nats.PingInterval(5*time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ConnectHandler(func(*nats.Conn) { b.up.Store(true) }),
		nats.ClosedHandler(func(*nats.Conn) { b.up.Store(false) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.up.Store(false)
			if err != nil { // nil: the node closed it, shutting down
				log.Warn("NATS disconnected: sets owned on other nodes are unavailable until it is back", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { b.up.Store(true); log.Info("NATS reconnected") }),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			log.Warn("NATS error", "subject", subjectOf(s), "err", err)
		}),
	)
	if err != nil {
		return nil, err
	}
	b.nc = nc
	if nc.IsConnected() {
		b.up.Store(true)
	}
	return b, nil
}

func subjectOf(s *nats.Subscription) string {
	if s == nil {
		return ""
	}
	return s.Subject
}

// Start subscribes to this node's subject and the notices, and starts the
// goroutines that hand what arrives to the hub.
func (b *NATS) Start(node uuid.UUID, to Receiver) error {
	b.to = to
	nodeSub, err := b.nc.Subscribe(subjectNode+node.String(), func(m *nats.Msg) {
		var msg nodeMsg
		if err := json.Unmarshal(m.Data, &msg); err != nil {
			b.log.Error("a node message could not be read", "err", err)
			return
		}
		to.message(msg)
	})
	if err != nil {
		return err
	}
	noticeSub, err := b.nc.Subscribe(subjectNotice, func(m *nats.Msg) {
		var n notice
		if err := json.Unmarshal(m.Data, &n); err != nil {
			b.log.Error("a notice could not be read", "err", err)
			return
		}
		to.notice(n)
	})
	if err != nil {
		return err
	}
	b.subs = append(b.subs, nodeSub, noticeSub)
	// The server has the subscriptions once it answers a ping: a node is
	// not ready before it would hear every notice (not connected yet: they
	// go out with the connection).
	_ = b.nc.FlushTimeout(2 * time.Second)
	b.wg.Add(4)
	for range 2 {
		go func() { defer b.wg.Done(); b.serveCommands() }()
	}
	go func() { defer b.wg.Done(); b.serveFrames() }()
	go func() { defer b.wg.Done(); b.publish() }()
	return nil
}

// outMsg is one message to publish.
type outMsg struct {
	subject string
	data    []byte
}

// publish sends what the node's goroutines queue, in the order they queued
// it: thousands of set owners publishing on one connection would otherwise
// queue on its lock (measured at 5,000 sets: most owners waiting there, and
// command replies late enough to time out).
func (b *NATS) publish() {
	for {
		select {
		case <-b.stop:
			return
		case m := <-b.out:
			_ = b.nc.Publish(m.subject, m.data) // NATS down: dropped, as documented for each kind
		}
	}
}

// enqueue queues a message for publish; with the queue full (NATS far
// behind) it is dropped: a frame's watchers resync on the gap, an answer's
// socket resends, a notice is lost as over a dropped connection.
func (b *NATS) enqueue(subject string, data []byte) bool {
	select {
	case b.out <- outMsg{subject, data}:
		return true
	default:
		return false
	}
}

// serveCommands hands forwarded commands to the hub and answers the sender:
// an empty reply when the owner took the command, else the refusal.
func (b *NATS) serveCommands() {
	for {
		select {
		case <-b.stop:
			return
		case m := <-b.cmds:
			var cmd command
			var reply []byte
			if err := json.Unmarshal(m.Data, &cmd); err != nil {
				reply, _ = json.Marshal(toWire(domain.Invalid("command", "unreadable command")))
			} else if err := b.to.command(cmd); err != nil {
				reply, _ = json.Marshal(toWire(err))
			}
			if m.Reply != "" {
				b.enqueue(m.Reply, reply)
			}
		}
	}
}

// serveFrames hands frames to the hub, in the order they arrived: one
// goroutine, so a set's frames stay in its owner's order.
func (b *NATS) serveFrames() {
	for {
		select {
		case <-b.stop:
			return
		case m := <-b.frames:
			set, err := uuid.Parse(strings.TrimPrefix(m.Subject, subjectSet))
			if err != nil {
				continue
			}
			f, ok := decodeBusFrame(m.Data)
			if !ok {
				b.log.Error("a set frame could not be read", "set", set)
				continue
			}
			b.to.frame(set, f)
		}
	}
}

func (b *NATS) Forward(cmd command) error {
	if !b.up.Load() {
		return errBusDown
	}
	data, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	m, err := b.nc.Request(subjectCmd+cmd.Set.String(), data, forwardTimeout)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return errNoOwner
	case errors.Is(err, nats.ErrTimeout):
		return errOwnerSilent
	case err != nil:
		return errBusDown
	}
	if len(m.Data) == 0 {
		return nil
	}
	var we wireError
	if err := json.Unmarshal(m.Data, &we); err != nil {
		return errBusDown
	}
	return we.err()
}

func (b *NATS) Own(set uuid.UUID) func() {
	return b.chanSub(subjectCmd+set.String(), b.cmds)
}

func (b *NATS) Watch(set uuid.UUID) func() {
	return b.chanSub(subjectSet+set.String(), b.frames)
}

// chanSub subscribes subject into ch (shared by many subscriptions, read in
// order by one goroutine); the returned func unsubscribes. nats.go keeps a
// subscription made while NATS is down and sends it again on reconnect. A
// message that finds ch full is dropped, never blocking NATS's reader: for a
// frame, its set's watchers see the gap and resync; for a command, the
// sender's request times out.
func (b *NATS) chanSub(subject string, ch chan *nats.Msg) func() {
	sub, err := b.nc.ChanSubscribe(subject, ch)
	if err != nil {
		b.log.Warn("NATS subscription failed", "subject", subject, "err", err)
		return func() {}
	}
	return func() { _ = sub.Unsubscribe() }
}

func (b *NATS) Publish(set uuid.UUID, f busFrame) {
	if b.up.Load() { // else nothing is sent: the watchers resync when it is back
		b.enqueue(subjectSet+set.String(), encodeBusFrame(f))
	}
}

func (b *NATS) Send(node uuid.UUID, m nodeMsg) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if !b.up.Load() || !b.enqueue(subjectNode+node.String(), data) {
		return errBusDown
	}
	return nil
}

func (b *NATS) Notify(n notice) {
	data, err := json.Marshal(n)
	if err != nil {
		b.log.Error("a notice could not be written", "err", err)
		return
	}
	if !b.up.Load() || !b.enqueue(subjectNotice, data) {
		b.log.Warn("a notice could not reach the other nodes: NATS is down or far behind")
	}
}

func (b *NATS) Ready() error {
	if b.up.Load() {
		return nil
	}
	return errBusDown
}

// Close drains nothing: what is in flight is live traffic its senders retry.
func (b *NATS) Close() {
	select {
	case <-b.stop:
		return
	default:
	}
	close(b.stop)
	b.nc.Close()
	b.wg.Wait()
}

// A frame on the bus: seq (8 bytes), the epoch's length (1 byte), the epoch,
// then the frame's JSON (none for an announcement).
func encodeBusFrame(f busFrame) []byte {
	b := make([]byte, 9, 9+len(f.Epoch)+len(f.Data))
	binary.BigEndian.PutUint64(b, uint64(f.Seq))
	b[8] = byte(len(f.Epoch))
	b = append(b, f.Epoch...)
	return append(b, f.Data...)
}

func decodeBusFrame(b []byte) (busFrame, bool) {
	if len(b) < 9 || len(b) < 9+int(b[8]) {
		return busFrame{}, false
	}
	n := 9 + int(b[8])
	f := busFrame{Seq: int64(binary.BigEndian.Uint64(b)), Epoch: string(b[9:n])}
	if len(b) > n {
		f.Data = b[n:]
	}
	return f, true
}
