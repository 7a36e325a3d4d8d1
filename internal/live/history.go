package live

import (
	"context"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/reptimer"
)

// SentCue is a cue pushed to the athlete during a set, with where it came
// from (the cue frame's sent_by, rep and mistake) and the athlete's receipt.
type SentCue struct {
	Seq            int64                `json:"seq"`
	ID             *string              `json:"id"`
	Text           string               `json:"text"`
	Source         string               `json:"source"`
	At             domain.Time          `json:"at"`
	SentBy         *string              `json:"sent_by"`
	Rep            int                  `json:"rep"`
	Mistake        *reptimer.MistakeRef `json:"mistake"`
	Acknowledged   bool                 `json:"acknowledged"`
	AcknowledgedAt *domain.Time         `json:"acknowledged_at"`
}

// sentCues are the cues the frames pushed, each with its receipt: the one
// reading of cue and cue.ack frames, for the live set's frames and a rebuild's.
func sentCues(frames []reptimer.Frame) []SentCue {
	cues := []SentCue{}
	bySeq := map[int64]int{}
	for _, f := range frames {
		switch p := f.Payload.(type) {
		case reptimer.CuePayload:
			sc := SentCue{Seq: f.Seq, Text: p.Cue.Text, Source: p.Cue.Source, At: domain.Time(p.Cue.At),
				Rep: p.Cue.Rep, Mistake: p.Cue.Mistake}
			if p.Cue.ID != "" {
				id := p.Cue.ID
				sc.ID = &id
			}
			if p.Cue.SentBy != "" {
				by := p.Cue.SentBy
				sc.SentBy = &by
			}
			bySeq[f.Seq] = len(cues)
			cues = append(cues, sc)
		case reptimer.CueAckPayload:
			if i, ok := bySeq[p.CueSeq]; ok {
				at := p.At
				cues[i].Acknowledged, cues[i].AcknowledgedAt = true, &at
			}
		}
	}
	return cues
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
	return SetHistory{Reps: st.Reps(), Cues: sentCues(frames), Summary: st.Summary(), LastSeq: st.LastSeq()}, nil
}
