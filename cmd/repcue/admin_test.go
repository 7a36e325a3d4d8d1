package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/testdb"
)

// `repcue admin create` on an existing account fails unless --promote is given;
// with it, the account is admin, its sessions are over and the change audited.
// `repcue admin disable` disables an account. Run through run(), as main does.
func TestAdminCreateNeedsPromote(t *testing.T) {
	pool := testdb.New(t)
	t.Setenv("DATABASE_URL", pool.Config().ConnString())
	t.Setenv("REPCUE_HASH_WORKERS", "1")
	store := postgres.NewStore(pool)
	ctx := context.Background()
	u, err := store.CreateUser(ctx, domain.User{Email: "someone@example.com", DisplayName: "Someone", Role: domain.RoleAthlete}, "hash")
	if err != nil {
		t.Fatal(err)
	}
	family := uuid.New()
	if err := store.CreateSession(ctx, u.ID, family, []byte("token"), time.Hour); err != nil {
		t.Fatal(err)
	}

	err = run(ctx, []string{"admin", "create", "--email", "Someone@Example.com", "--password", "a long admin password"})
	if err == nil || !strings.Contains(err.Error(), "--promote") {
		t.Fatalf("admin create on an existing account: %v, want an error naming --promote", err)
	}
	if got, _ := store.FindUserByID(ctx, u.ID); got.Role != domain.RoleAthlete {
		t.Fatalf("promoted without --promote: %s", got.Role)
	}
	if active, _ := store.ActiveSessions(ctx, []uuid.UUID{family}); !active[family] {
		t.Fatal("a refused admin create ended a session")
	}

	// An account whose email is not verified is never promoted, and nothing changes.
	var out bytes.Buffer
	err = adminCreate(ctx, []string{"--email", "someone@example.com", "--password", "a long admin password", "--promote"}, &out)
	if err == nil || !strings.Contains(err.Error(), "not verified") {
		t.Fatalf("--promote of an unverified account: %v, want a refusal naming verification", err)
	}
	if got, _ := store.FindUserByID(ctx, u.ID); got.Role != domain.RoleAthlete {
		t.Fatalf("an unverified account was promoted: %s", got.Role)
	}
	if active, _ := store.ActiveSessions(ctx, []uuid.UUID{family}); !active[family] {
		t.Fatal("a refused --promote ended a session")
	}
	if err := store.MarkEmailVerified(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := adminCreate(ctx, []string{"--email", "someone@example.com", "--password", "a long admin password", "--promote"}, &out); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.FindUserByID(ctx, u.ID); got.Role != domain.RoleAdmin {
		t.Fatalf("--promote left the role %s", got.Role)
	}
	if active, _ := store.ActiveSessions(ctx, []uuid.UUID{family}); active[family] {
		t.Fatal("the promoted account's session is still active")
	}
	entries, err := store.ListAudit(ctx, postgres.AuditFilter{Entity: "user", EntityID: &u.ID, Limit: 10})
	if err != nil || len(entries) != 1 || entries[0].ActorID != nil {
		t.Fatalf("audit of the promotion: %+v (%v)", entries, err)
	}
	if !strings.Contains(out.String(), "now an admin") {
		t.Fatalf("output %q", out.String())
	}

	// --promote of nobody, and a plain new admin.
	if err := run(ctx, []string{"admin", "create", "--email", "nobody@example.com", "--password", "a long admin password", "--promote"}); err == nil {
		t.Fatal("--promote of a missing account succeeded")
	}
	if err := run(ctx, []string{"admin", "create", "--email", "new@example.com", "--password", "a long admin password"}); err != nil {
		t.Fatal(err)
	}

	// Disable.
	if err := run(ctx, []string{"admin", "disable", "--email", "new@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.FindUserForLogin(ctx, "new@example.com"); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("a disabled admin can sign in: %v", err)
	}
	if err := run(ctx, []string{"admin", "disable", "--email", "nobody@example.com"}); err == nil {
		t.Fatal("disabling a missing account succeeded")
	}
	if err := run(ctx, []string{"admin", "frobnicate"}); err == nil {
		t.Fatal("an unknown admin command succeeded")
	}
}
