package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
)

// ownSet makes a fresh live node the owner of a set and returns its lease token.
func ownSet(t *testing.T, s *postgres.Store, setID uuid.UUID) int64 {
	t.Helper()
	return acquire(t, s, setID, liveNode(t, s))
}

func liveNode(t *testing.T, s *postgres.Store) uuid.UUID {
	t.Helper()
	node := uuid.New()
	if err := s.Heartbeat(context.Background(), node, time.Hour); err != nil {
		t.Fatal(err)
	}
	return node
}

func acquire(t *testing.T, s *postgres.Store, setID, node uuid.UUID) int64 {
	t.Helper()
	token, holder, _, err := s.AcquireLease(context.Background(), setID, node)
	if err != nil || token == 0 {
		t.Fatalf("acquire: token %d, holder %v, %v", token, holder, err)
	}
	return token
}

// expire makes a node's row expired, as if it had stopped beating a while ago.
func expire(t *testing.T, s *postgres.Store, node uuid.UUID) {
	t.Helper()
	if _, err := s.Pool().Exec(context.Background(), `UPDATE nodes SET expires_at = now() - interval '1 second' WHERE id = $1`, node); err != nil {
		t.Fatal(err)
	}
}

func liveSet(t *testing.T, s *postgres.Store) (domain.User, domain.Set) {
	t.Helper()
	a := mkUser(t, s, domain.RoleAthlete)
	set, err := s.CreateSet(context.Background(), postgres.NewSet{AthleteID: a.ID, Variation: "barbell-hip-thrust", LoadKG: 80, TargetReps: 5, PauseHoldMS: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return a, set
}

func TestLeaseAcquireRenewExpireRelease(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	_, set := liveSet(t, s)
	a, b := liveNode(t, s), liveNode(t, s)

	t1 := acquire(t, s, set.ID, a)
	t2 := acquire(t, s, set.ID, a) // renewed by its holder: a new token all the same
	if t2 <= t1 {
		t.Fatalf("tokens %d then %d", t1, t2)
	}
	if h, alive, err := s.LeaseHolder(ctx, set.ID); h != a || !alive || err != nil {
		t.Fatalf("holder %v alive %v: %v", h, alive, err)
	}
	token, holder, expiresIn, err := s.AcquireLease(ctx, set.ID, b)
	if err != nil || token != 0 || holder != a || expiresIn < 59*time.Minute || expiresIn > time.Hour {
		t.Fatalf("b while a lives: token %d holder %v in %v: %v", token, holder, expiresIn, err)
	}

	expire(t, s, a)
	if h, alive, err := s.LeaseHolder(ctx, set.ID); h != a || alive || err != nil {
		t.Fatalf("holder %v alive %v after expiry: %v", h, alive, err)
	}
	t3 := acquire(t, s, set.ID, b)
	if t3 <= t2 {
		t.Fatalf("takeover token %d after %d", t3, t2)
	}
	// a, back to life, does not get the set back while b lives.
	if err := s.Heartbeat(ctx, a, time.Hour); err != nil {
		t.Fatal(err)
	}
	if token, holder, _, err := s.AcquireLease(ctx, set.ID, a); token != 0 || holder != b || err != nil {
		t.Fatalf("a after the takeover: token %d holder %v: %v", token, holder, err)
	}

	// Releasing with a stale token does nothing; with the current one it frees the set.
	if err := s.ReleaseLease(ctx, set.ID, t2); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := s.LeaseHolder(ctx, set.ID); h != b {
		t.Fatalf("a stale release freed the set: holder %v", h)
	}
	if err := s.ReleaseLease(ctx, set.ID, t3); err != nil {
		t.Fatal(err)
	}
	if h, alive, err := s.LeaseHolder(ctx, set.ID); h != uuid.Nil || alive || err != nil {
		t.Fatalf("holder %v alive %v after release: %v", h, alive, err)
	}
	// Tokens keep growing across a release.
	if t4 := acquire(t, s, set.ID, a); t4 <= t3 {
		t.Fatalf("token %d after release of %d", t4, t3)
	}

	// A real ttl running out.
	_, set2 := liveSet(t, s)
	short := uuid.New()
	if err := s.Heartbeat(ctx, short, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	acquire(t, s, set2.ID, short)
	if token, _, _, _ := s.AcquireLease(ctx, set2.ID, b); token != 0 {
		t.Fatal("taken over before the ttl ran out")
	}
	time.Sleep(500 * time.Millisecond)
	acquire(t, s, set2.ID, b)

	if _, _, _, err := s.AcquireLease(ctx, uuid.New(), a); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("lease of a missing set: %v", err)
	}
	if h, alive, err := s.LeaseHolder(ctx, uuid.New()); h != uuid.Nil || alive || err != nil {
		t.Fatalf("holder of a missing set: %v %v %v", h, alive, err)
	}
}

// Two nodes asking for one free set at once: exactly one gets it, each round,
// and every round's token is greater than the last.
func TestLeaseRace(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	nodes := []uuid.UUID{liveNode(t, s), liveNode(t, s)}
	_, set := liveSet(t, s)
	var last int64
	for round := range 30 {
		setID := set.ID
		if round%3 == 2 { // now and then a set without a lease row yet
			_, fresh := liveSet(t, s)
			setID = fresh.ID
		}
		var tokens [2]int64
		var holders [2]uuid.UUID
		var errs [2]error
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, node := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				tokens[i], holders[i], _, errs[i] = s.AcquireLease(ctx, setID, node)
			}()
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatal(errs)
		}
		winner := 0
		if tokens[1] != 0 {
			winner = 1
		}
		if tokens[winner] == 0 || tokens[1-winner] != 0 || holders[1-winner] != nodes[winner] {
			t.Fatalf("round %d: tokens %v holders %v", round, tokens, holders)
		}
		if setID == set.ID {
			if tokens[winner] <= last {
				t.Fatalf("round %d: token %d after %d", round, tokens[winner], last)
			}
			last = tokens[winner]
			if err := s.ReleaseLease(ctx, setID, last); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestAppendEventsIsFenced(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	athlete, set := liveSet(t, s)
	_, set2 := liveSet(t, s)
	a, b := liveNode(t, s), liveNode(t, s)
	tA := acquire(t, s, set.ID, a)
	t2 := acquire(t, s, set2.ID, a)
	n := 0
	ev := func(setID uuid.UUID, lease int64) postgres.SetEvent {
		n++
		return postgres.SetEvent{SetID: setID, EventID: uuid.New(), N: n, Type: "rep.phase", Phase: "up", ActorID: athlete.ID,
			At: time.Now(), Source: "live", Lease: lease}
	}
	count := func(setID uuid.UUID) int {
		events, err := s.SetEvents(ctx, setID)
		if err != nil {
			t.Fatal(err)
		}
		return len(events)
	}
	fenced := func(what string, err error) {
		t.Helper()
		if !postgres.IsFenced(err) || domain.ErrorCode(err) != domain.CodeConflict {
			t.Fatalf("%s: %v", what, err)
		}
	}
	if err := s.AppendEvents(ctx, []postgres.SetEvent{ev(set.ID, tA)}, nil); err != nil {
		t.Fatal(err)
	}
	fenced("lease 0", s.AppendEvents(ctx, []postgres.SetEvent{ev(set.ID, 0)}, nil))
	fenced("a wrong token", s.AppendEvents(ctx, []postgres.SetEvent{ev(set.ID, tA+100)}, nil))
	// One set of the batch not held: nothing of the batch is stored.
	fenced("a batch with one token wrong", s.AppendEvents(ctx, []postgres.SetEvent{ev(set2.ID, t2), ev(set.ID, 0)}, nil))
	// An ending whose set has no event in the batch proves nothing.
	fenced("a lone ending", s.AppendEvents(ctx, nil, []postgres.SetEnding{{SetID: set.ID, EndedAt: time.Now(), Summary: map[string]int{}}}))
	if count(set.ID) != 1 || count(set2.ID) != 0 {
		t.Fatalf("refused batches stored events: %d, %d", count(set.ID), count(set2.ID))
	}

	// a's heartbeat lapses: its writes are refused even before anyone takes over.
	expire(t, s, a)
	fenced("an expired holder", s.AppendEvents(ctx, []postgres.SetEvent{ev(set.ID, tA)}, nil))
	tB := acquire(t, s, set.ID, b)
	if err := s.Heartbeat(ctx, a, time.Hour); err != nil { // a, back, still writes with its old token
		t.Fatal(err)
	}
	fenced("the old owner", s.AppendEvents(ctx, []postgres.SetEvent{ev(set.ID, tA)}, nil))
	end := ev(set.ID, tA)
	end.Type, end.Phase = "set.end", ""
	ending := []postgres.SetEnding{{SetID: set.ID, EndedAt: time.Now(), Summary: map[string]int{"reps": 0}}}
	fenced("the old owner's ending", s.AppendEvents(ctx, []postgres.SetEvent{end}, ending))
	if count(set.ID) != 1 {
		t.Fatalf("%d events after refused writes, want 1", count(set.ID))
	}
	if got, _ := s.FindSet(ctx, set.ID); got.Status != domain.SetLive {
		t.Fatalf("a fenced ending ended the set: %s", got.Status)
	}
	// The new owner writes; a's set it never lost writes too.
	on2 := ev(set2.ID, t2)
	if err := s.AppendEvents(ctx, []postgres.SetEvent{ev(set.ID, tB), on2}, nil); err != nil {
		t.Fatal(err)
	}
	end.Lease = tB
	if err := s.AppendEvents(ctx, []postgres.SetEvent{end}, ending); err != nil {
		t.Fatal(err)
	}
	if count(set.ID) != 3 || count(set2.ID) != 1 {
		t.Fatalf("events %d, %d; want 3, 1", count(set.ID), count(set2.ID))
	}
	if got, _ := s.FindSet(ctx, set.ID); got.Status != domain.SetEnded {
		t.Fatalf("the new owner's ending: %s", got.Status)
	}
	// An ordinary conflict on n is not taken for fencing.
	dup := ev(set2.ID, t2)
	dup.N = on2.N
	if err := s.AppendEvents(ctx, []postgres.SetEvent{dup}, nil); domain.ErrorCode(err) != domain.CodeConflict || postgres.IsFenced(err) {
		t.Fatalf("n taken: %v", err)
	}
}

// A commit under way holds its set's lease: a takeover waits for it to end,
// then finds its rows.
func TestTakeoverWaitsForACommitUnderWay(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	athlete, set := liveSet(t, s)
	a, b := liveNode(t, s), liveNode(t, s)
	tA := acquire(t, s, set.ID, a)
	ev := postgres.SetEvent{SetID: set.ID, EventID: uuid.New(), N: 1, Type: "rep.phase", Phase: "up", ActorID: athlete.ID,
		At: time.Now(), Source: "live", Lease: tA}

	// Hold a's commit up after its fence: an uncommitted row with the same
	// event id makes its insert wait.
	blocker, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(ctx) //nolint:errcheck
	if _, err := blocker.Exec(ctx, `INSERT INTO set_events (set_id, event_id, n, type, actor_id, at, source)
		VALUES ($1, $2, 99, 'cue.send', $3, now(), 'live')`, set.ID, ev.EventID, athlete.ID); err != nil {
		t.Fatal(err)
	}
	waiting := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var n int
			if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d statements waiting for a lock, want %d", n, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	appended := make(chan error, 1)
	go func() { appended <- s.AppendEvents(ctx, []postgres.SetEvent{ev}, nil) }()
	waiting(1)

	expire(t, s, a) // a's row is not locked by its commit
	type result struct {
		token int64
		err   error
	}
	took := make(chan result, 1)
	go func() {
		token, _, _, err := s.AcquireLease(ctx, set.ID, b)
		took <- result{token, err}
	}()
	waiting(2)
	select {
	case r := <-took:
		t.Fatalf("took the set over during a's commit: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}

	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-appended; err != nil {
		t.Fatalf("a's commit: %v", err)
	}
	r := <-took
	if r.err != nil || r.token <= tA {
		t.Fatalf("takeover after the commit: %+v", r)
	}
	events, err := s.SetEvents(ctx, set.ID)
	if err != nil || len(events) != 1 || events[0].EventID != ev.EventID {
		t.Fatalf("b finds %v, %v", events, err)
	}
}

func TestReserveSocketHoldsAcrossNodes(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	a, b := liveNode(t, s), liveNode(t, s)
	const burst, max = 50, 5
	// Bursts of reservations for one user from both nodes; a few rounds, as
	// an overshoot needs two reservations to overlap.
	var user domain.User
	var perNode map[uuid.UUID]int
	for range 8 {
		user = mkUser(t, s, domain.RoleAthlete)
		perNode = map[uuid.UUID]int{}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failed error
		start := make(chan struct{})
		for i := range burst {
			node := []uuid.UUID{a, b}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ok, err := s.ReserveSocket(ctx, node, user.ID, max)
				mu.Lock()
				defer mu.Unlock()
				if ok {
					perNode[node]++
				}
				if err != nil {
					failed = err
				}
			}()
		}
		close(start)
		wg.Wait()
		if failed != nil {
			t.Fatal(failed)
		}
		granted := perNode[a] + perNode[b]
		if n, err := s.SocketCount(ctx, user.ID); granted != max || n != max || err != nil {
			t.Fatalf("granted %d, counted %d, want %d (%v)", granted, n, max, err)
		}
	}

	// A dead node's sockets do not count.
	expire(t, s, b)
	if n, _ := s.SocketCount(ctx, user.ID); n != perNode[a] {
		t.Fatalf("counted %d with b dead, want a's %d", n, perNode[a])
	}
	for range perNode[b] {
		if ok, err := s.ReserveSocket(ctx, a, user.ID, max); !ok || err != nil {
			t.Fatalf("a's room after b died: %v", err)
		}
	}
	if ok, _ := s.ReserveSocket(ctx, a, user.ID, max); ok {
		t.Fatal("beyond max on a")
	}

	// Releasing: one fewer, never below zero.
	for range max + 2 {
		if err := s.ReleaseSocket(ctx, a, user.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.SocketCount(ctx, user.ID); n != 0 {
		t.Fatalf("counted %d after releasing all", n)
	}
	if ok, _ := s.ReserveSocket(ctx, a, user.ID, max); !ok {
		t.Fatal("refused after releasing all")
	}
	if n, _ := s.SocketCount(ctx, user.ID); n != 1 {
		t.Fatalf("counted %d, want 1", n)
	}
}

// A node leaving hands its sets and sockets over at once.
func TestLeaveClusterFreesLeasesAndSockets(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	athlete, set := liveSet(t, s)
	a, b := liveNode(t, s), liveNode(t, s)
	tA := acquire(t, s, set.ID, a)
	for _, node := range []uuid.UUID{a, a, b} {
		if ok, err := s.ReserveSocket(ctx, node, athlete.ID, 5); !ok || err != nil {
			t.Fatal(err)
		}
	}
	if err := s.LeaveCluster(ctx, a); err != nil {
		t.Fatal(err)
	}
	if h, _, err := s.LeaseHolder(ctx, set.ID); h != uuid.Nil || err != nil {
		t.Fatalf("holder %v after a left: %v", h, err)
	}
	if n, _ := s.SocketCount(ctx, athlete.ID); n != 1 {
		t.Fatalf("counted %d after a left, want b's 1", n)
	}
	if tB := acquire(t, s, set.ID, b); tB <= tA {
		t.Fatalf("token %d after %d", tB, tA)
	}
	ev := postgres.SetEvent{SetID: set.ID, EventID: uuid.New(), N: 1, Type: "rep.phase", Phase: "up", ActorID: athlete.ID,
		At: time.Now(), Source: "live", Lease: tA}
	if err := s.AppendEvents(ctx, []postgres.SetEvent{ev}, nil); !postgres.IsFenced(err) {
		t.Fatalf("a's write after it left: %v", err)
	}
}

// Nodes dead for long, and their socket counts, are swept; nodes dead for a
// moment stay (a node that comes back keeps its row).
func TestForgetDeadNodesSweepsOnlyTheLongDead(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	user := mkUser(t, s, domain.RoleCoach)
	old, recent := liveNode(t, s), liveNode(t, s)
	for _, n := range []uuid.UUID{old, recent} {
		if ok, err := s.ReserveSocket(ctx, n, user.ID, 5); !ok || err != nil {
			t.Fatal(err)
		}
	}
	for n, ago := range map[uuid.UUID]string{old: "2 hours", recent: "10 minutes"} {
		if _, err := s.Pool().Exec(ctx, `UPDATE nodes SET expires_at = now() - $2::interval WHERE id = $1`, n, ago); err != nil {
			t.Fatal(err)
		}
	}
	s.ForgetDeadNodes(ctx)
	for n, want := range map[uuid.UUID]int{old: 0, recent: 1} {
		var nodes, sockets int
		if err := s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM nodes WHERE id = $1), (SELECT count(*) FROM live_sockets WHERE node_id = $1)`, n).Scan(&nodes, &sockets); err != nil {
			t.Fatal(err)
		}
		if nodes != want || sockets != want {
			t.Fatalf("node dead %v: %d rows, %d socket rows; want %d", n == old, nodes, sockets, want)
		}
	}
}
