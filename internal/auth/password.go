// Package auth owns credentials: argon2id password hashes, the EdDSA access
// tokens and their strict parser, opaque refresh tokens and the login throttle.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/repcue/repcue/internal/domain"
)

// Argon2id parameters (RFC 9106 second recommendation scaled to the OWASP floor:
// 19 MiB, 2 passes). Stored in every hash, so they can be raised later.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// PasswordMinRunes and PasswordMaxBytes bound a password.
const (
	PasswordMinRunes = 10
	PasswordMaxBytes = 256
)

// Priority orders the callers waiting for a hashing slot: a freed slot goes to
// the oldest waiter of the highest priority.
type Priority int

const (
	// Bulk is hashing that may wait longest: sign-ups, the command line.
	Bulk Priority = iota
	// Suspect is a sign-in to an account that failed recently.
	Suspect
	// SignIn is a sign-in to an account with no recent failure: a flood of
	// sign-ups or of guesses never queues ahead of it.
	SignIn
	priorities
)

// maxWait is the longest a caller of each priority waits for a hashing slot
// (then 503 with Retry-After). With a hash costing tens of milliseconds, a
// sign-in is answered within about a second whatever else is queued: it waits
// at most 750 ms, and only behind other sign-ins. Sign-ups may wait longer: they
// never hold up a sign-in, since a freed slot goes to the sign-in first.
var maxWait = [priorities]time.Duration{
	Bulk:    2 * time.Second,
	Suspect: 500 * time.Millisecond,
	SignIn:  750 * time.Millisecond,
}

// MaxWait is the longest a caller of priority p waits for a hashing slot.
func MaxWait(p Priority) time.Duration { return maxWait[p] }

// At most QueuePerWorker × workers callers of one priority wait at once; more
// are answered 503 at once.
const (
	QueuePerWorker = 16
	busyRetryAfter = time.Second
)

// Hasher hashes and checks passwords, with at most a fixed number of hashes
// running at once: each costs about 19 MiB and a few tens of milliseconds of CPU.
// Waiting for a slot is bounded in time and in numbers, and ordered by Priority.
type Hasher struct {
	dummy    string
	maxWait  [priorities]time.Duration
	maxQueue int
	// timer starts the wait of one caller; replaced in tests to drive time by hand.
	timer func(time.Duration) (<-chan time.Time, func() bool)

	mu     sync.Mutex
	free   int                   // idle slots; when > 0, nobody waits
	queues [priorities][]*waiter // FIFO per priority
}

type waiter struct {
	ready   chan struct{} // closed when a slot is handed over
	granted bool          // under Hasher.mu
}

// NewHasher allows workers concurrent hashes.
func NewHasher(workers int) *Hasher {
	if workers < 1 {
		workers = 1
	}
	h := &Hasher{free: workers, maxWait: maxWait, maxQueue: QueuePerWorker * workers,
		timer: func(d time.Duration) (<-chan time.Time, func() bool) {
			t := time.NewTimer(d)
			return t.C, t.Stop
		}}
	h.dummy = encodeHash(make([]byte, argonSaltLen), argon2.IDKey([]byte("repcue-dummy"), make([]byte, argonSaltLen), argonTime, argonMemory, argonThreads, argonKeyLen), argonTime, argonMemory, argonThreads)
	return h
}

var errHasherBusy = &domain.Error{Code: domain.CodeUnavailable, Message: "the server is busy, try again shortly", RetryAfter: busyRetryAfter}

// acquire takes a hashing slot, waiting at most MaxWait(p) (or until ctx ends)
// behind the callers of the same or a higher priority.
func (h *Hasher) acquire(ctx context.Context, p Priority) error {
	h.mu.Lock()
	if h.free > 0 {
		h.free--
		h.mu.Unlock()
		return nil
	}
	if len(h.queues[p]) >= h.maxQueue {
		h.mu.Unlock()
		return errHasherBusy
	}
	w := &waiter{ready: make(chan struct{})}
	h.queues[p] = append(h.queues[p], w)
	h.mu.Unlock()

	expired, stop := h.timer(h.maxWait[p])
	defer stop()
	var cause error
	select {
	case <-w.ready:
		return nil
	case <-expired:
	case <-ctx.Done():
		cause = ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.granted { // handed a slot while giving up: take it
		return nil
	}
	q := h.queues[p]
	for i, x := range q {
		if x == w {
			h.queues[p] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	return &domain.Error{Code: errHasherBusy.Code, Message: errHasherBusy.Message, RetryAfter: busyRetryAfter, Err: cause}
}

// release hands the slot to the oldest waiter of the highest priority, or
// frees it.
func (h *Hasher) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for p := priorities - 1; p >= 0; p-- {
		if q := h.queues[p]; len(q) > 0 {
			w := q[0]
			q[0] = nil
			h.queues[p] = q[1:]
			w.granted = true
			close(w.ready)
			return
		}
	}
	h.free++
}

// Waiting reports how many callers wait for a slot, per priority.
func (h *Hasher) Waiting() [priorities]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n [priorities]int
	for p, q := range h.queues {
		n[p] = len(q)
	}
	return n
}

// Hash returns the PHC-format argon2id hash of password, at Bulk priority.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	if err := h.acquire(ctx, Bulk); err != nil {
		return "", err
	}
	defer h.release()
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return encodeHash(salt, key, argonTime, argonMemory, argonThreads), nil
}

// Verify reports whether password matches encoded. An empty encoded hash (an
// unknown account) is checked against a dummy hash so that both cases take the
// same time. prio orders the wait for a hashing slot.
func (h *Hasher) Verify(ctx context.Context, prio Priority, encoded, password string) (bool, error) {
	known := encoded != ""
	if !known {
		encoded = h.dummy
	}
	salt, key, t, m, p, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	if err := h.acquire(ctx, prio); err != nil {
		return false, err
	}
	defer h.release()
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(key)))
	return known && subtle.ConstantTimeCompare(got, key) == 1, nil
}

func encodeHash(salt, key []byte, t, m uint32, p uint8) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decodeHash(s string) (salt, key []byte, t, m uint32, p uint8, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return nil, nil, 0, 0, 0, errors.New("not an argon2id hash")
	}
	var v int
	if _, err = fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return nil, nil, 0, 0, 0, errors.New("unsupported argon2 version")
	}
	if _, err = fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return nil, nil, 0, 0, 0, errors.New("bad argon2 parameters")
	}
	if salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return nil, nil, 0, 0, 0, err
	}
	if key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil {
		return nil, nil, 0, 0, 0, err
	}
	return salt, key, t, m, p, nil
}
