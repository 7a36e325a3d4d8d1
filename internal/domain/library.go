package domain

import (
	"encoding/json"

	"github.com/google/uuid"
)

// ExerciseSummary is an exercise in the library's list.
type ExerciseSummary struct {
	Slug    string `json:"slug"`
	Name    string `json:"name"`
	Summary string `json:"summary"`
}

// Exercise is an exercise with everything a coach and an athlete need about it.
type Exercise struct {
	ExerciseSummary
	ID          uuid.UUID    `json:"-"`
	Setup       string       `json:"setup"`
	Execution   string       `json:"execution"`
	KeyTips     []string     `json:"key_tips"`
	FocusPoints []FocusPoint `json:"focus_points"`
	Variations  []Variation  `json:"variations"`
	Cues        []Cue        `json:"cues"`
	Mistakes    []Mistake    `json:"mistakes"`
}

// FocusPoint is one point of technique to watch.
type FocusPoint struct {
	ID     uuid.UUID `json:"id"`
	Title  string    `json:"title"`
	Detail string    `json:"detail"`
}

// Variation is one rung of an exercise's progression ladder.
type Variation struct {
	ID          uuid.UUID       `json:"id"`
	Slug        string          `json:"slug"`
	Name        string          `json:"name"`
	Position    int             `json:"position"`
	Loading     string          `json:"loading"`
	AdvanceWhen json.RawMessage `json:"advance_when"`
	Description string          `json:"description"`
	LoadStepKG  *float64        `json:"load_step_kg"` // null on rungs not judged by load
	Version     int             `json:"version"`
}

// Cue is a short coaching phrase for a phase of the rep.
type Cue struct {
	ID       uuid.UUID `json:"id"`
	Text     string    `json:"text"`
	Phase    Phase     `json:"phase"`
	Priority int       `json:"priority"`
	Version  int       `json:"version"`
}

// Mistake is a common fault and its fix, with the cues that correct it (the
// first one is pushed to the athlete).
type Mistake struct {
	ID      uuid.UUID   `json:"id"`
	Name    string      `json:"name"`
	Fix     string      `json:"fix"`
	CueIDs  []uuid.UUID `json:"cue_ids"`
	Version int         `json:"version"`
}

// AuditEntry is one admin change to the library or to an account.
type AuditEntry struct {
	ID       int64           `json:"-"`
	At       Time            `json:"at"`
	ActorID  *uuid.UUID      `json:"actor_id"` // nil: the command line (repcue admin …)
	Action   string          `json:"action"`
	Entity   string          `json:"entity"`
	EntityID uuid.UUID       `json:"entity_id"`
	Before   json.RawMessage `json:"before"`
	After    json.RawMessage `json:"after"`
}

// VersionMatch is a resolved If-Match: any version ("*", or no header where one
// is optional), or one of the listed versions.
type VersionMatch struct {
	Any      bool
	Versions []int
}

// Matches reports whether the current version satisfies the precondition.
func (m VersionMatch) Matches(current int) bool {
	if m.Any {
		return true
	}
	for _, v := range m.Versions {
		if v == current {
			return true
		}
	}
	return false
}
