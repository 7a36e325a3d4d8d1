package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
)

// An ended set's figures are stored in the ending's transaction, idempotently;
// a receipt stored with the ending, or after it, marks its cue acknowledged.
func TestRollupWithTheEndingAndLateReceipts(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	a := mkUser(t, s, domain.RoleAthlete)
	set, err := s.CreateSet(ctx, postgres.NewSet{AthleteID: a.ID, Variation: "barbell-hip-thrust", LoadKG: 60, TargetReps: 2, PauseHoldMS: 1000})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	met, hold := true, 1200
	rollup := &postgres.SetRollup{SetID: set.ID, AthleteID: a.ID, ExerciseID: set.ExerciseID, VariationID: set.VariationID,
		Day: domain.DateOf(now.UTC()), StartedAt: now, EndedAt: now, LoadKG: 60,
		Reps: []postgres.RolledRep{{N: 1, HoldMS: &hold, HoldMet: true}, {N: 2, HoldMS: &hold, HoldMet: true}},
		Cues: []postgres.RolledCue{
			{Seq: 4, At: now, Text: "Ribs down", Source: "coach", NextRep: 2, NextRepHoldMet: &met},
			{Seq: 9, At: now, Text: "Drive through heels", Source: "coach", NextRep: 3},
		}}
	lease := ownSet(t, s, set.ID)
	ev := func(typ string, n int, seq int64) postgres.SetEvent {
		return postgres.SetEvent{SetID: set.ID, EventID: uuid.New(), N: n, Type: typ, CueSeq: seq, ActorID: a.ID, At: now, Source: "live", Lease: lease}
	}
	ending := postgres.SetEnding{SetID: set.ID, EndedAt: now, Summary: map[string]int{"reps": 2}, Rollup: rollup}
	// The receipt of seq 4 travels in the same batch as the ending, before it.
	batch := []postgres.SetEvent{ev("cue.ack", 1, 4), ev("set.end", 2, 0)}
	for i := 0; i < 2; i++ { // a retried batch stores nothing twice
		if err := s.AppendEvents(ctx, batch, []postgres.SetEnding{ending}); err != nil {
			t.Fatal(err)
		}
	}
	acked := func() map[int64]bool {
		rows, err := s.Pool().Query(ctx, `SELECT seq, acknowledged FROM ended_set_cues WHERE set_id = $1`, set.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[int64]bool{}
		for rows.Next() {
			var seq int64
			var ok bool
			if err := rows.Scan(&seq, &ok); err != nil {
				t.Fatal(err)
			}
			out[seq] = ok
		}
		return out
	}
	if got := acked(); len(got) != 2 || !got[4] || got[9] {
		t.Fatalf("after the ending: %v", got)
	}
	var reps int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM ended_set_reps WHERE set_id = $1`, set.ID).Scan(&reps); err != nil || reps != 2 {
		t.Fatalf("reps stored: %d, %v", reps, err)
	}
	// A receipt after the end.
	if err := s.AppendEvents(ctx, []postgres.SetEvent{ev("cue.ack", 3, 9)}, nil); err != nil {
		t.Fatal(err)
	}
	if got := acked(); !got[4] || !got[9] {
		t.Fatalf("after a late receipt: %v", got)
	}
	groups, base, err := s.CueEffectiveness(ctx, []uuid.UUID{a.ID}, domain.DateOf(now.UTC()), domain.DateOf(now.UTC()))
	if err != nil || len(groups) != 2 || base.Reps != 2 || base.HoldsMet != 2 {
		t.Fatalf("cue effectiveness: %+v %+v %v", groups, base, err)
	}
	for _, g := range groups {
		if g.Acknowledged != 1 || g.Sent != 1 || g.Text == "Ribs down" && (g.Followed != 1 || g.FollowedHeld != 1) ||
			g.Text == "Drive through heels" && g.Followed != 0 {
			t.Fatalf("group %+v", g)
		}
	}
}
