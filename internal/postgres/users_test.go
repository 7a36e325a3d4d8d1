package postgres_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
)

func session(t *testing.T, s *postgres.Store, u domain.User) uuid.UUID {
	t.Helper()
	family := uuid.New()
	if err := s.CreateSession(context.Background(), u.ID, family, []byte(uuid.NewString()), time.Hour); err != nil {
		t.Fatal(err)
	}
	return family
}

// userAudit returns the audit entries of an account, newest first.
func userAudit(t *testing.T, s *postgres.Store, id uuid.UUID) []domain.AuditEntry {
	t.Helper()
	entries, err := s.ListAudit(context.Background(), postgres.AuditFilter{Entity: "user", EntityID: &id, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestCreateAdminNeverPromotes(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	u := mkUser(t, s, domain.RoleAthlete)
	family := session(t, s, u)

	if _, err := s.CreateAdmin(ctx, u.Email, "Admin", "new-hash"); domain.ErrorCode(err) != domain.CodeConflict {
		t.Fatalf("CreateAdmin on an existing account: %v, want conflict", err)
	}
	if got, err := s.FindUserByID(ctx, u.ID); err != nil || got.Role != domain.RoleAthlete {
		t.Fatalf("the account became %s (%v)", got.Role, err)
	}
	if active, _ := s.ActiveSessions(ctx, []uuid.UUID{family}); !active[family] {
		t.Fatal("a refused CreateAdmin ended a session")
	}
	if len(userAudit(t, s, u.ID)) != 0 {
		t.Fatal("a refused CreateAdmin was audited")
	}

	// Promotion is its own decision: admin, new password, every session ended, audited.
	other := session(t, s, u)
	p, err := s.PromoteToAdmin(ctx, u.Email, "new-hash")
	if err != nil || p.Role != domain.RoleAdmin || p.ID != u.ID {
		t.Fatalf("promote: %+v, %v", p, err)
	}
	active, err := s.ActiveSessions(ctx, []uuid.UUID{family, other})
	if err != nil || active[family] || active[other] {
		t.Fatalf("sessions alive after the promotion: %v (%v)", active, err)
	}
	if _, hash, err := s.FindUserForLogin(ctx, u.Email); err != nil || hash != "new-hash" {
		t.Fatalf("password after promotion: %q (%v)", hash, err)
	}
	entries := userAudit(t, s, u.ID)
	if len(entries) != 1 {
		t.Fatalf("%d audit entries, want 1", len(entries))
	}
	e := entries[0]
	var before, after map[string]any
	_ = json.Unmarshal(e.Before, &before)
	_ = json.Unmarshal(e.After, &after)
	if e.ActorID != nil || e.Action != "update" || before["role"] != "athlete" || after["role"] != "admin" {
		t.Fatalf("audit entry %+v: before %v after %v", e, before, after)
	}

	if _, err := s.PromoteToAdmin(ctx, "nobody@example.com", "h"); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("promoting nobody: %v", err)
	}
	if a, err := s.CreateAdmin(ctx, "new-admin@example.com", "Admin", "h"); err != nil || a.Role != domain.RoleAdmin {
		t.Fatalf("a new admin: %+v %v", a, err)
	}
}

func TestDisableUserEndsEverything(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	u := mkUser(t, s, domain.RoleCoach)
	family := uuid.New()
	if err := s.CreateSession(ctx, u.ID, family, []byte("r1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DisableUser(ctx, u.Email); err != nil {
		t.Fatal(err)
	}
	if active, _ := s.ActiveSessions(ctx, []uuid.UUID{family}); active[family] {
		t.Fatal("a disabled account's session is active")
	}
	if _, _, err := s.RotateRefreshToken(ctx, []byte("r1"), []byte("r2"), 5*time.Second, time.Hour); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("refresh of a disabled account: %v", err)
	}
	if _, _, err := s.FindUserForLogin(ctx, u.Email); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("a disabled account can still sign in: %v", err)
	}
	if _, err := s.FindUserByID(ctx, u.ID); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("a disabled account is still found: %v", err)
	}
	// A session started for it anyway (a sign-in that checked the password
	// just before) is refused.
	if err := s.StartSession(ctx, u.ID, uuid.New(), "hash", []byte("r3"), time.Hour); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("a session started for a disabled account: %v", err)
	}
	entries := userAudit(t, s, u.ID)
	var after map[string]any
	if len(entries) != 1 || json.Unmarshal(entries[0].After, &after) != nil || after["disabled"] != true {
		t.Fatalf("audit of the disable: %+v", entries)
	}
	if _, err := s.DisableUser(ctx, "nobody@example.com"); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("disabling nobody: %v", err)
	}
}

// A sign-in that checked a password which changed before its session started
// gets no session.
func TestStartSessionChecksTheCredentials(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	u := mkUser(t, s, domain.RoleAthlete) // password hash "hash"
	if err := s.StartSession(ctx, u.ID, uuid.New(), "hash", []byte("a"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PromoteToAdmin(ctx, u.Email, "new-hash"); err != nil {
		t.Fatal(err)
	}
	if err := s.StartSession(ctx, u.ID, uuid.New(), "hash", []byte("b"), time.Hour); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("a session from the old password: %v", err)
	}
	if err := s.StartSession(ctx, u.ID, uuid.New(), "new-hash", []byte("c"), time.Hour); err != nil {
		t.Fatal(err)
	}
}

// Logout revokes the session row and every token, and is idempotent.
func TestRevokeSession(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	u := mkUser(t, s, domain.RoleAthlete)
	family := uuid.New()
	if err := s.CreateSession(ctx, u.ID, family, []byte("t1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RotateRefreshToken(ctx, []byte("t1"), []byte("t2"), 5*time.Second, time.Hour); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := s.RevokeSession(ctx, []byte("t1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeSession(ctx, []byte("unknown")); err != nil {
		t.Fatal(err)
	}
	var live int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM refresh_tokens WHERE family_id = $1 AND revoked_at IS NULL`, family).Scan(&live); err != nil || live != 0 {
		t.Fatalf("%d tokens alive after logout (%v)", live, err)
	}
	for _, tok := range []string{"t1", "t2"} {
		if _, _, err := s.RotateRefreshToken(ctx, []byte(tok), []byte(tok+"x"), 5*time.Second, time.Hour); domain.ErrorCode(err) != domain.CodeUnauthorized {
			t.Fatalf("%s after logout: %v", tok, err)
		}
	}
}

// Ending every session of an account (a promotion, a disable) while its phone
// refreshes in a loop: no deadlock, no error but "unauthorized", and nothing
// the loop minted survives.
func TestAccountChangesRacingRefreshes(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	for trial := 0; trial < 10; trial++ {
		u := mkUser(t, s, domain.RoleAthlete)
		family := uuid.New()
		tok := func(i int) []byte { return []byte(family.String() + strconv.Itoa(i)) }
		if err := s.CreateSession(ctx, u.ID, family, tok(0), time.Hour); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 1)
		go func() {
			for i := 0; ; i++ {
				_, _, err := s.RotateRefreshToken(ctx, tok(i), tok(i+1), 5*time.Second, time.Hour)
				if err != nil {
					errs <- err
					return
				}
			}
		}()
		time.Sleep(time.Duration(trial) * time.Millisecond)
		change := s.DisableUser
		if trial%2 == 0 {
			change = func(ctx context.Context, email string) (domain.User, error) {
				return s.PromoteToAdmin(ctx, email, "new-hash")
			}
		}
		if _, err := change(ctx, u.Email); err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		select {
		case err := <-errs:
			if domain.ErrorCode(err) != domain.CodeUnauthorized {
				t.Fatalf("trial %d: the refresh loop ended with %v", trial, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("trial %d: the refresh loop still runs after its sessions ended", trial)
		}
		var live int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM refresh_tokens WHERE family_id = $1 AND revoked_at IS NULL`, family).Scan(&live); err != nil || live != 0 {
			t.Fatalf("trial %d: %d tokens alive (%v)", trial, live, err)
		}
	}
}
