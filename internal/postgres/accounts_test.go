package postgres_test

import (
	"context"
	"testing"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
)

// The demo accounts are verified (the operator vouches for them), also when
// they existed before verification did.
func TestDemoAccountsAreVerified(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	hash := func(string) (string, error) { return "hash", nil }
	if err := s.SeedDemo(ctx, hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE users SET email_verified_at = NULL`); err != nil {
		t.Fatal(err)
	}
	if err := s.SeedDemo(ctx, hash); err != nil {
		t.Fatal(err)
	}
	for _, a := range postgres.DemoAccounts {
		u, _, err := s.FindUserForLogin(ctx, a.Email)
		if err != nil {
			t.Fatal(err)
		}
		acc, err := s.FindAccount(ctx, u.ID)
		if err != nil || !acc.EmailVerified {
			t.Errorf("%s: verified %v (%v)", a.Email, acc.EmailVerified, err)
		}
	}
}

// An account with a live set is not deleted (the API ends the set first), and
// nothing of it changes.
func TestDeleteAccountRefusesALiveSet(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	a := mkUser(t, s, domain.RoleAthlete)
	if _, err := s.CreateSet(ctx, postgres.NewSet{AthleteID: a.ID, Variation: "barbell-hip-thrust", LoadKG: 60, TargetReps: 5, PauseHoldMS: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteAccount(ctx, a.ID, ""); domain.ErrorCode(err) != domain.CodeConflict {
		t.Fatalf("delete with a live set: %v", err)
	}
	if u, err := s.FindUserByID(ctx, a.ID); err != nil || u.Email != a.Email {
		t.Fatalf("the account changed: %+v, %v", u, err)
	}
	// A password hash that is no longer current refuses too.
	if _, err := s.Pool().Exec(ctx, `UPDATE sets SET status = 'ended', ended_at = now() WHERE athlete_id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteAccount(ctx, a.ID, "an old hash"); domain.ErrorCode(err) != domain.CodeConflict {
		t.Fatalf("delete with a stale hash: %v", err)
	}
	if _, err := s.DeleteAccount(ctx, a.ID, "hash"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindUserByID(ctx, a.ID); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("a deleted account is found: %v", err)
	}
	if _, err := s.PromoteToAdmin(ctx, "deleted:"+a.ID.String(), "h"); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("a tombstone was promoted: %v", err)
	}
}
