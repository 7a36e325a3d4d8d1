package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
)

// exerciseCache keeps, per slug, the encoded body of GET /v1/exercises/{slug}
// and its ETag, with the library version they were read at. Before a cached
// body is served, the library's version is read from the database (one row,
// raised by triggers in the transaction of every change, on any node): a
// body is served only if it is at least that version, so an edit committed
// on any node is seen by every request that starts after it. The read of the
// version is shared by concurrent requests (sharedRead), never answered from
// a read that began before the request arrived.
type exerciseCache struct {
	store   *postgres.Store
	version *sharedRead

	mu     sync.RWMutex
	bySlug map[string]*exerciseBody // only slugs of exercises found, so bounded by the library
}

// exerciseBody is one encoded exercise; never changed once built.
type exerciseBody struct {
	version int64
	body    []byte
	etag    string
}

func newExerciseCache(store *postgres.Store) *exerciseCache {
	return &exerciseCache{
		store:   store,
		version: &sharedRead{read: store.LibraryVersion, timeout: 5 * time.Second},
		bySlug:  map[string]*exerciseBody{},
	}
}

// get returns the current body of the exercise slug.
func (c *exerciseCache) get(ctx context.Context, slug string) (*exerciseBody, error) {
	v, err := c.version.get(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	b := c.bySlug[slug]
	c.mu.RUnlock()
	if b != nil && b.version >= v { // a later version was committed after v was read: current too
		return b, nil
	}
	e, at, err := c.store.FindExerciseBySlug(ctx, slug)
	if err != nil {
		if domain.ErrorCode(err) == domain.CodeNotFound {
			c.mu.Lock()
			if old := c.bySlug[slug]; old != nil && old.version < v {
				delete(c.bySlug, slug)
			}
			c.mu.Unlock()
		}
		return nil, err
	}
	body, err := json.Marshal(e)
	if err != nil {
		return nil, domain.Internal(err)
	}
	sum := sha256.Sum256(body)
	b = &exerciseBody{version: at, body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	c.mu.Lock()
	if old := c.bySlug[slug]; old == nil || old.version < at {
		c.bySlug[strings.Clone(slug)] = b // the slug is the request's buffer, reused after it
	}
	c.mu.Unlock()
	return b, nil
}

// sharedRead shares one read among the requests waiting for it. A request
// never takes the result of a read that was already under way when it
// arrived (that read may predate a change the client has seen committed): it
// joins the next read, which starts as soon as the one under way ends. So
// under load there is at most one read in flight, each serving every request
// that arrived during the previous one, and alone a request waits for exactly
// one read of its own.
type sharedRead struct {
	read    func(context.Context) (int64, error)
	timeout time.Duration // of one read: it serves many requests, so it is not tied to any one's context

	mu      sync.Mutex
	running bool
	next    *readRound // the round requests arriving now join; nil until one does
}

type readRound struct {
	done    chan struct{} // closed when v and err are set
	v       int64
	err     error
	waiting int // requests that joined the round (under sharedRead.mu)
}

var errReadAbandoned = errors.New("the shared read ended without a result")

func (s *sharedRead) get(ctx context.Context) (int64, error) {
	s.mu.Lock()
	r := s.next
	if r == nil {
		r = &readRound{done: make(chan struct{}), err: errReadAbandoned}
		s.next = r
	}
	r.waiting++
	start := !s.running
	if start {
		s.running, s.next = true, nil
	}
	s.mu.Unlock()
	if start {
		s.run(r) // this request reads for itself and whoever joined meanwhile
	}
	select {
	case <-r.done:
		return r.v, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run makes round r's read, then starts the round that gathered meanwhile, if any.
func (s *sharedRead) run(r *readRound) {
	defer func() {
		close(r.done)
		s.mu.Lock()
		next := s.next
		s.next = nil
		s.running = next != nil
		s.mu.Unlock()
		if next != nil {
			go s.run(next)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	r.v, r.err = s.read(ctx)
}
