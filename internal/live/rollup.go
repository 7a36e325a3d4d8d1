package live

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/progress"
	"github.com/repcue/repcue/internal/reptimer"
)

// Rollup is what an ended set's events add up to for the progress queries: its
// day, its reps, and every cue frame pushed with the mistake behind it and the
// rep that was next to reach top. It replays the events through the same
// machine as every rebuild, one at a time, to tell which event pushed which cue.
//
// Why at the end and not lazily: an ended set never changes again (only cue
// receipts may follow, and those are read from set_events), the owner holds
// every event of the set when it ends, and writing the figures in the ending's
// transaction means the queries never meet an ended set without them — no
// "fill in what is missing" scan on every read. BackfillRollups covers the sets
// that ended before the figures were stored.
func Rollup(set domain.Set, b book, events []postgres.SetEvent, endedAt time.Time) postgres.SetRollup {
	r := postgres.SetRollup{SetID: set.ID, AthleteID: set.AthleteID, ExerciseID: set.ExerciseID,
		VariationID: set.VariationID, StartedAt: time.Time(set.StartedAt), EndedAt: endedAt, LoadKG: set.LoadKG, Side: set.Side}
	var firstRep *time.Time
	m := newMachine(set, b)
	rep := 0 // lockouts reached, from the latest state frame
	for _, e := range events {
		if e.Type == "rep.phase" && (firstRep == nil || e.At.Before(*firstRep)) {
			at := e.At
			firstRep = &at
		}
		for _, f := range m.replay(e) {
			switch p := f.Payload.(type) {
			case reptimer.StatePayload:
				rep = p.State.Rep
			case reptimer.CuePayload:
				c := postgres.RolledCue{Seq: f.Seq, At: p.Cue.At, Text: p.Cue.Text, Source: p.Cue.Source, NextRep: rep + 1}
				if id, err := uuid.Parse(p.Cue.ID); err == nil {
					c.CueID = &id
				}
				if p.Cue.Source == reptimer.SourceMistake {
					c.MistakeID = mistakeOf(e, b)
				}
				r.Cues = append(r.Cues, c)
			case reptimer.CueAckPayload:
				for i := range r.Cues {
					if r.Cues[i].Seq == p.CueSeq {
						r.Cues[i].Acknowledged = true
					}
				}
			}
		}
	}
	st := m.state
	r.Day = progress.Day(firstRep, time.Time(set.StartedAt))
	met := map[int]bool{}
	for _, f := range st.Reps() {
		r.Reps = append(r.Reps, postgres.RolledRep{N: f.N, ConcentricMS: f.ConcentricMS, HoldMS: f.HoldMS, EccentricMS: f.EccentricMS, HoldMet: f.HoldMet})
		met[f.N] = f.HoldMet
	}
	for i, c := range r.Cues {
		if m, ok := met[c.NextRep]; ok {
			r.Cues[i].NextRepHoldMet = &m
		}
	}
	return r
}

// mistakeOf is the mistake behind a mistake cue: the one a coach flagged, or
// the timer's "no pause at top" when a rep phase pushed it.
func mistakeOf(e postgres.SetEvent, b book) *uuid.UUID {
	if e.MistakeID != nil {
		id := *e.MistakeID
		return &id
	}
	if id, err := uuid.Parse(b.library.NoPauseAtTop); err == nil {
		return &id
	}
	return nil
}

// rollup is the owner's Rollup of its set as it ends (see record).
func (o *owner) rollup(endedAt time.Time) *postgres.SetRollup {
	events := make([]postgres.SetEvent, 0, len(o.events))
	for _, rec := range o.events {
		events = append(events, rec.event)
	}
	sort.Slice(events, func(i, j int) bool { return events[i].N < events[j].N })
	r := Rollup(o.set, o.book, events, endedAt)
	return &r
}

// BackfillRollups stores the progress figures of ended sets that have none
// (sets ended before the figures were written with the ending). It returns how
// many it stored.
func BackfillRollups(ctx context.Context, store *postgres.Store, log *slog.Logger) (int, error) {
	done := 0
	for {
		sets, err := store.SetsWithoutRollup(ctx, 200)
		if err != nil || len(sets) == 0 {
			return done, err
		}
		for _, set := range sets {
			cues, mistakes, err := store.SetCueBook(ctx, set.ID)
			if err != nil {
				return done, err
			}
			events, err := store.SetEvents(ctx, set.ID)
			if err != nil {
				return done, err
			}
			endedAt := time.Time(set.StartedAt)
			if set.EndedAt != nil {
				endedAt = time.Time(*set.EndedAt)
			}
			if err := store.SaveRollup(ctx, Rollup(set, newBook(cues, mistakes), events, endedAt)); err != nil {
				return done, err
			}
			done++
		}
		log.Info("progress figures backfilled", "sets", done)
	}
}
