package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/repcue/repcue/internal/domain"
)

// fakeTimers replaces the Hasher's timers: each wait gets a channel the test
// fires by hand, so the bounds are checked without depending on real time.
type fakeTimers struct {
	mu      sync.Mutex
	started []chan time.Time
	waits   []time.Duration
}

func (f *fakeTimers) install(h *Hasher) {
	h.timer = func(d time.Duration) (<-chan time.Time, func() bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		c := make(chan time.Time, 1)
		f.started = append(f.started, c)
		f.waits = append(f.waits, d)
		return c, func() bool { return true }
	}
}

func (f *fakeTimers) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.started)
}

func (f *fakeTimers) wait(i int) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waits[i]
}

// fire expires the i-th wait that was started.
func (f *fakeTimers) fire(i int) {
	f.mu.Lock()
	c := f.started[i]
	f.mu.Unlock()
	c <- time.Time{}
}

// waitFor polls until cond holds; a real-time guard turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *Hasher) idle() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.free
}

func acquireAsync(h *Hasher, p Priority) <-chan error {
	done := make(chan error, 1)
	go func() { done <- h.acquire(context.Background(), p) }()
	return done
}

func result(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("a caller is still waiting for a hashing slot: the wait is not bounded")
		return nil
	}
}

// A caller waits for a hashing slot at most MaxWait, then gets 503 with
// Retry-After; it never waits on a context that does not end.
func TestHasherWaitIsBounded(t *testing.T) {
	t.Parallel()
	h := NewHasher(1)
	timers := &fakeTimers{}
	timers.install(h)
	if err := h.acquire(context.Background(), Bulk); err != nil { // the only slot is taken
		t.Fatal(err)
	}
	done := acquireAsync(h, SignIn)
	waitFor(t, "the caller waits", func() bool { return h.Waiting()[SignIn] == 1 && timers.count() == 1 })
	if timers.wait(0) != MaxWait(SignIn) || MaxWait(SignIn) > time.Second {
		t.Fatalf("a sign-in's wait is bounded by %s, want MaxWait (%s, under a second)", timers.wait(0), MaxWait(SignIn))
	}
	timers.fire(0)
	err := result(t, done)
	var de *domain.Error
	if domain.ErrorCode(err) != domain.CodeUnavailable || !errors.As(err, &de) || de.RetryAfter <= 0 {
		t.Fatalf("after the wait: %v, want unavailable with Retry-After", err)
	}
	if h.Waiting()[SignIn] != 0 {
		t.Fatal("a caller that gave up is still queued")
	}
	h.release()
	if h.idle() != 1 {
		t.Fatalf("%d idle slots after everything was released, want 1", h.idle())
	}
	// A context that ends also ends the wait.
	if err := h.acquire(context.Background(), Bulk); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.acquire(ctx, SignIn); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Fatalf("with an ended context: %v", err)
	}
	h.release()
}

// At most QueuePerWorker × workers callers of one priority wait; the next is
// answered at once, without queueing, and other priorities still queue.
func TestHasherQueueIsBounded(t *testing.T) {
	t.Parallel()
	h := NewHasher(2)
	(&fakeTimers{}).install(h) // nobody's wait ever expires by itself
	for i := 0; i < 2; i++ {
		if err := h.acquire(context.Background(), Bulk); err != nil {
			t.Fatal(err)
		}
	}
	var waiting []<-chan error
	for i := 0; i < 2*QueuePerWorker; i++ {
		waiting = append(waiting, acquireAsync(h, Bulk))
	}
	waitFor(t, "the queue is full", func() bool { return h.Waiting()[Bulk] == 2*QueuePerWorker })
	if err := h.acquire(context.Background(), Bulk); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Fatalf("beyond the queue: %v, want unavailable at once", err)
	}
	signIn := acquireAsync(h, SignIn)
	waitFor(t, "a sign-in queues beside the full sign-up queue", func() bool { return h.Waiting()[SignIn] == 1 })
	h.release()
	if err := result(t, signIn); err != nil {
		t.Fatalf("the sign-in: %v", err)
	}
	// Drain: every queued caller gets a slot in turn, and no slot leaks.
	for range waiting {
		h.release()
	}
	for _, w := range waiting {
		if err := result(t, w); err != nil {
			t.Fatal(err)
		}
	}
	h.release()
	h.release()
	if h.idle() != 2 {
		t.Fatalf("%d idle slots, want 2", h.idle())
	}
}

// A freed slot goes to the oldest waiter of the highest priority: a sign-in
// never queues behind a flood of sign-ups or of guesses.
func TestHasherServesSignInsFirst(t *testing.T) {
	t.Parallel()
	h := NewHasher(1)
	(&fakeTimers{}).install(h)
	if err := h.acquire(context.Background(), Bulk); err != nil {
		t.Fatal(err)
	}
	type caller struct {
		name string
		done <-chan error
	}
	var order []caller
	enqueue := func(name string, p Priority) {
		before := h.Waiting()[p]
		order = append(order, caller{name, acquireAsync(h, p)})
		waitFor(t, name+" queued", func() bool { return h.Waiting()[p] == before+1 })
	}
	enqueue("sign-up 1", Bulk)
	enqueue("sign-up 2", Bulk)
	enqueue("guess", Suspect)
	enqueue("sign-in 1", SignIn)
	enqueue("sign-in 2", SignIn)
	want := []string{"sign-in 1", "sign-in 2", "guess", "sign-up 1", "sign-up 2"}
	for _, name := range want {
		h.release() // the running hash ends: exactly one waiter gets its slot
		var got string
		waitFor(t, "a waiter is served", func() bool {
			for _, c := range order {
				select {
				case err := <-c.done:
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					got = c.name
					return true
				default:
				}
			}
			return false
		})
		if got != name {
			t.Fatalf("served %s, want %s", got, name)
		}
	}
	h.release()
	if h.idle() != 1 {
		t.Fatalf("%d idle slots, want 1", h.idle())
	}
}

// A waiter whose wait expires just as a slot is handed to it keeps the slot:
// none is lost.
func TestHasherGivingUpNeverLosesASlot(t *testing.T) {
	t.Parallel()
	h := NewHasher(1)
	timers := &fakeTimers{}
	timers.install(h)
	if err := h.acquire(context.Background(), Bulk); err != nil {
		t.Fatal(err)
	}
	done := acquireAsync(h, SignIn)
	waitFor(t, "queued", func() bool { return h.Waiting()[SignIn] == 1 && timers.count() == 1 })
	h.release()    // handed over …
	timers.fire(0) // … while the wait expires
	if err := result(t, done); err != nil {
		t.Fatalf("a waiter handed a slot was refused: %v", err)
	}
	h.release()
	if h.idle() != 1 {
		t.Fatalf("%d idle slots, want 1", h.idle())
	}
}
