package auth

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/testdb"
)

// testClock is a settable clock shared by the throttles of a test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newThrottleStore(t *testing.T) *postgres.Store {
	t.Helper()
	return postgres.NewStore(testdb.New(t))
}

// reserve fails the test on a store error and returns the wait (0: granted).
func reserve(t *testing.T, th *Throttle, key string) (*Attempt, time.Duration) {
	t.Helper()
	a, wait, err := th.Reserve(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return a, wait
}

func TestThrottleSchedule(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	th := NewThrottle(newThrottleStore(t), "test", 2, time.Second, 8*time.Second, clk.now)
	// Two free attempts; the second one already sets the first wait.
	if _, w := reserve(t, th, "k"); w != 0 {
		t.Fatalf("first attempt waits %s", w)
	}
	if a, w := reserve(t, th, "k"); w != 0 || a.Failures != 2 {
		t.Fatalf("second attempt: wait %s, failures %d", w, a.Failures)
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		if _, w := reserve(t, th, "k"); w != want {
			t.Fatalf("attempt %d: wait %s, want %s", i+3, w, want)
		}
		if _, w := reserve(t, th, "k"); w != want {
			t.Fatalf("a refused attempt changed the wait: %s, want %s", w, want)
		}
		clk.advance(want)
		if _, w := reserve(t, th, "k"); w != 0 {
			t.Fatalf("attempt %d after the wait: still %s", i+3, w)
		}
	}
	if _, w := reserve(t, th, "other"); w != 0 {
		t.Fatal("keys leak into each other")
	}
	if _, w := reserve(t, NewThrottle(th.store, "another-scope", 2, time.Second, 8*time.Second, clk.now), "k"); w != 0 {
		t.Fatal("scopes leak into each other")
	}
	// A success clears the key.
	clk.advance(8 * time.Second)
	a, w := reserve(t, th, "k")
	if w != 0 {
		t.Fatal(w)
	}
	if err := a.Succeed(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a, _ := reserve(t, th, "k"); a == nil || a.Failures != 1 {
		t.Fatal("success did not clear the count")
	}
	// An idle entry is forgotten.
	reserve(t, th, "k")
	clk.advance(th.forget + time.Second)
	if a, w := reserve(t, th, "k"); w != 0 || a.Failures != 1 {
		t.Fatalf("an idle entry was not forgotten: wait %s", w)
	}
}

// Released attempts count for nothing, and lift the wait they set.
func TestThrottleRelease(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	th := NewThrottle(newThrottleStore(t), "test", 3, time.Second, time.Minute, clk.now)
	ctx := context.Background()
	for i := 0; i < 10; i++ { // a busy server: attempts taken back do not add up
		a, w := reserve(t, th, "k")
		if w != 0 {
			t.Fatalf("attempt %d waits %s though every one was released", i, w)
		}
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	reserve(t, th, "k")
	reserve(t, th, "k")
	third, w := reserve(t, th, "k") // sets the first wait
	if w != 0 {
		t.Fatal(w)
	}
	if _, w := reserve(t, th, "k"); w == 0 {
		t.Fatal("no wait after the free attempts")
	}
	if err := third.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if a, w := reserve(t, th, "k"); w != 0 || a.Failures != 3 {
		t.Fatalf("after releasing the attempt that set it, the wait stays: %s", w)
	}
}

// The point of reserving: however many attempts arrive at once, on however
// many nodes, exactly the free ones get through.
func TestThrottleConcurrentAttemptsAreCountedOneByOne(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	store := newThrottleStore(t)
	nodes := []*Throttle{ // two server nodes sharing one database
		NewThrottle(store, "login-account", 5, time.Second, 15*time.Minute, clk.now),
		NewThrottle(postgres.NewStore(store.Pool()), "login-account", 5, time.Second, 15*time.Minute, clk.now),
	}
	const attempts = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted, refused := 0, 0
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func(th *Throttle) {
			defer wg.Done()
			_, wait, err := th.Reserve(context.Background(), "victim@example.com")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Error(err)
			case wait > 0:
				refused++
			default:
				granted++
			}
		}(nodes[i%2])
	}
	wg.Wait()
	if granted != 5 || refused != attempts-5 {
		t.Fatalf("%d attempts at once: %d let through, %d refused; want 5 and %d", attempts, granted, refused, attempts-5)
	}
}

// A flood of distinct keys cannot grow the table without bound; keys under a
// wait are the last to go.
func TestThrottleEntriesAreBounded(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	store := newThrottleStore(t)
	th := NewThrottle(store, "test", 1, time.Hour, time.Hour, clk.now)
	th.limit = 20
	// Five keys under a wait (free is 1: the first attempt sets it) …
	for i := 0; i < 5; i++ {
		reserve(t, th, fmt.Sprintf("blocked-%d", i))
	}
	clk.advance(time.Minute)
	// … and then a flood of other keys, some time later.
	for i := 0; i < 60; i++ {
		a, _ := reserve(t, th, fmt.Sprintf("flood-%d", i))
		if a != nil {
			if err := a.Release(context.Background()); err != nil { // not under a wait
				t.Fatal(err)
			}
		}
	}
	clk.advance(th.sweepEvery)
	reserve(t, th, "trigger") // the first attempt after the interval sweeps
	var n, blocked int
	if err := store.Pool().QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE key LIKE 'blocked-%') FROM auth_throttle WHERE scope = 'test'`).Scan(&n, &blocked); err != nil {
		t.Fatal(err)
	}
	if n > th.limit+1 || blocked != 5 {
		t.Fatalf("%d entries kept (limit %d, plus the new one), %d of the 5 under a wait", n, th.limit, blocked)
	}
	// Entries idle longer than forget go at the next sweep whatever the count.
	clk.advance(th.forget + time.Minute)
	reserve(t, th, "trigger")
	if err := store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM auth_throttle WHERE scope = 'test'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d entries after everything expired, want 1", n)
	}
}
