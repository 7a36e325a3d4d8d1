// Package reptimer is the rep timer of a live set: a pure state machine,
// (state, event, now) → (state, frames). It owns the rules of DESIGN.md §4: the
// phase transitions, the rep count, the pause-hold countdown, the per-rep
// figures, the cue of the moment and the numbering of broadcast frames. It does
// no I/O, starts no goroutines and reads no clock: the caller passes the time,
// persists what it is told and arms one timer with NextDeadline.
//
// State is a value. Apply and Advance never modify the State they are given, so
// a caller may keep an old State and compare.
package reptimer

import (
	"encoding/json"
	"time"

	"github.com/repcue/repcue/internal/domain"
)

// Phase is where the athlete is in a rep.
type Phase string

const (
	Idle   Phase = "idle"
	Up     Phase = "up"     // leaves the bottom
	Top    Phase = "top"    // lockout: the rep counts, the hold starts
	Down   Phase = "down"   // starts lowering: the hold ends
	Bottom Phase = "bottom" // the rep is done
	Ended  Phase = "ended"
)

// Status of the set.
const (
	StatusLive  = "live"
	StatusEnded = "ended"
)

// CoachCueFor is how long a coach's cue stays the cue of the moment.
const CoachCueFor = 5 * time.Second

// LibCue is a cue from the exercise library.
type LibCue struct {
	ID, Text string
	Phase    string // setup, concentric, lockout, eccentric or any
	Priority int
}

// Mistake is a common mistake and the cue pushed when it is flagged or detected.
type Mistake struct {
	ID, Name string
	Fix      LibCue
}

// Library is the part of the exercise library a set uses. It is read, never changed.
type Library struct {
	Cues         []LibCue
	Mistakes     map[string]Mistake
	NoPauseAtTop string // id of the "no pause at top" mistake, "" if none
}

// Config is fixed for the life of a set.
type Config struct {
	PauseHoldMS int
	Library     Library
}

// Cue is a cue shown to the athlete.
type Cue struct {
	ID     string // "" for a coach's free text
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

// Hold is the pause-hold countdown, present from top until down.
type Hold struct {
	TargetMS    int
	EndsAt      time.Time
	RemainingMS int
	Done        bool
}

func (h Hold) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		TargetMS    int         `json:"target_ms"`
		EndsAt      domain.Time `json:"ends_at"`
		RemainingMS int         `json:"remaining_ms"`
		Done        bool        `json:"done"`
	}{h.TargetMS, domain.Time(h.EndsAt), h.RemainingMS, h.Done})
}

// View is the public state object of `state` frames and snapshots.
type View struct {
	Rep    int    `json:"rep"`
	Phase  Phase  `json:"phase"`
	Hold   *Hold  `json:"hold"`
	Cue    *Cue   `json:"cue"`
	Status string `json:"status"`
}

// RepFigures are one rep's timings.
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
// the frame's own fields.
type Frame struct {
	Seq     int64
	Type    string
	Payload any
}

// Payloads of the frames.
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
		Cue Cue `json:"cue"`
	}
	CueAckPayload struct {
		CueSeq int64 `json:"cue_seq"`
	}
	SetEndedPayload struct {
		Summary Summary `json:"summary"`
	}
)

// Events.
type (
	Event       interface{ isEvent() }
	RepPhase    struct{ Phase Phase }     // from the owning athlete: up, top, down or bottom
	End         struct{}                  // set.end
	CoachCue    struct{ ID, Text string } // a library cue (ID and its text) or free text (ID "")
	FlagMistake struct{ MistakeID string }
	CueAck      struct{ CueSeq int64 } // the phone showed the cue of that cue frame
)

func (RepPhase) isEvent()    {}
func (End) isEvent()         {}
func (CoachCue) isEvent()    {}
func (FlagMistake) isEvent() {}
func (CueAck) isEvent()      {}

// maxPendingCues bounds the cue frames remembered for receipts.
const maxPendingCues = 64

// State is everything the timer knows about a set.
type State struct {
	cfg    Config
	phase  Phase
	status string
	rep    int       // lockouts reached
	last   time.Time // latest time applied: time never runs backwards
	seq    int64

	phaseAt, upAt, topAt, downAt time.Time // the current rep's moments (zero: absent)
	holdEnds                     time.Time
	holdDone                     bool

	reps []RepFigures // completed reps (and a partial one at the end)

	coach        *Cue // the coach's latest cue
	coachExpired bool // its 5 s have passed (the state frame was sent)
	mistake      *Cue // fix of the latest flagged or detected mistake
	mistakeRep   int  // the rep (1-based, in progress) during which it was flagged

	cueSeqs   []int64 // cue frames awaiting a receipt (oldest first)
	ackedSeqs []int64 // cue frames receipted (for idempotent resends)
	cuesSent  int
	cuesAcked int
}

// New is the state of a set that has just started. Events may be timed before
// startedAt (a set recorded offline is created afterwards), so the clock starts
// with the first event, not with startedAt.
func New(cfg Config, startedAt time.Time) State {
	return State{cfg: cfg, phase: Idle, status: StatusLive, phaseAt: startedAt}
}

// LastSeq is the seq of the newest broadcast frame.
func (s State) LastSeq() int64 { return s.seq }

// Reps returns the figures of every rep so far.
func (s State) Reps() []RepFigures { return append([]RepFigures{}, s.reps...) }

func (s *State) emit(frames []Frame, typ string, payload any) []Frame {
	s.seq++
	return append(frames, Frame{Seq: s.seq, Type: typ, Payload: payload})
}

func (s *State) emitState(frames []Frame, now time.Time) []Frame {
	return s.emit(frames, "state", StatePayload{State: s.View(now)})
}

// clamp keeps time monotonic: an event timed before the last one counts as simultaneous.
func (s *State) clamp(now time.Time) time.Time {
	if now.Before(s.last) {
		return s.last
	}
	s.last = now
	return now
}

type deadline int

const (
	noDeadline deadline = iota
	holdDeadline
	coachDeadline
)

func (s State) nextDeadline() (time.Time, deadline) {
	var at time.Time
	kind := noDeadline
	if s.phase == Top && !s.holdDone {
		at, kind = s.holdEnds, holdDeadline
	}
	if s.coach != nil && !s.coachExpired {
		if exp := s.coach.At.Add(CoachCueFor); kind == noDeadline || exp.Before(at) {
			at, kind = exp, coachDeadline
		}
	}
	return at, kind
}

// NextDeadline is when Advance next has something to do; zero when nothing is pending.
func NextDeadline(s State) time.Time {
	at, _ := s.nextDeadline()
	return at
}

// Advance fires every deadline up to now: hold.done at the end of the hold, and
// a state frame when a coach's cue expires.
func Advance(s State, now time.Time) (State, []Frame) {
	var frames []Frame
	for {
		at, kind := s.nextDeadline()
		if kind == noDeadline || at.After(now) {
			return s, frames
		}
		at = s.clamp(at)
		switch kind {
		case holdDeadline:
			s.holdDone = true
			frames = s.emit(frames, "hold.done", HoldDonePayload{Rep: s.rep, HeldMS: s.cfg.PauseHoldMS})
		case coachDeadline:
			s.coachExpired = true
		}
		frames = s.emitState(frames, at)
	}
}

func invalidTransition(from, to Phase) error {
	return domain.Errorf(domain.CodeInvalidTransition, "cannot go from %s to %s", from, to)
}

var transitions = map[Phase][]Phase{
	Idle:   {Up, Top},
	Up:     {Top},
	Top:    {Down},
	Down:   {Bottom},
	Bottom: {Up, Top},
}

func allowed(from, to Phase) bool {
	for _, p := range transitions[from] {
		if p == to {
			return true
		}
	}
	return false
}

// Apply fires the deadlines up to now, then applies ev. When ev is refused the
// returned state and frames are those of the deadlines alone, with the error.
func Apply(s State, ev Event, now time.Time) (State, []Frame, error) {
	s, frames := Advance(s, now)
	before, beforeFrames := s, frames
	var err error
	switch e := ev.(type) {
	case RepPhase:
		frames, err = s.repPhase(frames, e.Phase, now)
	case End:
		frames, err = s.end(frames, now)
	case CoachCue:
		frames, err = s.coachCue(frames, e, now)
	case FlagMistake:
		frames, err = s.flagMistake(frames, e.MistakeID, now)
	case CueAck:
		frames, err = s.cueAck(frames, e.CueSeq)
	default:
		err = domain.Errorf(domain.CodeInvalid, "unknown event")
	}
	if err != nil {
		return before, beforeFrames, err
	}
	return s, frames, nil
}

func (s *State) repPhase(frames []Frame, to Phase, now time.Time) ([]Frame, error) {
	if s.status == StatusEnded {
		return frames, invalidTransition(Ended, to)
	}
	if !allowed(s.phase, to) {
		return frames, invalidTransition(s.phase, to)
	}
	now = s.clamp(now)
	s.phase, s.phaseAt = to, now
	switch to {
	case Up:
		s.upAt, s.topAt, s.downAt = now, time.Time{}, time.Time{}
	case Top:
		// From idle or bottom upAt is zero: such a rep has no concentric figure.
		s.rep++
		s.topAt, s.downAt = now, time.Time{}
		s.holdEnds = now.Add(time.Duration(s.cfg.PauseHoldMS) * time.Millisecond)
		s.holdDone = s.cfg.PauseHoldMS == 0
		frames = s.emitState(frames, now)
		if s.holdDone {
			frames = s.emit(frames, "hold.done", HoldDonePayload{Rep: s.rep, HeldMS: 0})
		}
		return frames, nil
	case Down:
		s.downAt = now
		early := !s.holdDone
		s.holdDone = true
		frames = s.emitState(frames, now)
		if early {
			frames = s.detectMistake(frames, now)
		}
		return frames, nil
	case Bottom:
		fig := s.figures(now, true)
		s.reps = append(s.reps[:len(s.reps):len(s.reps)], fig)
		s.upAt, s.topAt, s.downAt = time.Time{}, time.Time{}, time.Time{}
		frames = s.emitState(frames, now)
		return s.emit(frames, "rep.done", RepDonePayload{Rep: fig}), nil
	}
	return s.emitState(frames, now), nil
}

// repInProgress is the 1-based number of the rep under way (or about to start).
func (s *State) repInProgress() int { return len(s.reps) + 1 }

// detectMistake records "no pause at top" and pushes its fix.
func (s *State) detectMistake(frames []Frame, now time.Time) []Frame {
	m, ok := s.cfg.Library.Mistakes[s.cfg.Library.NoPauseAtTop]
	if !ok || s.cfg.Library.NoPauseAtTop == "" || m.Fix.Text == "" {
		return frames
	}
	return s.pushMistake(frames, m, now)
}

func (s *State) pushMistake(frames []Frame, m Mistake, now time.Time) []Frame {
	s.mistake = &Cue{ID: m.Fix.ID, Text: m.Fix.Text, Source: "mistake", At: now}
	s.mistakeRep = s.repInProgress()
	return s.pushCue(frames, *s.mistake)
}

func (s *State) pushCue(frames []Frame, c Cue) []Frame {
	frames = s.emit(frames, "cue", CuePayload{Cue: c})
	s.cuesSent++
	seqs := append(s.cueSeqs[:len(s.cueSeqs):len(s.cueSeqs)], s.seq)
	if len(seqs) > maxPendingCues {
		seqs = seqs[len(seqs)-maxPendingCues:]
	}
	s.cueSeqs = seqs
	return frames
}

// figures of the current rep; complete is false for a rep cut short by set.end.
func (s *State) figures(now time.Time, complete bool) RepFigures {
	ms := func(from, to time.Time) *int {
		v := int(to.Sub(from).Milliseconds())
		return &v
	}
	f := RepFigures{N: s.rep}
	if !s.upAt.IsZero() {
		f.ConcentricMS = ms(s.upAt, s.topAt)
	}
	end := s.downAt
	if end.IsZero() {
		end = now // ended during the hold: held until the end
	}
	f.HoldMS = ms(s.topAt, end)
	if complete {
		f.EccentricMS = ms(s.downAt, now)
	}
	f.HoldMet = *f.HoldMS >= s.cfg.PauseHoldMS
	return f
}

func (s *State) end(frames []Frame, now time.Time) ([]Frame, error) {
	if s.status == StatusEnded {
		return frames, invalidTransition(Ended, Ended)
	}
	now = s.clamp(now)
	if s.phase == Top || s.phase == Down { // the rep reached top: it counts
		s.reps = append(s.reps[:len(s.reps):len(s.reps)], s.figures(now, false))
	}
	s.phase, s.phaseAt, s.status = Ended, now, StatusEnded
	s.holdDone = true
	frames = s.emitState(frames, now)
	return s.emit(frames, "set.ended", SetEndedPayload{Summary: s.Summary()}), nil
}

func (s *State) coachCue(frames []Frame, e CoachCue, now time.Time) ([]Frame, error) {
	if s.status == StatusEnded {
		return frames, domain.Errorf(domain.CodeInvalidTransition, "the set has ended")
	}
	if e.Text == "" {
		return frames, domain.Invalid("text", "a cue needs a text")
	}
	now = s.clamp(now)
	s.coach = &Cue{ID: e.ID, Text: e.Text, Source: "coach", At: now}
	s.coachExpired = false
	frames = s.pushCue(frames, *s.coach)
	return s.emitState(frames, now), nil
}

func (s *State) flagMistake(frames []Frame, id string, now time.Time) ([]Frame, error) {
	if s.status == StatusEnded {
		return frames, domain.Errorf(domain.CodeInvalidTransition, "the set has ended")
	}
	m, ok := s.cfg.Library.Mistakes[id]
	if !ok {
		return frames, domain.NotFound("mistake")
	}
	if m.Fix.Text == "" {
		return frames, domain.Errorf(domain.CodeConflict, "this mistake has no fix cue in the library")
	}
	now = s.clamp(now)
	frames = s.pushMistake(frames, m, now)
	return s.emitState(frames, now), nil
}

// cueAck records the receipt of a cue frame. A receipt sent again is accepted
// and changes nothing (the phone may resend); receipts are accepted after the
// set ended too, since the phone may show the last cue as the set ends.
func (s *State) cueAck(frames []Frame, seq int64) ([]Frame, error) {
	for _, a := range s.ackedSeqs {
		if a == seq {
			return frames, nil
		}
	}
	i := -1
	for j, c := range s.cueSeqs {
		if c == seq {
			i = j
		}
	}
	if i < 0 {
		return frames, domain.Errorf(domain.CodeNotFound, "no cue frame with seq %d awaits a receipt", seq)
	}
	pending := make([]int64, 0, len(s.cueSeqs)-1)
	pending = append(append(pending, s.cueSeqs[:i]...), s.cueSeqs[i+1:]...)
	s.cueSeqs = pending
	acked := append(s.ackedSeqs[:len(s.ackedSeqs):len(s.ackedSeqs)], seq)
	if len(acked) > maxPendingCues {
		acked = acked[len(acked)-maxPendingCues:]
	}
	s.ackedSeqs = acked
	s.cuesAcked++
	return s.emit(frames, "cue.ack", CueAckPayload{CueSeq: seq}), nil
}

// View is the state as clients see it at now.
func (s State) View(now time.Time) View {
	v := View{Rep: s.rep, Phase: s.phase, Status: s.status, Cue: s.CueOfTheMoment(now)}
	if s.phase == Top {
		h := Hold{TargetMS: s.cfg.PauseHoldMS, EndsAt: s.holdEnds, Done: s.holdDone}
		if !h.Done {
			h.RemainingMS = max(int(s.holdEnds.Sub(now).Milliseconds()), 0)
		}
		v.Hold = &h
	}
	return v
}

// libraryPhase maps a rep phase to the library's cue phase.
func libraryPhase(p Phase) string {
	switch p {
	case Idle, Bottom:
		return "setup"
	case Up:
		return "concentric"
	case Top:
		return "lockout"
	case Down:
		return "eccentric"
	}
	return ""
}

// CueOfTheMoment is the coach's latest cue for 5 s after it was sent; else the
// fix of a mistake flagged (or detected) during this rep or the previous one —
// that is, until the bottom of the rep after the one it was flagged in; else
// the library's highest-priority cue for the phase (ties: the smaller id).
func (s State) CueOfTheMoment(now time.Time) *Cue {
	if s.status == StatusEnded {
		return nil
	}
	if s.coach != nil && !s.coachExpired && now.Sub(s.coach.At) < CoachCueFor {
		c := *s.coach
		return &c
	}
	if s.mistake != nil && s.repInProgress() <= s.mistakeRep+1 {
		c := *s.mistake
		return &c
	}
	want := libraryPhase(s.phase)
	var best *LibCue
	for i, c := range s.cfg.Library.Cues {
		if c.Phase != want && c.Phase != "any" {
			continue
		}
		if best == nil || c.Priority > best.Priority || c.Priority == best.Priority && c.ID < best.ID {
			best = &s.cfg.Library.Cues[i]
		}
	}
	if best == nil {
		return nil
	}
	return &Cue{ID: best.ID, Text: best.Text, Source: "auto", At: s.phaseAt}
}

// Summary of the set so far.
func (s State) Summary() Summary {
	sum := Summary{Reps: len(s.reps), CuesSent: s.cuesSent, CuesAcknowledged: s.cuesAcked}
	var conc, hold, ecc []int
	for _, r := range s.reps {
		if r.HoldMet {
			sum.HoldsMet++
		}
		for _, p := range []struct {
			v   *int
			dst *[]int
		}{{r.ConcentricMS, &conc}, {r.HoldMS, &hold}, {r.EccentricMS, &ecc}} {
			if p.v != nil {
				*p.dst = append(*p.dst, *p.v)
				sum.TimeUnderTensionMS += *p.v
			}
		}
	}
	if sum.Reps > 0 {
		sum.HoldCompliance = float64(sum.HoldsMet) / float64(sum.Reps)
	}
	sum.AvgConcentricMS, sum.AvgHoldMS, sum.AvgEccentricMS = average(conc), average(hold), average(ecc)
	return sum
}

func average(v []int) *int {
	if len(v) == 0 {
		return nil
	}
	total := 0
	for _, x := range v {
		total += x
	}
	avg := (total + len(v)/2) / len(v)
	return &avg
}
