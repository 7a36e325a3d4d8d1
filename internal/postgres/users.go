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

// CreateUser inserts an account. The email must already be normalised.
func (s *Store) CreateUser(ctx context.Context, u domain.User, passwordHash string) (domain.User, error) {
	err := s.pool.QueryRow(ctx, `
		INSERT INTO users (email, display_name, role, password_hash)
		VALUES ($1, $2, $3, $4)
		RETURNING id`, u.Email, u.DisplayName, u.Role, passwordHash).Scan(&u.ID)
	if err != nil {
		err = translate(err, "user")
		if domain.ErrorCode(err) == domain.CodeConflict {
			return u, &domain.Error{Code: domain.CodeConflict, Field: "email", Message: "this email is already registered"}
		}
		return u, err
	}
	return u, nil
}

// FindUserForLogin returns an enabled account and its password hash.
func (s *Store) FindUserForLogin(ctx context.Context, email string) (domain.User, string, error) {
	var u domain.User
	var hash string
	err := s.pool.QueryRow(ctx, `
		SELECT id, email, display_name, role, password_hash FROM users
		WHERE email = $1 AND disabled_at IS NULL`, email).
		Scan(&u.ID, &u.Email, &u.DisplayName, &u.Role, &hash)
	return u, hash, translate(err, "user")
}

// FindUserByID returns an enabled account.
func (s *Store) FindUserByID(ctx context.Context, id uuid.UUID) (domain.User, error) {
	var u domain.User
	err := s.pool.QueryRow(ctx, `
		SELECT id, email, display_name, role FROM users
		WHERE id = $1 AND disabled_at IS NULL`, id).
		Scan(&u.ID, &u.Email, &u.DisplayName, &u.Role)
	return u, translate(err, "user")
}

// SetUserPassword replaces a user's password hash and ends every session.
func (s *Store) SetUserPassword(ctx context.Context, id uuid.UUID, passwordHash string) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, id, passwordHash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return domain.NotFound("user")
		}
		return endUserSessions(ctx, tx, id)
	}), "user")
}

// CreateSession starts a session (a refresh-token family) with its first token.
func (s *Store) CreateSession(ctx context.Context, userID, familyID uuid.UUID, tokenHash []byte, ttl time.Duration) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (id, user_id) VALUES ($1, $2)`, familyID, userID); err != nil {
			return err
		}
		return insertRefreshToken(ctx, tx, familyID, userID, tokenHash, nil, ttl)
	}), "session")
}

var errCredentialsChanged = &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid email or password"}

// StartSession is CreateSession for a sign-in: passwordHash is the hash the
// password was checked against. If the account's password, role or state
// changed since (a promotion, a reset, a disable ending every session), no
// session is started: the row is read FOR SHARE, so either the change waits for
// this session and then ends it, or this sees the change and refuses.
func (s *Store) StartSession(ctx context.Context, userID, familyID uuid.UUID, passwordHash string, tokenHash []byte, ttl time.Duration) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		var ok bool
		err := tx.QueryRow(ctx, `
			SELECT password_hash = $2 AND disabled_at IS NULL FROM users WHERE id = $1 FOR SHARE`, userID, passwordHash).Scan(&ok)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && !ok {
			return errCredentialsChanged
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (id, user_id) VALUES ($1, $2)`, familyID, userID); err != nil {
			return err
		}
		return insertRefreshToken(ctx, tx, familyID, userID, tokenHash, nil, ttl)
	}), "session")
}

func insertRefreshToken(ctx context.Context, tx pgx.Tx, family, userID uuid.UUID, tokenHash []byte, parent *uuid.UUID, ttl time.Duration) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO refresh_tokens (family_id, user_id, token_hash, parent_id, expires_at)
		VALUES ($1, $2, $3, $4, now() + $5::interval)`, family, userID, tokenHash, parent, ttl)
	return err
}

var errSessionInvalid = &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid or expired refresh token"}

// RotateRefreshToken exchanges a refresh token for its successor, newHash (the
// caller derives it from the token, so a retry names the same one). A token
// already rotated out is accepted again only within grace (a phone that
// retried), and then yields the successor it yielded the first time; after
// that its reuse revokes the whole family.
//
// The session row is locked first, as logout and every revocation do: a
// refresh racing a logout either finishes before it (and the logout revokes
// what it minted) or sees the session revoked.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash, newHash []byte, grace, ttl time.Duration) (domain.User, uuid.UUID, error) {
	var u domain.User
	var family uuid.UUID
	var refused bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT family_id FROM refresh_tokens WHERE token_hash = $1`, oldHash).Scan(&family)
		if errors.Is(err, pgx.ErrNoRows) {
			return errSessionInvalid
		}
		if err != nil {
			return err
		}
		var ended, disabled bool
		err = tx.QueryRow(ctx, `
			SELECT s.revoked_at IS NOT NULL, u.id, u.email, u.display_name, u.role, u.disabled_at IS NOT NULL
			FROM sessions s JOIN users u ON u.id = s.user_id
			WHERE s.id = $1
			FOR UPDATE OF s`, family).
			Scan(&ended, &u.ID, &u.Email, &u.DisplayName, &u.Role, &disabled)
		if errors.Is(err, pgx.ErrNoRows) {
			return errSessionInvalid
		}
		if err != nil {
			return err
		}
		// Read the token only now, under the session's lock: a statement of its
		// own sees whatever the transaction that held the lock committed.
		var id uuid.UUID
		var expired, revoked, rotated, beyondGrace bool
		err = tx.QueryRow(ctx, `
			SELECT id, expires_at <= now(), revoked_at IS NOT NULL,
			       rotated_at IS NOT NULL, coalesce(rotated_at < now() - $2::interval, false)
			FROM refresh_tokens WHERE token_hash = $1`, oldHash, grace).
			Scan(&id, &expired, &revoked, &rotated, &beyondGrace)
		if err != nil {
			return err
		}
		if ended || revoked || expired {
			return errSessionInvalid
		}
		if disabled || beyondGrace {
			refused = true
			return revokeSessions(ctx, tx, `id = $1`, family) // committed; the caller is refused below
		}
		if !rotated {
			if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1`, id); err != nil {
				return err
			}
			return insertRefreshToken(ctx, tx, family, u.ID, newHash, &id, ttl)
		}
		// A retry: the successor is the one minted the first time. (Tokens
		// rotated before successors were recorded have none yet: record it.)
		var same bool
		err = tx.QueryRow(ctx, `SELECT token_hash = $2 FROM refresh_tokens WHERE parent_id = $1`, id, newHash).Scan(&same)
		if errors.Is(err, pgx.ErrNoRows) {
			return insertRefreshToken(ctx, tx, family, u.ID, newHash, &id, ttl)
		}
		if err != nil {
			return err
		}
		if !same {
			return errSessionInvalid // derived with another key: never branch the family
		}
		return nil
	})
	if err != nil {
		return u, family, translate(err, "session")
	}
	if refused {
		return u, family, errSessionInvalid
	}
	return u, family, nil
}

// RevokeSession revokes the family of a refresh token (logout). An unknown token
// is not an error: logging out twice is fine.
func (s *Store) RevokeSession(ctx context.Context, tokenHash []byte) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		var family uuid.UUID
		err := tx.QueryRow(ctx, `SELECT family_id FROM refresh_tokens WHERE token_hash = $1`, tokenHash).Scan(&family)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		return revokeSessions(ctx, tx, `id = $1`, family)
	}), "session")
}

// endUserSessions revokes every session of a user.
func endUserSessions(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	return revokeSessions(ctx, tx, `user_id = $1`, userID)
}

// revokeSessions revokes the sessions matching where (over sessions, one
// argument) and every refresh token of theirs. The session rows are updated
// first: that waits for any refresh holding one of them, and the tokens are
// revoked by a later statement, which sees every token such a refresh minted.
func revokeSessions(ctx context.Context, tx pgx.Tx, where string, arg any) error {
	rows, err := tx.Query(ctx, `
		UPDATE sessions SET revoked_at = coalesce(revoked_at, now())
		WHERE `+where+` RETURNING id`, arg)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil || len(ids) == 0 {
		return err
	}
	_, err = tx.Exec(ctx, `
		UPDATE refresh_tokens SET revoked_at = now()
		WHERE family_id = ANY($1) AND revoked_at IS NULL`, ids)
	return err
}

// CreateAdmin makes a new admin account. An account with that email already
// existing is a conflict: promoting it is PromoteToAdmin, a separate decision.
// The operator vouches for the address: a new admin's email is verified.
func (s *Store) CreateAdmin(ctx context.Context, email, displayName, passwordHash string) (domain.User, error) {
	u := domain.User{Email: email, DisplayName: displayName, Role: domain.RoleAdmin}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO users (email, display_name, role, password_hash, email_verified_at)
		VALUES ($1, $2, $3, $4, now())
		RETURNING id`, u.Email, u.DisplayName, u.Role, passwordHash).Scan(&u.ID)
	if err != nil {
		err = translate(err, "user")
		if domain.ErrorCode(err) == domain.CodeConflict {
			return u, &domain.Error{Code: domain.CodeConflict, Field: "email", Message: "this email is already registered"}
		}
		return u, err
	}
	return u, nil
}

// accountState is a user as the audit trail records it.
type accountState struct {
	ID          uuid.UUID   `json:"id"`
	Email       string      `json:"email"`
	DisplayName string      `json:"display_name"`
	Role        domain.Role `json:"role"`
	Disabled    bool        `json:"disabled"`
	Verified    bool        `json:"email_verified"`
	Deleted     bool        `json:"-"`
}

// changeAccount locks the account with email, applies change (an UPDATE of
// users with $1 the id) and ends every session of the account, in one
// transaction, with an audit row (no actor: the command line).
func (s *Store) changeAccount(ctx context.Context, email, change string, args ...any) (domain.User, error) {
	return s.changeAccountIf(ctx, email, nil, change, args...)
}

// changeAccountIf is changeAccount when check (if not nil) accepts the account
// as it is under the lock; otherwise nothing changes and check's error is returned.
func (s *Store) changeAccountIf(ctx context.Context, email string, check func(accountState) error, change string, args ...any) (domain.User, error) {
	var before, after accountState
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// NO KEY UPDATE, like the UPDATE itself: a FOR UPDATE lock would also
		// block the key-share lock a refresh's token INSERT takes on the user
		// while holding its session, which this then waits for: a deadlock.
		read := func(st *accountState) error {
			return tx.QueryRow(ctx, `
				SELECT id, email, display_name, role, disabled_at IS NOT NULL, email_verified_at IS NOT NULL, deleted_at IS NOT NULL
				FROM users WHERE email = $1 FOR NO KEY UPDATE`, email).
				Scan(&st.ID, &st.Email, &st.DisplayName, &st.Role, &st.Disabled, &st.Verified, &st.Deleted)
		}
		if err := read(&before); err != nil {
			return err
		}
		if check != nil {
			if err := check(before); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, change, append([]any{before.ID}, args...)...); err != nil {
			return err
		}
		if err := read(&after); err != nil {
			return err
		}
		if err := endUserSessions(ctx, tx, before.ID); err != nil {
			return err
		}
		b, err := json.Marshal(before)
		if err != nil {
			return err
		}
		a, err := json.Marshal(after)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO audit_log (actor_id, action, entity, entity_id, before, after)
			VALUES (NULL, 'update', 'user', $1, $2, $3)`, before.ID, b, a)
		return err
	})
	u := domain.User{ID: after.ID, Email: after.Email, DisplayName: after.DisplayName, Role: after.Role}
	return u, translate(err, "user")
}

// PromoteToAdmin makes the existing account with email an admin with a new
// password, enabled, ends every session it has (tokens issued for its old role
// stop working) and records the change in the audit trail.
//
// An account whose email is not verified is refused (ErrUnverified): anyone
// can sign up with any address, and an admin's address must be its owner's.
// A deleted account (a tombstone) is not found.
func (s *Store) PromoteToAdmin(ctx context.Context, email, passwordHash string) (domain.User, error) {
	return s.changeAccountIf(ctx, email, func(before accountState) error {
		if before.Deleted {
			return domain.NotFound("user")
		}
		if !before.Verified {
			return ErrUnverified
		}
		return nil
	}, `UPDATE users SET role = 'admin', password_hash = $2, disabled_at = NULL WHERE id = $1`, passwordHash)
}

// ErrUnverified refuses to promote an account whose email is not verified.
var ErrUnverified = domain.Errorf(domain.CodeConflict, "the account's email is not verified: it cannot become an admin until its owner confirms it")

// DisableUser disables the account with email: it can no longer sign in, its
// sessions end (access tokens within the session re-check, live sockets with
// 4001) and the change is audited. Disabling a disabled account changes
// nothing but is audited again.
func (s *Store) DisableUser(ctx context.Context, email string) (domain.User, error) {
	return s.changeAccount(ctx, email,
		`UPDATE users SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1`)
}
