package domain

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"
)

// Role is what a user is allowed to be.
type Role string

const (
	RoleAthlete Role = "athlete"
	RoleCoach   Role = "coach"
	RoleAdmin   Role = "admin"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	return r == RoleAthlete || r == RoleCoach || r == RoleAdmin
}

// Phase is a cue's phase in the library.
type Phase string

const (
	PhaseSetup      Phase = "setup"
	PhaseConcentric Phase = "concentric"
	PhaseLockout    Phase = "lockout"
	PhaseEccentric  Phase = "eccentric"
	PhaseAny        Phase = "any"
)

// Valid reports whether p is one of the library's cue phases.
func (p Phase) Valid() bool {
	switch p {
	case PhaseSetup, PhaseConcentric, PhaseLockout, PhaseEccentric, PhaseAny:
		return true
	}
	return false
}

// Time is a timestamp that marshals as UTC RFC 3339 with milliseconds, the
// format of every timestamp in the API.
type Time time.Time

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(timeLayout)+2)
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, timeLayout)
	return append(b, '"'), nil
}

// NormalizeEmail trims and lower-cases an address so that uniqueness ignores letter case.
func NormalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(norm.NFC.String(s)))
}

// CleanText NFC-normalises s, trims surrounding space and checks its length in
// runes. Control and format characters (bidi overrides, zero-width joiners and the
// like) are refused: they never belong in a cue or a name shown on a dashboard.
func CleanText(field, s string, minRunes, maxRunes int) (string, error) {
	if !utf8.ValidString(s) {
		return "", Invalid(field, "%s must be valid UTF-8", field)
	}
	s = strings.TrimSpace(norm.NFC.String(s))
	for _, r := range s {
		if r == '\n' || r == '\t' {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "", Invalid(field, "%s contains a control or formatting character", field)
		}
	}
	n := utf8.RuneCountInString(s)
	if n < minRunes {
		if minRunes == 1 {
			return "", Invalid(field, "%s must not be empty", field)
		}
		return "", Invalid(field, "%s must be at least %d characters", field, minRunes)
	}
	if n > maxRunes {
		return "", Invalid(field, "%s must be at most %d characters", field, maxRunes)
	}
	return s, nil
}

// CueTextMax is the longest cue text, in runes.
const CueTextMax = 120

// CleanCueText is the rule for every cue text, from the library or a coach.
func CleanCueText(field, s string) (string, error) {
	return CleanText(field, s, 1, CueTextMax)
}

// User is an account.
type User struct {
	ID          uuid.UUID `json:"id"`
	Email       string    `json:"email"`
	DisplayName string    `json:"display_name"`
	Role        Role      `json:"role"`
}

// SetStatus is the lifecycle of a set.
const (
	SetLive  = "live"
	SetEnded = "ended"
)

// Set is one set an athlete performs.
type Set struct {
	ID             uuid.UUID  `json:"id"`
	AthleteID      uuid.UUID  `json:"athlete_id"`
	PrescriptionID *uuid.UUID `json:"prescription_id"`
	Variation      string     `json:"variation"`
	LoadKG         float64    `json:"load_kg"`
	TargetReps     int        `json:"target_reps"`
	PauseHoldMS    int        `json:"pause_hold_ms"`
	Status         string     `json:"status"`
	StartedAt      Time       `json:"started_at"`
	EndedAt        *Time      `json:"ended_at"`
	Side           *string    `json:"side"` // left or right on a per-side rung, else null
	VariationID    uuid.UUID  `json:"-"`
	ExerciseID     uuid.UUID  `json:"-"`
}

// Feedback is a coach's note on a set.
type Feedback struct {
	ID        uuid.UUID `json:"id"`
	SetID     uuid.UUID `json:"set_id"`
	CoachID   uuid.UUID `json:"coach_id"`
	Text      string    `json:"text"`
	CreatedAt Time      `json:"created_at"`
}
