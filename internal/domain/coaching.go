package domain

import (
	"crypto/rand"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Date is a calendar day without a time of day or a zone, "YYYY-MM-DD" in JSON.
// It can only be built by parsing or from a time, so it always holds midnight UTC.
type Date struct{ t time.Time }

// DateOf is the calendar day of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

// ParseDate reads a real "YYYY-MM-DD" date (2026-02-30 is refused).
func ParseDate(field, s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, Invalid(field, "%s must be a date YYYY-MM-DD", field)
	}
	return Date{t}, nil
}

// Time is the day as midnight UTC, for storage.
func (d Date) Time() time.Time { return d.t }

// AddDate moves the day by whole years, months and days.
func (d Date) AddDate(years, months, days int) Date { return Date{d.t.AddDate(years, months, days)} }

// Before and After compare two days.
func (d Date) Before(o Date) bool { return d.t.Before(o.t) }
func (d Date) After(o Date) bool  { return d.t.After(o.t) }

// String is the day as "YYYY-MM-DD".
func (d Date) String() string { return d.t.Format(time.DateOnly) }

func (d Date) MarshalJSON() ([]byte, error) {
	return []byte(`"` + d.String() + `"`), nil
}

// InviteCodeLength is the length of a coach's invite code.
const InviteCodeLength = 8

// inviteAlphabet leaves out the characters people confuse when reading a code off
// a screen (0 and O, 1 and I). Its 32 symbols divide 256, so a random byte picks
// one without bias.
const inviteAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// NewInviteCode returns a random invite code (40 bits from crypto/rand).
func NewInviteCode() string {
	b := make([]byte, InviteCodeLength)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program rather than return an error
	for i := range b {
		b[i] = inviteAlphabet[int(b[i])%len(inviteAlphabet)]
	}
	return string(b)
}

// NormalizeInviteCode accepts a code as a person typed it (any letter case,
// surrounding space) and reports whether it could be one this server issued.
func NormalizeInviteCode(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) != InviteCodeLength {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(inviteAlphabet, s[i]) < 0 {
			return "", false
		}
	}
	return s, true
}

// Invite is a single-use code an athlete enters to link to a coach.
type Invite struct {
	Code      string `json:"code"`
	ExpiresAt Time   `json:"expires_at"`
}

// CoachRef is how an athlete sees the coach it linked to.
type CoachRef struct {
	ID          uuid.UUID `json:"id"`
	DisplayName string    `json:"display_name"`
}

// LinkedAthlete is an athlete as its coach sees it. LiveSetID is the athlete's
// live set, if one is under way.
type LinkedAthlete struct {
	ID          uuid.UUID  `json:"id"`
	DisplayName string     `json:"display_name"`
	Email       string     `json:"email"`
	LiveSetID   *uuid.UUID `json:"live_set_id"`
}

// Prescription is the work a coach assigns an athlete for one day.
type Prescription struct {
	ID          uuid.UUID `json:"id"`
	CoachID     uuid.UUID `json:"coach_id"`
	AthleteID   uuid.UUID `json:"athlete_id"`
	Variation   string    `json:"variation"` // the variation's slug
	Sets        int       `json:"sets"`
	Reps        int       `json:"reps"`
	LoadKg      float64   `json:"load_kg"`
	PauseHoldMs int       `json:"pause_hold_ms"`
	ScheduledOn Date      `json:"scheduled_on"`
	Notes       string    `json:"notes"`
	CreatedAt   Time      `json:"created_at"`
	// Version rises with every edit; it is the prescription's ETag.
	Version int `json:"version"`
}
