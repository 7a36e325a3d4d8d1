package domain

import "github.com/google/uuid"

// Account is the signed-in user as GET /v1/me shows it.
type Account struct {
	User
	EmailVerified bool   `json:"email_verified"`
	Units         string `json:"units"` // kg or lb: how loads are shown to this user
	CreatedAt     Time   `json:"created_at"`
}

// LinkedCoach is a coach as a linked athlete sees it.
type LinkedCoach struct {
	ID          uuid.UUID `json:"id"`
	DisplayName string    `json:"display_name"`
	LinkedAt    Time      `json:"linked_at"`
}

// OutstandingInvite is an invite code not yet used and not expired.
type OutstandingInvite struct {
	Code      string `json:"code"`
	CreatedAt Time   `json:"created_at"`
	ExpiresAt Time   `json:"expires_at"`
}

// EmailPurpose is what an email token proves or allows.
type EmailPurpose string

const (
	EmailVerify EmailPurpose = "verify"       // the address given at sign-up
	EmailChange EmailPurpose = "change_email" // a new address, applied on confirmation
	EmailReset  EmailPurpose = "reset"        // a password reset
)
