package reptimer

import "time"

// figures of the rep under way as it stands in phase p at end: p is Bottom for
// a completed rep (end is its bottom), Top or Down for a rep cut short by
// set.end (end is the end of the set).
func (s State) figures(p Phase, end time.Time) RepFigures {
	f := RepFigures{N: s.rep}
	if s.hasUp {
		f.ConcentricMS = intPtr(floorMS(s.topAt.Sub(s.upAt)))
	}
	if p == Top {
		// Cut short at the top (the set ended before down): the hold is judged
		// up to its target and no further. Whatever followed the deadline was
		// waiting, not holding, so hold_ms is capped at pause_hold_ms; a set
		// ended before the deadline has held only until the end.
		f.HoldMS = intPtr(min(floorMS(end.Sub(s.topAt)), s.cfg.PauseHoldMS))
	} else {
		f.HoldMS = intPtr(floorMS(s.downAt.Sub(s.topAt)))
	}
	if p == Bottom {
		f.EccentricMS = intPtr(floorMS(end.Sub(s.downAt)))
	}
	f.HoldMet = *f.HoldMS >= s.cfg.PauseHoldMS
	return f
}

func intPtr(v int) *int { return &v }

// Summary of the set. Once the set has ended it is the final summary. While it
// is live it is the summary the set would have if it ended at the latest time
// applied: a rep that has reached top counts, with its figures so far, so that
// reps always equals the rep count of the state.
func (s State) Summary() Summary {
	reps := s.reps
	if s.status == StatusLive && (s.phase == Top || s.phase == Down) {
		reps = append(reps[:len(reps):len(reps)], s.figures(s.phase, s.last))
	}
	sum := Summary{Reps: len(reps), CuesSent: s.cuesSent, CuesAcknowledged: s.cuesAcked}
	var conc, hold, ecc average
	for _, r := range reps {
		if r.HoldMet {
			sum.HoldsMet++
		}
		sum.TimeUnderTensionMS += conc.add(r.ConcentricMS) + hold.add(r.HoldMS) + ecc.add(r.EccentricMS)
	}
	if sum.Reps > 0 {
		sum.HoldCompliance = float64(sum.HoldsMet) / float64(sum.Reps)
	}
	sum.AvgConcentricMS, sum.AvgHoldMS, sum.AvgEccentricMS = conc.value(), hold.value(), ecc.value()
	return sum
}

// average of the figures that are present.
type average struct{ total, n int }

// add counts v when present and returns it (0 when absent).
func (a *average) add(v *int) int {
	if v == nil {
		return 0
	}
	a.total += *v
	a.n++
	return *v
}

// value is the average rounded to the nearest millisecond (halves up), nil
// when no rep had the figure.
func (a average) value() *int {
	if a.n == 0 {
		return nil
	}
	return intPtr((a.total + a.n/2) / a.n)
}
