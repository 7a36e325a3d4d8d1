package live

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
)

// Several nodes over one PostgreSQL and a NATS server started by the test
// (DESIGN.md §7): to every client they behave like one.

// natsServer is an embedded NATS server that a test can stop and start again
// on the same port.
type natsServer struct {
	t    *testing.T
	port int
	srv  *natsserver.Server
}

func startNATS(t *testing.T) *natsServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	n := &natsServer{t: t, port: port}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsServer) start() {
	n.t.Helper()
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: n.port, NoLog: true, NoSigs: true})
	if err != nil {
		n.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(5 * time.Second) {
		n.t.Fatal("NATS did not start")
	}
	n.srv = srv
}

func (n *natsServer) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// clusterNode starts a node on the fixture's database and the NATS server.
func (f *fixture) clusterNode(t *testing.T, n *natsServer, cfg Config) *Hub {
	t.Helper()
	bus, err := DialNATS(n.url(), "test node", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Bus = bus
	h := f.node(cfg)
	waitFor(t, "the node to reach NATS", func() bool { return h.Ready() == nil })
	return h
}

// cluster starts NATS and nodes of cfg on a fresh world; the fixture's hub is the first.
func cluster(t *testing.T, nodes int, cfg Config) (*fixture, *natsServer, []*Hub) {
	t.Helper()
	n := startNATS(t)
	f := newWorld(t)
	var hubs []*Hub
	for range nodes {
		hubs = append(hubs, f.clusterNode(t, n, cfg))
	}
	f.hub = hubs[0]
	return f, n, hubs
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// stream records a socket's broadcast frames of one set and checks, as they
// come, that seq rises by exactly one within an epoch; a snapshot or a replay
// starts (or restarts) it.
type stream struct {
	t     *testing.T
	s     *fakeSocket
	epoch string
	last  int64
	seen  []map[string]any // every frame read, in order
}

func watch(t *testing.T, s *fakeSocket) *stream { return &stream{t: t, s: s, last: -1} }

// next reads frames until one of type typ (skipping hold ticks and checking
// every numbered frame on the way), and returns it.
func (st *stream) next(typ string) map[string]any {
	st.t.Helper()
	for {
		m := frame(st.t, st.s)
		st.seen = append(st.seen, m)
		switch m["type"] {
		case "snapshot", "replayed":
			st.epoch, st.last = m["epoch"].(string), int64(m["last_seq"].(float64))
		case "hold.tick", "ack", "error", "pong", "set.started", "unsubscribed":
		default:
			seq, ok := m["seq"].(float64)
			if !ok {
				st.t.Fatalf("a broadcast frame without seq: %v", m)
			}
			if m["epoch"] != st.epoch || int64(seq) != st.last+1 {
				st.t.Fatalf("frame %v after seq %d of epoch %s: a gap, a duplicate or a foreign epoch", m, st.last, st.epoch)
			}
			st.last = int64(seq)
		}
		if m["type"] == typ {
			return m
		}
	}
}

func (f *fixture) subscribeOn(t *testing.T, s *fakeSocket) *stream {
	t.Helper()
	send(s, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	st := watch(t, s)
	st.next("snapshot")
	return st
}

// storedOnce checks that every stored event of the set has its own event_id
// and number, and that the stored events rebuild the summary given.
func (f *fixture) storedOnce(t *testing.T, want map[string]any) []postgres.SetEvent {
	t.Helper()
	ctx := context.Background()
	events, err := f.store.SetEvents(ctx, f.set.ID)
	if err != nil {
		t.Fatal(err)
	}
	ids, ns := map[uuid.UUID]bool{}, map[int]bool{}
	for _, e := range events {
		if ids[e.EventID] || ns[e.N] {
			t.Fatalf("event %s (n %d) stored twice", e.EventID, e.N)
		}
		ids[e.EventID], ns[e.N] = true, true
	}
	if want != nil {
		set, err := f.store.FindSet(ctx, f.set.ID)
		if err != nil {
			t.Fatal(err)
		}
		cues, mistakes, err := f.store.SetCueBook(ctx, f.set.ID)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := fold(set, newBook(cues, mistakes), events)
		got := m.state.Summary()
		if float64(got.Reps) != want["reps"] || float64(got.HoldsMet) != want["holds_met"] {
			t.Fatalf("rebuilt summary %+v, live %v", got, want)
		}
	}
	return events
}

func (f *fixture) rep(t *testing.T, a *fakeSocket, st *stream) {
	t.Helper()
	for _, p := range []string{"up", "top"} {
		f.phase(a, p)
		st.next("ack")
	}
	st.next("hold.done")
	for _, p := range []string{"down", "bottom"} {
		f.phase(a, p)
		st.next("ack")
	}
}

func TestClusterAthleteOnOneNodeCoachesOnTwoOthers(t *testing.T) {
	t.Parallel()
	f, _, nodes := cluster(t, 3, Config{})
	A, B, C := nodes[0], nodes[1], nodes[2]
	a := f.connectTo(A, f.athlete)
	sa := f.subscribeOn(t, a)
	b, c := f.connectTo(B, f.coach), f.connectTo(C, f.coach)
	sb, sc := f.subscribeOn(t, b), f.subscribeOn(t, c)
	if sb.epoch != sa.epoch || sc.epoch != sa.epoch {
		t.Fatalf("epochs %s %s %s: one owner has one epoch", sa.epoch, sb.epoch, sc.epoch)
	}
	f.rep(t, a, sa)
	// A coach's cue from node C: acknowledged on C once committed, pushed to
	// the athlete on A, seen by the coach on B.
	cueEvent := uuid.NewString()
	send(c, map[string]any{"type": "cue.send", "set_id": f.set.ID.String(), "text": "Ribs down", "event_id": cueEvent})
	if ack := sc.next("ack"); ack["event_id"] != cueEvent {
		t.Fatalf("ack %v", ack)
	}
	if cue := sa.next("cue"); cue["cue"].(map[string]any)["text"] != "Ribs down" {
		t.Fatalf("cue %v", cue)
	}
	sb.next("cue")
	// The resent cue is acknowledged again and pushed once.
	send(c, map[string]any{"type": "cue.send", "set_id": f.set.ID.String(), "text": "Ribs down", "event_id": cueEvent})
	sc.next("ack")
	// A refusal by the owner on A reaches the coach's socket on B.
	bad := uuid.NewString()
	send(b, map[string]any{"type": "cue.send", "set_id": f.set.ID.String(), "cue_id": uuid.NewString(), "event_id": bad})
	if e := sb.next("error"); e["code"] != "not_found" || e["event_id"] != bad || e["set_id"] != f.set.ID.String() {
		t.Fatalf("error %v", e)
	}
	f.rep(t, a, sa)
	// The set ends by REST on node C.
	summary, err := C.End(context.Background(), f.set.ID, f.athlete.UserID)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*stream{sa, sb, sc} {
		ended := st.next("set.ended")
		if ended["summary"].(map[string]any)["reps"] != float64(summary.Reps) || st.last != sa.last {
			t.Fatalf("set.ended %v at seq %d (athlete's %d)", ended, st.last, sa.last)
		}
	}
	events := f.storedOnce(t, map[string]any{"reps": float64(2), "holds_met": float64(2)})
	if cues := count(events, func(e postgres.SetEvent) bool { return e.Type == "cue.send" }); cues != 1 {
		t.Fatalf("%d cue events stored, want 1", cues)
	}
}

// count is how many stored events match.
func count(events []postgres.SetEvent, match func(postgres.SetEvent) bool) int {
	n := 0
	for _, e := range events {
		if match(e) {
			n++
		}
	}
	return n
}

func TestClusterAthleteMovesNodeMidSet(t *testing.T) {
	t.Parallel()
	f, _, nodes := cluster(t, 2, Config{})
	A, B := nodes[0], nodes[1]
	a := f.connectTo(A, f.athlete)
	sa := f.subscribeOn(t, a)
	coach := f.connectTo(B, f.coach)
	sc := f.subscribeOn(t, coach)
	f.phase(a, "up")
	sa.next("ack")
	top := f.phase(a, "top")
	sa.next("ack")
	a.Interrupt() // the phone loses its socket and reconnects through another node
	a2 := f.connectTo(B, f.athlete)
	send(a2, map[string]any{"type": "subscribe", "set_id": f.set.ID.String(), "since_seq": sa.last, "epoch": sa.epoch})
	s2 := &stream{t: t, s: a2, epoch: sa.epoch, last: sa.last}
	if r := s2.next("replayed"); r["epoch"] != sa.epoch {
		t.Fatalf("a move of node changed the set's epoch: %v", r)
	}
	// A resend of an acknowledged event is acknowledged again, applied once.
	send(a2, map[string]any{"type": "rep.phase", "set_id": f.set.ID.String(), "phase": "top", "event_id": top, "client_ts": 1})
	if ack := s2.next("ack"); ack["event_id"] != top {
		t.Fatalf("ack %v", ack)
	}
	s2.next("hold.done")
	for _, p := range []string{"down", "bottom"} {
		f.phase(a2, p)
		s2.next("ack")
	}
	if done := sc.next("rep.done"); sc.last != s2.last {
		t.Fatalf("coach at seq %d, athlete at %d (%v)", sc.last, s2.last, done)
	}
	send(a2, map[string]any{"type": "set.end", "set_id": f.set.ID.String(), "event_id": uuid.NewString()})
	ended := s2.next("set.ended")
	f.storedOnce(t, ended["summary"].(map[string]any))
}

// crash stops a node as kill -9 would: no hand-over, its lease left to lapse.
func crash(h *Hub) {
	h.closing.Store(true)
	h.cancel()
	h.bus.Close()
	h.mu.RLock()
	for _, m := range h.clients {
		for c := range m {
			c.close(closeNoneWritten, "", false)
		}
	}
	h.mu.RUnlock()
}

func TestClusterOwnerKilledMidHoldIsTakenOver(t *testing.T) {
	t.Parallel()
	f, _, nodes := cluster(t, 3, Config{LeaseTTL: time.Second})
	A, B, C := nodes[0], nodes[1], nodes[2]
	a := f.connectTo(A, f.athlete)
	sa := f.subscribeOn(t, a)
	coach := f.connectTo(C, f.coach)
	sc := f.subscribeOn(t, coach)
	f.rep(t, a, sa)
	f.phase(a, "up")
	sa.next("ack")
	f.phase(a, "top") // the hold starts (200 ms) …
	sa.next("ack")
	killed := time.Now()
	crash(A) // … and its owner dies mid-hold
	a2 := f.connectTo(B, f.athlete)
	var snap map[string]any
	for {
		send(a2, map[string]any{"type": "subscribe", "set_id": f.set.ID.String(), "since_seq": sa.last, "epoch": sa.epoch})
		m := frame(t, a2)
		if m["type"] == "snapshot" {
			snap = m
			break
		}
		if m["type"] != "error" || m["code"] != "unavailable" {
			t.Fatalf("while the lease lapses: %v", m)
		}
		if time.Since(killed) > 5*time.Second {
			t.Fatal("no node took the set over within 5 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("taken over %v after the kill", time.Since(killed).Round(time.Millisecond))
	state := snap["state"].(map[string]any)
	if snap["epoch"] == sa.epoch || state["rep"] != float64(2) || state["hold"].(map[string]any)["done"] != true {
		t.Fatalf("the taken-over set: %v (a new epoch, rep 2, its hold done at once)", snap)
	}
	// The coach on C resyncs to the new epoch from a snapshot.
	if s := sc.next("snapshot"); s["epoch"] != snap["epoch"] {
		t.Fatalf("coach resynced to %v", s)
	}
	s2 := &stream{t: t, s: a2, epoch: snap["epoch"].(string), last: int64(snap["last_seq"].(float64))}
	for _, p := range []string{"down", "bottom"} {
		f.phase(a2, p)
		s2.next("ack")
	}
	send(a2, map[string]any{"type": "set.end", "set_id": f.set.ID.String(), "event_id": uuid.NewString()})
	ended := s2.next("set.ended")
	sc.next("set.ended")
	f.storedOnce(t, ended["summary"].(map[string]any))
}

func TestClusterPausedOwnerWhoseLeaseLapsedIsFenced(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	f := newWorld(t)
	A := f.clusterNode(t, n, Config{LeaseTTL: time.Hour}) // its heartbeat will not come in time
	B := f.clusterNode(t, n, Config{})
	f.hub = A
	a := f.connectTo(A, f.athlete)
	sa := f.subscribeOn(t, a)
	f.phase(a, "up")
	sa.next("ack")
	// A stalls past its lease (a GC pause, a network split): its node row
	// lapses, and B takes the set as it would once A stopped answering.
	if _, err := f.store.Pool().Exec(context.Background(), `UPDATE nodes SET expires_at = now() - interval '1 second' WHERE id = $1`, A.Node()); err != nil {
		t.Fatal(err)
	}
	o := B.owner(f.set.ID)
	f.inSet(t, B, f.set.ID, func(o *owner) {
		if o.err != nil || o.lease == 0 {
			t.Errorf("B did not take the set: %v", o.err)
		}
	})
	_ = o
	// A wakes up, knows nothing of it, and applies the athlete's next phase:
	// its commit is fenced, so it is never acknowledged.
	top := f.phase(a, "top")
	for deadline := time.Now().Add(5 * time.Second); ; {
		m := frame(t, a)
		if m["type"] == "ack" && m["event_id"] == top {
			t.Fatal("a fenced owner acknowledged an event")
		}
		if m["type"] == "snapshot" { // the watcher follows B's epoch
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the athlete's socket never followed the new owner")
		}
	}
	// The phone resends (at once when told its event was not taken): the
	// set's owner now (B, or A again under a new lease: the set follows its
	// athlete's socket) applies it once and acknowledges it.
	for acked, deadline := false, time.Now().Add(10*time.Second); !acked; {
		if time.Now().After(deadline) {
			t.Fatal("the resent event was never acknowledged")
		}
		send(a, map[string]any{"type": "rep.phase", "set_id": f.set.ID.String(), "phase": "top", "event_id": top, "client_ts": 1})
		for waiting := true; waiting; {
			m := frame(t, a)
			switch {
			case m["type"] == "ack" && m["event_id"] == top:
				acked, waiting = true, false
			case m["type"] == "error" && m["event_id"] == top && m["code"] == "unavailable":
				time.Sleep(100 * time.Millisecond)
				waiting = false
			case m["type"] == "error":
				t.Fatalf("resending: %v", m)
			}
		}
	}
	events := f.storedOnce(t, nil)
	tops := count(events, func(e postgres.SetEvent) bool { return e.Phase == "top" })
	if tops != 1 || count(events, func(e postgres.SetEvent) bool { return e.Phase == "top" && e.EventID.String() == top }) != 1 {
		t.Fatalf("%d tops stored, want 1: the resent %s", tops, top)
	}
}

func TestClusterNATSDownAndBack(t *testing.T) {
	t.Parallel()
	f, n, nodes := cluster(t, 2, Config{})
	A, B := nodes[0], nodes[1]
	a := f.connectTo(A, f.athlete)
	sa := f.subscribeOn(t, a)
	local := f.connectTo(A, f.coach) // a coach on the owner's node
	sl := f.subscribeOn(t, local)
	remote := f.connectTo(B, f.coach)
	sr := f.subscribeOn(t, remote)
	f.phase(a, "up")
	sa.next("ack")
	sr.next("state")

	n.stop()
	waitFor(t, "the nodes to notice NATS is gone", func() bool { return A.Ready() != nil && B.Ready() != nil })
	// The set whose athlete and watchers share its owner's node goes on.
	f.phase(a, "top")
	sa.next("ack")
	sl.next("hold.done")
	// A command from the other node is refused at once, not delayed.
	send(remote, map[string]any{"type": "cue.send", "set_id": f.set.ID.String(), "text": "Ribs down", "event_id": uuid.NewString()})
	if e := sr.next("error"); e["code"] != "unavailable" {
		t.Fatalf("with NATS down: %v", e)
	}

	n.start()
	waitFor(t, "the nodes to reconnect", func() bool { return A.Ready() == nil && B.Ready() == nil })
	time.Sleep(200 * time.Millisecond) // the resent subscriptions reach the server
	f.phase(a, "down")
	sa.next("ack")
	// The remote coach missed frames: it resyncs from a snapshot, then follows.
	snap := sr.next("snapshot")
	if snap["epoch"] != sa.epoch || int64(snap["last_seq"].(float64)) > sa.last {
		t.Fatalf("resync %v", snap)
	}
	f.phase(a, "bottom")
	sa.next("ack")
	sr.next("rep.done")
	cue := uuid.NewString()
	send(remote, map[string]any{"type": "cue.send", "set_id": f.set.ID.String(), "text": "Ribs down", "event_id": cue})
	until(t, remote, func(m map[string]any) bool { return m["type"] == "ack" && m["event_id"] == cue })
	f.storedOnce(t, nil)
}

func TestClusterSIGTERMHandsSetsOverUnderLoad(t *testing.T) {
	t.Parallel()
	f, _, nodes := cluster(t, 2, Config{LeaseTTL: time.Minute}) // waiting out a lease would fail the test
	A, B := nodes[0], nodes[1]
	const sets = 8
	type lifter struct {
		p   Principal
		set domain.Set
	}
	lifters := []lifter{{f.athlete, f.set}}
	for len(lifters) < sets {
		p, set := f.athleteWithLibrary(t)
		lifters = append(lifters, lifter{p, set})
	}
	coach := f.connectTo(B, f.coach)
	for _, l := range lifters {
		send(coach, map[string]any{"type": "subscribe", "set_id": l.set.ID.String()})
	}
	var wg sync.WaitGroup
	errs := make(chan error, sets)
	for _, l := range lifters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- f.liftThroughHandOver(A, B, l.p, l.set)
		}()
	}
	time.Sleep(500 * time.Millisecond) // every lifter is mid-set on A
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := A.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The coach on B saw every set gap-free in each epoch, and its end.
	type pos struct {
		epoch string
		last  int64
	}
	at := map[string]*pos{}
	ended := 0
	for ended < sets {
		m := frame(t, coach)
		id, _ := m["set_id"].(string)
		switch m["type"] {
		case "snapshot":
			at[id] = &pos{m["epoch"].(string), int64(m["last_seq"].(float64))}
		case "hold.tick", "ack", "error", "set.started":
		default:
			p := at[id]
			if p == nil || m["epoch"] != p.epoch || int64(m["seq"].(float64)) != p.last+1 {
				t.Fatalf("coach got %v after %+v", m, p)
			}
			p.last++
			if m["type"] == "set.ended" {
				ended++
			}
		}
	}
	for _, l := range lifters {
		g := &fixture{t: t, store: f.store, set: l.set}
		g.storedOnce(t, nil)
	}
}

// liftThroughHandOver does five reps and ends the set, through node A until
// it goes away (1001), then through node B, resending what was not
// acknowledged as a phone does; every event must be acknowledged once.
func (f *fixture) liftThroughHandOver(A, B *Hub, p Principal, set domain.Set) error {
	g := &fixture{t: f.t, store: f.store, set: set}
	connect := func(h *Hub) *fakeSocket {
		s := newFakeSocket()
		f.served.Add(1)
		go func() { defer f.served.Done(); h.Serve(p, s) }()
		send(s, map[string]any{"type": "subscribe", "set_id": set.ID.String()})
		return s
	}
	sock, onB := connect(A), false
	var steps []string
	for range 5 {
		steps = append(steps, "up", "top", "down", "bottom")
	}
	steps = append(steps, "end")
	resend := func(i int, id string) {
		if steps[i] == "end" {
			send(sock, map[string]any{"type": "set.end", "set_id": set.ID.String(), "event_id": id})
		} else {
			send(sock, map[string]any{"type": "rep.phase", "set_id": set.ID.String(), "phase": steps[i], "event_id": id, "client_ts": 1})
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < len(steps); {
		id := uuid.NewString()
		resend(i, id)
		for acked := false; !acked; {
			if time.Now().After(deadline) {
				return fmt.Errorf("set %s: stuck at step %d", set.ID, i)
			}
			select {
			case b := <-sock.out:
				var m map[string]any
				_ = json.Unmarshal(b, &m)
				switch {
				case m["type"] == "ack" && m["event_id"] == id:
					acked = true
				case m["type"] == "error" && m["event_id"] == id && m["code"] == "unavailable":
					time.Sleep(100 * time.Millisecond) // the set is between nodes: try again
					resend(i, id)
				case m["type"] == "error" && m["event_id"] == id:
					return fmt.Errorf("set %s step %d: %v", set.ID, i, m)
				}
			case <-time.After(50 * time.Millisecond):
				if sock.code() == CloseGoingAway && !onB {
					sock, onB = connect(B), true // the load balancer sends it to B
					resend(i, id)
				}
			}
		}
		if steps[i] == "top" {
			time.Sleep(250 * time.Millisecond) // the 200 ms hold
		}
		i++
	}
	if !onB {
		return fmt.Errorf("set %s: ended before A went away", set.ID)
	}
	_ = g
	return nil
}

func TestClusterSocketCapHoldsAcrossNodes(t *testing.T) {
	t.Parallel()
	f, _, nodes := cluster(t, 2, Config{MaxSockets: 3})
	ctx := context.Background()
	// A burst of sockets of one account through both nodes at once: exactly
	// the cap gets in.
	var mu sync.Mutex
	var admitted []func()
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := nodes[i%2].Admit(ctx, f.coach.UserID)
			if err != nil {
				if domain.ErrorCode(err) != domain.CodeTooManyRequests {
					t.Errorf("refused with %v", err)
				}
				return
			}
			mu.Lock()
			admitted = append(admitted, release)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(admitted) != 3 {
		t.Fatalf("%d sockets admitted across two nodes, the cap is 3", len(admitted))
	}
	admitted[0]()
	admitted[0]() // a second release gives back nothing more
	if _, err := nodes[1].Admit(ctx, f.coach.UserID); err != nil {
		t.Fatalf("a place given back on one node is not free on the other: %v", err)
	}
	if _, err := nodes[0].Admit(ctx, f.coach.UserID); domain.ErrorCode(err) != domain.CodeTooManyRequests {
		t.Fatalf("over the cap: %v", err)
	}
	if !nodes[1].Watching(ctx, f.coach.UserID) || nodes[0].Watching(ctx, f.athlete.UserID) {
		t.Fatal("Watching does not see the other node's sockets")
	}
}

func TestClusterPerUserNoticesReachEveryNode(t *testing.T) {
	t.Parallel()
	f, _, nodes := cluster(t, 2, Config{})
	A, B := nodes[0], nodes[1]
	onB := f.connectTo(B, f.coach) // the coach's tablet, on the node the athlete is not on
	send(onB, map[string]any{"type": "ping", "client_ts": 1})
	next(t, onB, "pong")
	// set.started from the node where the set began.
	A.SetStarted(f.set)
	if m := next(t, onB, "set.started"); m["set_id"] != f.set.ID.String() {
		t.Fatalf("set.started %v", m)
	}
	a := f.connectTo(A, f.athlete)
	f.subscribeOn(t, a)
	st := f.subscribeOn(t, onB)
	// set.ended to a coach's other socket that does not watch the set.
	other := f.connectTo(B, f.coach)
	send(other, map[string]any{"type": "ping", "client_ts": 1})
	next(t, other, "pong")
	send(a, map[string]any{"type": "set.end", "set_id": f.set.ID.String(), "event_id": uuid.NewString()})
	st.next("set.ended")
	if m := next(t, other, "set.ended"); m["set_id"] != f.set.ID.String() || m["seq"] != nil {
		t.Fatalf("set.ended notice %v", m)
	}
	// An unlink on A ends the coach's watch on B with `unsubscribed`.
	p, set := f.athleteWithLibrary(t)
	a2 := f.connectTo(A, p)
	send(a2, map[string]any{"type": "subscribe", "set_id": set.ID.String()})
	next(t, a2, "snapshot")
	send(onB, map[string]any{"type": "subscribe", "set_id": set.ID.String()})
	next(t, onB, "snapshot")
	if _, err := f.store.Pool().Exec(context.Background(), `DELETE FROM coach_links WHERE coach_id = $1 AND athlete_id = $2`, f.coach.UserID, p.UserID); err != nil {
		t.Fatal(err)
	}
	A.Unlinked(f.coach.UserID, p.UserID)
	if m := next(t, onB, "unsubscribed"); m["set_id"] != set.ID.String() || m["reason"] != "unlinked" {
		t.Fatalf("unsubscribed %v", m)
	}
	send(a2, map[string]any{"type": "rep.phase", "set_id": set.ID.String(), "phase": "up", "event_id": uuid.NewString(), "client_ts": 1})
	send(onB, map[string]any{"type": "ping", "client_ts": 2})
	if m := frame(t, onB); m["type"] != "pong" {
		t.Fatalf("a frame of the unlinked set reached the coach: %v", m)
	}
	// A deleted account's sockets close with 4001 on every node.
	B2 := f.connectTo(B, f.athlete)
	send(B2, map[string]any{"type": "ping", "client_ts": 1})
	next(t, B2, "pong")
	A.SignedOut(f.athlete.UserID)
	waitFor(t, "the athlete's socket on B to close with 4001", func() bool { return B2.code() == CloseRevoked })
}

func TestClusterUploadThroughAnotherNode(t *testing.T) {
	t.Parallel()
	f, _, nodes := cluster(t, 2, Config{})
	A, B := nodes[0], nodes[1]
	a := f.connectTo(A, f.athlete)
	sa := f.subscribeOn(t, a) // the set's owner is A
	start := time.Now().Add(-10 * time.Second)
	var events []UploadEvent
	for i, p := range []string{"up", "top", "down", "bottom"} {
		events = append(events, UploadEvent{EventID: uuid.New(), Type: "rep.phase", Phase: p, At: start.Add(time.Duration(i) * 400 * time.Millisecond)})
	}
	res, err := B.Upload(context.Background(), f.set.ID, f.athlete.UserID, events)
	if err != nil || res.Accepted != 4 || res.Duplicates != 0 || len(res.Rejected) != 0 {
		t.Fatalf("upload through B: %+v, %v", res, err)
	}
	sa.next("rep.done") // applied by the owner on A, broadcast to its watchers
	res, err = A.Upload(context.Background(), f.set.ID, f.athlete.UserID, events)
	if err != nil || res.Accepted != 0 || res.Duplicates != 4 {
		t.Fatalf("the same upload again: %+v, %v", res, err)
	}
	f.storedOnce(t, nil)
}

func TestClusterSetMovesToItsAthletesNodeOnce(t *testing.T) {
	t.Parallel()
	f, _, nodes := cluster(t, 2, Config{})
	A, B := nodes[0], nodes[1]
	// The coach's tablet subscribes first: its node, B, takes the set.
	coach := f.connectTo(B, f.coach)
	sc := f.subscribeOn(t, coach)
	if B.localOwner(f.set.ID) == nil {
		t.Fatal("the first subscriber's node does not own the set")
	}
	// The athlete's phone, on A: the quiet set moves there, under a new epoch.
	a := f.connectTo(A, f.athlete)
	sa := f.subscribeOn(t, a)
	waitFor(t, "the set to move to A", func() bool { return A.localOwner(f.set.ID) != nil && B.localOwner(f.set.ID) == nil })
	if s := sc.next("snapshot"); s["epoch"] != sa.epoch {
		t.Fatalf("the coach resynced to %v, the athlete is on epoch %s", s, sa.epoch)
	}
	f.rep(t, a, sa)
	sc.next("rep.done")
	// The athlete's browser on B as well: the set stays where the phone is.
	web := f.connectTo(B, f.athlete)
	sw := f.subscribeOn(t, web)
	f.phase(a, "up")
	sa.next("ack")
	sw.next("state")
	if moves := counterValue(A.metrics.moves) + counterValue(B.metrics.moves); moves != 1 || A.localOwner(f.set.ID) == nil {
		t.Fatalf("%v moves; A owns it: %v", moves, A.localOwner(f.set.ID) != nil)
	}
	send(a, map[string]any{"type": "set.end", "set_id": f.set.ID.String(), "event_id": uuid.NewString()})
	ended := sa.next("set.ended")
	sc.next("set.ended")
	f.storedOnce(t, ended["summary"].(map[string]any))
}

// A node shutting down frees its sets before its sockets close: a phone that
// reconnects to another node at its 1001 finds the set free at once.
func TestClusterHandOverFreesSetsBeforeSocketsClose(t *testing.T) {
	t.Parallel()
	f, _, nodes := cluster(t, 2, Config{LeaseTTL: time.Minute}) // waiting out a lease would fail the test
	A, B := nodes[0], nodes[1]
	a := f.connectTo(A, f.athlete)
	sa := f.subscribeOn(t, a)
	f.phase(a, "up")
	sa.next("ack")
	A.closing.Store(true) // Shutdown's first step: A takes no more frames
	A.handOver(context.Background())
	b := f.connectTo(B, f.athlete)
	send(b, map[string]any{"type": "subscribe", "set_id": f.set.ID.String(), "since_seq": sa.last, "epoch": sa.epoch})
	if s := next(t, b, "snapshot"); s["epoch"] == sa.epoch || s["last_seq"] != float64(sa.last) {
		t.Fatalf("after the hand-over: %v", s)
	}
	f.phase(b, "top")
	until(t, b, func(m map[string]any) bool { return m["type"] == "ack" })
	f.storedOnce(t, nil)
}

// A set whose owner died and that only a coach on another node still watches
// is taken over by that node's keep-alive once the lease lapses: the coach
// gets a snapshot of the new epoch without doing anything.
func TestClusterKeepAliveTakesOverAWatchedSet(t *testing.T) {
	t.Parallel()
	f, _, nodes := cluster(t, 2, Config{LeaseTTL: time.Second, IdleCheck: 100 * time.Millisecond})
	A, B := nodes[0], nodes[1]
	a := f.connectTo(A, f.athlete)
	sa := f.subscribeOn(t, a)
	coach := f.connectTo(B, f.coach)
	sc := f.subscribeOn(t, coach)
	f.phase(a, "up")
	sa.next("ack")
	sc.next("state")
	crash(A)
	crashed := time.Now()
	if s := sc.next("snapshot"); s["epoch"] == sa.epoch || s["last_seq"] != float64(sa.last) {
		t.Fatalf("the watcher's resync: %v", s)
	}
	t.Logf("the watcher resynced %v after the crash", time.Since(crashed).Round(time.Millisecond))
	if B.localOwner(f.set.ID) == nil {
		t.Fatal("B did not take the set")
	}
}

// A watcher whose sync was lost on the way (an answer from another node
// dropped with NATS) asks again at the next keep-alive: it is never left
// waiting for frames that will not come.
func TestRelayAsksAgainForALostSync(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.connect(f.athlete)
	f.subscribeOn(t, a)
	f.hub.mu.RLock()
	r := f.hub.relays[f.set.ID]
	f.hub.mu.RUnlock()
	r.mu.Lock()
	for _, w := range r.watchers { // as if its resync's answer never came
		w.synced, w.asked = false, time.Now().Add(-time.Minute)
	}
	r.mu.Unlock()
	f.phase(a, "up") // its state is not delivered to a watcher waiting for its sync
	next(t, a, "ack")
	r.askAgain(time.Now())
	until(t, a, func(m map[string]any) bool { return m["type"] == "snapshot" && m["last_seq"] == float64(1) })
}
