package postgres

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// LoadAccount is an account made for a load test: the user, a session for its
// access tokens and, for an athlete, its live set.
type LoadAccount struct {
	UserID    uuid.UUID
	SessionID uuid.UUID
	SetID     uuid.UUID // athletes only
	CoachID   uuid.UUID // athletes only: the coach the athlete is linked to
}

// SeedLoad writes athletes load athletes and one coach per coachEvery of them
// (each athlete linked to its coach), a session per account and a live set per
// athlete (variation, hold), all with COPY in one transaction: thousands of
// accounts in seconds, no sign-up and no password hashing per account
// (passwordHash is one hash used for every load account). Emails are
// load-<run>-a<i>@load.repcue.test and load-<run>-c<i>@load.repcue.test.
func (s *Store) SeedLoad(ctx context.Context, run string, athletes, coachEvery int, passwordHash, variation string, holdMS int) (ath, coaches []LoadAccount, err error) {
	nCoaches := (athletes + coachEvery - 1) / coachEvery
	coaches = make([]LoadAccount, nCoaches)
	for i := range coaches {
		coaches[i] = LoadAccount{UserID: uuid.New(), SessionID: uuid.New()}
	}
	ath = make([]LoadAccount, athletes)
	for i := range ath {
		ath[i] = LoadAccount{UserID: uuid.New(), SessionID: uuid.New(), SetID: uuid.New(), CoachID: coaches[i/coachEvery].UserID}
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var users, sessions, tokens, links [][]any
		expires := time.Now().Add(24 * time.Hour)
		// A session is live while its family holds an unrevoked refresh token:
		// one per session, whose value nobody knows (a random hash).
		session := func(id, user uuid.UUID) {
			sessions = append(sessions, []any{id, user})
			hash := make([]byte, 32)
			_, _ = rand.Read(hash)
			tokens = append(tokens, []any{uuid.New(), id, user, hash, expires})
		}
		for i, c := range coaches {
			users = append(users, []any{c.UserID, fmt.Sprintf("load-%s-c%d@load.repcue.test", run, i), fmt.Sprintf("Load coach %d", i), "coach", passwordHash})
			session(c.SessionID, c.UserID)
		}
		for i, a := range ath {
			users = append(users, []any{a.UserID, fmt.Sprintf("load-%s-a%d@load.repcue.test", run, i), fmt.Sprintf("Load athlete %d", i), "athlete", passwordHash})
			session(a.SessionID, a.UserID)
			links = append(links, []any{a.CoachID, a.UserID})
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "email", "display_name", "role", "password_hash"}, pgx.CopyFromRows(users)); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"sessions"}, []string{"id", "user_id"}, pgx.CopyFromRows(sessions)); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"refresh_tokens"}, []string{"id", "family_id", "user_id", "token_hash", "expires_at"}, pgx.CopyFromRows(tokens)); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"coach_links"}, []string{"coach_id", "athlete_id"}, pgx.CopyFromRows(links)); err != nil {
			return err
		}
		setIDs := make([]uuid.UUID, len(ath))
		athleteIDs := make([]uuid.UUID, len(ath))
		for i, a := range ath {
			setIDs[i], athleteIDs[i] = a.SetID, a.UserID
		}
		tag, err := tx.Exec(ctx, `
			WITH v AS (SELECT id, exercise_cue_book(exercise_id) AS book FROM variations WHERE slug = $3)
			INSERT INTO sets (id, athlete_id, variation_id, load_kg, target_reps, pause_hold_ms, status, cue_book)
			SELECT s.id, s.athlete_id, v.id, 100, 100, $4, 'live', v.book
			FROM unnest($1::uuid[], $2::uuid[]) AS s (id, athlete_id), v`, setIDs, athleteIDs, variation, holdMS)
		if err != nil {
			return err
		}
		if int(tag.RowsAffected()) != len(ath) {
			return fmt.Errorf("unknown variation %q", variation)
		}
		return nil
	})
	return ath, coaches, translate(err, "load accounts")
}
