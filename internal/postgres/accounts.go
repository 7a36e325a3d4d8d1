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

// Mail is a message to write to the outbox in the transaction that makes it
// necessary; internal/mail sends it after commit. TTL bounds how long it may
// wait to be sent (its link expires): past it, it is dropped.
type Mail struct {
	Kind    string // what it is, for logs and metrics: verify, change_email, reset
	To      string
	Subject string
	Body    string
	TTL     time.Duration
}

// EmailToken is a single-use token to store (its SHA-256 only) with the mail
// that carries it.
type EmailToken struct {
	Hash    []byte
	Purpose domain.EmailPurpose
	Email   string // the address the mail goes to
	TTL     time.Duration
	Mail    Mail
}

func enqueueMail(ctx context.Context, tx pgx.Tx, userID uuid.UUID, m Mail) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO mail_outbox (user_id, kind, recipient, subject, body, expires_at)
		VALUES ($1, $2, $3, $4, $5, now() + $6::interval)`, userID, m.Kind, m.To, m.Subject, m.Body, m.TTL)
	return err
}

func insertEmailToken(ctx context.Context, tx pgx.Tx, userID uuid.UUID, t EmailToken) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO email_tokens (token_hash, user_id, purpose, email, expires_at)
		VALUES ($1, $2, $3, $4, now() + $5::interval)`, t.Hash, userID, t.Purpose, t.Email, t.TTL); err != nil {
		return err
	}
	return enqueueMail(ctx, tx, userID, t.Mail)
}

// RegisterUser creates an account and, in the same transaction, its email
// verification token and mail: either all of it is stored or none.
func (s *Store) RegisterUser(ctx context.Context, u domain.User, passwordHash string, verify EmailToken) (domain.User, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO users (email, display_name, role, password_hash)
			VALUES ($1, $2, $3, $4)
			RETURNING id`, u.Email, u.DisplayName, u.Role, passwordHash).Scan(&u.ID)
		if err != nil {
			if domain.ErrorCode(translate(err, "user")) == domain.CodeConflict {
				return &domain.Error{Code: domain.CodeConflict, Field: "email", Message: "this email is already registered"}
			}
			return err
		}
		return insertEmailToken(ctx, tx, u.ID, verify)
	})
	return u, translate(err, "user")
}

// FindAccount returns an enabled account as GET /v1/me shows it.
func (s *Store) FindAccount(ctx context.Context, id uuid.UUID) (domain.Account, error) {
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM users WHERE id = $1 AND disabled_at IS NULL`, id))
	return a, translate(err, "user")
}

const accountColumns = `id, email, display_name, role, email_verified_at IS NOT NULL, units, created_at`

func scanAccount(row pgx.Row) (domain.Account, error) {
	var a domain.Account
	var created time.Time
	err := row.Scan(&a.ID, &a.Email, &a.DisplayName, &a.Role, &a.EmailVerified, &a.Units, &created)
	a.CreatedAt = domain.Time(created)
	return a, err
}

// FindUserPassword returns an enabled account and its password hash.
func (s *Store) FindUserPassword(ctx context.Context, id uuid.UUID) (domain.User, string, error) {
	var u domain.User
	var hash string
	err := s.pool.QueryRow(ctx, `
		SELECT id, email, display_name, role, password_hash FROM users
		WHERE id = $1 AND disabled_at IS NULL`, id).
		Scan(&u.ID, &u.Email, &u.DisplayName, &u.Role, &hash)
	return u, hash, translate(err, "user")
}

// errPasswordChanged: the password changed between its check and the change
// that relied on it (two changes at once).
var errPasswordChanged = domain.Errorf(domain.CodeConflict, "the password was changed meanwhile: try again")

// lockUser locks an enabled account against other changes of it. NO KEY
// UPDATE, like the account changes of the command line (see changeAccount):
// a FOR UPDATE lock would deadlock with a refresh holding a session.
func lockUser(ctx context.Context, tx pgx.Tx, id uuid.UUID) (email, passwordHash string, verified bool, err error) {
	err = tx.QueryRow(ctx, `
		SELECT email, password_hash, email_verified_at IS NOT NULL FROM users
		WHERE id = $1 AND disabled_at IS NULL FOR NO KEY UPDATE`, id).Scan(&email, &passwordHash, &verified)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, domain.Errorf(domain.CodeUnauthorized, "the account no longer exists or is disabled")
	}
	return email, passwordHash, verified, err
}

// ChangePassword replaces the password of an account whose current hash is
// still oldHash (the one the caller's password was checked against) and ends
// every session of the account but keep (the caller's own).
func (s *Store) ChangePassword(ctx context.Context, userID, keep uuid.UUID, oldHash, newHash string) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		_, current, _, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if current != oldHash {
			return errPasswordChanged
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, userID, newHash); err != nil {
			return err
		}
		return revokeSessions(ctx, tx, `user_id = ($1::uuid[])[1] AND id <> ($1::uuid[])[2]`, []uuid.UUID{userID, keep})
	}), "user")
}

// RequestEmailChange stores a token for moving the account to a new address
// and the mail that carries it there. The address must be free now (conflict
// otherwise); it is checked again when the change is confirmed.
func (s *Store) RequestEmailChange(ctx context.Context, userID uuid.UUID, oldHash string, t EmailToken) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		email, current, _, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if current != oldHash {
			return errPasswordChanged
		}
		if email == t.Email {
			return domain.Invalid("new_email", "new_email is the account's address already")
		}
		var taken bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)`, t.Email).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return &domain.Error{Code: domain.CodeConflict, Field: "new_email", Message: "this email is already registered"}
		}
		return insertEmailToken(ctx, tx, userID, t)
	}), "user")
}

// ResendVerification stores a new verification token and its mail for an
// account whose address is not verified yet (conflict when it is).
func (s *Store) ResendVerification(ctx context.Context, userID uuid.UUID, t func(email string) EmailToken) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		email, _, verified, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if verified {
			return domain.Errorf(domain.CodeConflict, "the email is verified already")
		}
		return insertEmailToken(ctx, tx, userID, t(email))
	}), "user")
}

var errBadEmailToken = domain.Invalid("token", "the token is unknown, used or expired")

// useToken claims an unused, unexpired token of one of purposes, locking it.
func useToken(ctx context.Context, tx pgx.Tx, hash []byte, purposes ...domain.EmailPurpose) (userID uuid.UUID, purpose domain.EmailPurpose, email string, err error) {
	err = tx.QueryRow(ctx, `
		UPDATE email_tokens t SET used_at = now()
		FROM users u
		WHERE t.token_hash = $1 AND t.purpose = ANY($2) AND t.used_at IS NULL AND t.expires_at > now()
		  AND u.id = t.user_id AND u.disabled_at IS NULL
		RETURNING t.user_id, t.purpose, t.email`, hash, purposes).Scan(&userID, &purpose, &email)
	if errors.Is(err, pgx.ErrNoRows) {
		err = errBadEmailToken
	}
	return userID, purpose, email, err
}

// ConfirmEmail uses a verification or email-change token: the sign-up address
// becomes verified, or the account moves to the new address (verified by this
// very link; conflict if another account took it meanwhile).
func (s *Store) ConfirmEmail(ctx context.Context, tokenHash []byte) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		userID, purpose, email, err := useToken(ctx, tx, tokenHash, domain.EmailVerify, domain.EmailChange)
		if err != nil {
			return err
		}
		current, _, _, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if purpose == domain.EmailVerify {
			if current != email {
				return errBadEmailToken // the address changed since the mail was sent
			}
			_, err = tx.Exec(ctx, `UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1`, userID)
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE users SET email = $2, email_verified_at = now() WHERE id = $1`, userID, email)
		if domain.ErrorCode(translate(err, "user")) == domain.CodeConflict {
			return &domain.Error{Code: domain.CodeConflict, Field: "token", Message: "another account has taken this email meanwhile"}
		}
		if err != nil {
			return err
		}
		// Every token sent to an address the account no longer has is void.
		_, err = tx.Exec(ctx, `
			UPDATE email_tokens SET used_at = now()
			WHERE user_id = $1 AND used_at IS NULL AND purpose IN ('verify', 'change_email')`, userID)
		return err
	}), "user")
}

// RequestPasswordReset writes a reset mail for email to the outbox, whether
// or not an account has that address: one INSERT either way, so the answer
// does the same work and takes the same time. The dispatcher looks the
// account up when it delivers (DeliverNextMail): an enabled account with a
// verified address gets the token stored and the mail; for any other address
// the mail is dropped unsent. The token hash and the mail come from the caller.
func (s *Store) RequestPasswordReset(ctx context.Context, email string, t EmailToken) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO mail_outbox (kind, recipient, subject, body, expires_at, reset_token_hash)
		VALUES ($1, $2, $3, $4, now() + $5::interval, $6)`,
		t.Mail.Kind, email, t.Mail.Subject, t.Mail.Body, t.TTL, t.Hash)
	return translate(err, "mail")
}

// PeekResetToken reports whether a reset token can be used now (so that a
// bogus token costs no password hash).
func (s *Store) PeekResetToken(ctx context.Context, tokenHash []byte) error {
	var ok bool
	err := s.pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM email_tokens t JOIN users u ON u.id = t.user_id
		               WHERE t.token_hash = $1 AND t.purpose = 'reset' AND t.used_at IS NULL
		                 AND t.expires_at > now() AND u.disabled_at IS NULL)`, tokenHash).Scan(&ok)
	if err == nil && !ok {
		return errBadEmailToken
	}
	return translate(err, "token")
}

// ResetPassword uses a reset token: the account gets the new password, every
// reset token of it is used up and every session of it ends.
func (s *Store) ResetPassword(ctx context.Context, tokenHash []byte, newHash string) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		userID, _, _, err := useToken(ctx, tx, tokenHash, domain.EmailReset)
		if err != nil {
			return err
		}
		if _, _, _, err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, userID, newHash); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE email_tokens SET used_at = now() WHERE user_id = $1 AND purpose = 'reset' AND used_at IS NULL`, userID); err != nil {
			return err
		}
		return endUserSessions(ctx, tx, userID)
	}), "user")
}

// MarkEmailVerified records that the operator vouches for an account's address
// (`repcue admin create` makes admins verified).
func (s *Store) MarkEmailVerified(ctx context.Context, id uuid.UUID) error {
	_, err := s.pool.Exec(ctx, `UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1`, id)
	return translate(err, "user")
}

// SessionStartedAt is when a session (a sign-in) started; not_found for a
// session that ended.
func (s *Store) SessionStartedAt(ctx context.Context, sessionID uuid.UUID) (time.Time, error) {
	var at time.Time
	err := s.pool.QueryRow(ctx, `SELECT created_at FROM sessions WHERE id = $1 AND revoked_at IS NULL`, sessionID).Scan(&at)
	return at, translate(err, "session")
}

// LiveSetOf returns the athlete's live set, if any.
func (s *Store) LiveSetOf(ctx context.Context, athleteID uuid.UUID) (*uuid.UUID, error) {
	var id uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT id FROM sets WHERE athlete_id = $1 AND status = 'live'`, athleteID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err, "set")
	}
	return &id, nil
}

// DeletedAccount is what deleting an account ended: the links it had, whose
// live watching the caller stops.
type DeletedAccount struct {
	Role  domain.Role
	Links []CoachLink
}

// CoachLink is one coach–athlete link.
type CoachLink struct{ CoachID, AthleteID uuid.UUID }

// deletedDisplayName is what a deleted account is shown as where others keep
// a record naming it (a coach's feedback, a prescription's author).
const deletedDisplayName = "Deleted user"

// DeleteAccount deletes an account, if its password hash is still
// passwordHash (empty: not checked, the caller signed in moments ago).
//
// What the person owns is removed: as an athlete its sets (with their events
// and the feedback on them), its prescriptions and its links; as a coach its
// invites and links; in any role its sessions, tickets, email tokens, pending
// mail and throttle entries keyed by its address. A set cannot be live (the
// caller ends it first; conflict otherwise). What others keep that names the
// account — a coach's prescriptions and feedback for athletes who stay, cues a
// coach sent during athletes' sets, audit rows — stays, naming a tombstone:
// the users row, emptied of personal data (no email, "Deleted user", no
// password, disabled). Audit rows about the account lose their email and
// display name. One audit row records the deletion, without personal data.
func (s *Store) DeleteAccount(ctx context.Context, userID uuid.UUID, passwordHash string) (DeletedAccount, error) {
	var out DeletedAccount
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		email, current, _, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if passwordHash != "" && current != passwordHash {
			return errPasswordChanged
		}
		if err := tx.QueryRow(ctx, `SELECT role FROM users WHERE id = $1`, userID).Scan(&out.Role); err != nil {
			return err
		}
		var live bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sets WHERE athlete_id = $1 AND status = 'live')`, userID).Scan(&live); err != nil {
			return err
		}
		if live {
			return domain.Errorf(domain.CodeConflict, "a set is live: end it, then delete the account")
		}
		rows, err := tx.Query(ctx, `
			DELETE FROM coach_links WHERE coach_id = $1 OR athlete_id = $1 RETURNING coach_id, athlete_id`, userID)
		if err != nil {
			return err
		}
		out.Links, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (CoachLink, error) {
			var l CoachLink
			err := r.Scan(&l.CoachID, &l.AthleteID)
			return l, err
		})
		if err != nil {
			return err
		}
		if err := endUserSessions(ctx, tx, userID); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM set_feedback WHERE set_id IN (SELECT id FROM sets WHERE athlete_id = $1)`,
			`DELETE FROM set_events WHERE set_id IN (SELECT id FROM sets WHERE athlete_id = $1)`,
			`DELETE FROM ended_set_cues WHERE athlete_id = $1`,
			`DELETE FROM ended_set_reps WHERE set_id IN (SELECT id FROM sets WHERE athlete_id = $1)`,
			`DELETE FROM ended_sets WHERE athlete_id = $1`,
			`DELETE FROM sets WHERE athlete_id = $1`,
			`DELETE FROM prescriptions WHERE athlete_id = $1`,
			`DELETE FROM coach_invites WHERE coach_id = $1`,
			`UPDATE coach_invites SET used_by = NULL WHERE used_by = $1`,
			`DELETE FROM live_tickets WHERE user_id = $1`,
			`DELETE FROM email_tokens WHERE user_id = $1`,
			`DELETE FROM mail_outbox WHERE user_id = $1`,
			`DELETE FROM push_devices WHERE user_id = $1`, // and their queued pushes (cascade)
			`DELETE FROM refresh_tokens WHERE user_id = $1`,
			`DELETE FROM sessions WHERE user_id = $1`,
			`UPDATE audit_log SET before = before - 'email' - 'display_name', after = after - 'email' - 'display_name'
			 WHERE entity = 'user' AND entity_id = $1`,
			`UPDATE users SET email = 'deleted:' || id, display_name = '` + deletedDisplayName + `', password_hash = '!',
			        email_verified_at = NULL, disabled_at = coalesce(disabled_at, now()), deleted_at = now()
			 WHERE id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, userID); err != nil {
				return err
			}
		}
		// Throttle entries are keyed by the address (sign-in, reset requests),
		// and reset mails are written before their account is looked up.
		if _, err := tx.Exec(ctx, `DELETE FROM auth_throttle WHERE key = 'account:' || $1 OR key = 'email:' || $1`, email); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM mail_outbox WHERE recipient = $1`, email); err != nil {
			return err
		}
		after, err := json.Marshal(map[string]any{"deleted": true, "role": out.Role})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO audit_log (actor_id, action, entity, entity_id, before, after)
			VALUES ($1, 'delete', 'user', $1, NULL, $2)`, userID, after)
		return err
	})
	return out, translate(err, "user")
}

// ListLinkedCoaches returns up to limit coaches linked to an athlete, ordered by
// display name then id, starting after the given position (nil: from the start).
func (s *Store) ListLinkedCoaches(ctx context.Context, athleteID uuid.UUID, after *Keyset[string], limit int) ([]domain.LinkedCoach, error) {
	var afterName *string
	var afterID *uuid.UUID
	if after != nil {
		afterName, afterID = &after.Key, &after.ID
	}
	rows, err := s.pool.Query(ctx, `
		SELECT u.id, u.display_name, l.created_at
		FROM coach_links l JOIN users u ON u.id = l.coach_id
		WHERE l.athlete_id = $1
		  AND ($2::text IS NULL OR (u.display_name, u.id) > ($2::text, $3::uuid))
		ORDER BY u.display_name, u.id
		LIMIT $4`, athleteID, afterName, afterID, limit)
	if err != nil {
		return nil, translate(err, "coach")
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.LinkedCoach, error) {
		var c domain.LinkedCoach
		var at time.Time
		err := row.Scan(&c.ID, &c.DisplayName, &at)
		c.LinkedAt = domain.Time(at)
		return c, err
	})
	return list, translate(err, "coach")
}

// ListOutstandingInvites returns a coach's unused, unexpired invites, newest
// first (at most maxOutstandingInvites exist).
func (s *Store) ListOutstandingInvites(ctx context.Context, coachID uuid.UUID) ([]domain.OutstandingInvite, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT code, created_at, expires_at FROM coach_invites
		WHERE coach_id = $1 AND used_at IS NULL AND expires_at > now()
		ORDER BY created_at DESC, code`, coachID)
	if err != nil {
		return nil, translate(err, "invite")
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.OutstandingInvite, error) {
		var inv domain.OutstandingInvite
		var created, expires time.Time
		err := row.Scan(&inv.Code, &created, &expires)
		inv.CreatedAt, inv.ExpiresAt = domain.Time(created), domain.Time(expires)
		return inv, err
	})
	return list, translate(err, "invite")
}

// RevokeInvite deletes a coach's unused, unexpired invite; not_found for any
// other code (used, expired, another coach's or unknown alike).
func (s *Store) RevokeInvite(ctx context.Context, coachID uuid.UUID, code string) error {
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM coach_invites WHERE code = $1 AND coach_id = $2 AND used_at IS NULL AND expires_at > now()`, code, coachID)
	if err != nil {
		return translate(err, "invite")
	}
	if tag.RowsAffected() == 0 {
		return domain.NotFound("invite")
	}
	return nil
}

// PrescriptionPatch holds the fields of a prescription to change; nil leaves
// a field as it is.
type PrescriptionPatch struct {
	Variation   *string
	Sets        *int
	Reps        *int
	LoadKg      *float64
	PauseHoldMs *int
	ScheduledOn *domain.Date
	Notes       *string
}

// lockPrescription locks a prescription its author may change: written by
// coachID, for an athlete still linked to it (else not_found), with no set
// started from it (else conflict), at a version match accepts (else
// precondition_failed). The lock conflicts with the key-share lock a set
// started from it takes, so a set and an edit never interleave.
func lockPrescription(ctx context.Context, tx pgx.Tx, coachID, id uuid.UUID, match domain.VersionMatch) error {
	var version int
	err := tx.QueryRow(ctx, `
		SELECT p.version FROM prescriptions p
		WHERE p.id = $1 AND p.coach_id = $2
		  AND EXISTS (SELECT 1 FROM coach_links l WHERE l.coach_id = $2 AND l.athlete_id = p.athlete_id)
		FOR UPDATE OF p`, id, coachID).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.NotFound("prescription")
	}
	if err != nil {
		return err
	}
	var used bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sets WHERE prescription_id = $1)`, id).Scan(&used); err != nil {
		return err
	}
	if used {
		return domain.Errorf(domain.CodeConflict, "a set was started from this prescription: it can no longer change")
	}
	if !match.Matches(version) {
		current, err := prescriptionIn(ctx, tx, id)
		if err != nil {
			return err
		}
		return staleVersion("prescription", current, version)
	}
	return nil
}

// prescriptionIn reads a prescription inside tx.
func prescriptionIn(ctx context.Context, tx pgx.Tx, id uuid.UUID) (domain.Prescription, error) {
	return scanPrescription(tx.QueryRow(ctx, `
		SELECT `+prescriptionColumns+` FROM prescriptions p JOIN variations v ON v.id = p.variation_id WHERE p.id = $1`, id))
}

// UpdatePrescription changes a prescription (see lockPrescription for who may
// and when) and raises its version.
func (s *Store) UpdatePrescription(ctx context.Context, coachID, id uuid.UUID, match domain.VersionMatch, p PrescriptionPatch) (domain.Prescription, error) {
	var out domain.Prescription
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockPrescription(ctx, tx, coachID, id, match); err != nil {
			return err
		}
		var variationID *uuid.UUID
		if p.Variation != nil {
			var v uuid.UUID
			err := tx.QueryRow(ctx, `SELECT id FROM variations WHERE slug = $1`, *p.Variation).Scan(&v)
			if errors.Is(err, pgx.ErrNoRows) {
				return domain.Invalid("variation", "variation is not a known variation slug")
			}
			if err != nil {
				return err
			}
			variationID = &v
		}
		if _, err := tx.Exec(ctx, `
			UPDATE prescriptions SET variation_id = coalesce($2, variation_id), sets = coalesce($3, sets),
			       reps = coalesce($4, reps), load_kg = coalesce($5, load_kg), pause_hold_ms = coalesce($6, pause_hold_ms),
			       scheduled_on = coalesce($7, scheduled_on), notes = coalesce($8, notes), version = version + 1
			WHERE id = $1`, id, variationID, p.Sets, p.Reps, p.LoadKg, p.PauseHoldMs, dateArg(p.ScheduledOn), p.Notes); err != nil {
			return err
		}
		var err error
		out, err = prescriptionIn(ctx, tx, id)
		return err
	})
	return out, translate(err, "prescription")
}

// DeletePrescription deletes a prescription (see lockPrescription).
func (s *Store) DeletePrescription(ctx context.Context, coachID, id uuid.UUID, match domain.VersionMatch) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockPrescription(ctx, tx, coachID, id, match); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM prescriptions WHERE id = $1`, id)
		return err
	}), "prescription")
}
