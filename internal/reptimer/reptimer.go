// Package reptimer is the rep timer of a live set (DESIGN.md §4): the phase
// transitions, the rep count, the pause-hold countdown, the per-rep figures and
// the summary, the cue of the moment, cue receipts and the numbering of the
// set's broadcast frames.
//
// It is pure: (state, event, now) → (state, frames). It does no I/O, starts no
// goroutines, reads no clock and keeps no global state. The caller passes the
// time of every event, broadcasts and stores what it gets back, and arms one
// timer with NextDeadline to call Advance when the clock has something to do.
//
// State is a value. Apply and Advance never modify the State they are given
// (slices inside it are only ever appended to through a copy), so a caller may
// keep an old State, branch from it or compare against it.
package reptimer

import (
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/repcue/repcue/internal/domain"
)

// Phase is where the athlete is in a rep, or "ended" once the set is over.
type Phase string

const (
	Idle   Phase = "idle"   // the set started, no rep yet
	Up     Phase = "up"     // leaves the bottom
	Top    Phase = "top"    // lockout: the rep counts, the hold starts
	Down   Phase = "down"   // starts lowering: the hold ends
	Bottom Phase = "bottom" // the rep is done
	Ended  Phase = "ended"
)

// Status of the set, as in the `state` object.
const (
	StatusLive  = "live"
	StatusEnded = "ended"
)

// Sources of a cue.
const (
	SourceCoach   = "coach"
	SourceMistake = "mistake"
	SourceAuto    = "auto"
)

// Frame types this package produces. hold.tick is the hub's: it is not numbered.
const (
	FrameState    = "state"
	FrameHoldDone = "hold.done"
	FrameRepDone  = "rep.done"
	FrameCue      = "cue"
	FrameCueAck   = "cue.ack"
	FrameSetEnded = "set.ended"
)

// CoachCueFor is how long a coach's cue stays the cue of the moment.
const CoachCueFor = 5 * time.Second

// maxCueSeqs bounds the cue frames remembered for receipts (unacknowledged and,
// separately, recently acknowledged): a set pushes a few dozen cues at most, and
// a phone acknowledges within seconds.
const maxCueSeqs = 64

// Error is the error type of the whole backend: the hub and the HTTP API turn
// its Code into error frames and problem responses, so the timer's refusals
// are *Error too, with Code invalid_transition, invalid or not_found.
type Error = domain.Error

// LibCue is a cue from the exercise library.
type LibCue struct {
	ID, Text string
	Phase    string // setup, concentric, lockout, eccentric or any
	Priority int    // higher wins
}

// Mistake is a common mistake and the cue pushed when it is flagged or detected.
type Mistake struct {
	ID, Name string
	Fix      LibCue
}

// Library is the part of the exercise library a set uses.
type Library struct {
	Cues         []LibCue           // candidates for the automatic phase cue
	Mistakes     map[string]Mistake // by mistake id, for the coach's flags
	NoPauseAtTop string             // id of the "no pause at top" mistake; "" if none
}

// Config is fixed for the life of a set.
type Config struct {
	PauseHoldMS int // the hold at lockout; negative counts as 0
	Library     Library
}

// Cue is a cue shown to the athlete: the `cue` object of frames.
type Cue struct {
	ID     string // "" for a coach's free text (null in JSON)
	Text   string
	Source string // coach, mistake or auto
	At     time.Time
}

func (c Cue) MarshalJSON() ([]byte, error) {
	var id *string
	if c.ID != "" {
		id = &c.ID
	}
	return json.Marshal(struct {
		ID     *string     `json:"id"`
		Text   string      `json:"text"`
		Source string      `json:"source"`
		At     domain.Time `json:"at"`
	}{id, c.Text, c.Source, domain.Time(c.At)})
}

// PushedCue is a cue pushed to the athlete (the `cue` object of a cue frame):
// the cue and where it came from. SentBy is the coach's id, "" for the timer
// (null in JSON); Rep is the rep under way when it was pushed (see cueInput:
// the number of completed reps + 1, so a cue between reps belongs to the rep
// that follows); Mistake is the mistake behind a fix, nil for a coach's cue.
type PushedCue struct {
	Cue
	SentBy  string
	Rep     int
	Mistake *MistakeRef
}

// MistakeRef names the mistake behind a pushed fix.
type MistakeRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (c PushedCue) MarshalJSON() ([]byte, error) {
	var id, sentBy *string
	if c.ID != "" {
		id = &c.ID
	}
	if c.SentBy != "" {
		sentBy = &c.SentBy
	}
	return json.Marshal(struct {
		ID      *string     `json:"id"`
		Text    string      `json:"text"`
		Source  string      `json:"source"`
		At      domain.Time `json:"at"`
		SentBy  *string     `json:"sent_by"`
		Rep     int         `json:"rep"`
		Mistake *MistakeRef `json:"mistake"`
	}{id, c.Text, c.Source, domain.Time(c.At), sentBy, c.Rep, c.Mistake})
}

// Hold is the pause-hold countdown, shown from top until down.
type Hold struct {
	TargetMS    int
	EndsAt      time.Time
	RemainingMS int  // rounded up, so 0 only once the deadline has passed
	Done        bool // hold.done has been sent
}

func (h Hold) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		TargetMS    int         `json:"target_ms"`
		EndsAt      domain.Time `json:"ends_at"`
		RemainingMS int         `json:"remaining_ms"`
		Done        bool        `json:"done"`
	}{h.TargetMS, domain.Time(h.EndsAt), h.RemainingMS, h.Done})
}

// View is the public `state` object of state frames and snapshots.
type View struct {
	Rep    int    `json:"rep"`
	Phase  Phase  `json:"phase"`
	Hold   *Hold  `json:"hold"`
	Cue    *Cue   `json:"cue"`
	Status string `json:"status"`
}

// RepFigures are one rep's timings (DESIGN.md §3, "Per-rep figures").
type RepFigures struct {
	N            int  `json:"n"`
	ConcentricMS *int `json:"concentric_ms"`
	HoldMS       *int `json:"hold_ms"`
	EccentricMS  *int `json:"eccentric_ms"`
	HoldMet      bool `json:"hold_met"`
}

// Summary describes a set.
type Summary struct {
	Reps               int     `json:"reps"`
	HoldsMet           int     `json:"holds_met"`
	HoldCompliance     float64 `json:"hold_compliance"`
	AvgConcentricMS    *int    `json:"avg_concentric_ms"`
	AvgHoldMS          *int    `json:"avg_hold_ms"`
	AvgEccentricMS     *int    `json:"avg_eccentric_ms"`
	TimeUnderTensionMS int     `json:"time_under_tension_ms"`
	CuesSent           int     `json:"cues_sent"`
	CuesAcknowledged   int     `json:"cues_acknowledged"`
}

// Frame is a broadcast frame: its seq, its type and a payload that marshals to
// the frame's own fields (the hub adds type, set_id, seq and epoch).
type Frame struct {
	Seq     int64
	Type    string
	Payload any
}

// Payloads, one per frame type.
type (
	StatePayload struct {
		State View `json:"state"`
	}
	HoldDonePayload struct {
		Rep    int `json:"rep"`
		HeldMS int `json:"held_ms"`
	}
	RepDonePayload struct {
		Rep RepFigures `json:"rep"`
	}
	CuePayload struct {
		Cue PushedCue `json:"cue"`
	}
	// CueAckPayload: At is when the receipt was applied (the athlete's
	// receipt time, as the set's detail keeps it).
	CueAckPayload struct {
		CueSeq int64       `json:"cue_seq"`
		At     domain.Time `json:"at"`
	}
	SetEndedPayload struct {
		Summary Summary `json:"summary"`
	}
)

// Event is something that happens to a set: one of the types below.
type Event interface{ isEvent() }

// Events.
type (
	// RepPhase is a rep.phase of the owning athlete: up, top, down or bottom.
	// Uploaded marks an event recorded offline and uploaded later: a hold
	// started by an uploaded top is judged by the events' own times only, so
	// the server's clock (Advance) never ends it.
	RepPhase struct {
		Phase    Phase
		Uploaded bool
	}
	End struct{} // set.end
	// CoachCue is cue.send: a library cue (its ID and text, resolved by the
	// caller) or free text (ID ""), sent by the coach SentBy.
	CoachCue    struct{ ID, Text, SentBy string }
	FlagMistake struct{ MistakeID, SentBy string }
	CueAck      struct{ CueSeq int64 } // the phone showed the cue of the cue frame with this seq
)

func (RepPhase) isEvent()    {}
func (End) isEvent()         {}
func (CoachCue) isEvent()    {}
func (FlagMistake) isEvent() {}
func (CueAck) isEvent()      {}

// State is everything the timer knows about a set. The zero value is not
// usable: start with New.
type State struct {
	cfg     Config
	status  string
	phase   Phase
	phaseAt time.Time // when the current phase began: the `at` of the automatic cue
	last    time.Time // the latest time applied; earlier times count as this one
	seq     int64     // seq of the newest broadcast frame
	rep     int       // lockouts reached

	// The rep under way. topAt is meaningful in top and down, downAt in down.
	hasUp               bool
	upAt, topAt, downAt time.Time
	holdEndsAt          time.Time
	holdDone            bool // hold.done was sent, or the hold is over
	holdUploaded        bool // the top was uploaded: only events' own times end the hold

	// Completed reps, plus the rep cut short once the set ended. Shared
	// between copies of the State: only ever extended through a copy.
	reps []RepFigures

	coach      *Cue // the coach's latest cue until its 5 s pass; replaced, never modified
	mistake    *Cue // the fix of the latest mistake flagged or detected
	mistakeRep int  // the rep during which it was flagged (see cueInput)

	unacked   []int64 // seqs of cue frames awaiting cue.ack, oldest first; copied on change
	acked     []int64 // seqs of cue frames acknowledged lately, for resent receipts; copied on change
	cuesSent  int
	cuesAcked int
}

// New is the state of a set that has just started. The library is copied, so
// the caller may reuse its own. Events may be timed before startedAt (a set
// recorded offline is created afterwards): startedAt is only the `at` of the
// first automatic cue.
func New(cfg Config, startedAt time.Time) State {
	cfg.PauseHoldMS = max(cfg.PauseHoldMS, 0)
	cfg.Library.Cues = slices.Clone(cfg.Library.Cues)
	cfg.Library.Mistakes = maps.Clone(cfg.Library.Mistakes)
	return State{cfg: cfg, status: StatusLive, phase: Idle, phaseAt: startedAt}
}

// LastSeq is the seq of the newest broadcast frame (0 before the first).
func (s State) LastSeq() int64 { return s.seq }

// Reps are the figures of the completed reps, in order; once the set has
// ended, also of a rep that reached top but not bottom. They are the caller's:
// a deep copy, never nil (it marshals as []).
func (s State) Reps() []RepFigures {
	out := make([]RepFigures, len(s.reps))
	for i, r := range s.reps {
		out[i] = r.clone()
	}
	return out
}

// clone copies the figures behind the pointers too, so that what a caller
// gets (Reps, a rep.done payload) never aliases the state.
func (r RepFigures) clone() RepFigures {
	r.ConcentricMS, r.HoldMS, r.EccentricMS = cloneInt(r.ConcentricMS), cloneInt(r.HoldMS), cloneInt(r.EccentricMS)
	return r
}

func cloneInt(p *int) *int {
	if p == nil {
		return nil
	}
	return intPtr(*p)
}

// View is the public state at now: remaining_ms is counted from now.
func (s State) View(now time.Time) View {
	v := View{Rep: s.rep, Phase: s.phase, Status: s.status, Cue: chooseCue(s.cueInput(now))}
	if s.phase == Top {
		h := Hold{TargetMS: s.cfg.PauseHoldMS, EndsAt: s.holdEndsAt, Done: s.holdDone}
		if !h.Done {
			h.RemainingMS = min(ceilMS(s.holdEndsAt.Sub(now)), h.TargetMS)
		}
		v.Hold = &h
	}
	return v
}

// ceilMS is d in whole milliseconds, rounded up, never negative.
func ceilMS(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// floorMS is d in whole milliseconds, never negative.
func floorMS(d time.Duration) int {
	return max(int(d.Milliseconds()), 0)
}
