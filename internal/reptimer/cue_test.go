package reptimer

import (
	"testing"
	"time"

	"github.com/repcue/repcue/internal/domain"
)

func TestChooseCue(t *testing.T) {
	t.Parallel()
	coach := &Cue{Text: "Chin tucked", Source: SourceCoach, At: t0}
	mistake := &Cue{ID: "c-squeeze", Text: "Pause and squeeze", Source: SourceMistake, At: t0}
	phaseAt := t0.Add(-time.Second)
	auto := func(id, text string) *Cue { return &Cue{ID: id, Text: text, Source: SourceAuto, At: phaseAt} }
	specific := []LibCue{
		{ID: "s", Text: "Setup", Phase: "setup", Priority: 5},
		{ID: "c", Text: "Concentric", Phase: "concentric", Priority: 5},
		{ID: "l", Text: "Lockout", Phase: "lockout", Priority: 5},
		{ID: "e", Text: "Eccentric", Phase: "eccentric", Priority: 5},
	}
	withAny := append([]LibCue{{ID: "a", Text: "Any", Phase: "any", Priority: 7}}, specific...)
	cases := []struct {
		name string
		in   cueInput
		want *Cue
	}{
		// The coach's cue: 5 s, then whatever comes next.
		{"coach cue when sent", cueInput{now: t0, phase: Top, coach: coach, cues: specific}, coach},
		{"coach cue at 4.999 s", cueInput{now: t0.Add(ms(4999)), phase: Top, coach: coach, cues: specific}, coach},
		{"coach cue at 5 s", cueInput{now: t0.Add(ms(5000)), phase: Top, phaseAt: phaseAt, coach: coach, cues: specific}, auto("l", "Lockout")},
		{"coach cue beats a mistake", cueInput{now: t0, phase: Top, coach: coach, mistake: mistake, mistakeRep: 2, repUnderWay: 2}, coach},
		{"mistake once the coach cue expired", cueInput{now: t0.Add(ms(6000)), phase: Top, coach: coach, mistake: mistake, mistakeRep: 2, repUnderWay: 2}, mistake},
		// The mistake: this rep or the previous one.
		{"mistake during this rep", cueInput{now: t0, phase: Down, mistake: mistake, mistakeRep: 3, repUnderWay: 3, cues: specific}, mistake},
		{"mistake during the previous rep", cueInput{now: t0, phase: Top, mistake: mistake, mistakeRep: 2, repUnderWay: 3, cues: specific}, mistake},
		{"mistake two reps ago", cueInput{now: t0, phase: Top, phaseAt: phaseAt, mistake: mistake, mistakeRep: 1, repUnderWay: 3, cues: specific}, auto("l", "Lockout")},
		{"mistake two reps ago, nothing in the library", cueInput{now: t0, phase: Top, mistake: mistake, mistakeRep: 1, repUnderWay: 3}, nil},
		// The library, by phase.
		{"idle is setup", cueInput{phase: Idle, phaseAt: phaseAt, cues: specific}, auto("s", "Setup")},
		{"up is concentric", cueInput{phase: Up, phaseAt: phaseAt, cues: specific}, auto("c", "Concentric")},
		{"top is lockout", cueInput{phase: Top, phaseAt: phaseAt, cues: specific}, auto("l", "Lockout")},
		{"down is eccentric", cueInput{phase: Down, phaseAt: phaseAt, cues: specific}, auto("e", "Eccentric")},
		{"bottom is setup", cueInput{phase: Bottom, phaseAt: phaseAt, cues: specific}, auto("s", "Setup")},
		{"no cue for the phase", cueInput{phase: Down, cues: specific[:3]}, nil},
		{"any matches idle", cueInput{phase: Idle, phaseAt: phaseAt, cues: withAny}, auto("a", "Any")},
		{"any matches down", cueInput{phase: Down, phaseAt: phaseAt, cues: withAny}, auto("a", "Any")},
		{"any fills a gap", cueInput{phase: Down, phaseAt: phaseAt, cues: []LibCue{{ID: "a", Text: "Any", Phase: "any", Priority: 1}, {ID: "l", Text: "Lockout", Phase: "lockout", Priority: 9}}}, auto("a", "Any")},
		{"higher priority wins", cueInput{phase: Top, phaseAt: phaseAt, cues: []LibCue{{ID: "x", Text: "Low", Phase: "lockout", Priority: 1}, {ID: "y", Text: "High", Phase: "lockout", Priority: 2}, {ID: "z", Text: "Mid", Phase: "any", Priority: 1}}}, auto("y", "High")},
		{"negative priorities", cueInput{phase: Top, phaseAt: phaseAt, cues: []LibCue{{ID: "x", Text: "Lower", Phase: "lockout", Priority: -2}, {ID: "y", Text: "Low", Phase: "lockout", Priority: -1}}}, auto("y", "Low")},
		{"tie: smaller id", cueInput{phase: Top, phaseAt: phaseAt, cues: []LibCue{{ID: "b", Text: "B", Phase: "lockout", Priority: 1}, {ID: "a", Text: "A", Phase: "any", Priority: 1}}}, auto("a", "A")},
		{"tie: smaller id, other order", cueInput{phase: Top, phaseAt: phaseAt, cues: []LibCue{{ID: "a", Text: "A", Phase: "any", Priority: 1}, {ID: "b", Text: "B", Phase: "lockout", Priority: 1}}}, auto("a", "A")},
		{"empty library", cueInput{phase: Top}, nil},
		// An ended set has no cue of the moment.
		{"ended, even with a fresh coach cue", cueInput{now: t0, phase: Ended, coach: coach, mistake: mistake, mistakeRep: 1, repUnderWay: 1, cues: withAny}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := chooseCue(c.in)
			if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			if got != nil && (got == c.in.coach || got == c.in.mistake) {
				t.Fatal("the cue returned aliases the state's")
			}
		})
	}
}

// "During this or the previous rep", through the state: a flag while rep k is
// under way (from the bottom of rep k-1 to its own bottom) lasts until the
// bottom of rep k+1.
func TestFlaggedMistakeWindow(t *testing.T) {
	t.Parallel()
	const fix, auto = "Ribs down", "auto"
	for _, c := range []struct {
		name      string
		before    []any // the steps before the flag
		untilGone []any // steps after the flag, the last of which ends the window
	}{
		{"flagged before the first rep", nil, []any{Up, Top, ms(1000), Down, Bottom, Top, ms(1000), Down, Bottom}},
		{"flagged during the hold", []any{Up, Top}, []any{ms(1000), Down, Bottom, Up, Top, ms(1000), Down, Bottom}},
		{"flagged at bottom, between reps", []any{Top, ms(1000), Down, Bottom}, []any{Up, Top, ms(1000), Down, Bottom, Top, ms(1000), Down, Bottom}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := newSim(t, newState())
			m.script(c.before...)
			m.do(FlagMistake{MistakeID: "m-arch"})
			for i, st := range c.untilGone {
				m.script(st)
				cue := m.view().Cue
				last := i == len(c.untilGone)-1
				if !last && (cue == nil || cue.Text != fix || cue.Source != SourceMistake) {
					t.Fatalf("after step %d (%v): %+v, want the fix", i, st, cue)
				}
				if last && (cue == nil || cue.Source != auto) {
					t.Fatalf("after the window: %+v", cue)
				}
			}
		})
	}
}

func TestCoachCue(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	m.script(Up, ms(100), Top)
	frames := m.do(CoachCue{ID: "c-ribs", Text: "Ribs down", SentBy: "coach-1"})
	mustEqual(t, "frames", types(frames), []string{"cue", "state"})
	sent := Cue{ID: "c-ribs", Text: "Ribs down", Source: SourceCoach, At: t0.Add(ms(100))}
	mustEqual(t, "cue frame", frames[0].Payload, CuePayload{Cue: PushedCue{Cue: sent, SentBy: "coach-1", Rep: 1}})
	mustEqual(t, "cue of the moment", *frames[1].Payload.(StatePayload).State.Cue, sent)
	// The hold's deadline comes first, then the cue's expiry.
	if d := NextDeadline(m.s); !d.Equal(t0.Add(ms(1100))) {
		t.Fatalf("deadline %v", d)
	}
	mustEqual(t, "at the hold's deadline", types(m.wait(ms(1000))), []string{"hold.done", "state"})
	if d := NextDeadline(m.s); !d.Equal(t0.Add(ms(5100))) {
		t.Fatalf("deadline %v", d)
	}
	if c := m.view().Cue; c.Source != SourceCoach {
		t.Fatalf("cue before expiry %+v", c)
	}
	frames = m.wait(ms(4000)) // exactly 5 s after it was sent
	mustEqual(t, "expiry frames", types(frames), []string{"state"})
	if c := frames[0].Payload.(StatePayload).State.Cue; c.Source != SourceAuto || c.Text != "Pause and squeeze" {
		t.Fatalf("cue after expiry %+v", c)
	}
	if !NextDeadline(m.s).IsZero() {
		t.Fatal("deadline after expiry")
	}
}

func TestANewCoachCueReplacesTheOld(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	m.script(CoachCue{Text: "First"}, ms(3000), CoachCue{Text: "Second"})
	if d := NextDeadline(m.s); !d.Equal(t0.Add(ms(8000))) {
		t.Fatalf("deadline %v", d)
	}
	if frames := m.wait(ms(2000)); len(frames) != 0 { // the first one's 5 s
		t.Fatalf("frames %v", types(frames))
	}
	if c := m.view().Cue; c.Text != "Second" {
		t.Fatalf("cue %+v", c)
	}
}

func TestMistakeReturnsWhenTheCoachCueExpires(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	m.script(Up, ms(100), Top, ms(100), Down, CoachCue{Text: "Slow down"}) // early down: fix pushed
	if c := m.view().Cue; c.Source != SourceCoach {
		t.Fatalf("cue %+v", c)
	}
	frames := m.wait(CoachCueFor)
	if c := frames[0].Payload.(StatePayload).State.Cue; c == nil || c.Source != SourceMistake || c.Text != "Pause and squeeze" {
		t.Fatalf("after expiry %+v", c)
	}
}

func TestFlagMistake(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	m.script(Up)
	frames := m.do(FlagMistake{MistakeID: "m-arch", SentBy: "coach-1"})
	mustEqual(t, "frames", types(frames), []string{"cue", "state"})
	fix := Cue{ID: "c-ribs", Text: "Ribs down", Source: SourceMistake, At: t0}
	mustEqual(t, "cue frame", frames[0].Payload, CuePayload{Cue: PushedCue{Cue: fix, SentBy: "coach-1", Rep: 1,
		Mistake: &MistakeRef{ID: "m-arch", Name: m.s.cfg.Library.Mistakes["m-arch"].Name}}})
	mustEqual(t, "cue of the moment", *frames[1].Payload.(StatePayload).State.Cue, fix)
	if !NextDeadline(m.s).IsZero() {
		t.Fatal("a flag has no deadline")
	}
	if s := m.s.Summary(); s.CuesSent != 1 {
		t.Fatalf("summary %+v", s)
	}
}

func TestCueAck(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	m.script(CoachCue{Text: "One"}, FlagMistake{MistakeID: "m-arch"}) // cue frames 1 and 3
	frames := m.do(CueAck{CueSeq: 3})
	mustEqual(t, "ack frames", types(frames), []string{"cue.ack"})
	mustEqual(t, "payload", frames[0].Payload, CueAckPayload{CueSeq: 3, At: domain.Time(m.at)})
	// The phone resends: accepted, nothing new.
	if s, frames, err := Apply(m.s, CueAck{CueSeq: 3}, m.at); err != nil || len(frames) != 0 || s.LastSeq() != m.s.LastSeq() {
		t.Fatalf("resent receipt: %v %v", err, types(frames))
	}
	m.script(End{})
	frames = m.do(CueAck{CueSeq: 1}) // after the end: still counted
	mustEqual(t, "ack after the end", types(frames), []string{"cue.ack"})
	if s := m.s.Summary(); s.CuesSent != 2 || s.CuesAcknowledged != 2 {
		t.Fatalf("summary %+v", s)
	}
	// set.ended carried the summary as it was then.
	for _, f := range m.frames {
		if p, ok := f.Payload.(SetEndedPayload); ok && p.Summary.CuesAcknowledged != 1 {
			t.Fatalf("set.ended summary %+v", p.Summary)
		}
	}
}

// Only the latest maxCueSeqs cue frames can be acknowledged.
func TestCueAckIsBounded(t *testing.T) {
	t.Parallel()
	m := newSim(t, newState())
	var seqs []int64
	for range maxCueSeqs + 1 {
		seqs = append(seqs, m.do(CoachCue{Text: "Again"})[0].Seq)
	}
	if _, _, err := Apply(m.s, CueAck{CueSeq: seqs[0]}, m.at); code(err) != "not_found" {
		t.Fatalf("oldest: %v", err)
	}
	for _, seq := range seqs[1:] {
		m.do(CueAck{CueSeq: seq})
	}
	if len(m.s.unacked) != 0 || len(m.s.acked) != maxCueSeqs || m.s.cuesAcked != maxCueSeqs {
		t.Fatalf("unacked %d, acked %d, counted %d", len(m.s.unacked), len(m.s.acked), m.s.cuesAcked)
	}
}
