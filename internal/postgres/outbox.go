package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// OutboxMessage is a mail of the outbox being delivered.
type OutboxMessage struct {
	ID       int64
	Kind     string
	To       string
	Subject  string
	Body     string
	Attempts int // earlier attempts that failed
}

// MailOutcome is what became of one delivery attempt.
type MailOutcome struct {
	Sent      bool
	GiveUp    bool          // a permanent failure, or attempts exhausted
	RetryIn   time.Duration // when neither sent nor given up
	LastError string
}

// DeliverNextMail claims the oldest due, unexpired message of the outbox with
// FOR UPDATE SKIP LOCKED and calls deliver while it holds the row's lock, then
// records the outcome in the same transaction: another process skips the row
// meanwhile, so no two processes send one message. (A process that dies after
// the server accepted the message but before the commit sends it again: mail
// is delivered at least once.) It reports whether a message was due.
func (s *Store) DeliverNextMail(ctx context.Context, deliver func(OutboxMessage) MailOutcome) (bool, error) {
	// Reset mails get their account looked up (and their token stored) first,
	// committed before any delivery: a token works the moment its mail arrives.
	for {
		resolved, err := s.resolveNextReset(ctx)
		if err != nil {
			return false, err
		}
		if !resolved {
			break
		}
	}
	found := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var m OutboxMessage
		err := tx.QueryRow(ctx, `
			SELECT id, kind, recipient, subject, body, attempts FROM mail_outbox
			WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now() AND expires_at > now()
			  AND (reset_token_hash IS NULL OR user_id IS NOT NULL)
			ORDER BY next_attempt_at, id
			LIMIT 1
			FOR UPDATE SKIP LOCKED`).Scan(&m.ID, &m.Kind, &m.To, &m.Subject, &m.Body, &m.Attempts)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		out := deliver(m)
		switch {
		case out.Sent:
			_, err = tx.Exec(ctx, `UPDATE mail_outbox SET sent_at = now(), body = '', attempts = attempts + 1 WHERE id = $1`, m.ID)
		case out.GiveUp:
			_, err = tx.Exec(ctx, `
				UPDATE mail_outbox SET failed_at = now(), body = '', attempts = attempts + 1, last_error = $2 WHERE id = $1`,
				m.ID, out.LastError)
		default:
			_, err = tx.Exec(ctx, `
				UPDATE mail_outbox SET next_attempt_at = now() + $2::interval, attempts = attempts + 1, last_error = $3
				WHERE id = $1`, m.ID, out.RetryIn, out.LastError)
		}
		return err
	})
	return found, translate(err, "mail")
}

// resolveNextReset looks up the account of one reset mail not yet resolved:
// an enabled account with a verified address gets the mail's token stored and
// the mail becomes deliverable (user_id set); for any other address the mail
// is dropped unsent. It reports whether there was one.
func (s *Store) resolveNextReset(ctx context.Context) (bool, error) {
	found := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var id int64
		var email string
		var hash []byte
		err := tx.QueryRow(ctx, `
			SELECT id, recipient, reset_token_hash FROM mail_outbox
			WHERE reset_token_hash IS NOT NULL AND user_id IS NULL AND sent_at IS NULL AND failed_at IS NULL
			  AND expires_at > now()
			ORDER BY id LIMIT 1
			FOR UPDATE SKIP LOCKED`).Scan(&id, &email, &hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		var userID uuid.UUID
		err = tx.QueryRow(ctx, `
			INSERT INTO email_tokens (token_hash, user_id, purpose, email, expires_at)
			SELECT $2, u.id, 'reset', $1, o.expires_at
			FROM users u, mail_outbox o
			WHERE u.email = $1 AND u.disabled_at IS NULL AND u.email_verified_at IS NOT NULL AND o.id = $3
			RETURNING user_id`, email, hash, id).Scan(&userID)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, `
				UPDATE mail_outbox SET failed_at = now(), body = '', last_error = 'no account with a verified email has this address'
				WHERE id = $1`, id)
			return err
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE mail_outbox SET user_id = $2 WHERE id = $1`, id, userID)
		return err
	})
	return found, translate(err, "mail")
}

// SweepMail drops messages whose time ran out unsent (their links have
// expired; the body with the link is cleared) and deletes finished messages
// older than keep.
func (s *Store) SweepMail(ctx context.Context, keep time.Duration) error {
	if _, err := s.pool.Exec(ctx, `
		UPDATE mail_outbox SET failed_at = now(), body = '', last_error = coalesce(last_error, 'expired before it could be sent')
		WHERE sent_at IS NULL AND failed_at IS NULL AND expires_at <= now()`); err != nil {
		return translate(err, "mail")
	}
	_, err := s.pool.Exec(ctx, `
		DELETE FROM mail_outbox WHERE coalesce(sent_at, failed_at) < now() - $1::interval`, keep)
	return translate(err, "mail")
}

// PendingMail counts messages not yet sent nor given up (for metrics and tests).
func (s *Store) PendingMail(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL`).Scan(&n)
	return n, translate(err, "mail")
}

// EnqueueMail writes a message to the outbox on its own (mail that no other
// change goes with).
func (s *Store) EnqueueMail(ctx context.Context, m Mail) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO mail_outbox (kind, recipient, subject, body, expires_at)
		VALUES ($1, $2, $3, $4, now() + $5::interval)`, m.Kind, m.To, m.Subject, m.Body, m.TTL)
	return translate(err, "mail")
}
