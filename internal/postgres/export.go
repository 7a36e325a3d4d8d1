package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/repcue/repcue/internal/domain"
)

// ExportLink is a coach–athlete link as the export of either side shows it.
type ExportLink struct {
	UserID      uuid.UUID   `json:"user_id"`
	DisplayName string      `json:"display_name"`
	Role        domain.Role `json:"role"`
	LinkedAt    domain.Time `json:"linked_at"`
}

// ExportInvite is an invite code as its coach's export shows it (who used it
// is the athlete's data, not the coach's).
type ExportInvite struct {
	Code      string       `json:"code"`
	CreatedAt domain.Time  `json:"created_at"`
	ExpiresAt domain.Time  `json:"expires_at"`
	UsedAt    *domain.Time `json:"used_at"`
}

// ExportLinks lists the links of a user on either side.
func (s *Store) ExportLinks(ctx context.Context, userID uuid.UUID) ([]ExportLink, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT u.id, u.display_name, u.role, l.created_at
		FROM coach_links l JOIN users u ON u.id = CASE WHEN l.coach_id = $1 THEN l.athlete_id ELSE l.coach_id END
		WHERE l.coach_id = $1 OR l.athlete_id = $1
		ORDER BY l.created_at, u.id`, userID)
	if err != nil {
		return nil, translate(err, "link")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ExportLink, error) {
		var l ExportLink
		var at time.Time
		err := r.Scan(&l.UserID, &l.DisplayName, &l.Role, &at)
		l.LinkedAt = domain.Time(at)
		return l, err
	})
	return list, translate(err, "link")
}

// ExportInvites lists every invite a coach made.
func (s *Store) ExportInvites(ctx context.Context, coachID uuid.UUID) ([]ExportInvite, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT code, created_at, expires_at, used_at FROM coach_invites WHERE coach_id = $1 ORDER BY created_at, code`, coachID)
	if err != nil {
		return nil, translate(err, "invite")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ExportInvite, error) {
		var inv ExportInvite
		var created, expires time.Time
		var used *time.Time
		err := r.Scan(&inv.Code, &created, &expires, &used)
		inv.CreatedAt, inv.ExpiresAt = domain.Time(created), domain.Time(expires)
		if used != nil {
			t := domain.Time(*used)
			inv.UsedAt = &t
		}
		return inv, err
	})
	return list, translate(err, "invite")
}

// ExportPrescriptions lists the prescriptions a user received or wrote.
func (s *Store) ExportPrescriptions(ctx context.Context, userID uuid.UUID) ([]domain.Prescription, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+prescriptionColumns+`
		FROM prescriptions p JOIN variations v ON v.id = p.variation_id
		WHERE p.athlete_id = $1 OR p.coach_id = $1
		ORDER BY p.scheduled_on, p.id`, userID)
	if err != nil {
		return nil, translate(err, "prescription")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Prescription, error) { return scanPrescription(r) })
	return list, translate(err, "prescription")
}

// ExportSets lists every set of an athlete, oldest first.
func (s *Store) ExportSets(ctx context.Context, athleteID uuid.UUID) ([]domain.Set, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+setColumns+` FROM sets s JOIN variations v ON v.id = s.variation_id
		WHERE s.athlete_id = $1 ORDER BY s.started_at, s.id`, athleteID)
	if err != nil {
		return nil, translate(err, "set")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Set, error) { return scanSet(r) })
	return list, translate(err, "set")
}

// ExportFeedbackBy lists the feedback a coach wrote, oldest first.
func (s *Store) ExportFeedbackBy(ctx context.Context, coachID uuid.UUID) ([]domain.Feedback, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, set_id, coach_id, text, created_at FROM set_feedback WHERE coach_id = $1 ORDER BY created_at, id`, coachID)
	if err != nil {
		return nil, translate(err, "feedback")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Feedback, error) {
		var f domain.Feedback
		var at time.Time
		err := r.Scan(&f.ID, &f.SetID, &f.CoachID, &f.Text, &at)
		f.CreatedAt = domain.Time(at)
		return f, err
	})
	return list, translate(err, "feedback")
}
