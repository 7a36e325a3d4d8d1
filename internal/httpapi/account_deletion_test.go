package httpapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/uuid"
)

// doneSet starts a set from a prescription, uploads one whole rep and ends it,
// and returns its id.
func (h *harness) doneSet(a account, prescriptionID string) string {
	h.t.Helper()
	r := h.post("/v1/sets", a.Access, map[string]any{"prescription_id": prescriptionID})
	expect(h.t, r, 201)
	id := r.json(h.t)["id"].(string)
	start := time.Now().UTC().Add(-time.Minute)
	var events []map[string]any
	for i, phase := range []string{"up", "top", "down", "bottom"} {
		events = append(events, map[string]any{"event_id": uuid.NewString(), "type": "rep.phase", "phase": phase,
			"at": start.Add(time.Duration(i) * 2500 * time.Millisecond).Format(time.RFC3339Nano)})
	}
	expect(h.t, h.post("/v1/sets/"+id+"/events", a.Access, map[string]any{"events": events}), 200)
	expect(h.t, h.post("/v1/sets/"+id+"/end", a.Access, nil), 200)
	return id
}

func (h *harness) count(sql string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// readUntil reads frames until one of type typ (other types are skipped) or
// until the socket closes, which it returns.
func (c *wsClient) readUntil(typ string) (map[string]any, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m map[string]any
		if err := c.conn.ReadJSON(&m); err != nil {
			return nil, err
		}
		if m["type"] == typ {
			return m, nil
		}
	}
}

func TestAthleteDeletesTheAccount(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addVariation()
	addr := h.listen()
	a, c := h.register("athlete"), h.register("coach")
	h.link(c, a)
	done := h.doneSet(a, h.prescribe(c, a.ID))
	expect(t, h.post("/v1/sets/"+done+"/feedback", c.Access, map[string]any{"text": "Great pause"}), 201)
	// A live set the coach watches, and the athlete's own socket.
	r := h.post("/v1/sets", a.Access, map[string]any{"variation": testVariation, "load_kg": 60, "target_reps": 5, "pause_hold_ms": 500})
	expect(t, r, 201)
	live := r.json(t)["id"].(string)
	coachSock, _, err := dial(t, addr, c.Access, "", "")
	if err != nil {
		t.Fatal(err)
	}
	coachSock.send(map[string]any{"type": "subscribe", "set_id": live})
	coachSock.next("snapshot")
	athleteSock, _, err := dial(t, addr, a.Access, "", "")
	if err != nil {
		t.Fatal(err)
	}

	// A sign-in older than 5 minutes needs the password.
	h.clock.Advance(6 * time.Minute)
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/me", Token: a.Access}), 403, "forbidden", "password")
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/me", Token: a.Access, Body: map[string]any{"password": "not the password"}}), 403, "forbidden", "password")
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/me", Token: a.Access, Body: map[string]any{"passwd": "x"}}), 400, "invalid")
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/me", Token: a.Access, Body: map[string]any{"password": "correct horse battery"}}), 204)

	// Every socket of the account closes with 4001 at once; the coach stops watching.
	if _, err := athleteSock.readUntil("never"); !websocket.IsCloseError(err, 4001) {
		t.Fatalf("the athlete's socket ended with %v, want 4001", err)
	}
	if m, err := coachSock.readUntil("unsubscribed"); err != nil || m["set_id"] != live {
		t.Fatalf("the coach's socket: %v, %v", m, err)
	}
	// Every session ended.
	h.afterRecheck()
	expect(t, h.get("/v1/me", a.Access), 401)
	expect(t, h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": a.Refresh}), 401)
	expect(t, login(h, a.Email, "correct horse battery"), 401)
	// The person's data is gone; the coach sees nothing of it.
	expect(t, h.get("/v1/sets/"+done, c.Access), 404)
	if got := h.listAthletes(c, ""); len(got.Items) != 0 {
		t.Fatalf("the coach still lists %v", got.Items)
	}
	for sql, want := range map[string]int{
		`SELECT count(*) FROM sets WHERE athlete_id = $1`:                                                                                0,
		`SELECT count(*) FROM set_events e JOIN sets s ON s.id = e.set_id WHERE s.athlete_id = $1`:                                       0,
		`SELECT count(*) FROM set_feedback WHERE set_id IN (SELECT id FROM sets WHERE athlete_id = $1)`:                                  0,
		`SELECT count(*) FROM prescriptions WHERE athlete_id = $1`:                                                                       0,
		`SELECT count(*) FROM coach_links WHERE athlete_id = $1`:                                                                         0,
		`SELECT count(*) FROM sessions WHERE user_id = $1`:                                                                               0,
		`SELECT count(*) FROM email_tokens WHERE user_id = $1`:                                                                           0,
		`SELECT count(*) FROM mail_outbox WHERE user_id = $1`:                                                                            0,
		`SELECT count(*) FROM users WHERE id = $1 AND deleted_at IS NOT NULL AND display_name = 'Deleted user' AND email NOT LIKE '%@%'`: 1,
		`SELECT count(*) FROM audit_log WHERE entity = 'user' AND entity_id = $1 AND action = 'delete' AND actor_id = $1`:                1,
	} {
		if got := h.count(sql, a.ID); got != want {
			t.Errorf("%s: %d, want %d", sql, got, want)
		}
	}
	if n := h.count(`SELECT count(*) FROM audit_log WHERE coalesce(before::text, '') || coalesce(after::text, '') ILIKE '%' || $1 || '%'`, a.Email); n != 0 {
		t.Errorf("%d audit rows hold the email", n)
	}
	if n := h.count(`SELECT count(*) FROM users WHERE email = $1`, a.Email); n != 0 {
		t.Errorf("the email is still stored")
	}
	// The address is free again, for a new account.
	r = h.post("/v1/auth/register", "", map[string]any{"email": a.Email, "password": "correct horse battery", "display_name": "Back", "role": "athlete"})
	expect(t, r, 201)
	if r.json(t)["user"].(map[string]any)["id"] == a.ID {
		t.Fatal("the old account came back")
	}
}

// A coach deletes its account right after signing in (no password needed):
// what its athletes keep stays, naming an anonymous tombstone.
func TestCoachDeletesTheAccount(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addVariation()
	a, c := h.register("athlete"), h.register("coach")
	h.link(c, a)
	pid := h.prescribe(c, a.ID)
	done := h.doneSet(a, pid)
	expect(t, h.post("/v1/sets/"+done+"/feedback", c.Access, map[string]any{"text": "Great pause"}), 201)
	h.invite(c)
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/me", Token: c.Access}), 204)

	d := h.get("/v1/sets/"+done, a.Access).json(t)
	fb := d["feedback"].([]any)
	if len(fb) != 1 || fb[0].(map[string]any)["coach_id"] != c.ID || fb[0].(map[string]any)["text"] != "Great pause" {
		t.Fatalf("the athlete's feedback: %v", fb)
	}
	if p := h.get("/v1/prescriptions/"+pid, a.Access).json(t); p["coach_id"] != c.ID {
		t.Fatalf("the athlete's prescription: %v", p)
	}
	var coaches struct{ Items []any }
	h.get("/v1/athlete/coaches", a.Access).decode(t, &coaches)
	if len(coaches.Items) != 0 {
		t.Fatalf("still linked: %v", coaches.Items)
	}
	if n := h.count(`SELECT count(*) FROM coach_invites WHERE coach_id = $1`, c.ID); n != 0 {
		t.Fatalf("%d invites left", n)
	}
	if n := h.count(`SELECT count(*) FROM users WHERE id = $1 AND display_name = 'Deleted user' AND password_hash = '!' AND disabled_at IS NOT NULL`, c.ID); n != 1 {
		t.Fatal("no tombstone")
	}
}

func TestExportHoldsOnesOwnData(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addVariation()
	a, c := h.register("athlete"), h.register("coach")
	h.link(c, a)
	pid := h.prescribe(c, a.ID)
	done := h.doneSet(a, pid)
	expect(t, h.post("/v1/sets/"+done+"/feedback", c.Access, map[string]any{"text": "Great pause"}), 201)

	r := h.get("/v1/me/export", a.Access)
	expect(t, r, 200)
	if !strings.HasPrefix(r.Header.Get("Content-Disposition"), "attachment") || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", r.Header)
	}
	var ex struct {
		Profile struct {
			ID, Email string
		} `json:"profile"`
		Links []struct {
			UserID string `json:"user_id"`
			Role   string `json:"role"`
		} `json:"links"`
		Prescriptions []struct{ ID string } `json:"prescriptions"`
		Sets          []struct {
			ID       string                  `json:"id"`
			Reps     []struct{ N int }       `json:"reps"`
			Feedback []struct{ Text string } `json:"feedback"`
			Summary  map[string]any          `json:"summary"`
		} `json:"sets"`
		FeedbackGiven []any `json:"feedback_given"`
	}
	r.decode(t, &ex)
	if ex.Profile.ID != a.ID || ex.Profile.Email != a.Email || len(ex.Links) != 1 || ex.Links[0].UserID != c.ID || ex.Links[0].Role != "coach" ||
		len(ex.Prescriptions) != 1 || ex.Prescriptions[0].ID != pid || len(ex.Sets) != 1 || ex.Sets[0].ID != done ||
		len(ex.Sets[0].Reps) != 1 || len(ex.Sets[0].Feedback) != 1 || ex.Sets[0].Summary == nil || len(ex.FeedbackGiven) != 0 {
		t.Fatalf("athlete export: %s", r.Body)
	}

	r = h.get("/v1/me/export", c.Access)
	expect(t, r, 200)
	var cx struct {
		Invites       []struct{ Code string } `json:"invites"`
		Prescriptions []any                   `json:"prescriptions"`
		Sets          []any                   `json:"sets"`
		FeedbackGiven []struct{ Text string } `json:"feedback_given"`
	}
	r.decode(t, &cx)
	if len(cx.Invites) != 1 || len(cx.Prescriptions) != 1 || len(cx.Sets) != 0 || len(cx.FeedbackGiven) != 1 || cx.FeedbackGiven[0].Text != "Great pause" {
		t.Fatalf("coach export: %s", r.Body)
	}
	if strings.Contains(string(r.Body), a.Email) {
		t.Fatal("the coach's export holds the athlete's email")
	}
}
