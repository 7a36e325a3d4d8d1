package httpapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/config"
	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/httpapi"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/push"
)

// pushWorld is a harness with a linked athlete and coach, the test exercise and
// a push endpoint that decrypts what it receives.
type pushWorld struct {
	*harness
	athlete, coach account
	ep             *pushEndpoint
}

func newPushWorld(t *testing.T) *pushWorld {
	h := newHarness(t)
	h.addVariation()
	w := &pushWorld{harness: h, athlete: h.register("athlete"), coach: h.register("coach")}
	_, err := h.store.Pool().Exec(context.Background(),
		`INSERT INTO coach_links (coach_id, athlete_id) VALUES ($1, $2)`, w.coach.ID, w.athlete.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The endpoint trusts the key the API publishes, as a browser does.
	r := h.get("/v1/push/vapid-public-key", "")
	expect(t, r, 200)
	key := r.json(t)["public_key"].(string)
	if key != h.push.key.PublicKey() {
		t.Fatalf("published VAPID key %s is not the worker's %s", key, h.push.key.PublicKey())
	}
	w.ep = newPushEndpoint(t, key)
	return w
}

// device registers a subscription of the endpoint for a user and returns its id.
func (w *pushWorld) device(who account, name string) string {
	w.t.Helper()
	r := w.post("/v1/me/devices", who.Access, w.ep.subscribe(name))
	expect(w.t, r, 201)
	return r.json(w.t)["id"].(string)
}

func (w *pushWorld) prescribe() string {
	w.t.Helper()
	r := w.post("/v1/prescriptions", w.coach.Access, map[string]any{
		"athlete_id": w.athlete.ID, "variation": testVariation, "sets": 3, "reps": 8, "load_kg": 62.5,
		"pause_hold_ms": 1000, "scheduled_on": time.Now().UTC().Format(time.DateOnly), "notes": ""})
	expect(w.t, r, 201)
	return r.json(w.t)["id"].(string)
}

// queued counts outbox rows.
func (w *pushWorld) queued() int {
	w.t.Helper()
	var n int
	if err := w.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM push_outbox`).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPushEndToEnd(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t)
	run(t, w.push.worker)
	athleteDevice := w.device(w.athlete, "athlete-phone")
	w.device(w.coach, "coach-tablet")

	r := w.get("/v1/me/devices", w.athlete.Access)
	expect(t, r, 200)
	if items := r.json(t)["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != athleteDevice ||
		!strings.HasPrefix(items[0].(map[string]any)["endpoint"].(string), w.ep.srv.URL) {
		t.Fatalf("devices: %s", r.Body)
	}
	if strings.Contains(string(r.Body), "p256dh") || strings.Contains(string(r.Body), "auth") {
		t.Fatalf("the subscription's keys are shown: %s", r.Body)
	}

	// A new prescription reaches the athlete.
	start := time.Now()
	pid := w.prescribe()
	got := w.ep.next(t)
	t.Logf("prescription created → push decrypted at the endpoint: %s", time.Since(start).Round(time.Millisecond))
	if got.Sub != "athlete-phone" || got.Notice["type"] != "prescription.created" || got.Notice["prescription_id"] != pid ||
		!strings.Contains(got.Notice["title"].(string), "coach") || !strings.Contains(got.Notice["body"].(string), "Test variation: 3 × 8 at 62.5 kg") {
		t.Fatalf("prescription push: %+v", got)
	}
	if got.Urgency != "normal" || got.TTL < 6*24*3600 || got.TTL > 7*24*3600 {
		t.Fatalf("prescription push: urgency %q, TTL %d", got.Urgency, got.TTL)
	}

	// The athlete starts a set while the coach has no socket open: the coach hears of it.
	r = w.post("/v1/sets", w.athlete.Access, map[string]any{"variation": testVariation, "load_kg": 60, "target_reps": 5, "pause_hold_ms": 1000})
	expect(t, r, 201)
	setID := r.json(t)["id"].(string)
	got = w.ep.next(t)
	if got.Sub != "coach-tablet" || got.Notice["type"] != "set.started" || got.Notice["set_id"] != setID ||
		got.Notice["athlete_id"] != w.athlete.ID || got.Urgency != "high" || got.TTL > 15*60 {
		t.Fatalf("set.started push: %+v", got)
	}

	// The coach's feedback on it reaches the athlete.
	r = w.post("/v1/sets/"+setID+"/feedback", w.coach.Access, map[string]any{"text": "Great lockouts, keep the ribs down."})
	expect(t, r, 201)
	fid := r.json(t)["id"].(string)
	got = w.ep.next(t)
	if got.Sub != "athlete-phone" || got.Notice["type"] != "feedback.created" || got.Notice["set_id"] != setID ||
		got.Notice["feedback_id"] != fid || got.Notice["body"] != "Great lockouts, keep the ribs down." {
		t.Fatalf("feedback push: %+v", got)
	}
	expect(t, w.post("/v1/sets/"+setID+"/end", w.athlete.Access, nil), 200)

	// With the coach's dashboard connected, the next set is announced live only.
	addr := w.listen()
	ws, _, err := dial(t, addr, w.coach.Access, "", "")
	if err != nil {
		t.Fatal(err)
	}
	coachID := uuid.MustParse(w.coach.ID)
	eventually(t, "the coach's socket is registered", func() bool { return w.hub.Sockets(coachID) > 0 })
	r = w.post("/v1/sets", w.athlete.Access, map[string]any{"variation": testVariation, "load_kg": 60, "target_reps": 5, "pause_hold_ms": 1000})
	expect(t, r, 201)
	ws.next("set.started")
	if n := w.queued(); n != 0 {
		t.Fatalf("%d pushes queued for a coach who is watching", n)
	}
	w.ep.quiet(t, 300*time.Millisecond)
}

func TestPushRetriedAfterServerError(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t)
	run(t, w.push.worker)
	w.device(w.athlete, "phone")
	w.ep.answer("phone", http.StatusInternalServerError)
	pid := w.prescribe()
	if got := w.ep.next(t); got.Notice["prescription_id"] != pid {
		t.Fatalf("push: %+v", got)
	}
	if n := w.ep.requestsTo("phone"); n != 2 {
		t.Fatalf("%d requests, want a failed one and its retry", n)
	}
	eventually(t, "the outbox is empty", func() bool { return w.queued() == 0 })
	w.ep.quiet(t, 300*time.Millisecond)
}

func TestPushGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t)
	run(t, newTestWorker(w.store, w.push.key, w.push.log, 3))
	w.device(w.athlete, "phone")
	w.ep.answer("phone", 503, 503, 503, 503, 503)
	w.prescribe()
	eventually(t, "the message is dropped", func() bool { return w.queued() == 0 })
	time.Sleep(300 * time.Millisecond)
	if n := w.ep.requestsTo("phone"); n != 3 {
		t.Fatalf("%d requests, want 3 (the maximum)", n)
	}
	// The device itself stays: the push service may recover.
	if items := w.get("/v1/me/devices", w.athlete.Access).json(t)["items"].([]any); len(items) != 1 {
		t.Fatalf("devices after failures: %v", items)
	}
}

func TestPushGoneEndpointIsRemoved(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t)
	run(t, w.push.worker)
	w.device(w.athlete, "old-phone")
	kept := w.device(w.athlete, "new-phone")
	w.ep.answer("old-phone", http.StatusGone)
	pid := w.prescribe()
	if got := w.ep.next(t); got.Sub != "new-phone" || got.Notice["prescription_id"] != pid {
		t.Fatalf("push: %+v", got)
	}
	eventually(t, "the gone device is removed", func() bool {
		items := w.get("/v1/me/devices", w.athlete.Access).json(t)["items"].([]any)
		return len(items) == 1 && items[0].(map[string]any)["id"] == kept
	})
	eventually(t, "the outbox is empty", func() bool { return w.queued() == 0 })
	w.prescribe()
	if got := w.ep.next(t); got.Sub != "new-phone" {
		t.Fatalf("push: %+v", got)
	}
	if n := w.ep.requestsTo("old-phone"); n != 1 {
		t.Fatalf("%d requests to the gone endpoint, want 1", n)
	}
}

// A message queued by one process is sent by another started later: the
// outbox is in PostgreSQL, and a send that failed before a restart is retried.
func TestPushSurvivesRestart(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t)
	w.device(w.athlete, "phone")
	w.ep.answer("phone", http.StatusBadGateway)
	pid := w.prescribe() // no worker runs yet: the notice waits in the outbox
	if n := w.queued(); n != 1 {
		t.Fatalf("%d rows queued, want 1", n)
	}
	stop := run(t, newTestWorker(w.store, w.push.key, w.push.log, 8))
	eventually(t, "the first process tried once", func() bool { return w.ep.requestsTo("phone") == 1 })
	stop()
	if n := w.queued(); n != 1 {
		t.Fatalf("%d rows queued after the failed send, want 1", n)
	}

	// "Another process": its own pool on the same database, its own worker.
	pool, err := postgres.Open(context.Background(), w.store.Pool().Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	run(t, newTestWorker(postgres.NewStore(pool), w.push.key, w.push.log, 8))
	if got := w.ep.next(t); got.Notice["prescription_id"] != pid {
		t.Fatalf("push: %+v", got)
	}
	eventually(t, "the outbox is empty", func() bool { return w.queued() == 0 })
}

// Two processes drain one outbox: every message is sent exactly once.
func TestPushTwoWorkersNeverSendTwice(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t)
	w.device(w.athlete, "phone")
	w.ep.delay = 5 * time.Millisecond
	const n = 60
	ctx := context.Background()
	want := map[string]bool{}
	for range n {
		p, err := w.store.CreatePrescription(ctx, domain.Prescription{
			CoachID: uuid.MustParse(w.coach.ID), AthleteID: uuid.MustParse(w.athlete.ID), Variation: testVariation,
			Sets: 3, Reps: 8, LoadKg: 60, PauseHoldMs: 1000, ScheduledOn: domain.DateOf(time.Now().UTC())})
		if err != nil {
			t.Fatal(err)
		}
		want[p.ID.String()] = true
	}
	small := func(c *push.Config) { c.Batch, c.Parallel = 4, 2 }
	for range 2 {
		pool, err := postgres.Open(ctx, w.store.Pool().Config().ConnString())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		run(t, newTestWorker(postgres.NewStore(pool), w.push.key, w.push.log, 8, small))
	}
	seen := map[string]int{}
	for range n {
		got := w.ep.next(t)
		seen[got.Notice["prescription_id"].(string)]++
	}
	w.ep.quiet(t, 300*time.Millisecond)
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("prescription %s pushed %d times", id, seen[id])
		}
	}
	if r := w.ep.requestsTo("phone"); r != n {
		t.Fatalf("%d requests for %d messages", r, n)
	}
}

func TestDeviceRegistration(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t)
	sub := w.ep.subscribe("phone")
	keys := sub["keys"].(map[string]any)
	body := func(endpoint, p256dh, auth string) map[string]any {
		return map[string]any{"endpoint": endpoint, "keys": map[string]any{"p256dh": p256dh, "auth": auth}}
	}
	p, a := keys["p256dh"].(string), keys["auth"].(string)
	notOnCurve := "BA" + strings.Repeat("A", 85)
	for _, c := range []struct {
		name  string
		body  any
		field string
	}{
		{"plain http on a public host", body("http://push.example.com/x", p, a), "endpoint"},
		{"another scheme", body("ftp://push.example.com/x", p, a), "endpoint"},
		{"a private address", body("https://10.1.2.3/x", p, a), "endpoint"},
		{"link-local", body("https://[fe80::1]/x", p, a), "endpoint"},
		{"credentials", body("https://user:pw@push.example.com/x", p, a), "endpoint"},
		{"relative", body("/push/x", p, a), "endpoint"},
		{"too long", body("https://push.example.com/"+strings.Repeat("x", 2100), p, a), "endpoint"},
		{"short p256dh", body("https://push.example.com/x", p[:40], a), "keys.p256dh"},
		{"p256dh off the curve", body("https://push.example.com/x", notOnCurve, a), "keys.p256dh"},
		{"p256dh in standard base64", body("https://push.example.com/x", strings.ReplaceAll(strings.ReplaceAll(p, "-", "+"), "_", "/")+"+/", a), "keys.p256dh"},
		{"short auth", body("https://push.example.com/x", p, a[:10]), "keys.auth"},
		{"missing keys", map[string]any{"endpoint": "https://push.example.com/x"}, "keys.p256dh"},
		{"unknown field", map[string]any{"endpoint": "https://push.example.com/x", "keys": keys, "topic": "x"}, "topic"},
	} {
		r := w.post("/v1/me/devices", w.athlete.Access, c.body)
		if r.Status != 400 || !strings.Contains(string(r.Body), `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.name, r.Status, r.Body, c.field)
		}
	}
	if n := len(w.get("/v1/me/devices", w.athlete.Access).json(t)["items"].([]any)); n != 0 {
		t.Fatalf("%d devices stored from refused registrations", n)
	}

	// The same subscription again: 200, the same device.
	first := w.post("/v1/me/devices", w.athlete.Access, sub)
	expect(t, first, 201)
	again := w.post("/v1/me/devices", w.athlete.Access, sub)
	expect(t, again, 200)
	id := first.json(t)["id"].(string)
	if again.json(t)["id"] != id {
		t.Fatalf("re-registration made a new device: %s vs %s", again.Body, first.Body)
	}

	// Someone else's device is not found; one's own is removed once.
	other := w.register("athlete")
	expect(t, w.do(request{Method: "DELETE", Path: "/v1/me/devices/" + id, Token: other.Access}), 404, "not_found")
	expect(t, w.do(request{Method: "DELETE", Path: "/v1/me/devices/not-a-uuid", Token: w.athlete.Access}), 404, "not_found")

	// The browser changes hands: the endpoint moves to the new user as a new device.
	moved := w.post("/v1/me/devices", other.Access, sub)
	expect(t, moved, 201)
	if moved.json(t)["id"] == id {
		t.Fatal("a moved endpoint kept its old id")
	}
	if n := len(w.get("/v1/me/devices", w.athlete.Access).json(t)["items"].([]any)); n != 0 {
		t.Fatalf("the previous owner still has %d devices", n)
	}
	expect(t, w.do(request{Method: "DELETE", Path: "/v1/me/devices/" + moved.json(t)["id"].(string), Token: other.Access}), 204)
	expect(t, w.do(request{Method: "DELETE", Path: "/v1/me/devices/" + moved.json(t)["id"].(string), Token: other.Access}), 404, "not_found")

	// At most REPCUE_PUSH_MAX_DEVICES (10) per user.
	for i := range 10 {
		expect(t, w.post("/v1/me/devices", w.athlete.Access, w.ep.subscribe(fmt.Sprint("many-", i))), 201)
	}
	expect(t, w.post("/v1/me/devices", w.athlete.Access, w.ep.subscribe("one-too-many")), 409, "conflict")
}

// Without a VAPID key (no REPCUE_VAPID_PRIVATE_KEY_FILE, no REPCUE_DEV) push is
// off, and its routes say so rather than take subscriptions that would never
// receive anything.
func TestPushIsOffWithoutAKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.register("athlete")
	h.app = httpapi.New(httpapi.Deps{Config: config.Config{}, Log: slog.New(slog.DiscardHandler), Store: h.store,
		Tokens: h.tokens, Hasher: auth.NewHasher(1), Live: h.hub})
	expect(t, h.get("/v1/push/vapid-public-key", ""), 503, "unavailable")
	expect(t, h.post("/v1/me/devices", a.Access, testSubscription()), 503, "unavailable")
	expect(t, h.get("/v1/me/devices", a.Access), 200)
}

// A coach's one prescribe call (several weeks) is one notice to the athlete;
// a set logged after the fact (back-dated) is no news to its coach.
func TestPushOncePerPrescribeAndNotForBackdatedSets(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t) // no worker runs: what is queued stays queued
	w.device(w.athlete, "athlete-phone")
	w.device(w.coach, "coach-tablet")

	r := w.post("/v1/athletes/"+w.athlete.ID+"/progression/prescribe", w.coach.Access, map[string]any{
		"exercise": "hip-thrust", "scheduled_on": time.Now().UTC().Format(time.DateOnly), "repeat_weeks": 4})
	expect(t, r, 201)
	if items := r.json(t)["items"].([]any); len(items) != 4 {
		t.Fatalf("prescribe made %d prescriptions, want 4", len(items))
	}
	if n := w.queued(); n != 1 {
		t.Fatalf("%d notices queued for one prescribe call, want 1", n)
	}

	r = w.post("/v1/sets", w.athlete.Access, map[string]any{"variation": testVariation, "load_kg": 60, "target_reps": 5,
		"pause_hold_ms": 1000, "started_at": time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339)})
	expect(t, r, 201)
	if n := w.queued(); n != 1 {
		t.Fatalf("a back-dated set queued a set.started notice (%d queued)", n)
	}
}
