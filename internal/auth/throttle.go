package auth

import (
	"sync"
	"time"
)

// Throttle slows down password guessing per key (an account or an address).
// The first few failures are free; after that each failure doubles the wait
// before the next attempt, up to a cap. A success clears the key. Nothing is ever
// locked for good: once the wait has passed, the real user can sign in.
type Throttle struct {
	mu      sync.Mutex
	entries map[string]*throttleEntry
	free    int           // failures allowed before any wait
	base    time.Duration // the first wait
	max     time.Duration // the longest wait
	forget  time.Duration // an entry idle this long is dropped
	limit   int           // entries kept at most; the oldest are dropped beyond it
	now     func() time.Time
}

type throttleEntry struct {
	failures int
	until    time.Time
	last     time.Time
}

// NewThrottle: free failures, then waits from base doubling up to max.
func NewThrottle(free int, base, max time.Duration, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{entries: map[string]*throttleEntry{}, free: free, base: base, max: max,
		forget: 24 * time.Hour, limit: 100_000, now: now}
}

// Wait reports how long key must wait before the next attempt (0: go ahead).
func (t *Throttle) Wait(key string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil {
		return 0
	}
	if d := e.until.Sub(t.now()); d > 0 {
		return d
	}
	return 0
}

// Fail records a failed attempt.
func (t *Throttle) Fail(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	e := t.entries[key]
	if e == nil || now.Sub(e.last) > t.forget {
		if len(t.entries) >= t.limit {
			t.sweep(now)
		}
		e = &throttleEntry{}
		t.entries[key] = e
	}
	e.failures++
	e.last = now
	if over := e.failures - t.free; over > 0 {
		wait := t.max
		if over < 32 && t.base<<(over-1) < t.max {
			wait = t.base << (over - 1)
		}
		e.until = now.Add(wait)
	}
}

// Succeed clears key.
func (t *Throttle) Succeed(key string) {
	t.mu.Lock()
	delete(t.entries, key)
	t.mu.Unlock()
}

// sweep drops idle entries, and if that is not enough, the whole map: a flood of
// distinct keys must not grow memory without bound.
func (t *Throttle) sweep(now time.Time) {
	for k, e := range t.entries {
		if now.Sub(e.last) > t.forget || now.After(e.until) && e.failures <= t.free {
			delete(t.entries, k)
		}
	}
	if len(t.entries) >= t.limit {
		t.entries = map[string]*throttleEntry{}
	}
}
