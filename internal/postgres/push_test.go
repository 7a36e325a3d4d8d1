package postgres_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
)

func mkDevice(t *testing.T, s *postgres.Store, user uuid.UUID) domain.Device {
	t.Helper()
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	b64 := base64.RawURLEncoding.EncodeToString
	d, created, err := s.RegisterDevice(context.Background(), domain.Device{UserID: user, Kind: domain.DeviceKindWebPush,
		Endpoint: "https://push.example.com/" + uuid.NewString(), P256dh: b64(priv.PublicKey().Bytes()), Auth: b64(make([]byte, 16))}, 10)
	if err != nil || !created {
		t.Fatalf("register device: %v (created %v)", err, created)
	}
	return d
}

func count(t *testing.T, s *postgres.Store, table string) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A notice is queued in the transaction of what it announces: when queuing
// fails, the prescription, the feedback and the set are not stored either; when
// it works, each comes with its notice.
func TestNoticesAreQueuedInTheSameTransaction(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	athlete, coach := mkUser(t, s, domain.RoleAthlete), mkUser(t, s, domain.RoleCoach)
	if _, err := s.Pool().Exec(ctx, `INSERT INTO coach_links (coach_id, athlete_id) VALUES ($1, $2)`, coach.ID, athlete.ID); err != nil {
		t.Fatal(err)
	}
	mkDevice(t, s, athlete.ID)
	mkDevice(t, s, coach.ID)
	prescription := domain.Prescription{CoachID: coach.ID, AthleteID: athlete.ID, Variation: "barbell-hip-thrust",
		Sets: 3, Reps: 8, LoadKg: 60, PauseHoldMs: 1000, ScheduledOn: domain.DateOf(time.Now().UTC())}
	newSet := postgres.NewSet{AthleteID: athlete.ID, Variation: "barbell-hip-thrust", LoadKG: 60, TargetReps: 5, PauseHoldMS: 1000}

	// The outbox refuses every row.
	if _, err := s.Pool().Exec(ctx, `
		CREATE FUNCTION refuse_push() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$;
		CREATE TRIGGER refuse_push BEFORE INSERT ON push_outbox FOR EACH ROW EXECUTE FUNCTION refuse_push();`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePrescription(ctx, prescription); err == nil {
		t.Fatal("a prescription was stored although its notice could not be queued")
	}
	if _, err := s.CreateSet(ctx, newSet); err == nil {
		t.Fatal("a set was started although its notice could not be queued")
	}
	if n := count(t, s, "prescriptions") + count(t, s, "sets"); n != 0 {
		t.Fatalf("%d rows stored without their notices", n)
	}
	if _, err := s.Pool().Exec(ctx, `DROP TRIGGER refuse_push ON push_outbox`); err != nil {
		t.Fatal(err)
	}
	set, err := s.CreateSet(ctx, newSet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `CREATE TRIGGER refuse_push BEFORE INSERT ON push_outbox FOR EACH ROW EXECUTE FUNCTION refuse_push()`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddFeedback(ctx, set.ID, coach.ID, "Nice"); err == nil {
		t.Fatal("feedback was stored although its notice could not be queued")
	}
	if n := count(t, s, "set_feedback"); n != 0 {
		t.Fatalf("%d feedback rows stored without their notices", n)
	}

	// With the outbox working, each comes with one notice for each recipient device.
	if _, err := s.Pool().Exec(ctx, `DROP TRIGGER refuse_push ON push_outbox; DELETE FROM push_outbox`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePrescription(ctx, prescription); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddFeedback(ctx, set.ID, coach.ID, "Nice"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "push_outbox"); n != 2 {
		t.Fatalf("%d notices queued, want 2", n)
	}
}

// Registrations are bounded per user even when they race.
func TestDeviceBoundHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	u := mkUser(t, s, domain.RoleAthlete)
	const max, tries = 3, 12
	errs := make(chan error, tries)
	for range tries {
		go func() {
			priv, _ := ecdh.P256().GenerateKey(rand.Reader)
			b64 := base64.RawURLEncoding.EncodeToString
			_, _, err := s.RegisterDevice(context.Background(), domain.Device{UserID: u.ID, Kind: domain.DeviceKindWebPush,
				Endpoint: "https://push.example.com/" + uuid.NewString(), P256dh: b64(priv.PublicKey().Bytes()), Auth: b64(make([]byte, 16))}, max)
			errs <- err
		}()
	}
	ok := 0
	for range tries {
		switch err := <-errs; {
		case err == nil:
			ok++
		case domain.ErrorCode(err) != domain.CodeConflict:
			t.Fatal(err)
		}
	}
	if ok != max || count(t, s, "push_devices") != max {
		t.Fatalf("%d registrations succeeded, %d devices stored; want %d", ok, count(t, s, "push_devices"), max)
	}
}
