package live

import (
	"context"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/reptimer"
)

// SentCue is a cue pushed to the athlete during a set.
type SentCue struct {
	Seq          int64       `json:"seq"`
	ID           *string     `json:"id"`
	Text         string      `json:"text"`
	Source       string      `json:"source"`
	At           domain.Time `json:"at"`
	Acknowledged bool        `json:"acknowledged"`
}

// SetHistory is what a set's stored events add up to.
type SetHistory struct {
	Reps    []reptimer.RepFigures
	Cues    []SentCue
	Summary reptimer.Summary
	LastSeq int64 // the seq of the last frame the stored events account for
}

// History rebuilds a set from its stored events, exactly as its owner applied
// them live (with the set's pinned cue book and the clock readings stored with
// the events): the per-rep figures, every cue pushed (with its receipt), the
// summary and the last seq.
func History(ctx context.Context, store *postgres.Store, set domain.Set) (SetHistory, error) {
	cues, mistakes, err := store.SetCueBook(ctx, set.ID)
	if err != nil {
		return SetHistory{}, err
	}
	events, err := store.SetEvents(ctx, set.ID)
	if err != nil {
		return SetHistory{}, err
	}
	m, frames := fold(set, newBook(cues, mistakes), events)
	st := m.state
	h := SetHistory{Reps: st.Reps(), Cues: []SentCue{}, Summary: st.Summary(), LastSeq: st.LastSeq()}
	bySeq := map[int64]int{}
	for _, f := range frames {
		switch p := f.Payload.(type) {
		case reptimer.CuePayload:
			sc := SentCue{Seq: f.Seq, Text: p.Cue.Text, Source: p.Cue.Source, At: domain.Time(p.Cue.At)}
			if p.Cue.ID != "" {
				id := p.Cue.ID
				sc.ID = &id
			}
			bySeq[f.Seq] = len(h.Cues)
			h.Cues = append(h.Cues, sc)
		case reptimer.CueAckPayload:
			if i, ok := bySeq[p.CueSeq]; ok {
				h.Cues[i].Acknowledged = true
			}
		}
	}
	return h, nil
}
