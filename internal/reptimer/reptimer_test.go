package reptimer

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/repcue/repcue/internal/domain"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

var lib = Library{
	Cues: []LibCue{
		{ID: "c-tuck", Text: "Tuck, then thrust", Phase: "setup", Priority: 10},
		{ID: "c-heels", Text: "Drive through heels", Phase: "concentric", Priority: 10},
		{ID: "c-squeeze", Text: "Pause and squeeze", Phase: "lockout", Priority: 10},
		{ID: "c-ribs", Text: "Ribs down", Phase: "any", Priority: 1},
	},
	Mistakes: map[string]Mistake{
		"m-pause": {ID: "m-pause", Name: "No pause at top", Fix: LibCue{ID: "c-squeeze", Text: "Pause and squeeze", Phase: "lockout", Priority: 10}},
		"m-arch":  {ID: "m-arch", Name: "Over-arching", Fix: LibCue{ID: "c-ribs", Text: "Ribs down", Phase: "any", Priority: 1}},
	},
	NoPauseAtTop: "m-pause",
}

func newState() State { return New(Config{PauseHoldMS: 1000, Library: lib}, t0) }

// run applies phases one after another, failing the test on a refusal.
func run(t *testing.T, s State, at time.Time, steps ...any) (State, []Frame) {
	t.Helper()
	var all []Frame
	for _, step := range steps {
		switch v := step.(type) {
		case time.Duration:
			at = at.Add(v)
			var frames []Frame
			s, frames = Advance(s, at)
			all = append(all, frames...)
		case Phase:
			var frames []Frame
			var err error
			s, frames, err = Apply(s, RepPhase{Phase: v}, at)
			if err != nil {
				t.Fatalf("phase %s refused: %v", v, err)
			}
			all = append(all, frames...)
		case Event:
			var frames []Frame
			var err error
			s, frames, err = Apply(s, v, at)
			if err != nil {
				t.Fatalf("%T refused: %v", v, err)
			}
			all = append(all, frames...)
		}
	}
	return s, all
}

func types(frames []Frame) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		out[i] = f.Type
	}
	return out
}

// stateIn builds a state in a given phase through valid steps.
func stateIn(t *testing.T, p Phase) State {
	s := newState()
	path := map[Phase][]any{
		Idle:   nil,
		Up:     {Up},
		Top:    {Up, ms(100), Top},
		Down:   {Up, ms(100), Top, ms(1200), Down},
		Bottom: {Up, ms(100), Top, ms(1200), Down, ms(500), Bottom},
		Ended:  {Up, End{}},
	}[p]
	s, _ = run(t, s, t0, path...)
	if s.phase != p {
		t.Fatalf("built %s, want %s", s.phase, p)
	}
	return s
}

func TestEveryTransition(t *testing.T) {
	t.Parallel()
	phases := []Phase{Idle, Up, Top, Down, Bottom, Ended}
	valid := map[Phase]map[Phase]bool{
		Idle: {Up: true, Top: true}, Up: {Top: true}, Top: {Down: true},
		Down: {Bottom: true}, Bottom: {Up: true, Top: true}, Ended: {},
	}
	for _, from := range phases {
		for _, to := range []Phase{Up, Top, Down, Bottom} {
			t.Run(fmt.Sprintf("%s->%s", from, to), func(t *testing.T) {
				t.Parallel()
				s := stateIn(t, from)
				at := s.last.Add(ms(10))
				before := s
				next, frames, err := Apply(s, RepPhase{Phase: to}, at)
				if !reflect.DeepEqual(s, before) {
					t.Fatal("Apply changed the caller's state")
				}
				if valid[from][to] {
					if err != nil || next.phase != to || len(frames) == 0 || frames[0].Type != "state" {
						t.Fatalf("refused or wrong: %v %v %v", err, next.phase, types(frames))
					}
					return
				}
				if domain.ErrorCode(err) != domain.CodeInvalidTransition {
					t.Fatalf("got %v, want invalid_transition", err)
				}
				if len(frames) != 0 || !reflect.DeepEqual(next, s) {
					t.Fatalf("a refused event changed something: %v", types(frames))
				}
			})
		}
	}
}

func TestRepCountRisesAtTop(t *testing.T) {
	t.Parallel()
	s, _ := run(t, newState(), t0, Up, ms(100))
	if s.rep != 0 {
		t.Fatal("rep rose before top")
	}
	s, frames := run(t, s, t0.Add(ms(100)), Top)
	v := frames[0].Payload.(StatePayload).State
	if v.Rep != 1 || v.Hold == nil || v.Hold.TargetMS != 1000 || !v.Hold.EndsAt.Equal(t0.Add(ms(1100))) || v.Hold.RemainingMS != 1000 {
		t.Fatalf("state at top: %+v %+v", v, v.Hold)
	}
}

func TestHoldDoneAtTheDeadline(t *testing.T) {
	t.Parallel()
	s, _ := run(t, newState(), t0, Top)
	if d := NextDeadline(s); !d.Equal(t0.Add(ms(1000))) {
		t.Fatalf("deadline %v", d)
	}
	s2, frames := Advance(s, t0.Add(ms(999)))
	if len(frames) != 0 {
		t.Fatalf("fired early: %v", types(frames))
	}
	s2, frames = Advance(s2, t0.Add(ms(1000)))
	if got := types(frames); !reflect.DeepEqual(got, []string{"hold.done", "state"}) {
		t.Fatalf("frames %v", got)
	}
	if p := frames[0].Payload.(HoldDonePayload); p.Rep != 1 || p.HeldMS != 1000 {
		t.Fatalf("hold.done %+v", p)
	}
	if v := s2.View(t0.Add(ms(1000))); !v.Hold.Done || v.Hold.RemainingMS != 0 {
		t.Fatalf("hold %+v", v.Hold)
	}
	if !NextDeadline(s2).IsZero() {
		t.Fatal("a deadline remains after the hold")
	}
	// A late down after the hold: no mistake, the rep's hold is met.
	s3, frames := run(t, s2, t0.Add(ms(1500)), Down, ms(400), Bottom)
	rd := frames[len(frames)-1].Payload.(RepDonePayload).Rep
	if !rd.HoldMet || *rd.HoldMS != 1500 || *rd.EccentricMS != 400 || rd.ConcentricMS != nil {
		t.Fatalf("rep %+v", rd)
	}
	if s3.cuesSent != 0 {
		t.Fatal("a cue was pushed for a held rep")
	}
}

func TestEarlyDownPushesPauseAndSqueezeUntilTheNextRepsBottom(t *testing.T) {
	t.Parallel()
	s, frames := run(t, newState(), t0, Up, ms(300), Top, ms(400), Down)
	if got := types(frames[len(frames)-2:]); !reflect.DeepEqual(got, []string{"state", "cue"}) {
		t.Fatalf("frames at early down %v", got)
	}
	cue := frames[len(frames)-1].Payload.(CuePayload).Cue
	if cue.Text != "Pause and squeeze" || cue.Source != "mistake" {
		t.Fatalf("cue %+v", cue)
	}
	s, frames = run(t, s, t0.Add(ms(700)), ms(600), Bottom)
	rd := frames[len(frames)-1].Payload.(RepDonePayload).Rep
	if rd.HoldMet || *rd.HoldMS != 400 || *rd.ConcentricMS != 300 || *rd.EccentricMS != 600 {
		t.Fatalf("rep %+v", rd)
	}
	check := func(s State, at time.Time, want, source string) {
		t.Helper()
		c := s.View(at).Cue
		if c == nil || c.Text != want || c.Source != source {
			t.Fatalf("cue of the moment in %s: %+v, want %q (%s)", s.phase, c, want, source)
		}
	}
	at := t0.Add(ms(1300))
	check(s, at, "Pause and squeeze", "mistake") // bottom of the rep it happened in
	s, _ = run(t, s, at, Up, ms(100), Top, ms(1100))
	check(s, at.Add(ms(1200)), "Pause and squeeze", "mistake") // the next rep
	s, _ = run(t, s, at.Add(ms(1200)), Down)
	check(s, at.Add(ms(1200)), "Pause and squeeze", "mistake")
	s, _ = run(t, s, at.Add(ms(1200)), ms(500), Bottom)
	check(s, at.Add(ms(1700)), "Tuck, then thrust", "auto") // gone after the next rep's bottom
}

func TestCueOfTheMoment(t *testing.T) {
	t.Parallel()
	idle := newState()
	cases := []struct {
		name  string
		state func() State
		at    time.Duration
		want  string
		src   string
	}{
		{"idle is setup", func() State { return idle }, 0, "Tuck, then thrust", "auto"},
		{"up is concentric", func() State { s, _ := run(t, idle, t0, Up); return s }, 0, "Drive through heels", "auto"},
		{"top is lockout", func() State { s, _ := run(t, idle, t0, Top); return s }, 0, "Pause and squeeze", "auto"},
		{"down falls back to any", func() State { s, _ := run(t, idle, t0, Top, ms(1000), Down); return s }, ms(1000), "Ribs down", "auto"},
		{"coach cue for 5 s", func() State { s, _ := run(t, idle, t0, CoachCue{Text: "Chin tucked"}); return s }, ms(4999), "Chin tucked", "coach"},
		{"coach cue expired", func() State { s, _ := run(t, idle, t0, CoachCue{Text: "Chin tucked"}); return s }, ms(5000), "Tuck, then thrust", "auto"},
		{"flagged mistake", func() State { s, _ := run(t, idle, t0, FlagMistake{MistakeID: "m-arch"}); return s }, ms(6000), "Ribs down", "mistake"},
		{"coach beats mistake", func() State {
			s, _ := run(t, idle, t0, FlagMistake{MistakeID: "m-arch"}, CoachCue{ID: "c-heels", Text: "Drive through heels"})
			return s
		}, 0, "Drive through heels", "coach"},
	}
	for _, c := range cases {
		got := c.state().View(t0.Add(c.at)).Cue
		if got == nil || got.Text != c.want || got.Source != c.src {
			t.Errorf("%s: %+v, want %q (%s)", c.name, got, c.want, c.src)
		}
	}
	empty := New(Config{PauseHoldMS: 1000}, t0)
	if c := empty.View(t0).Cue; c != nil {
		t.Errorf("empty library gives %+v", c)
	}
	// Ties go to the smaller id, deterministically.
	tie := New(Config{Library: Library{Cues: []LibCue{{ID: "b", Text: "B", Phase: "any", Priority: 1}, {ID: "a", Text: "A", Phase: "any", Priority: 1}}}}, t0)
	if c := tie.View(t0).Cue; c.Text != "A" {
		t.Errorf("tie gives %q", c.Text)
	}
}

func TestCoachCueExpiryIsAClockChange(t *testing.T) {
	t.Parallel()
	s, frames := run(t, newState(), t0, CoachCue{Text: "Ribs down"})
	if got := types(frames); !reflect.DeepEqual(got, []string{"cue", "state"}) {
		t.Fatalf("frames %v", got)
	}
	if d := NextDeadline(s); !d.Equal(t0.Add(CoachCueFor)) {
		t.Fatalf("deadline %v", d)
	}
	s, frames = Advance(s, t0.Add(CoachCueFor))
	if got := types(frames); !reflect.DeepEqual(got, []string{"state"}) || frames[0].Payload.(StatePayload).State.Cue.Source != "auto" {
		t.Fatalf("expiry frames %v", got)
	}
	if !NextDeadline(s).IsZero() {
		t.Fatal("deadline after expiry")
	}
}

func TestCueReceipts(t *testing.T) {
	t.Parallel()
	s, frames := run(t, newState(), t0, CoachCue{Text: "Ribs down"})
	seq := frames[0].Seq
	if _, _, err := Apply(s, CueAck{CueSeq: seq + 1}, t0); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("receipt of a state frame: %v", err)
	}
	s, frames, err := Apply(s, CueAck{CueSeq: seq}, t0)
	if err != nil || len(frames) != 1 || frames[0].Payload.(CueAckPayload).CueSeq != seq {
		t.Fatalf("receipt: %v %v", err, types(frames))
	}
	s, frames, err = Apply(s, CueAck{CueSeq: seq}, t0)
	if err != nil || len(frames) != 0 {
		t.Fatalf("a resent receipt: %v %v", err, types(frames))
	}
	if sum := s.Summary(); sum.CuesSent != 1 || sum.CuesAcknowledged != 1 {
		t.Fatalf("summary %+v", sum)
	}
}

func TestUnknownMistakeAndEndedSet(t *testing.T) {
	t.Parallel()
	s := newState()
	if _, _, err := Apply(s, FlagMistake{MistakeID: "nope"}, t0); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("unknown mistake: %v", err)
	}
	s, _ = run(t, s, t0, End{})
	for _, ev := range []Event{End{}, CoachCue{Text: "x"}, FlagMistake{MistakeID: "m-arch"}, RepPhase{Phase: Up}} {
		if _, frames, err := Apply(s, ev, t0); domain.ErrorCode(err) != domain.CodeInvalidTransition || len(frames) != 0 {
			t.Errorf("%T after the end: %v", ev, err)
		}
	}
}

func TestAWholeSet(t *testing.T) {
	t.Parallel()
	s, frames := run(t, newState(), t0,
		Up, ms(800), Top, ms(1200), Down, ms(1000), Bottom, // held
		ms(500), Up, ms(700), Top, ms(600), Down, ms(900), Bottom, // cut short
		ms(500), Top, ms(1000), ms(300), End{}) // ended at the top, held 1.3 s
	for i, f := range frames {
		if f.Seq != int64(i+1) {
			t.Fatalf("frame %d has seq %d", i, f.Seq)
		}
	}
	if last := frames[len(frames)-1]; last.Type != "set.ended" || frames[len(frames)-2].Type != "state" {
		t.Fatalf("ending frames %v", types(frames[len(frames)-2:]))
	}
	reps := s.Reps()
	if len(reps) != 3 || !reps[0].HoldMet || reps[1].HoldMet || !reps[2].HoldMet || *reps[2].HoldMS != 1300 || reps[2].EccentricMS != nil {
		b, _ := json.Marshal(reps)
		t.Fatalf("reps %s", b)
	}
	sum := s.Summary()
	want := Summary{Reps: 3, HoldsMet: 2, HoldCompliance: 2.0 / 3, TimeUnderTensionMS: 800 + 1200 + 1000 + 700 + 600 + 900 + 1300, CuesSent: 1}
	if sum.Reps != want.Reps || sum.HoldsMet != want.HoldsMet || sum.HoldCompliance != want.HoldCompliance ||
		sum.TimeUnderTensionMS != want.TimeUnderTensionMS || sum.CuesSent != want.CuesSent ||
		*sum.AvgConcentricMS != 750 || *sum.AvgHoldMS != 1033 || *sum.AvgEccentricMS != 950 {
		b, _ := json.Marshal(sum)
		t.Fatalf("summary %s", b)
	}
}

func TestFrameJSON(t *testing.T) {
	t.Parallel()
	_, frames := run(t, newState(), t0.Add(ms(125)), Top, CoachCue{Text: "Ribs down"})
	b, _ := json.Marshal(frames[0].Payload)
	want := `{"state":{"rep":1,"phase":"top","hold":{"target_ms":1000,"ends_at":"2026-11-24T10:00:01.125Z","remaining_ms":1000,"done":false},"cue":{"id":"c-squeeze","text":"Pause and squeeze","source":"auto","at":"2026-11-24T10:00:00.125Z"},"status":"live"}}`
	if string(b) != want {
		t.Fatalf("state JSON\n got %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(frames[1].Payload)
	if want := `{"cue":{"id":null,"text":"Ribs down","source":"coach","at":"2026-11-24T10:00:00.125Z"}}`; string(b) != want {
		t.Fatalf("cue JSON %s", b)
	}
}

func TestTimeNeverRunsBackwards(t *testing.T) {
	t.Parallel()
	s, _ := run(t, newState(), t0, Up, ms(500), Top)
	s, frames, err := Apply(s, RepPhase{Phase: Down}, t0) // timed before top
	if err != nil {
		t.Fatal(err)
	}
	s, frames, _ = Apply(s, RepPhase{Phase: Bottom}, t0)
	rd := frames[len(frames)-1].Payload.(RepDonePayload).Rep
	if *rd.HoldMS != 0 || *rd.EccentricMS != 0 || *rd.ConcentricMS != 500 {
		t.Fatalf("rep %+v", rd)
	}
}

// BenchmarkApplyRepCycle is one rep (up, top, down, bottom) of sets of 20 reps.
func BenchmarkApplyRepCycle(b *testing.B) {
	s := newState()
	at := t0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for _, p := range []Phase{Up, Top, Down, Bottom} {
			at = at.Add(ms(400))
			s, _, _ = Apply(s, RepPhase{Phase: p}, at)
		}
		if len(s.reps) == 20 { // a long set; then start another
			s = newState()
		}
	}
}

func BenchmarkAdvance(b *testing.B) {
	s, _, _ := Apply(newState(), RepPhase{Phase: Top}, t0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Advance(s, t0.Add(ms(500)))
	}
}
