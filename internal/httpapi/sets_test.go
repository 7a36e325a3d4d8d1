package httpapi_test

import (
	"strings"
	"testing"
	"time"
)

func TestSetsFromPrescriptionsPagingAndFeedback(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	ath, co := w.accounts[athlete], w.accounts[coach]
	r := h.post("/v1/prescriptions", co.Access, map[string]any{
		"athlete_id": ath.ID, "variation": "barbell-hip-thrust", "sets": 5, "reps": 5, "load_kg": 82.5,
		"pause_hold_ms": 1500, "scheduled_on": time.Now().UTC().Format(time.DateOnly), "notes": "Own the pause",
	})
	expect(t, r, 201)
	pid := r.json(t)["id"].(string)

	// Another athlete cannot start a set from it.
	expect(t, h.post("/v1/sets", w.accounts[otherAthlete].Access, map[string]any{"prescription_id": pid}), 404, "not_found")
	expect(t, h.post("/v1/sets", ath.Access, map[string]any{"prescription_id": pid, "load_kg": 10}), 400, "invalid", "prescription_id")

	// Three sets in a row, each ended before the next (one live set at a time).
	var ids []string
	for i := 0; i < 3; i++ {
		r = h.post("/v1/sets", ath.Access, map[string]any{"prescription_id": pid})
		expect(t, r, 201)
		s := r.json(t)
		if s["load_kg"] != 82.5 || s["target_reps"] != float64(5) || s["pause_hold_ms"] != float64(1500) ||
			s["variation"] != "barbell-hip-thrust" || s["prescription_id"] != pid || s["status"] != "live" {
			t.Fatalf("set from the prescription: %s", r.Body)
		}
		id := s["id"].(string)
		expect(t, h.post("/v1/sets", ath.Access, map[string]any{"prescription_id": pid}), 409, "conflict")
		r = h.post("/v1/sets/"+id+"/end", ath.Access, nil)
		expect(t, r, 200)
		if d := r.json(t); d["status"] != "ended" || d["summary"] == nil {
			t.Fatalf("ended set: %s", r.Body)
		}
		expect(t, h.post("/v1/sets/"+id+"/end", ath.Access, nil), 200) // ending again answers it again
		ids = append([]string{id}, ids...)
	}

	// The coach pages through them, newest first.
	var seen []string
	cursor := ""
	for page := 0; page < 5; page++ {
		path := "/v1/sets?athlete_id=" + ath.ID + "&status=ended&limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r = h.get(path, co.Access)
		expect(t, r, 200)
		var list struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		r.decode(t, &list)
		for _, it := range list.Items {
			seen = append(seen, it.ID)
		}
		if list.NextCursor == nil {
			break
		}
		cursor = *list.NextCursor
	}
	if strings.Join(seen, ",") != strings.Join(ids, ",") {
		t.Fatalf("paged %v, want %v", seen, ids)
	}
	expect(t, h.get("/v1/sets?status=paused", co.Access), 400, "invalid", "status")
	expect(t, h.get("/v1/sets?athlete_id="+ath.ID, w.accounts[otherCoach].Access), 404, "not_found")
	expect(t, h.get("/v1/sets?athlete_id="+ath.ID, w.accounts[otherAthlete].Access), 404, "not_found")
	r = h.get("/v1/sets", w.accounts[otherCoach].Access)
	expect(t, r, 200)
	if strings.Contains(string(r.Body), ids[0]) {
		t.Fatal("an unlinked coach lists the athlete's sets")
	}
	expect(t, h.get("/v1/sets?limit=99999999999999999999", co.Access), 200) // clamped, not refused

	// Feedback from the linked coach shows on the set.
	r = h.post("/v1/sets/"+ids[0]+"/feedback", co.Access, map[string]any{"text": "Great pauses on 3 and 4."})
	expect(t, r, 201)
	expect(t, h.post("/v1/sets/"+ids[0]+"/feedback", co.Access, map[string]any{"text": ""}), 400, "invalid", "text")
	r = h.get("/v1/sets/"+ids[0], ath.Access)
	expect(t, r, 200)
	if !strings.Contains(string(r.Body), "Great pauses on 3 and 4.") {
		t.Fatalf("feedback missing: %s", r.Body)
	}
}

func TestSetEndedReachesCoachesWhoDoNotWatch(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	addr := h.listen()
	c, _, err := dial(t, addr, w.accounts[coach].Access, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c.send(map[string]any{"type": "ping", "client_ts": 1})
	c.next("pong")
	r := h.post("/v1/sets", w.accounts[athlete].Access, map[string]any{"variation": "barbell-hip-thrust", "load_kg": 60, "target_reps": 5, "pause_hold_ms": 500})
	expect(t, r, 201)
	id := r.json(t)["id"].(string)
	c.next("set.started")
	expect(t, h.post("/v1/sets/"+id+"/end", w.accounts[athlete].Access, nil), 200)
	m := c.next("set.ended")
	if m["set_id"] != id || m["seq"] != nil || m["summary"].(map[string]any)["reps"] != float64(0) {
		t.Fatalf("set.ended %v", m)
	}
}

func TestTokensAndTicketsAreNeverLogged(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	addr := h.listen()
	r := h.post("/v1/live/tickets", w.accounts[coach].Access, nil)
	ticket := r.json(t)["ticket"].(string)
	if _, _, err := dial(t, addr, "", ticket, "https://coach.example.com"); err != nil {
		t.Fatal(err)
	}
	_, _, _ = dial(t, addr, "", ticket, "") // refused: used
	if _, _, err := dial(t, addr, w.accounts[athlete].Access, "", ""); err != nil {
		t.Fatal(err)
	}
	h.get("/v1/me", w.accounts[athlete].Access)
	h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": w.accounts[athlete].Refresh})
	time.Sleep(50 * time.Millisecond)
	logs := h.logs.String()
	if !strings.Contains(logs, "/v1/live") {
		t.Fatalf("the requests were not logged at all:\n%s", logs)
	}
	for name, secret := range map[string]string{"ticket": ticket, "access token": w.accounts[athlete].Access, "refresh token": w.accounts[athlete].Refresh} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
}
