package auth

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// AttemptStore keeps a Throttle's counts where every server node sees them
// (postgres.Store: one atomic statement per attempt). now is passed in so that
// every decision uses the server's clock.
type AttemptStore interface {
	ReserveAttempt(ctx context.Context, scope, key string, now time.Time, free int, base, max, forget time.Duration) (granted bool, failures int, until time.Time, err error)
	ReleaseAttempt(ctx context.Context, scope, key string, until time.Time) error
	ClearAttempts(ctx context.Context, scope, key string) error
	SweepAttempts(ctx context.Context, scope string, now, idleBefore time.Time, keep int) (int64, error)
}

// Throttle slows down guessing per key (an account, an address, an athlete
// redeeming invite codes). The first few failures are free; from then on each
// one doubles the wait before the next attempt, up to a cap. A success clears
// the key. Nothing is ever locked for good: once the wait has passed, the real
// user can sign in.
//
// An attempt is reserved before the work it guards (hashing a password), in one
// atomic step: it counts as a failure from that moment unless it succeeds or is
// released. So however many attempts arrive at once, only `free` of them get
// through before the first wait, and this holds across nodes sharing the store.
type Throttle struct {
	store      AttemptStore
	scope      string
	free       int
	base, max  time.Duration
	forget     time.Duration // an entry idle this long starts over
	limit      int           // entries kept per scope; the least recently used go first
	now        func() time.Time
	sweepEvery time.Duration
	lastSweep  atomic.Int64 // unix nanoseconds of the last sweep
}

// NewThrottle counts attempts of one scope ("login-account", …) in store:
// free failures, then waits from base doubling up to max. now may be nil.
func NewThrottle(store AttemptStore, scope string, free int, base, max time.Duration, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	if free < 1 || base <= 0 || max < base {
		panic(fmt.Sprintf("auth: bad throttle %s: free %d, base %s, max %s", scope, free, base, max))
	}
	t := &Throttle{store: store, scope: scope, free: free, base: base, max: max,
		forget: 24 * time.Hour, limit: 1_000_000, now: now, sweepEvery: time.Minute}
	t.lastSweep.Store(now().UnixNano())
	return t
}

// Attempt is one reserved attempt. Unless Succeed or Release is called, it
// stays counted as a failure.
type Attempt struct {
	t     *Throttle
	key   string
	until time.Time // the wait this attempt set, if any
	// Failures counts the attempts of the key in its current run, this one
	// included: 1 means nothing failed lately.
	Failures int
}

// Reserve counts an attempt for key before it is made. wait > 0 means refused:
// the key must wait that long, and nothing was counted.
func (t *Throttle) Reserve(ctx context.Context, key string) (a *Attempt, wait time.Duration, err error) {
	now := t.now()
	t.maybeSweep(ctx, now)
	granted, failures, until, err := t.store.ReserveAttempt(ctx, t.scope, key, now, t.free, t.base, t.max, t.forget)
	if err != nil {
		return nil, 0, err
	}
	if !granted {
		return nil, max(until.Sub(now), time.Millisecond), nil
	}
	return &Attempt{t: t, key: key, until: until, Failures: failures}, 0, nil
}

// Succeed clears the key: the attempt was right.
func (a *Attempt) Succeed(ctx context.Context) error {
	return a.t.store.ClearAttempts(ctx, a.t.scope, a.key)
}

// Release takes the attempt back: it was neither a failure nor a success (the
// server was busy, or the attempt failed for a reason that is not a guess).
func (a *Attempt) Release(ctx context.Context) error {
	return a.t.store.ReleaseAttempt(ctx, a.t.scope, a.key, a.until)
}

// maybeSweep bounds the store's entries, at most once per sweepEvery on this
// node. A failed sweep is tried again at the next interval: the reservation
// that follows reports the database's state to the caller anyway.
func (t *Throttle) maybeSweep(ctx context.Context, now time.Time) {
	last := t.lastSweep.Load()
	if now.UnixNano()-last < int64(t.sweepEvery) || !t.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	_, _ = t.store.SweepAttempts(ctx, t.scope, now, now.Add(-t.forget), t.limit)
}
