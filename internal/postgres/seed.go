package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/repcue/repcue/internal/domain"
)

// DemoAccount is an account `repcue seed` makes for trying the server out.
type DemoAccount struct {
	Email, Password, DisplayName string
	Role                         domain.Role
}

// DemoAccounts are one admin, one coach and one athlete linked to that coach.
var DemoAccounts = []DemoAccount{
	{Email: "admin@demo.repcue.dev", Password: "demo-admin-password", DisplayName: "Demo Admin", Role: domain.RoleAdmin},
	{Email: "coach@demo.repcue.dev", Password: "demo-coach-password", DisplayName: "Demo Coach", Role: domain.RoleCoach},
	{Email: "athlete@demo.repcue.dev", Password: "demo-athlete-password", DisplayName: "Demo Athlete", Role: domain.RoleAthlete},
}

// SeedDemo creates the demo accounts (hashing each password with hash) and links
// the demo athlete to the demo coach. Running it again changes nothing.
func (s *Store) SeedDemo(ctx context.Context, hash func(string) (string, error)) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		for _, a := range DemoAccounts {
			h, err := hash(a.Password)
			if err != nil {
				return err
			}
			// The operator vouches for the demo addresses: verified.
			if _, err := tx.Exec(ctx, `
				INSERT INTO users (email, display_name, role, password_hash, email_verified_at) VALUES ($1, $2, $3, $4, now())
				ON CONFLICT (email) DO UPDATE SET email_verified_at = coalesce(users.email_verified_at, now())`,
				a.Email, a.DisplayName, a.Role, h); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO coach_links (coach_id, athlete_id)
			SELECT c.id, a.id FROM users c, users a WHERE c.email = $1 AND a.email = $2
			ON CONFLICT DO NOTHING`, DemoAccounts[1].Email, DemoAccounts[2].Email)
		return err
	}), "demo account")
}
