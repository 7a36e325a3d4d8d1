package reptimer

import (
	"testing"
	"time"
)

// BenchmarkApplyRepCycle is one rep: up, top, down after the hold (Apply fires
// hold.done first), bottom; a set is restarted every 20 reps so that the reps
// slice stays the size of a real set.
func BenchmarkApplyRepCycle(b *testing.B) {
	s, at := newState(), t0
	cycle := []struct {
		phase Phase
		after time.Duration
	}{{Up, ms(500)}, {Top, ms(700)}, {Down, ms(1200)}, {Bottom, ms(900)}}
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range cycle {
			at = at.Add(c.after)
			var err error
			if s, _, err = Apply(s, RepPhase{Phase: c.phase}, at); err != nil {
				b.Fatal(err)
			}
		}
		if s.rep == 20 {
			s = newState()
		}
	}
}

// BenchmarkAdvance is the owner's timer firing: once with nothing due (a
// spurious wake-up), once at the hold's deadline.
func BenchmarkAdvance(b *testing.B) {
	s, _, _ := Apply(newState(), RepPhase{Phase: Top}, t0)
	b.Run("nothing-due", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Advance(s, t0.Add(ms(500)))
		}
	})
	b.Run("hold-done", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, frames := Advance(s, t0.Add(ms(1000))); len(frames) != 2 {
				b.Fatal(types(frames))
			}
		}
	})
}
