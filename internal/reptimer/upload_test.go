package reptimer

import "testing"

// An uploaded rep is judged by its events' own times: the server's clock never
// ends its hold, however late it is, and a down timed before the deadline ends
// the hold short even when it arrives long after.
func TestUploadedHoldIsJudgedByTheEventsTimesOnly(t *testing.T) {
	t.Parallel()
	s := New(Config{PauseHoldMS: 200, Library: lib}, t0)
	var err error
	for _, e := range []struct {
		p  Phase
		at int
	}{{Up, 0}, {Top, 100}} {
		if s, _, err = Apply(s, RepPhase{Phase: e.p, Uploaded: true}, t0.Add(ms(e.at))); err != nil {
			t.Fatal(err)
		}
	}
	if !NextDeadline(s).IsZero() || HoldCounting(s) {
		t.Fatalf("the clock counts an uploaded hold: deadline %v", NextDeadline(s))
	}
	before := s.LastSeq()
	s, frames := Advance(s, t0.Add(ms(60_000))) // the server's clock, a minute on
	if len(frames) != 0 || s.LastSeq() != before {
		t.Fatalf("the clock ended an uploaded hold: %v", types(frames))
	}
	s, frames, err = Apply(s, RepPhase{Phase: Down, Uploaded: true}, t0.Add(ms(150)))
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "frames", types(frames), []string{"state", "cue"})
	if s, _, err = Apply(s, RepPhase{Phase: Bottom, Uploaded: true}, t0.Add(ms(1000))); err != nil {
		t.Fatal(err)
	}
	if sum := s.Summary(); sum.HoldsMet != 0 || *sum.AvgHoldMS != 50 {
		t.Fatalf("summary %+v, want the hold cut short at 50 ms", sum)
	}

	// A later uploaded event does end the hold of an uploaded top, at its deadline.
	s, _, _ = Apply(s, RepPhase{Phase: Top, Uploaded: true}, t0.Add(ms(2000)))
	s, frames, _ = Apply(s, RepPhase{Phase: Down, Uploaded: true}, t0.Add(ms(2300)))
	mustEqual(t, "frames", types(frames), []string{"hold.done", "state", "state"})
	if r := s.Summary(); r.HoldsMet != 1 {
		t.Fatalf("summary %+v", r)
	}
}

// A live top's hold is the clock's: Advance ends it and the hub ticks it.
func TestLiveHoldIsTheClocks(t *testing.T) {
	t.Parallel()
	s, _, _ := Apply(New(Config{PauseHoldMS: 200, Library: lib}, t0), RepPhase{Phase: Top}, t0)
	if !HoldCounting(s) || !NextDeadline(s).Equal(t0.Add(ms(200))) {
		t.Fatalf("deadline %v", NextDeadline(s))
	}
	_, frames := Advance(s, t0.Add(ms(200)))
	mustEqual(t, "frames", types(frames), []string{"hold.done", "state"})
}
