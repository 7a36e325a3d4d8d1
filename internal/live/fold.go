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

// timerEvent turns a stored event into the rep timer's event.
func timerEvent(e postgres.SetEvent) reptimer.Event {
	switch e.Type {
	case "rep.phase":
		return reptimer.RepPhase{Phase: reptimer.Phase(e.Phase)}
	case "set.end":
		return reptimer.End{}
	case "cue.send":
		c := reptimer.CoachCue{Text: e.Text}
		if e.CueID != nil {
			c.ID = e.CueID.String()
		}
		return c
	case "mistake.flag":
		return reptimer.FlagMistake{MistakeID: e.MistakeID.String()}
	case "cue.ack":
		return reptimer.CueAck{CueSeq: e.CueSeq}
	}
	return nil
}

// Fold rebuilds a set's state from its stored events, in the order they were
// applied, each at its own time. It returns every frame the events produced.
func Fold(set domain.Set, b book, events []postgres.SetEvent) (reptimer.State, []reptimer.Frame) {
	st := reptimer.New(reptimer.Config{PauseHoldMS: set.PauseHoldMS, Library: b.library}, time.Time(set.StartedAt))
	var all []reptimer.Frame
	for _, e := range events {
		ev := timerEvent(e)
		if ev == nil {
			continue
		}
		next, frames, err := reptimer.Apply(st, ev, e.At)
		st = next // on refusal: the deadlines that passed, without the event
		all = append(all, frames...)
		_ = err // stored events were valid when applied; a changed library may refuse a flag now
	}
	return st, all
}
