package reptimer

import "time"

// cueInput is everything the cue of the moment depends on.
//
// Reps are numbered 1, 2, 3… and rep k is "under way" from the bottom of rep
// k−1 (or the start of the set) until its own bottom: repUnderWay is the
// number of completed reps + 1. So the `bottom` phase already belongs to the
// next rep, and a mistake flagged (or detected) while rep k is under way —
// mistakeRep = k — is the fix of the moment while rep k or rep k+1 is under
// way, that is until the bottom of rep k+1. For "no pause at top" detected at
// rep k's down, that is "until the next rep's bottom". A flag in `bottom`
// (between reps) belongs to the rep that follows.
type cueInput struct {
	now         time.Time
	phase       Phase
	phaseAt     time.Time // when the phase began: the `at` of an automatic cue
	coach       *Cue      // the coach's latest cue, nil if none
	mistake     *Cue      // the fix of the latest mistake, nil if none
	mistakeRep  int       // the rep under way when it was flagged
	repUnderWay int
	cues        []LibCue
}

func (s State) cueInput(now time.Time) cueInput {
	return cueInput{
		now: now, phase: s.phase, phaseAt: s.phaseAt,
		coach: s.coach, mistake: s.mistake, mistakeRep: s.mistakeRep,
		repUnderWay: s.repUnderWay(), cues: s.cfg.Library.Cues,
	}
}

// repUnderWay numbers the rep under way (see cueInput). While the set is live
// s.reps holds the completed reps only.
func (s State) repUnderWay() int { return len(s.reps) + 1 }

// chooseCue is the cue of the moment: the coach's latest cue for 5 s after it
// was sent; else the fix of a mistake flagged during this or the previous rep;
// else the library's highest-priority cue for the phase ("any" matches every
// phase; equal priorities go to the smaller id, so the choice never depends on
// the library's order); else none. An ended set has no cue of the moment.
// The result is a fresh copy.
func chooseCue(in cueInput) *Cue {
	if in.phase == Ended {
		return nil
	}
	if in.coach != nil && in.now.Before(in.coach.At.Add(CoachCueFor)) {
		c := *in.coach
		return &c
	}
	if in.mistake != nil && (in.mistakeRep == in.repUnderWay || in.mistakeRep == in.repUnderWay-1) {
		c := *in.mistake
		return &c
	}
	want := libraryPhase(in.phase)
	var best *LibCue
	for i := range in.cues {
		c := &in.cues[i]
		if c.Phase != want && c.Phase != "any" {
			continue
		}
		if best == nil || c.Priority > best.Priority || c.Priority == best.Priority && c.ID < best.ID {
			best = c
		}
	}
	if best == nil {
		return nil
	}
	return &Cue{ID: best.ID, Text: best.Text, Source: SourceAuto, At: in.phaseAt}
}

// libraryPhase is the library's cue phase for a rep phase.
func libraryPhase(p Phase) string {
	switch p {
	case Idle, Bottom:
		return "setup"
	case Up:
		return "concentric"
	case Top:
		return "lockout"
	case Down:
		return "eccentric"
	}
	return ""
}
