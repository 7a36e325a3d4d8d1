package reptimer

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// The states every event is tried from. Each starts with a coach cue (its cue
// frame has seq 1 and awaits a receipt) whose 5 s have passed, so that no
// deadline is due when the event is applied 10 ms after the state was built.
var fromStates = []struct {
	name  string
	phase Phase
	path  []any
}{
	{"idle", Idle, nil},
	{"up", Up, []any{Up}},
	{"top (hold running)", Top, []any{Up, ms(100), Top}},
	{"top (hold done)", Top, []any{Up, ms(100), Top, ms(1000)}},
	{"down", Down, []any{Up, ms(100), Top, ms(1000), Down}},
	{"bottom", Bottom, []any{Up, ms(100), Top, ms(1000), Down, ms(500), Bottom}},
	{"ended", Ended, []any{Up, End{}}},
}

func build(t testing.TB, path []any) *sim {
	m := newSim(t, newState())
	m.script(CoachCue{Text: "Chin up"}, ms(6000))
	m.script(path...)
	return m
}

// Outcomes: the frame types produced, or "!code" for a refusal.
const refused = "!invalid_transition"

// repPhaseOutcomes is the transition table: from each state (rows), the rep
// phases up, top, down and bottom (columns), then three phases an athlete
// cannot send.
var repPhaseOutcomes = map[string][7]string{
	//                     up        top             down          bottom            idle        ended       sideways
	"idle":               {"state", "state", refused, refused, "!invalid", "!invalid", "!invalid"},
	"up":                 {refused, "state", refused, refused, "!invalid", "!invalid", "!invalid"},
	"top (hold running)": {refused, refused, "state cue", refused, "!invalid", "!invalid", "!invalid"},
	"top (hold done)":    {refused, refused, "state", refused, "!invalid", "!invalid", "!invalid"},
	"down":               {refused, refused, refused, "state rep.done", "!invalid", "!invalid", "!invalid"},
	"bottom":             {"state", "state", refused, refused, "!invalid", "!invalid", "!invalid"},
	"ended":              {refused, refused, refused, refused, refused, refused, refused},
}

var repPhaseColumns = [7]Phase{Up, Top, Down, Bottom, Idle, Ended, "sideways"}

// The other events do not depend on the rep phase, only on whether the set
// is live or has ended.
var otherEvents = []struct {
	name        string
	ev          Event
	live, ended string
}{
	{"set.end", End{}, "state set.ended", refused},
	{"library cue", CoachCue{ID: "c-ribs", Text: "Ribs down"}, "cue state", refused},
	{"free-text cue", CoachCue{Text: "Chin tucked"}, "cue state", refused},
	{"empty cue", CoachCue{}, "!invalid", refused},
	{"cue of 121 runes", CoachCue{Text: strings.Repeat("é", 121)}, "!invalid", refused},
	{"cue of 120 runes", CoachCue{Text: strings.Repeat("é", 120)}, "cue state", refused},
	{"mistake.flag", FlagMistake{MistakeID: "m-arch"}, "cue state", refused},
	{"unknown mistake", FlagMistake{MistakeID: "nope"}, "!not_found", refused},
	{"mistake without a fix", FlagMistake{MistakeID: "m-nofix"}, "!conflict", refused},
	{"cue.ack", CueAck{CueSeq: 1}, "cue.ack", "cue.ack"},
	{"cue.ack of a state frame", CueAck{CueSeq: 2}, "!not_found", "!not_found"},
	{"cue.ack of a future seq", CueAck{CueSeq: 999}, "!not_found", "!not_found"},
	{"cue.ack of seq 0", CueAck{CueSeq: 0}, "!invalid", "!invalid"},
	{"nil event", nil, "!invalid", "!invalid"},
}

func TestEveryPhaseAndEvent(t *testing.T) {
	t.Parallel()
	for _, from := range fromStates {
		for i, to := range repPhaseColumns {
			t.Run(fmt.Sprintf("%s/%s", from.name, to), func(t *testing.T) {
				t.Parallel()
				checkStep(t, from.path, from.phase, RepPhase{Phase: to}, repPhaseOutcomes[from.name][i])
			})
		}
		for _, o := range otherEvents {
			want := o.live
			if from.phase == Ended {
				want = o.ended
			}
			t.Run(fmt.Sprintf("%s/%s", from.name, o.name), func(t *testing.T) {
				t.Parallel()
				checkStep(t, from.path, from.phase, o.ev, want)
			})
		}
	}
}

func checkStep(t *testing.T, path []any, fromPhase Phase, ev Event, want string) {
	m := build(t, path)
	if m.s.phase != fromPhase {
		t.Fatalf("built %s, want %s", m.s.phase, fromPhase)
	}
	at := m.at.Add(ms(10))
	old, snapshot := m.s, clone(m.s)
	next, frames, err := Apply(old, ev, at)
	mustEqual(t, "the caller's state after Apply", old, snapshot)

	if wantCode := strings.TrimPrefix(want, "!"); wantCode != want {
		if got := code(err); got != wantCode {
			t.Fatalf("error %v (code %q), want %q", err, got, wantCode)
		}
		if len(frames) != 0 {
			t.Fatalf("a refused event produced %v", types(frames))
		}
		mustEqual(t, "state after a refusal", next, old)
		return
	}
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	if got := strings.Join(types(frames), " "); got != want {
		t.Fatalf("frames %q, want %q", got, want)
	}
	wantPhase, wantRep := fromPhase, old.rep
	switch e := ev.(type) {
	case RepPhase:
		wantPhase = e.Phase
		if e.Phase == Top {
			wantRep++
		}
	case End:
		wantPhase = Ended
	}
	if next.phase != wantPhase || next.rep != wantRep {
		t.Fatalf("now %s with rep %d, want %s with rep %d", next.phase, next.rep, wantPhase, wantRep)
	}
	if (next.phase == Ended) != (next.status == StatusEnded) {
		t.Fatalf("phase %s with status %s", next.phase, next.status)
	}
	for i, f := range frames {
		if f.Seq != old.LastSeq()+int64(i)+1 {
			t.Fatalf("frame %d has seq %d after %d", i, f.Seq, old.LastSeq())
		}
	}
	if next.LastSeq() != old.LastSeq()+int64(len(frames)) {
		t.Fatalf("LastSeq %d after %d frames from %d", next.LastSeq(), len(frames), old.LastSeq())
	}
	// A state frame shows the state after the step.
	for _, f := range frames {
		if f.Type == FrameState && !reflect.DeepEqual(f.Payload.(StatePayload).State, next.View(at)) {
			t.Fatalf("state frame %+v, state %+v", f.Payload, next.View(at))
		}
	}
}
