package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/testdb"
)

func newStore(t *testing.T) *postgres.Store {
	t.Helper()
	return postgres.NewStore(testdb.New(t))
}

func mkUser(t *testing.T, s *postgres.Store, role domain.Role) domain.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), domain.User{Email: uuid.NewString() + "@example.com", DisplayName: "U", Role: role}, "hash")
	if err != nil {
		t.Fatal(err)
	}
	// Verified, as accounts that may be promoted are.
	if err := s.MarkEmailVerified(context.Background(), u.ID); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestMigrateIsIdempotentAndTheSchemaIsCurrent(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	applied, err := postgres.Migrate(context.Background(), s.Pool())
	if err != nil || len(applied) != 0 {
		t.Fatalf("second migrate applied %v: %v", applied, err)
	}
	if err := postgres.CheckSchema(context.Background(), s.Pool()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(context.Background(), `DELETE FROM schema_migrations WHERE version = $1`, postgres.LatestVersion()); err != nil {
		t.Fatal(err)
	}
	if err := postgres.CheckSchema(context.Background(), s.Pool()); err == nil {
		t.Fatal("a schema that is behind was accepted")
	}
}

func TestUniqueEmailIsAConflict(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	u := mkUser(t, s, domain.RoleAthlete)
	_, err := s.CreateUser(context.Background(), domain.User{Email: u.Email, DisplayName: "Again", Role: domain.RoleCoach}, "hash")
	if domain.ErrorCode(err) != domain.CodeConflict {
		t.Fatalf("duplicate email: %v", err)
	}
	if _, err := s.FindUserByID(context.Background(), uuid.New()); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("missing user: %v", err)
	}
}

func TestRefreshRotationGraceAndReuse(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	u := mkUser(t, s, domain.RoleCoach)
	family := uuid.New()
	if err := s.CreateSession(ctx, u.ID, family, []byte("t1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, fam, err := s.RotateRefreshToken(ctx, []byte("t1"), []byte("t2"), 5*time.Second, time.Hour); err != nil || fam != family {
		t.Fatalf("rotation: %v", err)
	}
	// Within the grace window the old token still rotates (a retried request),
	// to the same successor: a different one would branch the family.
	if _, _, err := s.RotateRefreshToken(ctx, []byte("t1"), []byte("t2"), 5*time.Second, time.Hour); err != nil {
		t.Fatalf("retry in grace: %v", err)
	}
	if _, _, err := s.RotateRefreshToken(ctx, []byte("t1"), []byte("t3"), 5*time.Second, time.Hour); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("a retry naming another successor: %v", err)
	}
	// With no grace at all, presenting it again revokes the family.
	if _, _, err := s.RotateRefreshToken(ctx, []byte("t1"), []byte("t4"), -time.Second, time.Hour); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("reuse: %v", err)
	}
	for _, tok := range []string{"t2", "t3"} {
		if _, _, err := s.RotateRefreshToken(ctx, []byte(tok), []byte(tok+"x"), 5*time.Second, time.Hour); domain.ErrorCode(err) != domain.CodeUnauthorized {
			t.Fatalf("%s survived the family's revocation: %v", tok, err)
		}
	}
	active, err := s.ActiveSessions(ctx, []uuid.UUID{family})
	if err != nil || active[family] {
		t.Fatalf("revoked family still active: %v", err)
	}
}

func TestOneLiveSetAndIdempotentEvents(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	a := mkUser(t, s, domain.RoleAthlete)
	set, err := s.CreateSet(ctx, postgres.NewSet{AthleteID: a.ID, Variation: "barbell-hip-thrust", LoadKG: 100, TargetReps: 5, PauseHoldMS: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSet(ctx, postgres.NewSet{AthleteID: a.ID, Variation: "barbell-hip-thrust", LoadKG: 100, TargetReps: 5}); domain.ErrorCode(err) != domain.CodeConflict {
		t.Fatalf("second live set: %v", err)
	}
	if _, err := s.CreateSet(ctx, postgres.NewSet{AthleteID: a.ID, Variation: "no-such"}); domain.ErrorCode(err) != domain.CodeInvalid {
		t.Fatalf("unknown variation: %v", err)
	}
	lease := ownSet(t, s, set.ID)
	ev := postgres.SetEvent{SetID: set.ID, EventID: uuid.New(), N: 1, Type: "rep.phase", Phase: "up", ActorID: a.ID, At: time.Now(), Source: "live", Lease: lease}
	for i := 0; i < 2; i++ { // a batch retried after an unknown outcome
		if err := s.AppendEvents(ctx, []postgres.SetEvent{ev}, nil); err != nil {
			t.Fatal(err)
		}
	}
	end := postgres.SetEvent{SetID: set.ID, EventID: uuid.New(), N: 2, Type: "set.end", ActorID: a.ID, At: time.Now(), Source: "live", Lease: lease}
	if err := s.AppendEvents(ctx, []postgres.SetEvent{end}, []postgres.SetEnding{{SetID: set.ID, EndedAt: time.Now(), Summary: map[string]int{"reps": 0}}}); err != nil {
		t.Fatal(err)
	}
	events, err := s.SetEvents(ctx, set.ID)
	if err != nil || len(events) != 2 {
		t.Fatalf("%d events stored, want 2 (%v)", len(events), err)
	}
	got, _ := s.FindSet(ctx, set.ID)
	if got.Status != domain.SetEnded || got.EndedAt == nil {
		t.Fatalf("set after its end: %+v", got)
	}
	// A bad event in a batch leaves nothing of the batch behind.
	bad := []postgres.SetEvent{
		{SetID: set.ID, EventID: uuid.New(), N: 3, Type: "rep.phase", Phase: "up", ActorID: a.ID, At: time.Now(), Source: "live", Lease: lease},
		{SetID: set.ID, EventID: uuid.New(), N: 4, Type: "rep.phase", Phase: "sideways", ActorID: a.ID, At: time.Now(), Source: "live", Lease: lease},
	}
	if err := s.AppendEvents(ctx, bad, nil); domain.ErrorCode(err) != domain.CodeInvalid {
		t.Fatalf("bad batch: %v", err)
	}
	if events, _ := s.SetEvents(ctx, set.ID); len(events) != 2 {
		t.Fatalf("a failed batch left %d events", len(events)-2)
	}
	// Now the athlete may start another set.
	if _, err := s.CreateSet(ctx, postgres.NewSet{AthleteID: a.ID, Variation: "barbell-hip-thrust", LoadKG: 100, TargetReps: 5}); err != nil {
		t.Fatal(err)
	}
}

func TestTicketsAreSingleUse(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	u := mkUser(t, s, domain.RoleCoach)
	sid := uuid.New()
	if err := s.CreateTicket(ctx, []byte("ticket"), u.ID, u.Role, sid, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	uid, role, gotSID, err := s.UseTicket(ctx, []byte("ticket"))
	if err != nil || uid != u.ID || role != domain.RoleCoach || gotSID != sid {
		t.Fatalf("use: %v", err)
	}
	if _, _, _, err := s.UseTicket(ctx, []byte("ticket")); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("second use: %v", err)
	}
	if err := s.CreateTicket(ctx, []byte("old"), u.ID, u.Role, sid, -time.Second); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.UseTicket(ctx, []byte("old")); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("expired ticket: %v", err)
	}
}

func TestAdminEditsAreAuditedInTheSameTransaction(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	adm := mkUser(t, s, domain.RoleAdmin)
	cue, err := s.CreateCue(ctx, adm.ID, "hip-thrust", domain.Cue{Text: "Knees out", Phase: domain.PhaseConcentric, Priority: 1})
	if err != nil {
		t.Fatal(err)
	}
	// A stale update changes nothing and records nothing.
	if _, err := s.UpdateCue(ctx, adm.ID, cue.ID, domain.VersionMatch{Versions: []int{9}}, postgres.CuePatch{}); domain.ErrorCode(err) != domain.CodePreconditionFailed {
		t.Fatalf("stale update: %v", err)
	}
	// A mistake naming a cue of nothing fails whole: no mistake, no audit row.
	if _, err := s.CreateMistake(ctx, adm.ID, "hip-thrust", domain.Mistake{Name: "X", Fix: "Y", CueIDs: []uuid.UUID{uuid.New()}}); domain.ErrorCode(err) != domain.CodeInvalid {
		t.Fatalf("bad mistake: %v", err)
	}
	entries, err := s.ListAudit(ctx, postgres.AuditFilter{Limit: 10})
	if err != nil || len(entries) != 1 || entries[0].Action != "create" || entries[0].EntityID != cue.ID {
		t.Fatalf("audit: %+v %v", entries, err)
	}
	if _, err := s.CreateCue(ctx, adm.ID, "no-such", domain.Cue{Text: "x", Phase: domain.PhaseAny}); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("cue of a missing exercise: %v", err)
	}
}
