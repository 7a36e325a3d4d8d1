package reptimer

import (
	"testing"
	"time"
)

// FuzzApply feeds random event sequences (each byte pair: an event and a time
// step) and checks the invariants after every step.
func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 10, 1, 100, 2, 50, 3, 50})
	f.Add([]byte{1, 0, 2, 255, 3, 1, 0, 5, 1, 5, 4, 0})
	f.Add([]byte{5, 1, 6, 0, 7, 9, 1, 200, 8, 0, 2, 3, 3, 3, 4, 1})
	f.Add([]byte{9, 255, 9, 255, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 400 {
			return
		}
		s := New(Config{PauseHoldMS: 700, Library: lib}, t0)
		at := t0
		var lastSeq int64
		for i := 0; i+1 < len(data); i += 2 {
			at = at.Add(time.Duration(data[i+1]) * 10 * time.Millisecond)
			prev := s
			var frames []Frame
			var err error
			switch data[i] % 10 {
			case 0:
				s, frames, err = Apply(s, RepPhase{Phase: Up}, at)
			case 1:
				s, frames, err = Apply(s, RepPhase{Phase: Top}, at)
			case 2:
				s, frames, err = Apply(s, RepPhase{Phase: Down}, at)
			case 3:
				s, frames, err = Apply(s, RepPhase{Phase: Bottom}, at)
			case 4:
				s, frames, err = Apply(s, End{}, at)
			case 5:
				s, frames, err = Apply(s, CoachCue{Text: "Ribs down"}, at)
			case 6:
				s, frames, err = Apply(s, FlagMistake{MistakeID: "m-arch"}, at)
			case 7:
				s, frames, err = Apply(s, CueAck{CueSeq: lastSeq - int64(data[i+1]%4)}, at)
			case 8:
				s, frames = Advance(s, at)
			case 9:
				// time passes, nothing happens (a late event)
				s, frames, err = Apply(s, RepPhase{Phase: Top}, at.Add(-time.Second))
			}
			_ = err
			for _, fr := range frames {
				if fr.Seq != lastSeq+1 {
					t.Fatalf("seq %d after %d", fr.Seq, lastSeq)
				}
				lastSeq = fr.Seq
			}
			if s.LastSeq() != lastSeq {
				t.Fatalf("LastSeq %d, frames reached %d", s.LastSeq(), lastSeq)
			}
			if s.rep < prev.rep {
				t.Fatalf("rep fell from %d to %d", prev.rep, s.rep)
			}
			v := s.View(at)
			if (v.Hold != nil) != (s.phase == Top) {
				t.Fatalf("hold %v in phase %s", v.Hold, s.phase)
			}
			if v.Hold != nil && (v.Hold.RemainingMS < 0 || v.Hold.EndsAt.Before(s.topAt)) {
				t.Fatalf("hold ends before it starts: %+v", v.Hold)
			}
			if (s.phase == Ended) != (s.status == StatusEnded) {
				t.Fatalf("phase %s with status %s", s.phase, s.status)
			}
			sum := s.Summary()
			if sum.HoldsMet > sum.Reps || sum.Reps > s.rep || sum.TimeUnderTensionMS < 0 || sum.CuesAcknowledged > sum.CuesSent {
				t.Fatalf("summary %+v with %d lockouts", sum, s.rep)
			}
			for _, r := range s.reps {
				for _, d := range []*int{r.ConcentricMS, r.HoldMS, r.EccentricMS} {
					if d != nil && *d < 0 {
						t.Fatalf("negative duration in %+v", r)
					}
				}
			}
			if d := NextDeadline(s); !d.IsZero() && d.Before(s.topAt) {
				t.Fatalf("deadline %v before the hold began", d)
			}
		}
	})
}
