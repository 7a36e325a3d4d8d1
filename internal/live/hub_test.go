package live

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/testdb"
)

// fakeSocket is a socket in memory: the test writes client frames into in and
// reads server frames from out. A gate, when set, holds every write (a slow client).
type fakeSocket struct {
	in        chan []byte
	out       chan []byte
	gate      chan struct{}
	interrupt chan struct{}
	once      sync.Once
	mu        sync.Mutex
	closeCode int
	messages  int // messages written (each may hold several frames)
}

func newFakeSocket() *fakeSocket {
	return &fakeSocket{in: make(chan []byte, 64), out: make(chan []byte, 4096), interrupt: make(chan struct{})}
}

var errInterrupted = errors.New("interrupted")

func (s *fakeSocket) ReadMessage() ([]byte, error) {
	select {
	case b := <-s.in:
		if len(b) > MaxFrameBytes {
			return nil, ErrTooBig
		}
		return b, nil
	case <-s.interrupt:
		return nil, errInterrupted
	}
}

// WriteMessage takes one message of the server, which may join several
// frames with newlines: out gets each frame on its own (a copy: the writer
// reuses its buffer), as a client splits them.
func (s *fakeSocket) WriteMessage(b []byte) error {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-s.interrupt:
			return errInterrupted
		}
	}
	s.mu.Lock()
	s.messages++
	s.mu.Unlock()
	for _, line := range bytes.Split(b, []byte("\n")) {
		select {
		case s.out <- bytes.Clone(line):
		case <-s.interrupt:
			return errInterrupted
		}
	}
	return nil
}

func (s *fakeSocket) WritePing() error { return nil }

func (s *fakeSocket) WriteClose(code int, _ string) error {
	if s.gate != nil { // like a real socket whose writer is stuck: waits for the write lock
		select {
		case <-s.gate:
		case <-s.interrupt:
		}
	}
	s.mu.Lock()
	s.closeCode = code
	s.mu.Unlock()
	return nil
}

func (s *fakeSocket) Interrupt() { s.once.Do(func() { close(s.interrupt) }) }

func (s *fakeSocket) code() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeCode
}

// fixture is a hub on a fresh database with an athlete, a linked coach, an
// unlinked coach and a live set of the athlete.
type fixture struct {
	t       *testing.T
	hub     *Hub
	store   *postgres.Store
	athlete Principal
	coach   Principal
	other   Principal
	set     domain.Set
	served  sync.WaitGroup
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := newWorld(t)
	f.hub = f.node(cfg)
	return f
}

// newWorld is the fixture's database, people and set, with no hub yet.
func newWorld(t *testing.T) *fixture {
	t.Helper()
	pool := testdb.New(t)
	store := postgres.NewStore(pool)
	ctx := context.Background()
	f := &fixture{t: t, store: store}
	mk := func(role domain.Role) Principal {
		u, err := store.CreateUser(ctx, domain.User{Email: uuid.NewString() + "@example.com", DisplayName: string(role), Role: role}, "x")
		if err != nil {
			t.Fatal(err)
		}
		sid := uuid.New()
		if err := store.CreateSession(ctx, u.ID, sid, []byte(uuid.NewString()), time.Hour); err != nil {
			t.Fatal(err)
		}
		return Principal{UserID: u.ID, Role: role, SessionID: sid}
	}
	f.athlete, f.coach, f.other = mk(domain.RoleAthlete), mk(domain.RoleCoach), mk(domain.RoleCoach)
	exec := func(sql string, args ...any) {
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO coach_links (coach_id, athlete_id) VALUES ($1, $2)`, f.coach.UserID, f.athlete.UserID)
	exec(`INSERT INTO exercises (id, slug, name, summary, setup, execution) VALUES ('11111111-1111-4111-8111-111111111111', 'test-ex', 'Test', '', '', '')
		ON CONFLICT DO NOTHING`)
	exec(`INSERT INTO variations (exercise_id, slug, name, position, loading, description)
		VALUES ('11111111-1111-4111-8111-111111111111', 'test-var', 'Test variation', 1, 'bodyweight', '') ON CONFLICT DO NOTHING`)
	var err error
	f.set, err = store.CreateSet(ctx, postgres.NewSet{AthleteID: f.athlete.UserID, Variation: "test-var", LoadKG: 60, TargetReps: 5, PauseHoldMS: 200})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.served.Wait) // after every node has shut down
	return f
}

// node starts a hub (a node of the cluster, with cfg.Bus) on the fixture's
// database; it shuts down when the test ends.
func (f *fixture) node(cfg Config) *Hub {
	h := New(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	return h
}

// connect serves a fake socket for p.
func (f *fixture) connect(p Principal) *fakeSocket { return f.connectTo(f.hub, p) }

// connectTo serves a fake socket for p on one node.
func (f *fixture) connectTo(h *Hub, p Principal) *fakeSocket {
	s := newFakeSocket()
	f.served.Add(1)
	go func() { defer f.served.Done(); h.Serve(p, s) }()
	return s
}

func send(s *fakeSocket, frame map[string]any) {
	b, _ := json.Marshal(frame)
	s.in <- b
}

// next returns the next frame of the given type, skipping hold ticks.
func next(t *testing.T, s *fakeSocket, typ string) map[string]any {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case b := <-s.out:
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("frame is not JSON: %s", b)
			}
			if m["type"] == "hold.tick" && typ != "hold.tick" {
				continue
			}
			if m["type"] != typ {
				t.Fatalf("got frame %s, want %s", b, typ)
			}
			return m
		case <-deadline:
			t.Fatalf("no %s frame within 5 s", typ)
		}
	}
}

func (f *fixture) phase(s *fakeSocket, phase string) string {
	id := uuid.NewString()
	send(s, map[string]any{"type": "rep.phase", "set_id": f.set.ID.String(), "phase": phase, "event_id": id, "client_ts": 1})
	return id
}

func TestHubRepCycleAcksAfterCommitAndSeqIsGapFree(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a, c := f.connect(f.athlete), f.connect(f.coach)
	send(a, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	send(c, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	snapA, snapC := next(t, a, "snapshot"), next(t, c, "snapshot")
	if snapA["epoch"] != snapC["epoch"] || snapA["last_seq"] != snapC["last_seq"] {
		t.Fatalf("two snapshots of one set differ: %v %v", snapA, snapC)
	}

	id := f.phase(a, "up")
	next(t, a, "state")
	ack := next(t, a, "ack")
	if ack["event_id"] != id {
		t.Fatalf("ack %v for another event", ack)
	}
	events, err := f.store.SetEvents(context.Background(), f.set.ID)
	if err != nil || len(events) != 1 || events[0].EventID.String() != id {
		t.Fatalf("acknowledged event not stored: %v %v", events, err)
	}
	// The coach sees the same numbered frame.
	st := next(t, c, "state")
	if st["seq"] != float64(1) || st["epoch"] != snapA["epoch"] {
		t.Fatalf("coach frame %v", st)
	}

	// A resent event is acknowledged again and applied once.
	send(a, map[string]any{"type": "rep.phase", "set_id": f.set.ID.String(), "phase": "up", "event_id": id, "client_ts": 1})
	if again := next(t, a, "ack"); again["event_id"] != id {
		t.Fatalf("resend not acknowledged: %v", again)
	}
	f.phase(a, "top")
	st = next(t, a, "state")
	if st["seq"] != float64(2) || st["state"].(map[string]any)["rep"] != float64(1) {
		t.Fatalf("after top: %v", st)
	}
	next(t, a, "ack")
	// The server's timer ends the 200 ms hold.
	next(t, a, "hold.done")
	next(t, a, "state")

	// An invalid transition is refused: error frame, no ack, nothing stored.
	bad := f.phase(a, "up")
	e := next(t, a, "error")
	if e["code"] != "invalid_transition" || e["event_id"] != bad || e["set_id"] != f.set.ID.String() {
		t.Fatalf("error frame %v", e)
	}
	if events, _ := f.store.SetEvents(context.Background(), f.set.ID); len(events) != 2 {
		t.Fatalf("%d events stored, want 2", len(events))
	}
	// Every frame the coach got is numbered 1, 2, 3… without gaps.
	want := float64(2)
	for _, typ := range []string{"state", "hold.done", "state"} {
		m := next(t, c, typ)
		if m["seq"] != want {
			t.Fatalf("coach %s seq %v, want %v", typ, m["seq"], want)
		}
		want++
	}
}

func TestHubRefusesFramesForTheWrongRole(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	c, o := f.connect(f.coach), f.connect(f.other)
	f.phase(c, "up")
	if e := next(t, c, "error"); e["code"] != "forbidden" {
		t.Fatalf("coach moving reps: %v", e)
	}
	send(o, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	if e := next(t, o, "error"); e["code"] != "not_found" {
		t.Fatalf("unlinked coach subscribing: %v", e)
	}
	send(o, map[string]any{"type": "cue.send", "set_id": f.set.ID.String(), "text": "Ribs down"})
	if e := next(t, o, "error"); e["code"] != "not_found" {
		t.Fatalf("unlinked coach cueing: %v", e)
	}
	a := f.connect(f.athlete)
	send(a, map[string]any{"type": "cue.send", "set_id": f.set.ID.String(), "text": "Ribs down"})
	if e := next(t, a, "error"); e["code"] != "forbidden" {
		t.Fatalf("athlete cueing: %v", e)
	}
	send(a, map[string]any{"type": "subscribe", "set_id": f.set.ID.String(), "extra": 1})
	if e := next(t, a, "error"); e["code"] != "invalid" {
		t.Fatalf("unknown field: %v", e)
	}
	send(a, map[string]any{"type": "subscribe", "set_id": "nope"})
	if e := next(t, a, "error"); e["code"] != "invalid" || e["set_id"] != "nope" {
		t.Fatalf("bad set id: %v", e)
	}
	send(a, map[string]any{"type": "dance"})
	if e := next(t, a, "error"); e["code"] != "invalid" {
		t.Fatalf("unknown type: %v", e)
	}
	send(a, map[string]any{"type": "ping", "client_ts": 42})
	if p := next(t, a, "pong"); p["client_ts"] != float64(42) || p["server_ts"].(float64) < 1 {
		t.Fatalf("pong %v", p)
	}
}

func TestHubReplaysSinceSeqAndSnapshotsOtherwise(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.connect(f.athlete)
	send(a, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	snap := next(t, a, "snapshot")
	epoch := snap["epoch"].(string)
	f.phase(a, "up")
	next(t, a, "state")
	next(t, a, "ack")
	f.phase(a, "top")
	next(t, a, "state")
	next(t, a, "ack")

	c := f.connect(f.coach)
	send(c, map[string]any{"type": "subscribe", "set_id": f.set.ID.String(), "since_seq": 0, "epoch": epoch})
	if m := next(t, c, "state"); m["seq"] != float64(1) {
		t.Fatalf("replay starts at %v", m["seq"])
	}
	if m := next(t, c, "state"); m["seq"] != float64(2) {
		t.Fatalf("replay continues at %v", m["seq"])
	}
	if m := next(t, c, "replayed"); m["last_seq"] != float64(2) {
		t.Fatalf("replayed %v", m)
	}
	send(c, map[string]any{"type": "subscribe", "set_id": f.set.ID.String(), "since_seq": 2})
	next(t, c, "replayed") // nothing missed
	send(c, map[string]any{"type": "subscribe", "set_id": f.set.ID.String(), "since_seq": 1, "epoch": "another"})
	if m := next(t, c, "snapshot"); m["epoch"] != epoch {
		t.Fatalf("snapshot %v", m)
	}
}

func TestHubClosesASlowClientWithoutSlowingOthers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{SendQueue: 8})
	a, c := f.connect(f.athlete), newFakeSocket()
	c.gate = make(chan struct{}) // this coach's socket never drains
	f.served.Add(1)
	go func() { defer f.served.Done(); f.hub.Serve(f.coach, c) }()
	send(a, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	send(c, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	next(t, a, "snapshot")
	for i := 0; i < 10; i++ {
		send(a, map[string]any{"type": "ping", "client_ts": i}) // keeps a busy while the coach lags
		next(t, a, "pong")
	}
	for i := 0; i < 5; i++ {
		f.phase(a, "up")
		next(t, a, "state")
		next(t, a, "ack")
		f.phase(a, "top")
		next(t, a, "state")
		next(t, a, "ack")
		next(t, a, "hold.done")
		next(t, a, "state")
		f.phase(a, "down")
		next(t, a, "state")
		next(t, a, "ack")
		f.phase(a, "bottom")
		next(t, a, "state")
		next(t, a, "rep.done")
		next(t, a, "ack")
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.code() != CloseTooSlow && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.code() != CloseTooSlow {
		t.Fatalf("the slow socket was closed with %d, want 4008", c.code())
	}
}

func TestHubUnlinkStopsWatchingAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a, c := f.connect(f.athlete), f.connect(f.coach)
	send(c, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	next(t, c, "snapshot")
	f.hub.Unlinked(f.coach.UserID, f.athlete.UserID)
	if m := next(t, c, "unsubscribed"); m["reason"] != "unlinked" || m["set_id"] != f.set.ID.String() {
		t.Fatalf("unsubscribed %v", m)
	}
	send(a, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	next(t, a, "snapshot")
	f.phase(a, "up")
	next(t, a, "state")
	select {
	case b := <-c.out:
		t.Fatalf("the unlinked coach still receives: %s", b)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestHubShutdownCommitsThenCloses1001(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.connect(f.athlete)
	send(a, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	next(t, a, "snapshot")
	ids := map[string]bool{}
	for _, p := range []string{"up", "top"} {
		ids[f.phase(a, p)] = true
	}
	// Give the reader a moment to take both frames, then shut down at once.
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.hub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	for len(a.out) > 0 {
		var m map[string]any
		_ = json.Unmarshal(<-a.out, &m)
		if m["type"] == "ack" {
			acked[m["event_id"].(string)] = true
		}
	}
	if a.code() != CloseGoingAway {
		t.Fatalf("closed with %d, want 1001", a.code())
	}
	stored, _ := f.store.SetEvents(context.Background(), f.set.ID)
	for _, e := range stored {
		delete(ids, e.EventID.String())
	}
	for id := range acked {
		if ids[id] {
			t.Fatalf("event %s acknowledged but not stored", id)
		}
	}
	if len(acked) != 2 {
		t.Fatalf("%d of 2 events acknowledged before 1001", len(acked))
	}
}

func TestHubLeavesNoGoroutinesBehind(t *testing.T) {
	// Not parallel: it counts goroutines.
	pool := testdb.New(t) // the pool's own goroutines exist before the baseline
	_ = pool
	baseline := goleak.IgnoreCurrent()
	f := newFixture(t, Config{IdleTimeout: time.Millisecond, IdleCheck: 5 * time.Millisecond})
	for i := 0; i < 20; i++ {
		s := f.connect(f.athlete)
		send(s, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
		next(t, s, "snapshot")
		s.Interrupt()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.hub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	f.served.Wait()
	f.store.Pool().Close()
	if err := goleak.Find(baseline, goleak.IgnoreAnyFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
		goleak.IgnoreAnyFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).triggerHealthCheck.func1")); err != nil {
		t.Fatal(fmt.Sprint("goroutines left behind: ", err))
	}
}

func TestHubClosesRevokedSessions4001(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{SessionCheck: 20 * time.Millisecond})
	a, c := f.connect(f.athlete), f.connect(f.coach)
	send(a, map[string]any{"type": "ping", "client_ts": 1})
	next(t, a, "pong")
	send(c, map[string]any{"type": "ping", "client_ts": 1})
	next(t, c, "pong")
	if _, err := f.store.Pool().Exec(context.Background(), `UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1`, f.athlete.SessionID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.code() != CloseRevoked && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a.code() != CloseRevoked {
		t.Fatalf("revoked session closed with %d, want 4001", a.code())
	}
	send(c, map[string]any{"type": "ping", "client_ts": 2})
	if p := next(t, c, "pong"); p["client_ts"] != float64(2) || c.code() != 0 {
		t.Fatal("the coach's live session was closed too")
	}
}

// TestHubAcksOnlyWhatIsStoredThroughADatabaseOutage cuts the set's database
// off mid-set: the event is applied and broadcast but not acknowledged; once
// the database is back, the phone's resend is stored and acknowledged, and the
// event is applied only once.
func TestHubAcksOnlyWhatIsStoredThroughADatabaseOutage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	ctx := context.Background()
	admin := testdb.Admin(t)
	db := f.store.Pool().Config().ConnConfig.Database
	exec := func(sql string) {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}

	a := f.connect(f.athlete)
	send(a, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	next(t, a, "snapshot")
	f.phase(a, "up")
	next(t, a, "state")
	next(t, a, "ack")

	exec(`ALTER DATABASE ` + db + ` ALLOW_CONNECTIONS false`)
	exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '` + db + `'`)
	top := uuid.NewString()
	frame := map[string]any{"type": "rep.phase", "set_id": f.set.ID.String(), "phase": "top", "event_id": top, "client_ts": 2}
	send(a, frame)
	if st := next(t, a, "state"); st["state"].(map[string]any)["rep"] != float64(1) {
		t.Fatalf("state %v", st)
	}
	for quiet := time.After(time.Second); ; {
		select {
		case b := <-a.out:
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			if m["type"] == "ack" {
				t.Fatalf("acknowledged while the database was away: %s", b)
			}
			continue
		case <-quiet:
		}
		break
	}

	exec(`ALTER DATABASE ` + db + ` ALLOW_CONNECTIONS true`)
	deadline := time.Now().Add(10 * time.Second)
	acked := false
	for !acked && time.Now().Before(deadline) {
		send(a, frame) // the phone resends what was not acknowledged
		timeout := time.After(500 * time.Millisecond)
	wait:
		for {
			select {
			case b := <-a.out:
				var m map[string]any
				_ = json.Unmarshal(b, &m)
				switch m["type"] {
				case "ack":
					acked = m["event_id"] == top
					break wait
				case "state":
					if m["state"].(map[string]any)["rep"] != float64(1) {
						t.Fatalf("the resend was applied again: %s", b)
					}
				}
			case <-timeout:
				break wait
			}
		}
	}
	if !acked {
		t.Fatal("the resent event was never acknowledged after the database came back")
	}
	events, err := f.store.SetEvents(ctx, f.set.ID)
	if err != nil || len(events) != 2 || events[1].EventID.String() != top {
		t.Fatalf("stored %d events (%v), want up and top once each", len(events), err)
	}
}

func TestHubLimitsTheFrameRateOfASocket(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{FrameRate: 1, FrameBurst: 3})
	a := f.connect(f.athlete)
	for i := 0; i < 3; i++ {
		send(a, map[string]any{"type": "ping", "client_ts": i})
		next(t, a, "pong")
	}
	send(a, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	if e := next(t, a, "error"); e["code"] != "too_many_requests" || e["set_id"] != f.set.ID.String() {
		t.Fatalf("over the rate: %v", e)
	}
}

func TestHubReloadedSetSnapshotsOldSinceSeq(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{IdleTimeout: time.Millisecond, IdleCheck: 5 * time.Millisecond})
	a := f.connect(f.athlete)
	send(a, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	next(t, a, "snapshot")
	f.phase(a, "up")
	next(t, a, "state")
	next(t, a, "ack")
	send(a, map[string]any{"type": "unsubscribe", "set_id": f.set.ID.String()})
	time.Sleep(100 * time.Millisecond) // the idle set's goroutine retires; its state is gone
	send(a, map[string]any{"type": "subscribe", "set_id": f.set.ID.String(), "since_seq": 0})
	snap := next(t, a, "snapshot")
	if snap["last_seq"] != float64(1) || snap["state"].(map[string]any)["phase"] != "up" {
		t.Fatalf("after a reload: %v", snap)
	}
}
