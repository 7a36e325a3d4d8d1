package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
)

// Load accounts are usable at once: each athlete has a live set and a live
// session, and is linked to its coach (one coach per coachEvery athletes).
func TestSeedLoadWritesLinkedAccountsWithLiveSetsAndSessions(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ath, coaches, err := s.SeedLoad(ctx, "t1", 25, 10, "not-a-real-hash", "barbell-hip-thrust", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(ath) != 25 || len(coaches) != 3 {
		t.Fatalf("got %d athletes and %d coaches, want 25 and 3", len(ath), len(coaches))
	}
	var sessions []uuid.UUID
	for _, c := range coaches {
		sessions = append(sessions, c.SessionID)
	}
	for i, a := range ath {
		if a.CoachID != coaches[i/10].UserID {
			t.Fatalf("athlete %d has coach %s, want %s", i, a.CoachID, coaches[i/10].UserID)
		}
		set, err := s.FindSet(ctx, a.SetID)
		if err != nil || set.Status != domain.SetLive || set.AthleteID != a.UserID || set.PauseHoldMS != 1000 {
			t.Fatalf("set of athlete %d: %+v, %v", i, set, err)
		}
		if ok, err := s.CanWatch(ctx, a.CoachID, domain.RoleCoach, a.UserID); err != nil || !ok {
			t.Fatalf("coach cannot watch athlete %d: %v %v", i, ok, err)
		}
		if ok, err := s.CanWatch(ctx, coaches[(i/10+1)%3].UserID, domain.RoleCoach, a.UserID); err != nil || ok {
			t.Fatalf("another coach can watch athlete %d: %v %v", i, ok, err)
		}
		sessions = append(sessions, a.SessionID)
	}
	active, err := s.ActiveSessions(ctx, sessions)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != len(sessions) {
		t.Fatalf("%d of %d sessions are active", len(active), len(sessions))
	}
	if _, _, err := s.SeedLoad(ctx, "t2", 1, 10, "x", "no-such-variation", 1000); err == nil {
		t.Fatal("an unknown variation was accepted")
	}
}
