package live

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
)

// withMistake gives the fixture's set a library mistake with a fix cue (the
// set's pinned cue book is re-pinned before anything loads the set).
func (f *fixture) withMistake(t *testing.T) (mistakeID uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	pool := f.store.Pool()
	var cueID uuid.UUID
	if err := pool.QueryRow(ctx, `INSERT INTO cues (exercise_id, text, phase, priority)
		VALUES ('11111111-1111-4111-8111-111111111111', 'Ribs down', 'any', 1) RETURNING id`).Scan(&cueID); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO mistakes (exercise_id, name, fix)
		VALUES ('11111111-1111-4111-8111-111111111111', 'Over-arching', 'Ribs down') RETURNING id`).Scan(&mistakeID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO mistake_cues (mistake_id, cue_id, position) VALUES ($1, $2, 0)`, mistakeID, cueID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE sets SET cue_book = exercise_cue_book('11111111-1111-4111-8111-111111111111') WHERE id = $1`, f.set.ID); err != nil {
		t.Fatal(err)
	}
	return mistakeID
}

// A coach's cue.send and mistake.flag with an event_id are acknowledged to the
// coach's socket once committed, pushed with their provenance, and a resend —
// before or after the set reloads from storage — is acknowledged again and
// pushed once (DESIGN.md §4).
func TestHubCoachCuesAreAcknowledgedAndDeduplicated(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{IdleTimeout: time.Millisecond, IdleCheck: 5 * time.Millisecond})
	mistakeID := f.withMistake(t)
	a, c := f.connect(f.athlete), f.connect(f.coach)
	setID := f.set.ID.String()
	send(a, map[string]any{"type": "subscribe", "set_id": setID})
	next(t, a, "snapshot")

	cueEvent := uuid.NewString()
	send(c, map[string]any{"type": "cue.send", "set_id": setID, "text": "Chin tucked", "event_id": cueEvent})
	if ack := next(t, c, "ack"); ack["event_id"] != cueEvent || ack["set_id"] != setID {
		t.Fatalf("coach ack %v", ack)
	}
	cue := next(t, a, "cue")["cue"].(map[string]any)
	if cue["sent_by"] != f.coach.UserID.String() || cue["rep"] != float64(1) || cue["mistake"] != nil || cue["source"] != "coach" {
		t.Fatalf("pushed cue %v", cue)
	}
	next(t, a, "state")
	events, err := f.store.SetEvents(context.Background(), f.set.ID)
	if err != nil || len(events) != 1 || events[0].EventID.String() != cueEvent {
		t.Fatalf("acknowledged cue not stored under its event_id: %+v %v", events, err)
	}

	// The coach resends (its ack was lost): acknowledged again, pushed never again.
	send(c, map[string]any{"type": "cue.send", "set_id": setID, "text": "Chin tucked", "event_id": cueEvent})
	if ack := next(t, c, "ack"); ack["event_id"] != cueEvent {
		t.Fatalf("resend: %v", ack)
	}

	flagEvent := uuid.NewString()
	send(c, map[string]any{"type": "mistake.flag", "set_id": setID, "mistake_id": mistakeID.String(), "event_id": flagEvent})
	if ack := next(t, c, "ack"); ack["event_id"] != flagEvent {
		t.Fatalf("flag ack %v", ack)
	}
	// The athlete's next frame is the flag's cue: the resend pushed nothing.
	fix := next(t, a, "cue")
	cue = fix["cue"].(map[string]any)
	m, _ := cue["mistake"].(map[string]any)
	if cue["sent_by"] != f.coach.UserID.String() || cue["source"] != "mistake" || m["id"] != mistakeID.String() || m["name"] != "Over-arching" {
		t.Fatalf("pushed fix %v", cue)
	}
	next(t, a, "state")

	// The athlete's receipt is kept with its time.
	send(a, map[string]any{"type": "cue.ack", "set_id": setID, "cue_seq": fix["seq"]})
	if got := next(t, a, "cue.ack"); got["cue_seq"] != fix["seq"] || got["at"] == nil {
		t.Fatalf("receipt frame %v", got)
	}

	// The set's goroutine retires and its state is gone; a resend is still
	// recognised from the stored event ids.
	send(a, map[string]any{"type": "unsubscribe", "set_id": setID})
	time.Sleep(100 * time.Millisecond)
	send(c, map[string]any{"type": "mistake.flag", "set_id": setID, "mistake_id": mistakeID.String(), "event_id": flagEvent})
	if ack := next(t, c, "ack"); ack["event_id"] != flagEvent {
		t.Fatalf("resend after a reload: %v", ack)
	}
	events, _ = f.store.SetEvents(context.Background(), f.set.ID)
	if len(events) != 3 { // cue, flag, receipt
		t.Fatalf("%d events stored, want 3: %+v", len(events), events)
	}

	// The set's detail keeps the same, with the receipt time.
	h, err := History(context.Background(), f.store, f.set)
	if err != nil || len(h.Cues) != 2 {
		t.Fatalf("history %+v %v", h, err)
	}
	if h.Cues[0].SentBy == nil || *h.Cues[0].SentBy != f.coach.UserID.String() || h.Cues[0].Rep != 1 || h.Cues[0].Acknowledged {
		t.Fatalf("first cue %+v", h.Cues[0])
	}
	if h.Cues[1].Mistake == nil || h.Cues[1].Mistake.Name != "Over-arching" || !h.Cues[1].Acknowledged || h.Cues[1].AcknowledgedAt == nil {
		t.Fatalf("fix %+v", h.Cues[1])
	}
}

// An event_id is the set's: another user's event under it is refused, and a
// malformed one is refused naming it.
func TestHubCoachEventIDsAreChecked(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a, c := f.connect(f.athlete), f.connect(f.coach)
	setID := f.set.ID.String()
	taken := f.phase(a, "up")
	next(t, a, "ack")
	send(c, map[string]any{"type": "cue.send", "set_id": setID, "text": "Chin tucked", "event_id": taken})
	if e := next(t, c, "error"); e["code"] != "conflict" || e["event_id"] != taken {
		t.Fatalf("taken event_id: %v", e)
	}
	send(c, map[string]any{"type": "cue.send", "set_id": setID, "text": "Chin tucked", "event_id": "nope"})
	if e := next(t, c, "error"); e["code"] != "invalid" || e["event_id"] != "nope" {
		t.Fatalf("bad event_id: %v", e)
	}
	// Without an event_id: pushed, no ack (the next frame the coach gets is
	// the pong, not an ack).
	send(c, map[string]any{"type": "cue.send", "set_id": setID, "text": "Chin tucked"})
	time.Sleep(50 * time.Millisecond)
	send(c, map[string]any{"type": "ping", "client_ts": 1})
	next(t, c, "pong")
}
