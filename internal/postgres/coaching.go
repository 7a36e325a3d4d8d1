package postgres

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/repcue/repcue/internal/domain"
)

// Keyset is a position in a list: the sort key and id of the last item already
// seen. The next page starts strictly after it.
type Keyset[K any] struct {
	Key K
	ID  uuid.UUID
}

// CreateInvite makes a single-use invite code for a coach, valid for ttl. A coach
// holds at most maxOutstanding unused, unexpired invites; beyond that the answer is
// too_many_requests with the time until the oldest one expires.
func (s *Store) CreateInvite(ctx context.Context, coachID uuid.UUID, ttl time.Duration, maxOutstanding int) (domain.Invite, error) {
	var inv domain.Invite
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Lock the coach's row so that two requests at once cannot both pass the bound.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, coachID); err != nil {
			return err
		}
		var outstanding int
		var untilOldestExpires float64
		err := tx.QueryRow(ctx, `
			SELECT count(*), coalesce(extract(epoch FROM min(expires_at) - now()), 0)::float8
			FROM coach_invites
			WHERE coach_id = $1 AND used_at IS NULL AND expires_at > now()`, coachID).
			Scan(&outstanding, &untilOldestExpires)
		if err != nil {
			return err
		}
		if outstanding >= maxOutstanding {
			return &domain.Error{
				Code:       domain.CodeTooManyRequests,
				Message:    "too many unused invites: wait until one is used or expires",
				RetryAfter: time.Duration(math.Ceil(untilOldestExpires)) * time.Second,
			}
		}
		// 40 random bits rarely collide; when they do, draw again.
		for range 5 {
			code := domain.NewInviteCode()
			var expires time.Time
			err := tx.QueryRow(ctx, `
				INSERT INTO coach_invites (code, coach_id, expires_at) VALUES ($1, $2, now() + $3::interval)
				ON CONFLICT (code) DO NOTHING
				RETURNING expires_at`, code, coachID, ttl).Scan(&expires)
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			inv = domain.Invite{Code: code, ExpiresAt: domain.Time(expires)}
			return err
		}
		return errors.New("five invite codes in a row were taken")
	})
	return inv, translate(err, "invite")
}

// RedeemInvite links an athlete to the coach of an unused, unexpired invite and
// uses the invite up, in one transaction. An unknown, used or expired code is
// not_found, all alike. When the athlete is already linked to that coach the
// answer is conflict and the invite stays unused.
func (s *Store) RedeemInvite(ctx context.Context, athleteID uuid.UUID, code string) (domain.CoachRef, error) {
	var coach domain.CoachRef
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The conditional UPDATE is the claim: of two athletes racing for one code,
		// the second waits for the first's row lock, then sees used_at set and
		// gets no row (or claims the code after all if the first rolled back).
		err := tx.QueryRow(ctx, `
			UPDATE coach_invites i SET used_at = now(), used_by = $2
			FROM users c
			WHERE i.code = $1 AND i.used_at IS NULL AND i.expires_at > now()
			  AND c.id = i.coach_id AND c.disabled_at IS NULL
			RETURNING c.id, c.display_name`, code, athleteID).Scan(&coach.ID, &coach.DisplayName)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO coach_links (coach_id, athlete_id) VALUES ($1, $2)
			ON CONFLICT DO NOTHING`, coach.ID, athleteID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			// Returning an error rolls the claim back: the code stays usable.
			return domain.Errorf(domain.CodeConflict, "you are already linked to this coach")
		}
		return nil
	})
	return coach, translate(err, "invite")
}

// CoachLinked reports whether an athlete is linked to a coach: the one rule for
// what a coach may see and do about an athlete.
func (s *Store) CoachLinked(ctx context.Context, coachID, athleteID uuid.UUID) (bool, error) {
	var linked bool
	err := s.pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM coach_links WHERE coach_id = $1 AND athlete_id = $2)`,
		coachID, athleteID).Scan(&linked)
	return linked, translate(err, "athlete")
}

// ListLinkedAthletes returns up to limit athletes linked to a coach, ordered by
// display name then id, starting after the given position (nil: from the start).
func (s *Store) ListLinkedAthletes(ctx context.Context, coachID uuid.UUID, after *Keyset[string], limit int) ([]domain.LinkedAthlete, error) {
	var afterName *string
	var afterID *uuid.UUID
	if after != nil {
		afterName, afterID = &after.Key, &after.ID
	}
	// At most one set per athlete is live (a unique index), so the join adds no rows.
	rows, err := s.pool.Query(ctx, `
		SELECT u.id, u.display_name, u.email, s.id
		FROM coach_links l
		JOIN users u ON u.id = l.athlete_id
		LEFT JOIN sets s ON s.athlete_id = u.id AND s.status = 'live'
		WHERE l.coach_id = $1
		  AND ($2::text IS NULL OR (u.display_name, u.id) > ($2::text, $3::uuid))
		ORDER BY u.display_name, u.id
		LIMIT $4`, coachID, afterName, afterID, limit)
	if err != nil {
		return nil, translate(err, "athlete")
	}
	athletes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.LinkedAthlete, error) {
		var a domain.LinkedAthlete
		err := row.Scan(&a.ID, &a.DisplayName, &a.Email, &a.LiveSetID)
		return a, err
	})
	return athletes, translate(err, "athlete")
}

// UnlinkAthlete removes the link between a coach and an athlete; not_found when
// there is none.
func (s *Store) UnlinkAthlete(ctx context.Context, coachID, athleteID uuid.UUID) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM coach_links WHERE coach_id = $1 AND athlete_id = $2`, coachID, athleteID)
	if err != nil {
		return translate(err, "athlete")
	}
	if tag.RowsAffected() == 0 {
		return domain.NotFound("athlete")
	}
	return nil
}

// CreatePrescription stores a coach's prescription for a linked athlete. p.Variation
// is a slug; an unknown one is invalid (field variation). An athlete not linked to
// p.CoachID is not_found. ID and CreatedAt are filled in.
func (s *Store) CreatePrescription(ctx context.Context, p domain.Prescription) (domain.Prescription, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// FOR SHARE holds the link until commit, so an unlink running at the same
		// time cannot slip between this check and the insert.
		err := tx.QueryRow(ctx, `
			SELECT 1 FROM coach_links WHERE coach_id = $1 AND athlete_id = $2 FOR SHARE`,
			p.CoachID, p.AthleteID).Scan(new(int))
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.NotFound("athlete")
		}
		if err != nil {
			return err
		}
		var variationID uuid.UUID
		err = tx.QueryRow(ctx, `SELECT id FROM variations WHERE slug = $1`, p.Variation).Scan(&variationID)
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.Invalid("variation", "variation is not a known variation slug")
		}
		if err != nil {
			return err
		}
		var created time.Time
		err = tx.QueryRow(ctx, `
			INSERT INTO prescriptions
				(coach_id, athlete_id, variation_id, sets, reps, load_kg, pause_hold_ms, scheduled_on, notes)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			RETURNING id, created_at, version`,
			p.CoachID, p.AthleteID, variationID, p.Sets, p.Reps, p.LoadKg, p.PauseHoldMs,
			p.ScheduledOn.Time(), p.Notes).Scan(&p.ID, &created, &p.Version)
		p.CreatedAt = domain.Time(created)
		if err != nil {
			return err
		}
		return enqueuePrescriptionNotice(ctx, tx, p)
	})
	return p, translate(err, "prescription")
}

// PrescriptionFilter selects prescriptions. ViewerID scopes every query: only the
// viewer's own prescriptions (an athlete) or those of athletes linked to the
// viewer (a coach) are ever returned.
type PrescriptionFilter struct {
	ViewerID  uuid.UUID
	AthleteID *uuid.UUID
	From, To  *domain.Date // inclusive
	After     *Keyset[domain.Date]
	Limit     int
}

const prescriptionColumns = `
	p.id, p.coach_id, p.athlete_id, v.slug, p.sets, p.reps, p.load_kg::float8,
	p.pause_hold_ms, p.scheduled_on, p.notes, p.created_at, p.version`

func scanPrescription(row pgx.Row) (domain.Prescription, error) {
	var p domain.Prescription
	var scheduled, created time.Time
	err := row.Scan(&p.ID, &p.CoachID, &p.AthleteID, &p.Variation, &p.Sets, &p.Reps, &p.LoadKg,
		&p.PauseHoldMs, &scheduled, &p.Notes, &created, &p.Version)
	p.ScheduledOn, p.CreatedAt = domain.DateOf(scheduled), domain.Time(created)
	return p, err
}

// ListPrescriptions returns up to f.Limit prescriptions ordered by scheduled_on then id.
func (s *Store) ListPrescriptions(ctx context.Context, f PrescriptionFilter) ([]domain.Prescription, error) {
	var afterDate, afterID any
	if f.After != nil {
		afterDate, afterID = f.After.Key.Time(), f.After.ID
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+prescriptionColumns+`
		FROM prescriptions p JOIN variations v ON v.id = p.variation_id
		WHERE (p.athlete_id = $1 OR EXISTS (
		          SELECT 1 FROM coach_links l WHERE l.coach_id = $1 AND l.athlete_id = p.athlete_id))
		  AND ($2::uuid IS NULL OR p.athlete_id = $2)
		  AND ($3::date IS NULL OR p.scheduled_on >= $3)
		  AND ($4::date IS NULL OR p.scheduled_on <= $4)
		  AND ($5::date IS NULL OR (p.scheduled_on, p.id) > ($5::date, $6::uuid))
		ORDER BY p.scheduled_on, p.id
		LIMIT $7`,
		f.ViewerID, f.AthleteID, dateArg(f.From), dateArg(f.To), afterDate, afterID, f.Limit)
	if err != nil {
		return nil, translate(err, "prescription")
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Prescription, error) {
		return scanPrescription(row)
	})
	return list, translate(err, "prescription")
}

// FindPrescription returns a prescription the viewer may see (its athlete, or a
// coach linked to that athlete); any other is not_found.
func (s *Store) FindPrescription(ctx context.Context, viewerID, id uuid.UUID) (domain.Prescription, error) {
	p, err := scanPrescription(s.pool.QueryRow(ctx, `
		SELECT `+prescriptionColumns+`
		FROM prescriptions p JOIN variations v ON v.id = p.variation_id
		WHERE p.id = $2
		  AND (p.athlete_id = $1 OR EXISTS (
		          SELECT 1 FROM coach_links l WHERE l.coach_id = $1 AND l.athlete_id = p.athlete_id))`,
		viewerID, id))
	return p, translate(err, "prescription")
}

// dateArg passes an optional date as a query argument (nil is NULL).
func dateArg(d *domain.Date) any {
	if d == nil {
		return nil
	}
	return d.Time()
}
