package httpapi_test

import (
	"strings"
	"sync"
	"testing"
)

func (h *harness) startSet(token, key string, body map[string]any) response {
	h.t.Helper()
	r := request{Method: "POST", Path: "/v1/sets", Token: token, Body: body}
	if key != "" {
		r.Header = map[string]string{"Idempotency-Key": key}
	}
	return h.do(r)
}

// POST /v1/sets with an Idempotency-Key: a retried start returns the same set
// (200, Idempotent-Replayed), another body under the key is a 409, keys are
// the athlete's own, and a refused start is not remembered.
func TestStartSetIdempotencyKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	ath, other := w.accounts[athlete], w.accounts[otherAthlete]
	body := map[string]any{"variation": "barbell-hip-thrust", "load_kg": 60, "target_reps": 5, "pause_hold_ms": 1000}

	r := h.startSet(ath.Access, "start-1", body)
	expect(t, r, 201)
	id := r.json(t)["id"].(string)
	// The answer was lost: the phone retries, with the same key, quoted this time.
	r = h.startSet(ath.Access, `"start-1"`, body)
	expect(t, r, 200)
	if got := r.json(t)["id"]; got != id || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retried start: %s %v", r.Body, r.Header)
	}
	// The same key with another body.
	changed := map[string]any{"variation": "barbell-hip-thrust", "load_kg": 62.5, "target_reps": 5, "pause_hold_ms": 1000}
	expect(t, h.startSet(ath.Access, "start-1", changed), 409, "conflict", "Idempotency-Key")
	// Another key while the set is live: 409 naming the live set.
	r = h.startSet(ath.Access, "start-2", body)
	expect(t, r, 409, "conflict")
	if got := r.json(t)["live_set_id"]; got != id {
		t.Fatalf("409 without the live set's id: %s", r.Body)
	}
	// And without a key.
	r = h.post("/v1/sets", ath.Access, body)
	expect(t, r, 409, "conflict")
	if got := r.json(t)["live_set_id"]; got != id {
		t.Fatalf("409 without the live set's id: %s", r.Body)
	}
	// Another athlete's key of the same name is another key.
	expect(t, h.startSet(other.Access, "start-1", body), 201)

	// The set ends; start-2 was refused, so it was not remembered and starts a set now.
	expect(t, h.post("/v1/sets/"+id+"/end", ath.Access, nil), 200)
	r = h.startSet(ath.Access, "start-2", body)
	expect(t, r, 201)
	id2 := r.json(t)["id"].(string)
	// start-1 still answers its (now ended) set.
	r = h.startSet(ath.Access, "start-1", body)
	expect(t, r, 200)
	if s := r.json(t); s["id"] != id || s["status"] != "ended" {
		t.Fatalf("start-1 replayed: %s", r.Body)
	}
	expect(t, h.post("/v1/sets/"+id2+"/end", ath.Access, nil), 200)

	// Bad keys.
	expect(t, h.startSet(ath.Access, strings.Repeat("k", 256), body), 400, "invalid", "Idempotency-Key")
	expect(t, h.startSet(ath.Access, "two words", body), 400, "invalid", "Idempotency-Key")

	// The same key sent twice at the same moment: one set, both answers name it.
	var wg sync.WaitGroup
	ids := make([]string, 2)
	statuses := make([]int, 2)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := h.startSet(ath.Access, "burst", body)
			statuses[i] = res.Status
			if res.Status < 300 {
				ids[i] = res.json(t)["id"].(string)
			}
		}()
	}
	wg.Wait()
	if ids[0] == "" || ids[0] != ids[1] || statuses[0]+statuses[1] != 201+200 {
		t.Fatalf("a burst under one key: %v %v", statuses, ids)
	}
}

// Keys live 24 hours: an expired key starts a new set.
func TestStartSetIdempotencyKeyExpires(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	ath := w.accounts[athlete]
	body := map[string]any{"variation": "barbell-hip-thrust", "load_kg": 60, "target_reps": 5, "pause_hold_ms": 1000}
	r := h.startSet(ath.Access, "day-1", body)
	expect(t, r, 201)
	id := r.json(t)["id"].(string)
	expect(t, h.post("/v1/sets/"+id+"/end", ath.Access, nil), 200)
	if _, err := h.store.Pool().Exec(t.Context(), `UPDATE set_start_keys SET created_at = now() - interval '25 hours'`); err != nil {
		t.Fatal(err)
	}
	r = h.startSet(ath.Access, "day-1", body)
	expect(t, r, 201)
	if r.json(t)["id"] == id {
		t.Fatal("an expired key replayed its set")
	}
}
