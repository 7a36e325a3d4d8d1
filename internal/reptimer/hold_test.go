package reptimer

import (
	"testing"
	"time"
)

func TestTopStartsTheHoldAndCountsTheRep(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	m.script(Up, ms(100))
	if v := m.view(); v.Rep != 0 || v.Hold != nil {
		t.Fatalf("before top: %+v", v)
	}
	frames := m.do(Top)
	v := frames[0].Payload.(StatePayload).State
	want := Hold{TargetMS: 1000, EndsAt: t0.Add(ms(1100)), RemainingMS: 1000}
	if v.Rep != 1 || v.Phase != Top || v.Hold == nil || *v.Hold != want {
		t.Fatalf("state at top: %+v hold %+v", v, v.Hold)
	}
	if d := NextDeadline(m.s); !d.Equal(t0.Add(ms(1100))) {
		t.Fatalf("deadline %v", d)
	}
	// remaining_ms is counted from the time asked, rounded up.
	for _, c := range []struct {
		at   time.Duration
		want int
	}{{ms(100), 1000}, {ms(350), 750}, {ms(1099) + time.Microsecond, 1}, {ms(1100), 0}, {ms(5000), 0}} {
		if got := m.s.View(t0.Add(c.at)).Hold.RemainingMS; got != c.want {
			t.Errorf("remaining at +%v: %d, want %d", c.at, got, c.want)
		}
	}
}

func TestHoldDoneAtTheDeadline(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	m.script(Top) // the deadline is t0+1000ms
	if frames := m.wait(ms(999)); len(frames) != 0 {
		t.Fatalf("fired early: %v", types(frames))
	}
	frames := m.wait(ms(1))
	mustEqual(t, "frames at the deadline", types(frames), []string{"hold.done", "state"})
	mustEqual(t, "hold.done", frames[0].Payload, HoldDonePayload{Rep: 1, HeldMS: 1000})
	if h := frames[1].Payload.(StatePayload).State.Hold; h == nil || !h.Done || h.RemainingMS != 0 {
		t.Fatalf("hold after the deadline %+v", h)
	}
	if !NextDeadline(m.s).IsZero() {
		t.Fatal("a deadline remains after the hold")
	}
	if frames := m.wait(ms(5000)); len(frames) != 0 {
		t.Fatalf("fired twice: %v", types(frames))
	}
}

func TestAdvanceLateFiresAtTheDeadlineItself(t *testing.T) {
	t.Parallel()
	s, _, _ := Apply(newState(), RepPhase{Phase: Top}, t0)
	s, frames := Advance(s, t0.Add(ms(3000))) // the timer fired late
	mustEqual(t, "frames", types(frames), []string{"hold.done", "state"})
	// held_ms is the target, however late the timer.
	mustEqual(t, "held_ms", frames[0].Payload.(HoldDonePayload).HeldMS, 1000)
	if !NextDeadline(s).IsZero() || s.last != t0.Add(ms(1000)) {
		t.Fatalf("deadline %v, clock %v", NextDeadline(s), s.last)
	}
	// The rep's hold_ms is the time actually held.
	s, _, _ = Apply(s, RepPhase{Phase: Down}, t0.Add(ms(3000)))
	_, frames, _ = Apply(s, RepPhase{Phase: Bottom}, t0.Add(ms(3500)))
	rd := frames[len(frames)-1].Payload.(RepDonePayload).Rep
	if !rd.HoldMet || deref(rd.HoldMS) != 3000 || deref(rd.EccentricMS) != 500 {
		t.Fatalf("rep %+v", rd)
	}
}

// down exactly at the deadline: Apply fires the deadline first, so the hold is met.
func TestDownExactlyAtTheDeadline(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	m.script(Up, ms(200), Top)
	m.at = m.at.Add(ms(1000)) // no Advance: Apply must fire the deadline itself
	frames := m.do(Down)
	mustEqual(t, "frames", types(frames), []string{"hold.done", "state", "state"})
	m.script(ms(400), Bottom)
	rd := m.frames[len(m.frames)-1].Payload.(RepDonePayload).Rep
	if !rd.HoldMet || deref(rd.HoldMS) != 1000 {
		t.Fatalf("rep %+v", rd)
	}
	if m.s.cuesSent != 0 {
		t.Fatal("a cue was pushed for a held rep")
	}
}

func TestDownOneNanosecondEarly(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	m.script(Up, ms(200), Top)
	m.at = m.at.Add(ms(1000) - 1)
	frames := m.do(Down)
	mustEqual(t, "frames", types(frames), []string{"state", "cue"})
	m.script(ms(400), Bottom)
	rd := m.frames[len(m.frames)-1].Payload.(RepDonePayload).Rep
	if rd.HoldMet || deref(rd.HoldMS) != 999 {
		t.Fatalf("rep %+v", rd)
	}
}

func TestEarlyDown(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	m.script(Up, ms(300), Top, ms(400))
	frames := m.do(Down)
	mustEqual(t, "frames at an early down", types(frames), []string{"state", "cue"})
	wantCue := Cue{ID: "c-squeeze", Text: "Pause and squeeze", Source: SourceMistake, At: t0.Add(ms(700))}
	mustEqual(t, "pushed cue", frames[1].Payload, CuePayload{Cue: PushedCue{Cue: wantCue, Rep: 1, // sent by the timer
		Mistake: &MistakeRef{ID: m.s.cfg.Library.NoPauseAtTop, Name: m.s.cfg.Library.Mistakes[m.s.cfg.Library.NoPauseAtTop].Name}}})
	v := frames[0].Payload.(StatePayload).State
	if v.Hold != nil || v.Cue == nil || *v.Cue != wantCue {
		t.Fatalf("state at down: hold %+v cue %+v", v.Hold, v.Cue)
	}
	if !NextDeadline(m.s).IsZero() {
		t.Fatal("the hold's deadline outlived the hold")
	}
	if frames := m.wait(ms(2000)); len(frames) != 0 {
		t.Fatalf("hold.done after the hold ended: %v", types(frames))
	}
	m.do(Bottom)
	rd := m.frames[len(m.frames)-1].Payload.(RepDonePayload).Rep
	mustEqual(t, "figures", []any{rd.N, deref(rd.ConcentricMS), deref(rd.HoldMS), deref(rd.EccentricMS), rd.HoldMet}, []any{1, 300, 400, 2000, false})
}

// The fix stays the cue of the moment until the next rep's bottom.
func TestNoPauseFixLastsUntilTheNextRepsBottom(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	m.script(Up, ms(300), Top, ms(400), Down) // rep 1 cut short
	steps := []struct {
		step any
		want string // the cue of the moment after the step
	}{
		{ms(500), "Pause and squeeze"},
		{Bottom, "Pause and squeeze"}, // rep 1's bottom: not this one
		{ms(500), "Pause and squeeze"},
		{Up, "Pause and squeeze"},
		{Top, "Pause and squeeze"},
		{ms(1000), "Pause and squeeze"},
		{Down, "Pause and squeeze"},
		{Bottom, "Tuck, then thrust"}, // rep 2's bottom: gone
		{Up, "Drive through heels"},
	}
	for _, st := range steps {
		m.script(st.step)
		if c := m.view().Cue; c == nil || c.Text != st.want {
			t.Fatalf("after %v in %s: cue %+v, want %q", st.step, m.s.phase, c, st.want)
		}
	}
}

func TestZeroHoldIsDoneAtTop(t *testing.T) {
	t.Parallel()
	m := newSim(t, New(Config{PauseHoldMS: 0, Library: lib}, t0))
	m.script(Up, ms(500))
	frames := m.do(Top)
	mustEqual(t, "frames at top", types(frames), []string{"state", "hold.done"})
	mustEqual(t, "hold.done", frames[1].Payload, HoldDonePayload{Rep: 1, HeldMS: 0})
	mustEqual(t, "hold", *frames[0].Payload.(StatePayload).State.Hold, Hold{TargetMS: 0, EndsAt: t0.Add(ms(500)), Done: true})
	if !NextDeadline(m.s).IsZero() {
		t.Fatal("a deadline with nothing to wait for")
	}
	frames = m.do(Down) // at once: still met
	mustEqual(t, "frames at down", types(frames), []string{"state"})
	m.script(ms(300), Bottom)
	if rd := m.frames[len(m.frames)-1].Payload.(RepDonePayload).Rep; !rd.HoldMet || deref(rd.HoldMS) != 0 {
		t.Fatalf("rep %+v", rd)
	}
}

func TestNegativeHoldCountsAsZero(t *testing.T) {
	t.Parallel()
	s, frames, err := Apply(New(Config{PauseHoldMS: -5}, t0), RepPhase{Phase: Top}, t0)
	if err != nil || len(frames) != 2 || frames[1].Type != FrameHoldDone || s.View(t0).Hold.TargetMS != 0 {
		t.Fatalf("%v %v %+v", err, types(frames), s.View(t0).Hold)
	}
}

// Without a "no pause at top" mistake in the library an early down is still
// not a met hold, but there is nothing to push.
func TestEarlyDownWithoutTheMistakeInTheLibrary(t *testing.T) {
	t.Parallel()
	for name, l := range map[string]Library{
		"no such mistake":       {Cues: lib.Cues, Mistakes: lib.Mistakes},
		"id not in the map":     {Cues: lib.Cues, NoPauseAtTop: "gone"},
		"mistake without a fix": {Cues: lib.Cues, Mistakes: lib.Mistakes, NoPauseAtTop: "m-nofix"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := newSim(t, New(Config{PauseHoldMS: 1000, Library: l}, t0))
			m.script(Up, ms(100), Top, ms(100))
			mustEqual(t, "frames", types(m.do(Down)), []string{"state"})
			if c := m.view().Cue; c == nil || c.Source != SourceAuto || c.Text != "Ribs down" {
				t.Fatalf("cue %+v", c)
			}
			m.script(ms(100), Bottom)
			if rd := m.frames[len(m.frames)-1].Payload.(RepDonePayload).Rep; rd.HoldMet {
				t.Fatalf("rep %+v", rd)
			}
		})
	}
}
