package live

import (
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/reptimer"
)

// book is the cue library a set was started with, by id, for coach commands.
type book struct {
	library reptimer.Library
	cues    map[uuid.UUID]postgres.BookCue
}

func newBook(cues []postgres.BookCue, mistakes []postgres.BookMistake) book {
	b := book{cues: map[uuid.UUID]postgres.BookCue{}, library: reptimer.Library{Mistakes: map[string]reptimer.Mistake{}}}
	for _, c := range cues {
		b.cues[c.ID] = c
		b.library.Cues = append(b.library.Cues, libCue(c))
	}
	for _, m := range mistakes {
		rm := reptimer.Mistake{ID: m.ID.String(), Name: m.Name}
		if m.Fix != nil {
			rm.Fix = libCue(*m.Fix)
		}
		b.library.Mistakes[rm.ID] = rm
		if m.Code == "no_pause_at_top" {
			b.library.NoPauseAtTop = rm.ID
		}
	}
	return b
}

func libCue(c postgres.BookCue) reptimer.LibCue {
	return reptimer.LibCue{ID: c.ID.String(), Text: c.Text, Phase: c.Phase, Priority: c.Priority}
}

// timerEvent is the one mapping from an event as it is stored to the rep
// timer's event: the live path and every rebuild use it, so they cannot judge
// an event differently. nil for a type the timer does not know.
func timerEvent(e postgres.SetEvent) reptimer.Event {
	switch e.Type {
	case "rep.phase":
		return reptimer.RepPhase{Phase: reptimer.Phase(e.Phase), Uploaded: e.Source == "upload"}
	case "set.end":
		return reptimer.End{}
	case "cue.send":
		c := reptimer.CoachCue{Text: e.Text, SentBy: e.ActorID.String()}
		if e.CueID != nil {
			c.ID = e.CueID.String()
		}
		return c
	case "mistake.flag":
		if e.MistakeID == nil {
			return nil
		}
		return reptimer.FlagMistake{MistakeID: e.MistakeID.String(), SentBy: e.ActorID.String()}
	case "cue.ack":
		return reptimer.CueAck{CueSeq: e.CueSeq}
	}
	return nil
}

// storedTime is t as the database keeps it (microseconds, no monotonic
// reading): the timer is only ever given such times, so that a rebuild from
// the stored rows compares and subtracts exactly the same instants.
func storedTime(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// machine is a set's rep timer together with what storage needs to rebuild it
// exactly. Live, the set's owner drives it with tick (the server's clock) and
// apply (each event, whose stored form apply returns); a rebuild drives it
// with replay over the stored events. Every path goes through tick and apply,
// so what the clock did live is done again, in the same place: the stored
// event carries the clock reading that preceded it.
type machine struct {
	state reptimer.State
	clock *time.Time // the latest clock reading that fired something since the last stored event
}

func newMachine(set domain.Set, b book) machine {
	cfg := reptimer.Config{PauseHoldMS: set.PauseHoldMS, Library: b.library}
	return machine{state: reptimer.New(cfg, storedTime(time.Time(set.StartedAt)))}
}

// tick is the server's clock reaching now.
func (m *machine) tick(now time.Time) []reptimer.Frame {
	now = storedTime(now)
	st, frames := reptimer.Advance(m.state, now)
	m.state = st
	if len(frames) > 0 {
		m.clock = &now
	}
	return frames
}

// apply applies an event at its own time and returns it as it must be stored
// (its time as the database keeps it, with the pending clock reading) and the
// frames it produced. A refused event changes nothing. An accepted event that
// produces nothing (a receipt sent again) changes nothing either and is not to
// be stored: no frames means nothing to store.
func (m *machine) apply(e postgres.SetEvent) (postgres.SetEvent, []reptimer.Frame, error) {
	e.At, e.Clock = storedTime(e.At), m.clock
	ev := timerEvent(e)
	if ev == nil {
		return e, nil, domain.Errorf(domain.CodeInvalid, "unknown event type %q", e.Type)
	}
	st, frames, err := reptimer.Apply(m.state, ev, e.At)
	if err != nil || len(frames) == 0 {
		return e, nil, err
	}
	m.state, m.clock = st, nil
	return e, frames, nil
}

// replay applies a stored event as its owner did: the clock first, then the event.
func (m *machine) replay(e postgres.SetEvent) []reptimer.Frame {
	var frames []reptimer.Frame
	if e.Clock != nil {
		frames = m.tick(*e.Clock)
	}
	// A stored event the timer refuses now (a row another process wrote for
	// the same n, say) changes nothing, as it did for whoever refused it live.
	_, more, _ := m.apply(e)
	return append(frames, more...)
}

// fold rebuilds a set from its stored events, in the order its owner applied
// them, and returns every frame they produced. The rebuilt state has exactly
// the reps, figures, summary and seq the live set had after its last stored
// event; frames its clock made after that event are not stored, and a reload
// makes them again by ticking to now.
func fold(set domain.Set, b book, events []postgres.SetEvent) (machine, []reptimer.Frame) {
	m := newMachine(set, b)
	var all []reptimer.Frame
	for _, e := range events {
		all = append(all, m.replay(e)...)
	}
	m.clock = nil // every clock reading so far is in storage already
	return m, all
}
