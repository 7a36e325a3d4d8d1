package reptimer

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// The hip thrust's cues, and mistakes with and without a fix.
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
		"m-nofix": {ID: "m-nofix", Name: "Its fix cue was deleted"},
	},
	NoPauseAtTop: "m-pause",
}

func newState() State { return New(Config{PauseHoldMS: 1000, Library: lib}, t0) }

// sim drives a state through a script, failing the test on any refusal.
type sim struct {
	t      testing.TB
	s      State
	at     time.Time
	frames []Frame // everything produced so far
}

func newSim(t testing.TB, s State) *sim { return &sim{t: t, s: s, at: t0} }

// wait lets d pass and fires what the clock does; it returns those frames.
func (m *sim) wait(d time.Duration) []Frame {
	m.at = m.at.Add(d)
	var frames []Frame
	m.s, frames = Advance(m.s, m.at)
	m.frames = append(m.frames, frames...)
	return frames
}

// do applies an event (a Phase is a RepPhase) now and returns its frames.
func (m *sim) do(ev any) []Frame {
	m.t.Helper()
	e, ok := ev.(Event)
	if p, isPhase := ev.(Phase); isPhase {
		e, ok = RepPhase{Phase: p}, true
	}
	if !ok {
		m.t.Fatalf("not an event: %#v", ev)
	}
	next, frames, err := Apply(m.s, e, m.at)
	if err != nil {
		m.t.Fatalf("%#v refused at +%v: %v", e, m.at.Sub(t0), err)
	}
	m.s = next
	m.frames = append(m.frames, frames...)
	return frames
}

// script runs steps: a time.Duration waits, anything else is applied.
func (m *sim) script(steps ...any) {
	m.t.Helper()
	for _, st := range steps {
		if d, ok := st.(time.Duration); ok {
			m.wait(d)
			continue
		}
		m.do(st)
	}
}

func (m *sim) view() View { return m.s.View(m.at) }

func types(frames []Frame) []string {
	out := []string{}
	for _, f := range frames {
		out = append(out, f.Type)
	}
	return out
}

func code(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if !errors.As(err, &e) {
		return "not an *Error: " + err.Error()
	}
	return string(e.Code)
}

// clone is a deep copy of a State, to check later that nothing shared changed.
func clone(s State) State {
	c := s
	c.reps = slices.Clone(s.reps)
	for i, r := range c.reps {
		c.reps[i] = RepFigures{N: r.N, ConcentricMS: copyInt(r.ConcentricMS), HoldMS: copyInt(r.HoldMS), EccentricMS: copyInt(r.EccentricMS), HoldMet: r.HoldMet}
	}
	c.unacked, c.acked = slices.Clone(s.unacked), slices.Clone(s.acked)
	if s.coach != nil {
		v := *s.coach
		c.coach = &v
	}
	if s.mistake != nil {
		v := *s.mistake
		c.mistake = &v
	}
	return c
}

// copyInt is written out here rather than using the package's cloneInt, so
// that a bug there cannot hide one in the test.
func copyInt(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func mustEqual(t testing.TB, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
