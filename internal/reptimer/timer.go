package reptimer

import (
	"slices"
	"time"
	"unicode/utf8"

	"github.com/repcue/repcue/internal/domain"
)

// Frames each step produces, in order (the `state` frame always shows the
// state after the step):
//
//	up                       state
//	top                      state                (+ hold.done when pause_hold_ms is 0)
//	down                     state                (+ cue when it ends the hold early)
//	bottom                   state, rep.done
//	set.end                  state, set.ended
//	cue.send, mistake.flag   cue, state
//	cue.ack                  cue.ack              (nothing for a resent receipt)
//	hold deadline            hold.done, state     (Advance; or Apply, before its event's frames)
//	coach cue expiry         state                (likewise)
//
// These orders are what the hub and its clients expect (see internal/live).

// NextDeadline is when Advance next has something to do: the end of a hold
// the server's clock counts down or the expiry of the coach's cue, whichever is
// first. The zero time means nothing is pending for the clock. The hold of an
// uploaded top is never the clock's: the next event's own time ends it.
func NextDeadline(s State) time.Time {
	at, _ := s.nextDeadline(true)
	return at
}

// HoldCounting reports whether the server's clock counts a hold down now: the
// hub sends hold.tick frames while it does.
func HoldCounting(s State) bool { return s.holdRunning() && !s.holdUploaded }

// nextDeadline is the earliest pending deadline; byClock leaves out the hold of
// an uploaded top.
func (s State) nextDeadline(byClock bool) (time.Time, bool) {
	var at time.Time
	ok := false
	if s.holdRunning() && (!byClock || !s.holdUploaded) {
		at, ok = s.holdEndsAt, true
	}
	if s.coach != nil {
		if exp := s.coach.At.Add(CoachCueFor); !ok || exp.Before(at) {
			at, ok = exp, true
		}
	}
	return at, ok
}

func (s State) holdRunning() bool { return s.phase == Top && !s.holdDone }

// Advance is the server's clock reaching now: it fires every deadline of the
// clock up to and including now, each at its own time: hold.done and a state
// frame at the end of a hold, a state frame when the coach's cue has been
// shown for 5 s. Deadlines falling at the same instant share one state frame.
// The hold of an uploaded top is not the clock's (see RepPhase).
//
// Advancing to t1 and then to t2 gives the same state and frames as advancing
// to t2 at once, and advancing to a time with nothing due changes nothing: so a
// rebuild that advances to the latest clock reading before each event rebuilds
// exactly what the clock did live.
func Advance(s State, now time.Time) (State, []Frame) {
	return s.advance(now, true, nil)
}

func (s State) advance(now time.Time, byClock bool, frames []Frame) (State, []Frame) {
	for {
		at, ok := s.nextDeadline(byClock)
		if !ok || at.After(now) {
			return s, frames
		}
		at = s.clamp(at)
		s.last = at
		if s.holdRunning() && !s.holdEndsAt.After(at) {
			s.holdDone = true
			// held_ms is the target: the hold ran from top to its deadline.
			frames = s.emit(frames, FrameHoldDone, HoldDonePayload{Rep: s.rep, HeldMS: s.cfg.PauseHoldMS})
		}
		if s.coach != nil && !s.coach.At.Add(CoachCueFor).After(at) {
			s.coach = nil
		}
		frames = s.emitState(frames, at)
	}
}

// Apply applies ev at now. The event's own time first ends every deadline up
// to now (the hold of an uploaded top included: its events' times are what
// judge it), as Advance does, then the event is applied. A time earlier than
// the latest one applied counts as that one (equal and out-of-order times
// happen), so durations are never negative.
//
// A refused event changes nothing at all — not even the deadlines its time
// passed (the clock or the next event fires them), so that what is not stored
// leaves no trace a rebuild could miss. It returns the state unchanged, no
// frames and an *Error whose Code is invalid_transition (a rep phase out of
// order or repeated; anything but cue.ack after the set ended), invalid,
// not_found or conflict.
func Apply(s State, ev Event, now time.Time) (State, []Frame, error) {
	next, frames := s.advance(now, false, nil) // next is a copy: the handlers change only it
	at := next.clamp(now)
	var err error
	switch e := ev.(type) {
	case RepPhase:
		frames, err = next.repPhase(frames, e, at)
	case End:
		frames, err = next.end(frames, at)
	case CoachCue:
		frames, err = next.coachCue(frames, e, at)
	case FlagMistake:
		frames, err = next.flagMistake(frames, e, at)
	case CueAck:
		frames, err = next.cueAck(frames, e.CueSeq, at)
	default:
		err = domain.Errorf(domain.CodeInvalid, "unknown event %T", ev)
	}
	if err != nil {
		return s, nil, err
	}
	next.last = at
	return next, frames, nil
}

// clamp keeps time monotonic.
func (s State) clamp(t time.Time) time.Time {
	if t.Before(s.last) {
		return s.last
	}
	return t
}

func (s *State) emit(frames []Frame, typ string, payload any) []Frame {
	s.seq++
	return append(frames, Frame{Seq: s.seq, Type: typ, Payload: payload})
}

func (s *State) emitState(frames []Frame, at time.Time) []Frame {
	return s.emit(frames, FrameState, StatePayload{State: s.View(at)})
}

func ended() error {
	return domain.Errorf(domain.CodeInvalidTransition, "the set has ended")
}

// allowed is the transition table of DESIGN.md §4.
func allowed(from, to Phase) bool {
	switch from {
	case Idle, Bottom:
		return to == Up || to == Top
	case Up:
		return to == Top
	case Top:
		return to == Down
	case Down:
		return to == Bottom
	}
	return false
}

func (s *State) repPhase(frames []Frame, e RepPhase, at time.Time) ([]Frame, error) {
	to := e.Phase
	if s.status == StatusEnded {
		return frames, ended()
	}
	switch to {
	case Up, Top, Down, Bottom:
	default:
		return frames, domain.Invalid("phase", "phase must be up, top, down or bottom")
	}
	if !allowed(s.phase, to) {
		return frames, domain.Errorf(domain.CodeInvalidTransition, "cannot go from %s to %s", s.phase, to)
	}
	from := s.phase
	s.phase, s.phaseAt = to, at
	switch to {
	case Up:
		s.hasUp, s.upAt = true, at
		return s.emitState(frames, at), nil
	case Top:
		s.hasUp = from == Up // from idle or bottom the rep has no concentric figure
		s.rep++
		s.topAt = at
		s.holdEndsAt = at.Add(time.Duration(s.cfg.PauseHoldMS) * time.Millisecond)
		s.holdDone = s.cfg.PauseHoldMS == 0
		s.holdUploaded = e.Uploaded
		frames = s.emitState(frames, at)
		if s.holdDone { // nothing to wait for
			frames = s.emit(frames, FrameHoldDone, HoldDonePayload{Rep: s.rep, HeldMS: 0})
		}
		return frames, nil
	case Down:
		s.downAt = at
		var fix *PushedCue
		if !s.holdDone { // the hold ended short: "no pause at top"
			fix = s.noPauseAtTop(at)
		}
		s.holdDone = true
		frames = s.emitState(frames, at)
		if fix != nil {
			frames = s.pushCue(frames, *fix)
		}
		return frames, nil
	default: // Bottom
		fig := s.figures(Bottom, at)
		s.reps = append(s.reps[:len(s.reps):len(s.reps)], fig) // a new array: copies share the old one
		frames = s.emitState(frames, at)
		return s.emit(frames, FrameRepDone, RepDonePayload{Rep: fig.clone()}), nil
	}
}

// noPauseAtTop records the library's "no pause at top" mistake and returns its
// fix (pushed by the timer: no SentBy); nil when the library has no such
// mistake or it has no fix cue.
func (s *State) noPauseAtTop(at time.Time) *PushedCue {
	id := s.cfg.Library.NoPauseAtTop
	m, ok := s.cfg.Library.Mistakes[id]
	if id == "" || !ok || m.Fix.Text == "" {
		return nil
	}
	return s.recordMistake(m, "", at)
}

// recordMistake makes m's fix the mistake cue and returns it as pushed.
func (s *State) recordMistake(m Mistake, sentBy string, at time.Time) *PushedCue {
	s.mistake = &Cue{ID: m.Fix.ID, Text: m.Fix.Text, Source: SourceMistake, At: at}
	s.mistakeRep = s.repUnderWay()
	return &PushedCue{Cue: *s.mistake, SentBy: sentBy, Rep: s.mistakeRep, Mistake: &MistakeRef{ID: m.ID, Name: m.Name}}
}

// pushCue emits a cue frame and remembers its seq for the receipt.
func (s *State) pushCue(frames []Frame, c PushedCue) []Frame {
	frames = s.emit(frames, FrameCue, CuePayload{Cue: c})
	s.cuesSent++
	s.unacked = appendBounded(s.unacked, s.seq)
	return frames
}

// appendBounded is list + v in a new slice, keeping the newest maxCueSeqs.
func appendBounded(list []int64, v int64) []int64 {
	drop := max(len(list)+1-maxCueSeqs, 0)
	out := make([]int64, 0, len(list)+1-drop)
	return append(append(out, list[drop:]...), v)
}

func (s *State) end(frames []Frame, at time.Time) ([]Frame, error) {
	if s.status == StatusEnded {
		return frames, ended()
	}
	if s.phase == Top || s.phase == Down { // the rep reached top: it counts
		s.reps = append(s.reps[:len(s.reps):len(s.reps)], s.figures(s.phase, at))
	}
	s.phase, s.phaseAt, s.status = Ended, at, StatusEnded
	s.holdDone = true
	s.coach = nil // an ended set has no cue of the moment, so nothing left to expire
	frames = s.emitState(frames, at)
	return s.emit(frames, FrameSetEnded, SetEndedPayload{Summary: s.Summary()}), nil
}

func (s *State) coachCue(frames []Frame, e CoachCue, at time.Time) ([]Frame, error) {
	if s.status == StatusEnded {
		return frames, ended()
	}
	if n := utf8.RuneCountInString(e.Text); n < 1 || n > 120 {
		return frames, domain.Invalid("text", "a cue's text is 1 to 120 characters")
	}
	s.coach = &Cue{ID: e.ID, Text: e.Text, Source: SourceCoach, At: at}
	frames = s.pushCue(frames, PushedCue{Cue: *s.coach, SentBy: e.SentBy, Rep: s.repUnderWay()})
	return s.emitState(frames, at), nil
}

func (s *State) flagMistake(frames []Frame, e FlagMistake, at time.Time) ([]Frame, error) {
	id := e.MistakeID
	if s.status == StatusEnded {
		return frames, ended()
	}
	m, ok := s.cfg.Library.Mistakes[id]
	if !ok {
		return frames, domain.NotFound("mistake")
	}
	if m.Fix.Text == "" {
		return frames, domain.Errorf(domain.CodeConflict, "this mistake has no fix cue to send")
	}
	frames = s.pushCue(frames, *s.recordMistake(m, e.SentBy, at))
	return s.emitState(frames, at), nil
}

// cueAck records the receipt of a cue frame. A receipt sent again is accepted
// and produces nothing (the phone resends what was not acknowledged). Receipts
// are accepted after the set ended too: the phone may show a cue pushed just
// before set.end, and counting it keeps cues_acknowledged true (Summary
// includes it; the set.ended frame carries the summary as it was at the end).
// Only the latest maxCueSeqs cue frames can be acknowledged.
func (s *State) cueAck(frames []Frame, seq int64, at time.Time) ([]Frame, error) {
	if seq < 1 {
		return frames, domain.Invalid("cue_seq", "cue_seq must be the seq of a cue frame")
	}
	if slices.Contains(s.acked, seq) {
		return frames, nil
	}
	i := slices.Index(s.unacked, seq)
	if i < 0 {
		return frames, domain.Errorf(domain.CodeNotFound, "no cue frame with seq %d awaits a receipt", seq)
	}
	s.unacked = slices.Delete(slices.Clone(s.unacked), i, i+1)
	s.acked = appendBounded(s.acked, seq)
	s.cuesAcked++
	return s.emit(frames, FrameCueAck, CueAckPayload{CueSeq: seq, At: domain.Time(at)}), nil
}
