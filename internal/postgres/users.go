package postgres

import (
	"context"
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
		_, err = tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, id)
		return err
	}), "user")
}

// CreateSession stores the first refresh token of a new token family.
func (s *Store) CreateSession(ctx context.Context, userID, familyID uuid.UUID, tokenHash []byte, ttl time.Duration) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO refresh_tokens (family_id, user_id, token_hash, expires_at)
		VALUES ($1, $2, $3, now() + $4::interval)`, familyID, userID, tokenHash, ttl)
	return translate(err, "session")
}

var errSessionInvalid = &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid or expired refresh token"}

// RotateRefreshToken exchanges a refresh token for a new one in the same family.
// A token already rotated out is accepted again only within grace (a phone that
// retried); after that its reuse revokes the whole family.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash, newHash []byte, grace, ttl time.Duration) (domain.User, uuid.UUID, error) {
	var u domain.User
	var family uuid.UUID
	var refused bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var id uuid.UUID
		var expired, revoked, disabled, rotated, beyondGrace bool
		err := tx.QueryRow(ctx, `
			SELECT t.id, t.family_id, u.id, u.email, u.display_name, u.role,
			       t.expires_at <= now(), t.revoked_at IS NOT NULL, u.disabled_at IS NOT NULL,
			       t.rotated_at IS NOT NULL, coalesce(t.rotated_at < now() - $2::interval, false)
			FROM refresh_tokens t JOIN users u ON u.id = t.user_id
			WHERE t.token_hash = $1
			FOR UPDATE OF t`, oldHash, grace).
			Scan(&id, &family, &u.ID, &u.Email, &u.DisplayName, &u.Role, &expired, &revoked, &disabled, &rotated, &beyondGrace)
		if errors.Is(err, pgx.ErrNoRows) {
			return errSessionInvalid
		}
		if err != nil {
			return err
		}
		if revoked || expired {
			return errSessionInvalid
		}
		if disabled || beyondGrace {
			refused = true
			_, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL`, family)
			return err // commit the revocation; the caller is refused below
		}
		if !rotated {
			if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1`, id); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO refresh_tokens (family_id, user_id, token_hash, expires_at)
			VALUES ($1, $2, $3, now() + $4::interval)`, family, u.ID, newHash, ttl)
		return err
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
	_, err := s.pool.Exec(ctx, `
		UPDATE refresh_tokens SET revoked_at = now()
		WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)
		  AND revoked_at IS NULL`, tokenHash)
	return translate(err, "session")
}
