package reptimer

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzApply decodes random bytes into a set: the first byte picks the pause
// hold, then each pair of bytes is a step (an event, a late event or the clock
// alone) and a time step. The invariants are checked after every step.
// Seeds: testdata/fuzz/FuzzApply.
func FuzzApply(f *testing.F) {
	f.Add([]byte{2, 0, 10, 1, 70, 10, 110, 2, 20, 3, 80, 0, 50, 1, 70, 2, 30, 9, 0, 3, 90, 1, 50, 4, 30, 9, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || len(data) > 400 { // 200 steps: far longer than a set, and cheap to minimise
			return
		}
		hold := int(data[0]%4) * 500 // 0, 500, 1000 or 1500 ms
		s := New(Config{PauseHoldMS: hold, Library: lib}, t0)
		at, endings := t0, 0
		phases := []Phase{Up, Top, Down, Bottom}
		for i := 1; i+1 < len(data); i += 2 {
			op, arg := data[i]%14, data[i+1]
			at = at.Add(time.Duration(arg) * 10 * time.Millisecond)
			evAt := at
			var ev Event
			switch op {
			case 0, 1, 2, 3: // the high bit of arg: recorded offline and uploaded
				ev = RepPhase{Phase: phases[op], Uploaded: arg >= 128}
			case 4:
				ev = End{}
			case 5:
				ev = CoachCue{Text: "Chin tucked"}
			case 6:
				ev = CoachCue{ID: "c-ribs", Text: "Ribs down"}
			case 7:
				ev = FlagMistake{MistakeID: "m-arch"}
			case 8:
				ev = FlagMistake{MistakeID: []string{"nope", "m-nofix", "m-pause"}[arg%3]}
			case 9: // one of the latest frames, a cue frame or not
				ev = CueAck{CueSeq: s.LastSeq() - int64(arg%8)}
			case 10: // the clock alone
			case 11: // a late event, timed before the previous one
				ev = RepPhase{Phase: phases[arg%4]}
				evAt = at.Add(-time.Duration(arg) * 20 * time.Millisecond)
			case 12:
				ev = RepPhase{Phase: []Phase{Idle, Ended, "sideways"}[arg%3]}
			case 13: // a long pause, then the clock
				at = at.Add(time.Duration(arg) * 100 * time.Millisecond)
				evAt = at
			}

			prev, snapshot := s, clone(s)
			var frames []Frame
			var err error
			if ev == nil {
				s, frames = Advance(s, evAt)
			} else {
				s, frames, err = Apply(s, ev, evAt)
			}
			if !reflect.DeepEqual(prev, snapshot) {
				t.Fatalf("step %d changed the caller's state", i)
			}
			if err != nil {
				// A refusal changes nothing, not even the deadlines its time passed.
				if !reflect.DeepEqual(s, prev) || len(frames) != 0 {
					t.Fatalf("step %d: refused %#v (%v) but changed the state", i, ev, err)
				}
			}
			endings += checkInvariants(t, prev, s, frames, hold)
			if endings > 1 {
				t.Fatal("set.ended twice")
			}
		}
	})
}

// checkInvariants checks a step from prev to s that produced frames, and
// returns how many set.ended frames it produced.
func checkInvariants(t *testing.T, prev, s State, frames []Frame, hold int) int {
	t.Helper()
	if s.rep < prev.rep {
		t.Fatalf("rep fell from %d to %d", prev.rep, s.rep)
	}
	if s.last.Before(prev.last) {
		t.Fatalf("the clock ran back from %v to %v", prev.last, s.last)
	}
	endings := 0
	var lastState *View
	for i, f := range frames {
		if f.Seq != prev.LastSeq()+int64(i)+1 {
			t.Fatalf("frame %d has seq %d after %d", i, f.Seq, prev.LastSeq())
		}
		if prev.status == StatusEnded && f.Type != FrameCueAck {
			t.Fatalf("%s after the end", f.Type)
		}
		if _, err := json.Marshal(f.Payload); err != nil {
			t.Fatalf("%s: %v", f.Type, err)
		}
		switch p := f.Payload.(type) {
		case StatePayload:
			if f.Type != FrameState {
				t.Fatalf("%s with a state payload", f.Type)
			}
			lastState = &p.State
		case HoldDonePayload:
			if f.Type != FrameHoldDone || p.Rep != s.rep || p.HeldMS != hold {
				t.Fatalf("%s %+v at rep %d", f.Type, p, s.rep)
			}
		case RepDonePayload:
			if f.Type != FrameRepDone || p.Rep.N != s.rep {
				t.Fatalf("%s %+v at rep %d", f.Type, p, s.rep)
			}
		case CuePayload:
			if f.Type != FrameCue || p.Cue.Source == SourceAuto || p.Cue.Text == "" {
				t.Fatalf("%s %+v", f.Type, p)
			}
		case CueAckPayload:
			if f.Type != FrameCueAck || p.CueSeq < 1 || p.CueSeq > prev.LastSeq() {
				t.Fatalf("%s %+v", f.Type, p)
			}
		case SetEndedPayload:
			endings++
			if f.Type != FrameSetEnded || !reflect.DeepEqual(p.Summary, s.Summary()) {
				t.Fatalf("%s %+v, summary %+v", f.Type, p, s.Summary())
			}
		default:
			t.Fatalf("%s with a %T payload", f.Type, f.Payload)
		}
	}
	if s.LastSeq() != prev.LastSeq()+int64(len(frames)) {
		t.Fatalf("LastSeq %d after %d frames from %d", s.LastSeq(), len(frames), prev.LastSeq())
	}

	v := s.View(s.last)
	if lastState != nil && !reflect.DeepEqual(*lastState, v) {
		t.Fatalf("the last state frame %+v is not the state %+v", *lastState, v)
	}
	if v.Rep != s.rep || v.Phase != s.phase || v.Status != s.status {
		t.Fatalf("view %+v of a state in %s", v, s.phase)
	}
	if (s.phase == Ended) != (s.status == StatusEnded) {
		t.Fatalf("phase %s with status %s", s.phase, s.status)
	}
	if (v.Hold != nil) != (s.phase == Top) {
		t.Fatalf("hold %+v in phase %s", v.Hold, s.phase)
	}
	if h := v.Hold; h != nil {
		if h.EndsAt.Before(s.topAt) || !h.EndsAt.Equal(s.topAt.Add(time.Duration(hold)*time.Millisecond)) || h.TargetMS != hold {
			t.Fatalf("hold %+v from top at %v", h, s.topAt)
		}
		if h.RemainingMS < 0 || h.RemainingMS > h.TargetMS || h.Done && h.RemainingMS != 0 {
			t.Fatalf("hold %+v", h)
		}
	}
	if s.phase == Ended && v.Cue != nil {
		t.Fatalf("cue %+v after the end", v.Cue)
	}

	sum := s.Summary()
	if sum.Reps != s.rep || sum.HoldsMet > sum.Reps || sum.HoldCompliance < 0 || sum.HoldCompliance > 1 ||
		sum.TimeUnderTensionMS < 0 || sum.CuesAcknowledged > sum.CuesSent {
		t.Fatalf("summary %+v with rep count %d", sum, s.rep)
	}
	for _, avg := range []*int{sum.AvgConcentricMS, sum.AvgHoldMS, sum.AvgEccentricMS} {
		if avg != nil && *avg < 0 {
			t.Fatalf("summary %+v", sum)
		}
	}
	reps := s.Reps()
	if len(reps) > s.rep || s.status == StatusEnded && len(reps) != s.rep {
		t.Fatalf("%d reps with rep count %d in %s", len(reps), s.rep, s.phase)
	}
	for i, r := range reps {
		if r.N != i+1 || r.HoldMS == nil || r.HoldMet != (*r.HoldMS >= hold) {
			t.Fatalf("rep %d: %+v", i, r)
		}
		for _, d := range []*int{r.ConcentricMS, r.HoldMS, r.EccentricMS} {
			if d != nil && *d < 0 {
				t.Fatalf("negative duration in %+v", r)
			}
		}
	}

	if d := NextDeadline(s); !d.IsZero() && !d.After(s.last) {
		t.Fatalf("deadline %v not after the latest time %v", d, s.last)
	}
	return endings
}
