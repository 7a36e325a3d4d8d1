package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/repcue/repcue/internal/domain"
)

// RegisterDevice stores a push subscription for d.UserID. Registering an
// endpoint the user already has updates its keys and answers created=false; an
// endpoint registered by someone else (the browser changed hands) moves to the
// caller as a new device, and what was queued for the previous owner is dropped.
// A user holds at most maxDevices devices (conflict beyond).
func (s *Store) RegisterDevice(ctx context.Context, d domain.Device, maxDevices int) (domain.Device, bool, error) {
	created := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The user's row serialises registrations, so the bound holds under concurrency.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, d.UserID); err != nil {
			return err
		}
		var owner uuid.UUID
		var at time.Time
		err := tx.QueryRow(ctx, `SELECT id, user_id, created_at FROM push_devices WHERE endpoint = $1 FOR UPDATE`, d.Endpoint).
			Scan(&d.ID, &owner, &at)
		switch {
		case err == nil && owner == d.UserID:
			d.CreatedAt = domain.Time(at)
			_, err = tx.Exec(ctx, `UPDATE push_devices SET p256dh = $2, auth = $3 WHERE id = $1`, d.ID, d.P256dh, d.Auth)
			return err
		case err == nil:
			if _, err := tx.Exec(ctx, `DELETE FROM push_devices WHERE id = $1`, d.ID); err != nil {
				return err
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM push_devices WHERE user_id = $1`, d.UserID).Scan(&n); err != nil {
			return err
		}
		if n >= maxDevices {
			return domain.Errorf(domain.CodeConflict, "at most %d devices can receive pushes: remove one first", maxDevices)
		}
		created = true
		err = tx.QueryRow(ctx, `
			INSERT INTO push_devices (user_id, kind, endpoint, p256dh, auth) VALUES ($1, $2, $3, $4, $5)
			RETURNING id, created_at`, d.UserID, d.Kind, d.Endpoint, d.P256dh, d.Auth).Scan(&d.ID, &at)
		d.CreatedAt = domain.Time(at)
		return err
	})
	return d, created, translate(err, "device")
}

// ListDevices returns a user's devices, oldest first.
func (s *Store) ListDevices(ctx context.Context, userID uuid.UUID) ([]domain.Device, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, user_id, kind, endpoint, p256dh, auth, created_at FROM push_devices
		WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, translate(err, "device")
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Device, error) { return scanDevice(row) })
	if list == nil {
		list = []domain.Device{}
	}
	return list, translate(err, "device")
}

func scanDevice(row pgx.Row, extra ...any) (domain.Device, error) {
	var d domain.Device
	var at time.Time
	err := row.Scan(append([]any{&d.ID, &d.UserID, &d.Kind, &d.Endpoint, &d.P256dh, &d.Auth, &at}, extra...)...)
	d.CreatedAt = domain.Time(at)
	return d, err
}

// DeleteDevice removes one of a user's devices and what was queued for it;
// someone else's device is not_found.
func (s *Store) DeleteDevice(ctx context.Context, userID, id uuid.UUID) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM push_devices WHERE id = $1 AND user_id = $2`, id, userID)
	if err != nil {
		return translate(err, "device")
	}
	if tag.RowsAffected() == 0 {
		return domain.NotFound("device")
	}
	return nil
}

// enqueueNotice queues a notice for every device of the given users, inside
// the caller's transaction: it is sent only if, and once, that commits.
func enqueueNotice(ctx context.Context, tx pgx.Tx, userIDs []uuid.UUID, n domain.Notice) error {
	if len(userIDs) == 0 {
		return nil
	}
	payload, err := json.Marshal(n)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO push_outbox (device_id, payload, urgency, expires_at)
		SELECT id, $2, $3, now() + $4::interval FROM push_devices WHERE user_id = ANY($1)`,
		userIDs, payload, n.Urgency, n.TTL)
	return err
}

// enqueuePrescriptionNotice queues the athlete's notice of a new prescription.
func enqueuePrescriptionNotice(ctx context.Context, tx pgx.Tx, p domain.Prescription) error {
	var coach, variation string
	err := tx.QueryRow(ctx, `
		SELECT u.display_name, v.name FROM users u, variations v WHERE u.id = $1 AND v.slug = $2`,
		p.CoachID, p.Variation).Scan(&coach, &variation)
	if err != nil {
		return err
	}
	return enqueueNotice(ctx, tx, []uuid.UUID{p.AthleteID}, domain.PrescriptionNotice(p, coach, variation))
}

// enqueueFeedbackNotice queues the athlete's notice of a coach's feedback.
func enqueueFeedbackNotice(ctx context.Context, tx pgx.Tx, f domain.Feedback) error {
	var coach string
	var athlete uuid.UUID
	err := tx.QueryRow(ctx, `
		SELECT c.display_name, s.athlete_id FROM users c, sets s WHERE c.id = $1 AND s.id = $2`,
		f.CoachID, f.SetID).Scan(&coach, &athlete)
	if err != nil {
		return err
	}
	return enqueueNotice(ctx, tx, []uuid.UUID{athlete}, domain.FeedbackNotice(f, coach))
}

// enqueueSetStartedNotice queues a notice of a set's start for each linked
// coach that watching (nil: none is) says has no live dashboard open.
func enqueueSetStartedNotice(ctx context.Context, tx pgx.Tx, set domain.Set, watching func(coachID uuid.UUID) bool) error {
	if notice := domain.SetStartedNotice(set, "", ""); time.Since(time.Time(set.StartedAt)) > notice.TTL {
		return nil // a set logged after the fact: its start is no news
	}
	rows, err := tx.Query(ctx, `SELECT coach_id FROM coach_links WHERE athlete_id = $1`, set.AthleteID)
	if err != nil {
		return err
	}
	coaches, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return err
	}
	away := coaches[:0]
	for _, c := range coaches {
		if watching == nil || !watching(c) {
			away = append(away, c)
		}
	}
	if len(away) == 0 {
		return nil
	}
	var athlete, variation string
	err = tx.QueryRow(ctx, `
		SELECT u.display_name, v.name FROM users u, variations v WHERE u.id = $1 AND v.id = $2`,
		set.AthleteID, set.VariationID).Scan(&athlete, &variation)
	if err != nil {
		return err
	}
	return enqueueNotice(ctx, tx, away, domain.SetStartedNotice(set, athlete, variation))
}

// ProcessPushes claims up to limit due outbox rows and hands them to send,
// holding them (and their devices) locked until each outcome is recorded, all
// in one transaction. FOR UPDATE … SKIP LOCKED is what lets any number of
// workers on one database share the outbox: a row is claimed by one of them at
// a time, and once its outcome commits, it is gone or waits for its retry.
// Expired rows are removed on the way. It returns how many rows were claimed.
func (s *Store) ProcessPushes(ctx context.Context, limit int, send func(context.Context, []domain.PushMessage) []domain.PushResult) (int, error) {
	claimed := 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			DELETE FROM push_outbox WHERE id IN (
				SELECT id FROM push_outbox WHERE expires_at <= now() LIMIT 1000 FOR UPDATE SKIP LOCKED)`); err != nil {
			return err
		}
		// FOR NO KEY UPDATE of the device: two workers never hold one device at
		// once (so neither waits on the other when dropping it), while enqueuing
		// for it (a foreign-key share lock) is never blocked.
		rows, err := tx.Query(ctx, `
			SELECT d.id, d.user_id, d.kind, d.endpoint, d.p256dh, d.auth, d.created_at,
			       o.id, o.payload, o.urgency, o.attempts, o.expires_at
			FROM push_outbox o JOIN push_devices d ON d.id = o.device_id
			WHERE o.next_at <= now() AND o.expires_at > now()
			ORDER BY o.next_at, o.id
			LIMIT $1
			FOR UPDATE OF o SKIP LOCKED
			FOR NO KEY UPDATE OF d SKIP LOCKED`, limit)
		if err != nil {
			return err
		}
		msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.PushMessage, error) {
			var m domain.PushMessage
			var err error
			m.Device, err = scanDevice(row, &m.ID, &m.Payload, &m.Urgency, &m.Attempts, &m.ExpiresAt)
			return m, err
		})
		if err != nil || len(msgs) == 0 {
			return err
		}
		claimed = len(msgs)
		results := send(ctx, msgs)
		for i, m := range msgs {
			r := results[i]
			var err error
			switch r.Outcome {
			case domain.PushSent, domain.PushDropped:
				_, err = tx.Exec(ctx, `DELETE FROM push_outbox WHERE id = $1`, m.ID)
			case domain.PushGone:
				_, err = tx.Exec(ctx, `DELETE FROM push_devices WHERE id = $1`, m.Device.ID)
			case domain.PushRetry:
				_, err = tx.Exec(ctx, `
					UPDATE push_outbox SET attempts = attempts + 1, next_at = now() + $2::interval, last_error = $3
					WHERE id = $1`, m.ID, r.RetryIn, r.Error)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	return claimed, translate(err, "push")
}
