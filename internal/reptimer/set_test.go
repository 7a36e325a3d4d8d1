package reptimer

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func ip(v int) *int { return &v }

func TestAWholeSet(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	m.script(
		Up, ms(800), Top, ms(1200), Down, ms(1000), Bottom, // rep 1: held 1.2 s
		ms(500), Up, ms(700), Top, ms(600), Down, ms(900), Bottom, // rep 2: cut short, fix pushed
		ms(500), Top, ms(1300), Down, ms(802), Bottom, // rep 3: straight from the bottom, no up
	)
	cueSeq := int64(0)
	for _, f := range m.frames {
		if f.Type == FrameCue {
			cueSeq = f.Seq
		}
	}
	m.script(CueAck{CueSeq: cueSeq}, ms(700), End{})

	want := []string{
		"state", "state", "hold.done", "state", "state", "state", "rep.done", // rep 1
		"state", "state", "state", "cue", "state", "rep.done", // rep 2
		"state", "hold.done", "state", "state", "state", "rep.done", // rep 3
		"cue.ack", "state", "set.ended",
	}
	mustEqual(t, "frames", types(m.frames), want)
	for i, f := range m.frames {
		if f.Seq != int64(i+1) {
			t.Fatalf("frame %d (%s) has seq %d", i, f.Type, f.Seq)
		}
	}

	wantReps := []RepFigures{
		{N: 1, ConcentricMS: ip(800), HoldMS: ip(1200), EccentricMS: ip(1000), HoldMet: true},
		{N: 2, ConcentricMS: ip(700), HoldMS: ip(600), EccentricMS: ip(900), HoldMet: false},
		{N: 3, ConcentricMS: nil, HoldMS: ip(1300), EccentricMS: ip(802), HoldMet: true},
	}
	var done []RepFigures
	for _, f := range m.frames {
		if p, ok := f.Payload.(RepDonePayload); ok {
			done = append(done, p.Rep)
		}
	}
	mustEqual(t, "rep.done figures", done, wantReps)
	mustEqual(t, "Reps()", m.s.Reps(), wantReps)

	wantSum := Summary{
		Reps: 3, HoldsMet: 2, HoldCompliance: 2.0 / 3,
		AvgConcentricMS: ip(750), AvgHoldMS: ip(1033), AvgEccentricMS: ip(901), // 3100/3 = 1033.3, 2702/3 = 900.7
		TimeUnderTensionMS: 800 + 1200 + 1000 + 700 + 600 + 900 + 1300 + 802,
		CuesSent:           1, CuesAcknowledged: 1,
	}
	mustEqual(t, "Summary()", m.s.Summary(), wantSum)
	mustEqual(t, "set.ended", m.frames[len(m.frames)-1].Payload, SetEndedPayload{Summary: wantSum})
	final := m.frames[len(m.frames)-2].Payload.(StatePayload).State
	mustEqual(t, "final state", final, View{Rep: 3, Phase: Ended, Status: StatusEnded})
	if !NextDeadline(m.s).IsZero() {
		t.Fatal("deadline after the end")
	}
}

func TestEndingARepUnderWay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		path []any
		want []RepFigures
	}{
		{"idle", nil, nil},
		{"up: no lockout, no rep", []any{Up, ms(500)}, nil},
		{"top, during the hold", []any{Up, ms(500), Top, ms(400)}, []RepFigures{{N: 1, ConcentricMS: ip(500), HoldMS: ip(400)}}},
		// Ended at the top: the hold is judged up to its target and hold_ms is
		// capped there (the wait after the deadline is not a hold; issue 11:
		// 15,605 ms counted before).
		{"top, after the hold", []any{Up, ms(500), Top, ms(1300)}, []RepFigures{{N: 1, ConcentricMS: ip(500), HoldMS: ip(1000), HoldMet: true}}},
		{"top, long after the hold", []any{Up, ms(500), Top, ms(15605)}, []RepFigures{{N: 1, ConcentricMS: ip(500), HoldMS: ip(1000), HoldMet: true}}},
		{"top, at the deadline", []any{Top, ms(1000)}, []RepFigures{{N: 1, HoldMS: ip(1000), HoldMet: true}}},
		{"top, 1 ms short", []any{Top, ms(999)}, []RepFigures{{N: 1, HoldMS: ip(999)}}},
		{"down", []any{Top, ms(1100), Down, ms(300)}, []RepFigures{{N: 1, HoldMS: ip(1100), HoldMet: true}}},
		{"bottom", []any{Top, ms(1000), Down, ms(300), Bottom, ms(100)}, []RepFigures{{N: 1, HoldMS: ip(1000), EccentricMS: ip(300), HoldMet: true}}},
		{"up after a rep", []any{Top, ms(1000), Down, ms(300), Bottom, Up, ms(100)}, []RepFigures{{N: 1, HoldMS: ip(1000), EccentricMS: ip(300), HoldMet: true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := newSim(t, newState())
			m.script(c.path...)
			frames := m.do(End{})
			if got := types(frames); got[len(got)-2] != "state" || got[len(got)-1] != "set.ended" {
				t.Fatalf("frames %v", got)
			}
			mustEqual(t, "reps", m.s.Reps(), append([]RepFigures{}, c.want...)) // never nil: JSON []
			sum := frames[len(frames)-1].Payload.(SetEndedPayload).Summary
			if sum.Reps != len(c.want) || sum.Reps != m.s.rep {
				t.Fatalf("summary %+v, rep count %d", sum, m.s.rep)
			}
			if v := m.view(); v.Phase != Ended || v.Status != StatusEnded || v.Hold != nil || v.Cue != nil {
				t.Fatalf("view %+v", v)
			}
			if !NextDeadline(m.s).IsZero() {
				t.Fatal("deadline after the end")
			}
		})
	}
}

// While live, the summary counts the rep under way as if the set ended at the
// latest time applied, so that reps is the rep count.
func TestSummaryWhileLive(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	mustEqual(t, "empty", m.s.Summary(), Summary{})
	m.script(Up, ms(500), Top, ms(1000)) // hold.done at +1500 moves the clock
	mustEqual(t, "at the top", m.s.Summary(), Summary{
		Reps: 1, HoldsMet: 1, HoldCompliance: 1, AvgConcentricMS: ip(500), AvgHoldMS: ip(1000), TimeUnderTensionMS: 1500,
	})
	m.script(ms(200), Down)
	if s := m.s.Summary(); s.Reps != 1 || *s.AvgHoldMS != 1200 || s.AvgEccentricMS != nil {
		t.Fatalf("in down %+v", s)
	}
}

func TestSeqIsGapFreeAcrossApplyAndAdvance(t *testing.T) {
	t.Parallel()
	s := newState()
	var all []Frame
	step := func(at time.Duration, ev Event) {
		var frames []Frame
		if ev == nil {
			s, frames = Advance(s, t0.Add(at))
		} else {
			s, frames, _ = Apply(s, ev, t0.Add(at))
		}
		all = append(all, frames...)
	}
	step(0, RepPhase{Phase: Top})
	step(100, CoachCue{Text: "Squeeze"})
	step(ms(400), nil)                    // nothing due
	step(ms(2000), RepPhase{Phase: Top})  // refused: nothing, though the hold's deadline passed
	step(ms(2000), RepPhase{Phase: Down}) // the same instant: hold.done, state, then down's state
	step(ms(6000), CueAck{CueSeq: 99})    // refused: nothing, though the coach cue expired
	step(ms(6500), nil)                   // the clock: the expiry's state
	step(ms(7000), RepPhase{Phase: Bottom})
	step(ms(7000), End{})
	mustEqual(t, "frames", types(all), []string{"state", "cue", "state", "hold.done", "state", "state", "state", "state", "rep.done", "state", "set.ended"})
	for i, f := range all {
		if f.Seq != int64(i+1) {
			t.Fatalf("frame %d has seq %d", i, f.Seq)
		}
	}
	if s.LastSeq() != int64(len(all)) {
		t.Fatalf("LastSeq %d, %d frames", s.LastSeq(), len(all))
	}
}

func TestDeadlinesAtTheSameInstantShareAStateFrame(t *testing.T) {
	t.Parallel()
	m := newSim(t, New(Config{PauseHoldMS: 5000, Library: lib}, t0))
	m.script(Top, CoachCue{Text: "Hold it"}) // both due at +5 s
	mustEqual(t, "frames", types(m.wait(CoachCueFor)), []string{"hold.done", "state"})
}

func TestTimeNeverRunsBackwards(t *testing.T) {
	t.Parallel()
	s, _, _ := Apply(newState(), RepPhase{Phase: Up}, t0.Add(ms(500)))
	s, _, _ = Apply(s, RepPhase{Phase: Top}, t0.Add(ms(1000)))
	s, frames, err := Apply(s, RepPhase{Phase: Down}, t0) // timed before top
	if err != nil {
		t.Fatal(err)
	}
	if c := frames[1].Payload.(CuePayload).Cue; !c.At.Equal(t0.Add(ms(1000))) {
		t.Fatalf("the fix is timed %v", c.At)
	}
	s, frames, _ = Apply(s, RepPhase{Phase: Bottom}, t0.Add(ms(900)))
	rd := frames[len(frames)-1].Payload.(RepDonePayload).Rep
	mustEqual(t, "figures", rd, RepFigures{N: 1, ConcentricMS: ip(500), HoldMS: ip(0), EccentricMS: ip(0)})
	if d := NextDeadline(s); !d.IsZero() {
		t.Fatalf("deadline %v", d)
	}
	// A coach cue timed in the past still lasts 5 s from the latest time.
	s, _, _ = Apply(s, CoachCue{Text: "Late"}, t0)
	if d := NextDeadline(s); !d.Equal(t0.Add(ms(1000) + CoachCueFor)) {
		t.Fatalf("deadline %v", d)
	}
}

// Events may come before the set's own start (a set logged offline).
func TestEventsBeforeStartedAt(t *testing.T) {
	t.Parallel()
	s := newState()
	s, _, err := Apply(s, RepPhase{Phase: Up}, t0.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	s, _, _ = Apply(s, RepPhase{Phase: Top}, t0.Add(-time.Minute+ms(600)))
	if c := s.View(t0).Hold; c == nil || !c.EndsAt.Equal(t0.Add(-time.Minute+ms(1600))) {
		t.Fatalf("hold %+v", c)
	}
}

// Apply never changes the State it is given: the old State stays usable, and
// two branches from it do not see each other's changes.
func TestOldStateIsUnchanged(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	// Three reps, so that the reps slice would have spare capacity if it grew
	// by plain append; two cue frames awaiting receipts.
	for range 3 {
		m.script(Up, ms(100), Top, ms(1000), Down, ms(100), Bottom)
	}
	m.script(CoachCue{Text: "A"}, CoachCue{Text: "B"}, ms(6000), Up)
	old, snapshot := m.s, clone(m.s)
	cueA, cueB := old.unacked[0], old.unacked[1]

	at := m.at.Add(ms(100))
	a, _, err := Apply(old, RepPhase{Phase: Top}, at)
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ = Apply(a, RepPhase{Phase: Down}, at)
	a, _, _ = Apply(a, RepPhase{Phase: Bottom}, at)
	a, _, _ = Apply(a, CueAck{CueSeq: cueA}, at)
	aSnapshot := clone(a)
	mustEqual(t, "old after branch a", old, snapshot)

	// Branch b makes a rep 4 of its own, cut short, then ends.
	b, _, _ := Apply(old, RepPhase{Phase: Top}, at.Add(ms(50)))
	b, _, _ = Apply(b, RepPhase{Phase: Down}, at.Add(ms(60)))
	b, _, _ = Apply(b, RepPhase{Phase: Bottom}, at.Add(ms(70)))
	b, _, _ = Apply(b, End{}, at.Add(ms(80)))
	b, _, err = Apply(b, CueAck{CueSeq: cueA}, at.Add(ms(80)))
	if err != nil {
		t.Fatalf("branch b cannot acknowledge what branch a did: %v", err)
	}
	b, _, _ = Apply(b, CueAck{CueSeq: cueB}, at)
	mustEqual(t, "old after branch b", old, snapshot)
	mustEqual(t, "branch a after branch b", a, aSnapshot)
	if len(a.Reps()) != 4 || len(b.Reps()) != 4 || *a.Reps()[3].HoldMS != 0 || *b.Reps()[3].HoldMS != 10 ||
		b.Summary().CuesAcknowledged != 2 || a.Summary().CuesAcknowledged != 1 {
		t.Fatalf("branches: a %+v, b %+v", a.Summary(), b.Summary())
	}

	// Reps and rep.done hand out copies.
	r := a.Reps()
	*r[0].HoldMS, r[1] = -1, RepFigures{}
	mustEqual(t, "branch a after changing its Reps()", a, aSnapshot)
	c, _, _ := Apply(a, RepPhase{Phase: Top}, at)
	c, _, _ = Apply(c, RepPhase{Phase: Down}, at)
	c, frames, _ := Apply(c, RepPhase{Phase: Bottom}, at)
	cSnapshot := clone(c)
	*frames[len(frames)-1].Payload.(RepDonePayload).Rep.HoldMS = -1
	mustEqual(t, "state after changing its rep.done", c, cSnapshot)

	// New copies the library.
	l := Library{Cues: []LibCue{{ID: "x", Text: "X", Phase: "any"}}, Mistakes: map[string]Mistake{"m": {ID: "m", Fix: LibCue{Text: "Fix"}}}}
	s := New(Config{Library: l}, t0)
	l.Cues[0].Text = "changed"
	delete(l.Mistakes, "m")
	if c := s.View(t0).Cue; c.Text != "X" {
		t.Fatalf("cue %+v", c)
	}
	if _, _, err := Apply(s, FlagMistake{MistakeID: "m"}, t0); err != nil {
		t.Fatal(err)
	}
}

func TestFrameJSON(t *testing.T) {
	t.Parallel()
	start := t0.Add(ms(125))
	m := newSim(t, New(Config{PauseHoldMS: 1000, Library: lib}, start))
	m.at = start
	m.script(Up, ms(250), Top, CoachCue{Text: "Ribs down"}, ms(1000), Down, ms(500), Bottom, CueAck{CueSeq: 3}, End{})
	want := []string{
		`{"state":{"rep":0,"phase":"up","hold":null,"cue":{"id":"c-heels","text":"Drive through heels","source":"auto","at":"2026-11-24T10:00:00.125Z"},"status":"live"}}`,
		`{"state":{"rep":1,"phase":"top","hold":{"target_ms":1000,"ends_at":"2026-11-24T10:00:01.375Z","remaining_ms":1000,"done":false},"cue":{"id":"c-squeeze","text":"Pause and squeeze","source":"auto","at":"2026-11-24T10:00:00.375Z"},"status":"live"}}`,
		`{"cue":{"id":null,"text":"Ribs down","source":"coach","at":"2026-11-24T10:00:00.375Z","sent_by":null,"rep":1,"mistake":null}}`,
		`{"state":{"rep":1,"phase":"top","hold":{"target_ms":1000,"ends_at":"2026-11-24T10:00:01.375Z","remaining_ms":1000,"done":false},"cue":{"id":null,"text":"Ribs down","source":"coach","at":"2026-11-24T10:00:00.375Z"},"status":"live"}}`,
		`{"rep":1,"held_ms":1000}`,
		`{"state":{"rep":1,"phase":"top","hold":{"target_ms":1000,"ends_at":"2026-11-24T10:00:01.375Z","remaining_ms":0,"done":true},"cue":{"id":null,"text":"Ribs down","source":"coach","at":"2026-11-24T10:00:00.375Z"},"status":"live"}}`,
		`{"state":{"rep":1,"phase":"down","hold":null,"cue":{"id":null,"text":"Ribs down","source":"coach","at":"2026-11-24T10:00:00.375Z"},"status":"live"}}`,
		`{"state":{"rep":1,"phase":"bottom","hold":null,"cue":{"id":null,"text":"Ribs down","source":"coach","at":"2026-11-24T10:00:00.375Z"},"status":"live"}}`,
		`{"rep":{"n":1,"concentric_ms":250,"hold_ms":1000,"eccentric_ms":500,"hold_met":true}}`,
		`{"cue_seq":3,"at":"2026-11-24T10:00:01.875Z"}`,
		`{"state":{"rep":1,"phase":"ended","hold":null,"cue":null,"status":"ended"}}`,
		`{"summary":{"reps":1,"holds_met":1,"hold_compliance":1,"avg_concentric_ms":250,"avg_hold_ms":1000,"avg_eccentric_ms":500,"time_under_tension_ms":1750,"cues_sent":1,"cues_acknowledged":1}}`,
	}
	var got []string
	for _, f := range m.frames {
		b, err := json.Marshal(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("frames:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Nulls where nothing was measured.
	b, _ := json.Marshal(Summary{})
	if string(b) != `{"reps":0,"holds_met":0,"hold_compliance":0,"avg_concentric_ms":null,"avg_hold_ms":null,"avg_eccentric_ms":null,"time_under_tension_ms":0,"cues_sent":0,"cues_acknowledged":0}` {
		t.Fatalf("empty summary %s", b)
	}
	// Timestamps are UTC with milliseconds whatever the zone they come in.
	b, _ = json.Marshal(Cue{ID: "x", Text: "T", Source: SourceAuto, At: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.FixedZone("X", 3600))})
	if string(b) != `{"id":"x","text":"T","source":"auto","at":"2026-01-02T02:04:05.006Z"}` {
		t.Fatalf("cue %s", b)
	}
}

func TestAverageRoundsToTheNearestMillisecond(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		values []int
		want   any
	}{{nil, nil}, {[]int{7}, 7}, {[]int{1, 2}, 2}, {[]int{1, 1, 2}, 1}, {[]int{1, 2, 2}, 2}, {[]int{0, 0, 1}, 0}, {[]int{999, 1000}, 1000}} {
		var a average
		for _, v := range c.values {
			a.add(ip(v))
		}
		a.add(nil) // absent figures do not count
		if got := deref(a.value()); got != c.want {
			t.Errorf("average of %v: %v, want %v", c.values, got, c.want)
		}
	}
}
