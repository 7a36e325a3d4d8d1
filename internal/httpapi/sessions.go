package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
)

// sessionRecheck is how long a session found active is trusted before it is
// looked up again: at most one query per session per interval.
const sessionRecheck = 5 * time.Second

// sessionCache remembers which sessions were recently found active.
type sessionCache struct {
	store *postgres.Store
	now   func() time.Time

	mu      sync.Mutex
	checked map[uuid.UUID]time.Time // session → when it was last found active
}

func newSessionCache(store *postgres.Store, now func() time.Time) *sessionCache {
	return &sessionCache{store: store, now: now, checked: map[uuid.UUID]time.Time{}}
}

var errSessionEnded = &domain.Error{Code: domain.CodeUnauthorized, Message: "the session has ended: sign in again"}

func (s *sessionCache) check(ctx context.Context, sid uuid.UUID) error {
	now := s.now()
	s.mu.Lock()
	at, ok := s.checked[sid]
	s.mu.Unlock()
	if ok && now.Sub(at) < sessionRecheck {
		return nil
	}
	active, err := s.store.ActiveSessions(ctx, []uuid.UUID{sid})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !active[sid] {
		delete(s.checked, sid)
		return errSessionEnded
	}
	if len(s.checked) > 100_000 { // bound the memory: start over rather than grow
		s.checked = map[uuid.UUID]time.Time{}
	}
	s.checked[sid] = now
	return nil
}
