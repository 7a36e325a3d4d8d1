package live

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/reptimer"
	"github.com/repcue/repcue/internal/testdb"
)

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// testClock is the hub's clock in tests that move time by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// frame reads the next frame of a socket, whatever it is.
func frame(t *testing.T, s *fakeSocket) map[string]any {
	t.Helper()
	select {
	case b := <-s.out:
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("frame is not JSON: %s", b)
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no frame within 5 s")
		return nil
	}
}

// until reads frames until one matches, and returns it.
func until(t *testing.T, s *fakeSocket, match func(m map[string]any) bool) map[string]any {
	t.Helper()
	for {
		if m := frame(t, s); match(m) {
			return m
		}
	}
}

// athleteWithLibrary makes an athlete (linked to the fixture's coach) with a
// live set whose exercise has the tests' cue library, pinned when it starts.
func (f *fixture) athleteWithLibrary(t *testing.T) (Principal, domain.Set) {
	t.Helper()
	ctx := context.Background()
	for _, sql := range []string{
		`INSERT INTO cues (id, exercise_id, text, phase, priority) VALUES
			('22222222-2222-4222-8222-222222222221', '11111111-1111-4111-8111-111111111111', 'Tuck, then thrust', 'setup', 10),
			('22222222-2222-4222-8222-222222222223', '11111111-1111-4111-8111-111111111111', 'Pause and squeeze', 'lockout', 10),
			('22222222-2222-4222-8222-222222222224', '11111111-1111-4111-8111-111111111111', 'Ribs down', 'any', 1) ON CONFLICT DO NOTHING`,
		`INSERT INTO mistakes (id, exercise_id, code, name, fix) VALUES
			('33333333-3333-4333-8333-333333333333', '11111111-1111-4111-8111-111111111111', 'no_pause_at_top', 'No pause at top', 'Hold it'),
			('33333333-3333-4333-8333-333333333334', '11111111-1111-4111-8111-111111111111', NULL, 'Over-arching', 'Ribs down') ON CONFLICT DO NOTHING`,
		`INSERT INTO mistake_cues (mistake_id, cue_id, position) VALUES
			('33333333-3333-4333-8333-333333333333', '22222222-2222-4222-8222-222222222223', 1),
			('33333333-3333-4333-8333-333333333334', '22222222-2222-4222-8222-222222222224', 1) ON CONFLICT DO NOTHING`,
	} {
		if _, err := f.store.Pool().Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	u, err := f.store.CreateUser(ctx, domain.User{Email: uuid.NewString() + "@example.com", DisplayName: "a", Role: domain.RoleAthlete}, "x")
	if err != nil {
		t.Fatal(err)
	}
	p := Principal{UserID: u.ID, Role: domain.RoleAthlete, SessionID: uuid.New()}
	if err := f.store.CreateSession(ctx, u.ID, p.SessionID, []byte(uuid.NewString()), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Pool().Exec(ctx, `INSERT INTO coach_links (coach_id, athlete_id) VALUES ($1, $2)`, f.coach.UserID, u.ID); err != nil {
		t.Fatal(err)
	}
	set, err := f.store.CreateSet(ctx, postgres.NewSet{AthleteID: u.ID, Variation: "test-var", LoadKG: 60, TargetReps: 5, PauseHoldMS: 200})
	if err != nil {
		t.Fatal(err)
	}
	return p, set
}

// inSet runs fn in the set's goroutine and waits for it.
func (f *fixture) inSet(t *testing.T, h *Hub, setID uuid.UUID, fn func(o *owner)) {
	t.Helper()
	done := make(chan struct{})
	if err := h.owner(setID).doSoon(func(o *owner) { fn(o); close(done) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the set's goroutine did not answer")
	}
}

// settled waits until nothing of the set is being written.
func (f *fixture) settled(t *testing.T, h *Hub, setID uuid.UUID) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		idle := false
		f.inSet(t, h, setID, func(o *owner) { o.runCompletions(); idle = o.pending == 0 && len(o.retries) == 0 })
		if idle {
			return
		}
	}
	t.Fatal("the set's writes never settled")
}

// The reproduction, through the hub and the database: up and top
// uploaded, the server's clock runs past the hold, then down (50 ms after top)
// and bottom uploaded. Live and rebuilt agree: the hold was cut short, and the
// rebuilt set has the live set's last seq.
func TestHubUploadedRepIsJudgedByItsOwnTimesLiveAndRebuilt(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Now()}
	f := newFixture(t, Config{Now: clk.Now})
	athlete, set := f.athleteWithLibrary(t)
	a := f.connect(athlete)
	send(a, map[string]any{"type": "subscribe", "set_id": set.ID.String()})
	next(t, a, "snapshot")
	t0 := clk.Now().Add(-time.Minute)
	upload := func(evs ...UploadEvent) {
		t.Helper()
		for i := range evs {
			evs[i].EventID, evs[i].Type = uuid.New(), orDefault(evs[i].Type, "rep.phase")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if res, err := f.hub.Upload(ctx, set.ID, athlete.UserID, evs); err != nil || res.Accepted != len(evs) {
			t.Fatalf("upload: %+v %v", res, err)
		}
	}
	upload(UploadEvent{Phase: "up", At: t0}, UploadEvent{Phase: "top", At: t0.Add(100 * time.Millisecond)})
	clk.Advance(time.Second)
	f.inSet(t, f.hub, set.ID, func(o *owner) { o.clockTick() }) // the owner's timer, past the hold's deadline
	upload(UploadEvent{Phase: "down", At: t0.Add(150 * time.Millisecond)}, UploadEvent{Phase: "bottom", At: t0.Add(time.Second)})
	upload(UploadEvent{Type: "set.end", At: t0.Add(2 * time.Second)})

	ended := until(t, a, func(m map[string]any) bool { return m["type"] == "set.ended" })
	liveSummary := ended["summary"].(map[string]any)
	if liveSummary["holds_met"] != float64(0) || liveSummary["avg_hold_ms"] != float64(50) {
		t.Fatalf("live summary %v: the uploaded hold was 50 ms", liveSummary)
	}
	f.settled(t, f.hub, set.ID)
	stored, err := f.store.FindSet(context.Background(), set.ID)
	if err != nil {
		t.Fatal(err)
	}
	h, err := History(context.Background(), f.store, stored)
	if err != nil {
		t.Fatal(err)
	}
	if h.Summary.HoldsMet != 0 || *h.Summary.AvgHoldMS != 50 || h.LastSeq != int64(ended["seq"].(float64)) {
		t.Fatalf("rebuilt summary %+v and last seq %d; live last seq %v", h.Summary, h.LastSeq, ended["seq"])
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestHubRebuildEqualsLiveThroughStorage drives random sets through the real
// hub and database — live phases, coach cues and flags, receipts, offline
// uploads, the clock firing in between — then ends each live and rebuilds it
// from storage: the same reps, summary and last seq.
func TestHubRebuildEqualsLiveThroughStorage(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Now()}
	f := newFixture(t, Config{Now: clk.Now, FrameRate: 10000, FrameBurst: 10000})
	rng := rand.New(rand.NewPCG(4, 2026))
	c := f.connect(f.coach)
	for run := 0; run < 6; run++ {
		athlete, set := f.athleteWithLibrary(t)
		sid := set.ID.String()
		a := f.connect(athlete)
		send(a, map[string]any{"type": "subscribe", "set_id": sid})
		next(t, a, "snapshot")
		send(c, map[string]any{"type": "subscribe", "set_id": sid})
		until(t, c, func(m map[string]any) bool { return m["type"] == "snapshot" && m["set_id"] == sid })
		phone := clk.Now().Add(-10 * time.Minute)
		lastCue := int64(0)
		for step := 0; step < 40; step++ {
			clk.Advance(time.Duration(rng.IntN(120)) * time.Millisecond)
			switch op := rng.IntN(8); op {
			case 0, 1, 2:
				id := uuid.NewString()
				send(a, map[string]any{"type": "rep.phase", "set_id": sid, "phase": phases[rng.IntN(4)], "event_id": id, "client_ts": 1})
				until(t, a, func(m map[string]any) bool {
					if m["type"] == "cue" {
						lastCue = int64(m["seq"].(float64))
					}
					return (m["type"] == "ack" || m["type"] == "error") && m["event_id"] == id
				})
			case 3:
				fr := map[string]any{"type": "cue.send", "set_id": sid, "text": "Chin tucked"}
				if rng.IntN(2) == 0 {
					fr = map[string]any{"type": "mistake.flag", "set_id": sid, "mistake_id": "33333333-3333-4333-8333-333333333334"}
				}
				send(c, fr)
				until(t, c, func(m map[string]any) bool { return m["set_id"] == sid && (m["type"] == "cue" || m["type"] == "error") })
			case 4:
				if lastCue > 0 {
					send(a, map[string]any{"type": "cue.ack", "set_id": sid, "cue_seq": lastCue})
				}
			case 5:
				var evs []UploadEvent
				for i := 0; i <= rng.IntN(4); i++ {
					phone = phone.Add(time.Duration(rng.IntN(400)) * time.Millisecond)
					evs = append(evs, UploadEvent{EventID: uuid.New(), Type: "rep.phase", Phase: phases[rng.IntN(4)], At: phone})
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if _, err := f.hub.Upload(ctx, set.ID, athlete.UserID, evs); err != nil {
					t.Fatal(err)
				}
				cancel()
			default: // the owner's timer, possibly long after a deadline
				clk.Advance(time.Duration(rng.IntN(600)) * time.Millisecond)
				f.inSet(t, f.hub, set.ID, func(o *owner) { o.clockTick() })
			}
		}
		id := uuid.NewString()
		send(a, map[string]any{"type": "set.end", "set_id": sid, "event_id": id})
		ended := until(t, a, func(m map[string]any) bool { return m["type"] == "set.ended" })
		until(t, a, func(m map[string]any) bool { return m["type"] == "ack" && m["event_id"] == id })
		f.settled(t, f.hub, set.ID)
		var live struct {
			seq     int64
			reps    []reptimer.RepFigures
			summary reptimer.Summary
		}
		f.inSet(t, f.hub, set.ID, func(o *owner) {
			live.seq, live.reps, live.summary = o.m.state.LastSeq(), o.m.state.Reps(), o.m.state.Summary()
		})
		stored, _ := f.store.FindSet(context.Background(), set.ID)
		h, err := History(context.Background(), f.store, stored)
		if err != nil {
			t.Fatal(err)
		}
		if h.LastSeq != live.seq || int64(ended["seq"].(float64)) != live.seq {
			t.Fatalf("set %d: rebuilt last seq %d, live %d (set.ended seq %v)", run, h.LastSeq, live.seq, ended["seq"])
		}
		mustSame(t, "reps", h.Reps, live.reps)
		mustSame(t, "summary", h.Summary, live.summary)
		mustSame(t, "summary of set.ended", h.Summary, ended["summary"])
		send(c, map[string]any{"type": "unsubscribe", "set_id": sid})
		a.Interrupt()
	}
}

// A later edit of the library changes neither a running set nor its rebuild.
func TestHubSetKeepsTheCueLibraryItStartedWith(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	athlete, set := f.athleteWithLibrary(t)
	ctx := context.Background()
	for _, sql := range []string{
		`UPDATE mistakes SET deleted_at = now() WHERE id = '33333333-3333-4333-8333-333333333334'`,
		`UPDATE cues SET text = 'Edited' WHERE id = '22222222-2222-4222-8222-222222222221'`,
	} {
		if _, err := f.store.Pool().Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	a, c := f.connect(athlete), f.connect(f.coach)
	send(a, map[string]any{"type": "subscribe", "set_id": set.ID.String()})
	snap := next(t, a, "snapshot")
	if cue := snap["state"].(map[string]any)["cue"].(map[string]any); cue["text"] != "Tuck, then thrust" {
		t.Fatalf("the set's setup cue is %v, not the one it started with", cue)
	}
	send(c, map[string]any{"type": "mistake.flag", "set_id": set.ID.String(), "mistake_id": "33333333-3333-4333-8333-333333333334"})
	if m := next(t, a, "cue"); m["cue"].(map[string]any)["text"] != "Ribs down" {
		t.Fatalf("cue %v", m)
	}
	f.settled(t, f.hub, set.ID)
	h, err := History(ctx, f.store, set)
	if err != nil || len(h.Cues) != 1 || h.Summary.CuesSent != 1 {
		t.Fatalf("rebuilt after the library changed: %+v %v", h, err)
	}
}

// A resubscribe whose replay does not fit the socket's queue gets a snapshot,
// not a 4008; a short one is still replayed.
func TestHubLongReplayIsASnapshotNotA4008(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{SendQueue: 32, FrameRate: 10000, FrameBurst: 10000})
	c := f.connect(f.coach)
	sid := f.set.ID.String()
	send(c, map[string]any{"type": "subscribe", "set_id": sid})
	epoch := next(t, c, "snapshot")["epoch"]
	for i := 0; i < 20; i++ { // 40 frames: a cue and a state each
		send(c, map[string]any{"type": "cue.send", "set_id": sid, "text": fmt.Sprint("Cue ", i)})
		next(t, c, "cue")
		next(t, c, "state")
	}
	send(c, map[string]any{"type": "subscribe", "set_id": sid, "since_seq": 0, "epoch": epoch})
	if m := next(t, c, "snapshot"); m["last_seq"] != float64(40) {
		t.Fatalf("snapshot %v", m)
	}
	send(c, map[string]any{"type": "subscribe", "set_id": sid, "since_seq": 35, "epoch": epoch})
	for seq := 36; seq <= 40; seq++ {
		if m := frame(t, c); m["seq"] != float64(seq) {
			t.Fatalf("replayed %v, want seq %d", m, seq)
		}
	}
	next(t, c, "replayed")
	send(c, map[string]any{"type": "ping", "client_ts": 1})
	next(t, c, "pong")
	if c.code() != 0 {
		t.Fatalf("closed with %d", c.code())
	}
}

// lockEvents holds a lock on set_events that makes every insert wait, until release.
func lockEvents(t *testing.T, pool *pgxpool.Pool) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE set_events IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	return func() { _ = tx.Rollback(ctx) }
}

// One set's write that can never succeed (its n taken behind the hub's back,
// as a second process on the same database does) holds back no other set's
// acks, is not retried forever, and resyncs that set's subscribers.
func TestHubRefusedWriteOfOneSetSparesTheOthers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	athlete2, set2 := f.athleteWithLibrary(t)
	a, b := f.connect(f.athlete), f.connect(athlete2)
	send(a, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	epoch := next(t, a, "snapshot")["epoch"]
	send(b, map[string]any{"type": "subscribe", "set_id": set2.ID.String()})
	next(t, b, "snapshot")
	// Another process numbers an event of set 1 with the n this hub uses next but one.
	if _, err := f.store.Pool().Exec(context.Background(), `INSERT INTO set_events (set_id, event_id, n, type, phase, actor_id, at, source)
		VALUES ($1, $2, 2, 'rep.phase', 'up', $3, now(), 'live')`, f.set.ID, uuid.New(), f.athlete.UserID); err != nil {
		t.Fatal(err)
	}

	release := lockEvents(t, f.store.Pool())
	up := f.phase(a, "up") // n 1: the committer takes it and waits for the lock
	next(t, a, "state")
	time.Sleep(50 * time.Millisecond)
	top := f.phase(a, "top") // n 2: refused once stored
	next(t, a, "state")
	bUp := uuid.NewString()
	send(b, map[string]any{"type": "rep.phase", "set_id": set2.ID.String(), "phase": "up", "event_id": bUp, "client_ts": 1})
	next(t, b, "state")
	time.Sleep(50 * time.Millisecond) // both wait in the committer's queue: one batch
	release()

	start := time.Now()
	if m := until(t, b, func(m map[string]any) bool { return m["type"] == "ack" }); m["event_id"] != bUp {
		t.Fatalf("ack %v", m)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("the other set's ack took %v", d)
	}
	// Set 1 acks what was stored, then resyncs: a snapshot of a new epoch, with the stored events.
	until(t, a, func(m map[string]any) bool { return m["type"] == "ack" && m["event_id"] == up })
	snap := until(t, a, func(m map[string]any) bool { return m["type"] == "snapshot" })
	if snap["epoch"] == epoch || snap["last_seq"] != float64(1) {
		t.Fatalf("resync snapshot %v (old epoch %v)", snap, epoch)
	}
	errors := counterValue(f.hub.metrics.commitErrors)
	time.Sleep(2500 * time.Millisecond) // more than two retry pauses
	if after := counterValue(f.hub.metrics.commitErrors); after != errors {
		t.Fatalf("the refused write was tried again: %v commit errors, then %v", errors, after)
	}
	// The phone resends top; it is applied to the reloaded set and stored.
	send(a, map[string]any{"type": "rep.phase", "set_id": f.set.ID.String(), "phase": "top", "event_id": top, "client_ts": 2})
	until(t, a, func(m map[string]any) bool { return m["type"] == "ack" && m["event_id"] == top })
}

// A subscriber whose socket closed while the set's inbox was full no longer
// keeps the set's goroutine alive.
func TestHubDeadSubscriberDoesNotKeepASetAlive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{IdleTimeout: time.Millisecond, IdleCheck: 5 * time.Millisecond})
	a := f.connect(f.athlete)
	send(a, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	next(t, a, "snapshot")
	o := f.hub.owner(f.set.ID)
	hold := make(chan struct{})
	if err := o.do(func(*owner) { <-hold }); err != nil {
		t.Fatal(err)
	}
	for o.do(func(*owner) {}) == nil { // fill the inbox
	}
	a.Interrupt() // the socket dies; its unsubscribe finds the inbox full
	f.served.Wait()
	close(hold)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		f.hub.mu.Lock()
		alive := f.hub.sets[f.set.ID] != nil
		f.hub.mu.Unlock()
		if !alive {
			return
		}
	}
	t.Fatal("the set's goroutine never retired: the dead subscriber keeps it")
}

// A write failing when the hub shuts down leaves no retry running afterwards.
func TestHubRetriesStopAtShutdown(t *testing.T) {
	// Not parallel: it counts goroutines.
	pool := testdb.New(t)
	_ = pool
	baseline := goleak.IgnoreCurrent()
	f := newFixture(t, Config{})
	admin := testdb.Admin(t)
	db := f.store.Pool().Config().ConnConfig.Database
	ctx := context.Background()
	a := f.connect(f.athlete)
	send(a, map[string]any{"type": "subscribe", "set_id": f.set.ID.String()})
	next(t, a, "snapshot")
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`) })
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '`+db+`'`); err != nil {
		t.Fatal(err)
	}
	f.phase(a, "up")
	next(t, a, "state")
	for deadline := time.Now().Add(10 * time.Second); counterValue(f.hub.metrics.commitErrors) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the write never failed")
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = f.hub.Shutdown(sctx)
	f.served.Wait()
	time.Sleep(writeRetry + 300*time.Millisecond) // a retry timer left behind would fire now
	f.store.Pool().Close()
	if err := goleak.Find(baseline, goleak.IgnoreAnyFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
		goleak.IgnoreAnyFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).triggerHealthCheck.func1")); err != nil {
		t.Fatal(fmt.Sprint("goroutines left behind: ", err))
	}
}

// queryCounter counts the statements a pool runs that contain a piece of SQL.
type queryCounter struct {
	match string
	n     atomic.Int64
}

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, q.match) {
		q.n.Add(1)
	}
	return ctx
}

func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Frames for a set the socket has not subscribed to are authorised once per
// socket, not once per frame; an unlink still stops them at once.
func TestHubCachesAuthorisationPerSocket(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	cfg, err := pgxpool.ParseConfig(f.store.Pool().Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	counter := &queryCounter{match: "FROM sets s JOIN variations"}
	cfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	hub := New(postgres.NewStore(pool), slog.New(slog.NewTextHandler(io.Discard, nil)), Config{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
	})
	c := newFakeSocket()
	f.served.Add(1)
	go func() { defer f.served.Done(); hub.Serve(f.coach, c) }()
	sid := f.set.ID.String()
	cueThenPing := func() {
		t.Helper()
		send(c, map[string]any{"type": "cue.send", "set_id": sid, "text": "Ribs down"})
		send(c, map[string]any{"type": "ping", "client_ts": 1})
		if m := frame(t, c); m["type"] != "pong" {
			t.Fatalf("cue refused: %v", m)
		}
	}
	cueThenPing()
	// The pong comes from the socket's reader, the set's own load from the
	// set's goroutine: wait until that goroutine has taken the cue (and so
	// loaded the set), so that its lookup is counted in before.
	hub.barrier(context.Background(), false)
	before := counter.n.Load()
	for i := 0; i < 10; i++ {
		cueThenPing()
	}
	hub.barrier(context.Background(), false)
	if n := counter.n.Load(); n != before || before > 2 {
		t.Fatalf("set lookups: %d for the first frames, %d more for 10 more", before, n-before)
	}

	if err := f.store.UnlinkAthlete(context.Background(), f.coach.UserID, f.athlete.UserID); err != nil {
		t.Fatal(err)
	}
	hub.Unlinked(f.coach.UserID, f.athlete.UserID)
	send(c, map[string]any{"type": "cue.send", "set_id": sid, "text": "Ribs down"})
	if e := until(t, c, func(m map[string]any) bool { return m["type"] == "error" }); e["code"] != "not_found" {
		t.Fatalf("after the unlink: %v", e)
	}
}

// A set reloaded from storage — its goroutine retired, or another hub on the
// same database taking it — has a new epoch: a since_seq of the old epoch gets
// a snapshot. Another hub cannot take a set while the first holds its lease:
// it answers unavailable, and takes it once the first has shut down.
func TestHubReloadedSetHasANewEpoch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{IdleTimeout: time.Millisecond, IdleCheck: 5 * time.Millisecond})
	sid := f.set.ID.String()
	a := f.connect(f.athlete)
	send(a, map[string]any{"type": "subscribe", "set_id": sid})
	epoch := next(t, a, "snapshot")["epoch"].(string)
	f.phase(a, "up")
	next(t, a, "state")
	next(t, a, "ack")
	send(a, map[string]any{"type": "unsubscribe", "set_id": sid})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		f.hub.mu.Lock()
		gone := f.hub.sets[f.set.ID] == nil
		f.hub.mu.Unlock()
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the set's goroutine did not retire")
		}
	}
	send(a, map[string]any{"type": "subscribe", "set_id": sid, "since_seq": 1, "epoch": epoch})
	snap := next(t, a, "snapshot")
	if snap["epoch"] == epoch || snap["last_seq"] != float64(1) {
		t.Fatalf("after a reload: %v (old epoch %s)", snap, epoch)
	}
	epoch2 := snap["epoch"].(string)

	other := New(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = other.Shutdown(ctx)
	})
	b := newFakeSocket()
	f.served.Add(1)
	go func() { defer f.served.Done(); other.Serve(f.athlete, b) }()
	send(b, map[string]any{"type": "subscribe", "set_id": sid, "since_seq": 1, "epoch": epoch2})
	if e := next(t, b, "error"); e["code"] != "unavailable" {
		t.Fatalf("a second hub took a set the first holds: %v", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.hub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	send(b, map[string]any{"type": "subscribe", "set_id": sid, "since_seq": 1, "epoch": epoch2})
	if snap := next(t, b, "snapshot"); snap["epoch"] == epoch2 || snap["epoch"] == epoch {
		t.Fatalf("a second hub reused an epoch: %v", snap)
	}
}

// A database error during the periodic session check closes no socket: only
// a session found revoked (or an account disabled) does.
func TestHubSessionCheckKeepsSocketsWhileTheDatabaseIsAway(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{SessionCheck: 20 * time.Millisecond})
	a := f.connect(f.athlete)
	send(a, map[string]any{"type": "ping", "client_ts": 1})
	next(t, a, "pong")
	admin := testdb.Admin(t)
	db := f.store.Pool().Config().ConnConfig.Database
	ctx := context.Background()
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`) })
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '`+db+`'`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // many checks, every one failing
	if _, err := f.store.ActiveSessions(ctx, []uuid.UUID{f.athlete.SessionID}); err == nil {
		t.Fatal("the database still answers: the test checks nothing")
	}
	send(a, map[string]any{"type": "ping", "client_ts": 2})
	if p := next(t, a, "pong"); p["client_ts"] != float64(2) || a.code() != 0 {
		t.Fatalf("the socket was closed with %d while the database was away", a.code())
	}
}
