package httpapi_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// invite makes an invite code as a coach.
func (h *harness) invite(coach account) string {
	h.t.Helper()
	r := h.post("/v1/coach/invites", coach.Access, nil)
	expect(h.t, r, 201)
	return r.json(h.t)["code"].(string)
}

// link links an athlete to a coach through an invite.
func (h *harness) link(coach, athlete account) {
	h.t.Helper()
	expect(h.t, h.post("/v1/athlete/coach-links", athlete.Access, map[string]any{"code": h.invite(coach)}), 201)
}

// prescribe creates a valid prescription and returns its id.
func (h *harness) prescribe(coach account, athleteID string) string {
	h.t.Helper()
	r := h.post("/v1/prescriptions", coach.Access, prescription(athleteID, nil))
	expect(h.t, r, 201)
	return r.json(h.t)["id"].(string)
}

func (h *harness) del(path, token string) response {
	h.t.Helper()
	return h.do(request{Method: "DELETE", Path: path, Token: token})
}

// testToday is fixed once, so that a test running across midnight (UTC) still
// agrees with itself about which day is which.
var testToday = time.Now().UTC()

// day is today plus n days, as the API writes dates.
func day(n int) string { return testToday.AddDate(0, 0, n).Format(time.DateOnly) }

// prescription is a valid body for POST /v1/prescriptions; changes override fields
// (a nil value removes the field).
func prescription(athleteID string, changes map[string]any) map[string]any {
	b := map[string]any{
		"athlete_id": athleteID, "variation": testVariation, "sets": 3, "reps": 8,
		"load_kg": 62.5, "pause_hold_ms": 2000, "scheduled_on": day(1), "notes": "Ribs down.",
	}
	for k, v := range changes {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	return b
}

type prescriptionBody struct {
	ID          string  `json:"id"`
	CoachID     string  `json:"coach_id"`
	AthleteID   string  `json:"athlete_id"`
	Variation   string  `json:"variation"`
	Sets        int     `json:"sets"`
	Reps        int     `json:"reps"`
	LoadKg      float64 `json:"load_kg"`
	PauseHoldMs int     `json:"pause_hold_ms"`
	ScheduledOn string  `json:"scheduled_on"`
	Notes       string  `json:"notes"`
	CreatedAt   string  `json:"created_at"`
}

type prescriptionList struct {
	Items      []prescriptionBody `json:"items"`
	NextCursor *string            `json:"next_cursor"`
}

func (h *harness) listPrescriptions(token, query string) prescriptionList {
	h.t.Helper()
	r := h.get("/v1/prescriptions?"+query, token)
	expect(h.t, r, 200)
	var l prescriptionList
	r.decode(h.t, &l)
	return l
}

// allPrescriptions follows next_cursor through every page and returns the ids in order.
func (h *harness) allPrescriptions(token, query string, limit int) (ids []string, pages int) {
	h.t.Helper()
	cursor := ""
	for {
		q := query + "&limit=" + strconv.Itoa(limit)
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		l := h.listPrescriptions(token, q)
		pages++
		if len(l.Items) > limit {
			h.t.Fatalf("page of %d items, limit %d", len(l.Items), limit)
		}
		for _, p := range l.Items {
			ids = append(ids, p.ID)
		}
		if l.NextCursor == nil {
			return ids, pages
		}
		if pages > 20 {
			h.t.Fatal("paging does not end")
		}
		cursor = *l.NextCursor
	}
}

type athleteList struct {
	Items []struct {
		ID          string  `json:"id"`
		DisplayName string  `json:"display_name"`
		Email       string  `json:"email"`
		LiveSetID   *string `json:"live_set_id"`
	} `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func (h *harness) listAthletes(coach account, query string) athleteList {
	h.t.Helper()
	r := h.get("/v1/coach/athletes?"+query, coach.Access)
	expect(h.t, r, 200)
	var l athleteList
	r.decode(h.t, &l)
	return l
}

var inviteCode = regexp.MustCompile(`^[ABCDEFGHJKLMNPQRSTUVWXYZ2-9]{8}$`)

func TestCoachingFlow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addVariation()
	coach, athlete := h.register("coach"), h.register("athlete")

	// The coach invites.
	r := h.post("/v1/coach/invites", coach.Access, nil)
	expect(t, r, 201)
	var inv struct {
		Code      string `json:"code"`
		ExpiresAt string `json:"expires_at"`
	}
	r.decode(t, &inv)
	if !inviteCode.MatchString(inv.Code) {
		t.Fatalf("invite code %q is not 8 unambiguous characters", inv.Code)
	}
	expires, err := time.Parse(time.RFC3339, inv.ExpiresAt)
	if err != nil || time.Until(expires) < 7*24*time.Hour-time.Minute || time.Until(expires) > 7*24*time.Hour+time.Minute {
		t.Fatalf("invite expires at %s, want in 7 days", inv.ExpiresAt)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("an invite code must not be cached")
	}

	// The athlete types it in lower case with stray spaces.
	r = h.post("/v1/athlete/coach-links", athlete.Access, map[string]any{"code": "  " + strings.ToLower(inv.Code) + "\t"})
	expect(t, r, 201)
	var linked struct {
		Coach struct {
			ID          string `json:"id"`
			DisplayName string `json:"display_name"`
		} `json:"coach"`
	}
	r.decode(t, &linked)
	if linked.Coach.ID != coach.ID || linked.Coach.DisplayName == "" {
		t.Fatalf("linked to %+v, want coach %s", linked.Coach, coach.ID)
	}

	// The coach sees the athlete, not live.
	l := h.listAthletes(coach, "")
	if len(l.Items) != 1 || l.Items[0].ID != athlete.ID || l.Items[0].Email != athlete.Email || l.Items[0].LiveSetID != nil || l.NextCursor != nil {
		t.Fatalf("athletes: %+v", l)
	}
	// A live set shows; an ended one does not.
	var ended, live string
	for _, status := range []string{"ended", "live"} {
		var id string
		if err := h.store.Pool().QueryRow(context.Background(), `
			INSERT INTO sets (athlete_id, variation_id, load_kg, target_reps, pause_hold_ms, status)
			SELECT $1, id, 60, 8, 2000, $2 FROM variations WHERE slug = $3
			RETURNING id::text`, athlete.ID, status, testVariation).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if status == "live" {
			live = id
		} else {
			ended = id
		}
	}
	l = h.listAthletes(coach, "")
	if len(l.Items) != 1 || l.Items[0].LiveSetID == nil || *l.Items[0].LiveSetID != live {
		t.Fatalf("live_set_id: %+v, want %s (not the ended %s)", l.Items[0], live, ended)
	}

	// The coach prescribes five days, in scrambled order.
	created := map[string]prescriptionBody{}
	for _, n := range []int{3, 1, 5, 2, 4} {
		r := h.post("/v1/prescriptions", coach.Access, prescription(athlete.ID, map[string]any{
			"scheduled_on": day(n), "load_kg": 100.25, "notes": "  Day " + strconv.Itoa(n) + "\nRibs down.  ",
		}))
		expect(t, r, 201)
		var p prescriptionBody
		r.decode(t, &p)
		want := prescriptionBody{ID: p.ID, CoachID: coach.ID, AthleteID: athlete.ID, Variation: testVariation,
			Sets: 3, Reps: 8, LoadKg: 100.25, PauseHoldMs: 2000, ScheduledOn: day(n),
			Notes: "Day " + strconv.Itoa(n) + "\nRibs down.", CreatedAt: p.CreatedAt}
		if p != want || p.ID == "" || p.CreatedAt == "" {
			t.Fatalf("created %+v\nwant %+v", p, want)
		}
		created[day(n)] = p
	}

	// Both see all five, ordered by day, and each one by id.
	for _, who := range []account{athlete, coach} {
		list := h.listPrescriptions(who.Access, "")
		if len(list.Items) != 5 || list.NextCursor != nil {
			t.Fatalf("%d prescriptions, cursor %v", len(list.Items), list.NextCursor)
		}
		for i, p := range list.Items {
			if p != created[day(i+1)] {
				t.Fatalf("item %d: %+v, want %+v", i, p, created[day(i+1)])
			}
		}
		r := h.get("/v1/prescriptions/"+created[day(2)].ID, who.Access)
		expect(t, r, 200)
		var one prescriptionBody
		r.decode(t, &one)
		if one != created[day(2)] {
			t.Fatalf("get: %+v", one)
		}
	}
	byAthlete := h.listPrescriptions(coach.Access, "athlete_id="+athlete.ID)
	own := h.listPrescriptions(athlete.Access, "athlete_id="+athlete.ID)
	if len(byAthlete.Items) != 5 || len(own.Items) != 5 {
		t.Fatalf("filtered by athlete: coach %d, athlete %d", len(byAthlete.Items), len(own.Items))
	}

	// from and to are inclusive.
	window := h.listPrescriptions(athlete.Access, "from="+day(2)+"&to="+day(4))
	if len(window.Items) != 3 || window.Items[0].ScheduledOn != day(2) || window.Items[2].ScheduledOn != day(4) {
		t.Fatalf("from/to: %+v", window.Items)
	}
	if got := h.listPrescriptions(coach.Access, "from="+day(5)); len(got.Items) != 1 || got.Items[0].ScheduledOn != day(5) {
		t.Fatalf("from only: %+v", got.Items)
	}
	if got := h.listPrescriptions(coach.Access, "to="+day(1)); len(got.Items) != 1 || got.Items[0].ScheduledOn != day(1) {
		t.Fatalf("to only: %+v", got.Items)
	}
	if got := h.listPrescriptions(coach.Access, "from="+day(6)); len(got.Items) != 0 || got.Items == nil {
		t.Fatalf("an empty window must be an empty list: %+v", got)
	}

	// Paging: pages of 2 give 2+2+1 in order, and the last page has no cursor.
	for _, who := range []account{athlete, coach} {
		ids, pages := h.allPrescriptions(who.Access, "", 2)
		if pages != 3 || len(ids) != 5 {
			t.Fatalf("%d ids over %d pages", len(ids), pages)
		}
		for i, id := range ids {
			if id != created[day(i+1)].ID {
				t.Fatalf("page order: item %d is %s, want %s", i, id, created[day(i+1)].ID)
			}
		}
	}
	// Paging within a filter, on a page boundary.
	if ids, pages := h.allPrescriptions(coach.Access, "from="+day(2)+"&to="+day(5), 2); len(ids) != 4 || pages != 2 {
		t.Fatalf("filtered paging: %d ids over %d pages", len(ids), pages)
	}
}

func TestCoachAthletesArePaged(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	coach, other := h.register("coach"), h.register("coach")
	want := map[string]bool{}
	for range 5 {
		a := h.register("athlete")
		h.link(coach, a)
		want[a.ID] = true
	}
	h.link(other, h.register("athlete")) // another coach's athlete never shows

	all := h.listAthletes(coach, "limit=200")
	if len(all.Items) != 5 || all.NextCursor != nil {
		t.Fatalf("%d athletes, cursor %v", len(all.Items), all.NextCursor)
	}
	var paged []string
	cursor := ""
	for pages := 1; ; pages++ {
		q := "limit=2"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		l := h.listAthletes(coach, q)
		for _, a := range l.Items {
			paged = append(paged, a.ID)
		}
		if l.NextCursor == nil {
			if pages != 3 {
				t.Fatalf("%d pages, want 3", pages)
			}
			break
		}
		cursor = *l.NextCursor
	}
	for i, a := range all.Items {
		if !want[a.ID] || paged[i] != a.ID {
			t.Fatalf("item %d: paged %s, all %s (linked: %v)", i, paged[i], a.ID, want[a.ID])
		}
		if i > 0 && all.Items[i-1].DisplayName == a.DisplayName {
			t.Fatal("display names should differ in this test")
		}
	}
	expect(t, h.get("/v1/coach/athletes?cursor=bogus", coach.Access), 400, "invalid", "cursor")
	expect(t, h.get("/v1/coach/athletes?limit=x", coach.Access), 400, "invalid", "limit")
}

func TestInviteCodesAreSingleUse(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	coach, first, second := h.register("coach"), h.register("athlete"), h.register("athlete")
	code := h.invite(coach)
	expect(t, h.post("/v1/athlete/coach-links", first.Access, map[string]any{"code": code}), 201)

	used := h.post("/v1/athlete/coach-links", second.Access, map[string]any{"code": code})
	expect(t, used, 404, "not_found")
	unknown := h.post("/v1/athlete/coach-links", second.Access, map[string]any{"code": "ZZZZZZZZ"})
	expect(t, unknown, 404, "not_found")
	malformed := h.post("/v1/athlete/coach-links", second.Access, map[string]any{"code": "not a code at all"})
	expect(t, malformed, 404, "not_found")
	if string(used.Body) != string(unknown.Body) || string(used.Body) != string(malformed.Body) {
		t.Fatalf("used, unknown and malformed codes must answer alike:\n%s\n%s\n%s", used.Body, unknown.Body, malformed.Body)
	}
	if l := h.listAthletes(coach, ""); len(l.Items) != 1 || l.Items[0].ID != first.ID {
		t.Fatalf("athletes: %+v", l.Items)
	}
	expect(t, h.post("/v1/athlete/coach-links", second.Access, map[string]any{"code": "  "}), 400, "invalid", "code")
}

func TestExpiredInviteIsUnknown(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	coach, athlete := h.register("coach"), h.register("athlete")
	code := h.invite(coach)
	if _, err := h.store.Pool().Exec(context.Background(),
		`UPDATE coach_invites SET expires_at = now() - interval '1 second' WHERE code = $1`, code); err != nil {
		t.Fatal(err)
	}
	expect(t, h.post("/v1/athlete/coach-links", athlete.Access, map[string]any{"code": code}), 404, "not_found")
	if l := h.listAthletes(coach, ""); len(l.Items) != 0 {
		t.Fatalf("linked through an expired code: %+v", l.Items)
	}
}

func TestConcurrentClaimsOfOneCode(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	coach := h.register("coach")
	const racers = 8
	athletes := make([]account, racers)
	for i := range athletes {
		athletes[i] = h.register("athlete")
	}
	code := h.invite(coach)

	statuses := burst(racers, func(i int) int {
		return h.post("/v1/athlete/coach-links", athletes[i].Access, map[string]any{"code": code}).Status
	})

	wins := 0
	for _, s := range statuses {
		switch s {
		case 201:
			wins++
		case 404:
		default:
			t.Fatalf("status %d in %v", s, statuses)
		}
	}
	var links int
	if err := h.store.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM coach_links WHERE coach_id = $1`, coach.ID).Scan(&links); err != nil {
		t.Fatal(err)
	}
	if wins != 1 || links != 1 {
		t.Fatalf("%d winners and %d links for one code, want 1 and 1 (%v)", wins, links, statuses)
	}
}

func TestDuplicateLinkKeepsTheInvite(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	coach, athlete, other := h.register("coach"), h.register("athlete"), h.register("athlete")
	h.link(coach, athlete)
	code := h.invite(coach)
	expect(t, h.post("/v1/athlete/coach-links", athlete.Access, map[string]any{"code": code}), 409, "conflict")
	// The code was not used up by the refused attempt.
	expect(t, h.post("/v1/athlete/coach-links", other.Access, map[string]any{"code": code}), 201)
	// Linking to a second coach is fine.
	expect(t, h.post("/v1/athlete/coach-links", athlete.Access, map[string]any{"code": h.invite(h.register("coach"))}), 201)
}

func TestUnlinkEndsTheCoachsAccess(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addVariation()
	coach, athlete := h.register("coach"), h.register("athlete")
	h.link(coach, athlete)
	id := h.prescribe(coach, athlete.ID)

	expect(t, h.del("/v1/coach/athletes/"+athlete.ID, coach.Access), 204)
	expect(t, h.del("/v1/coach/athletes/"+athlete.ID, coach.Access), 404, "not_found")
	expect(t, h.del("/v1/coach/athletes/not-a-uuid", coach.Access), 404, "not_found")

	if l := h.listAthletes(coach, ""); len(l.Items) != 0 {
		t.Fatalf("still listed: %+v", l.Items)
	}
	expect(t, h.post("/v1/prescriptions", coach.Access, prescription(athlete.ID, nil)), 404, "not_found")
	expect(t, h.get("/v1/prescriptions?athlete_id="+athlete.ID, coach.Access), 404, "not_found")
	expect(t, h.get("/v1/prescriptions/"+id, coach.Access), 404, "not_found")
	if l := h.listPrescriptions(coach.Access, ""); len(l.Items) != 0 {
		t.Fatalf("the coach still lists %d prescriptions", len(l.Items))
	}

	// The athlete keeps its prescriptions.
	if l := h.listPrescriptions(athlete.Access, ""); len(l.Items) != 1 || l.Items[0].ID != id {
		t.Fatalf("athlete's own prescriptions: %+v", l.Items)
	}
	expect(t, h.get("/v1/prescriptions/"+id, athlete.Access), 200)

	// Linking again restores access.
	h.link(coach, athlete)
	expect(t, h.get("/v1/prescriptions/"+id, coach.Access), 200)
}

func TestCoachingRoleRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addVariation()
	coach, athlete, admin := h.register("coach"), h.register("athlete"), h.admin()
	h.link(coach, athlete)
	id := h.prescribe(coach, athlete.ID)

	cases := []struct {
		who    account
		method string
		path   string
		body   any
	}{
		{athlete, "POST", "/v1/coach/invites", nil},
		{athlete, "GET", "/v1/coach/athletes", nil},
		{athlete, "DELETE", "/v1/coach/athletes/" + athlete.ID, nil},
		{athlete, "POST", "/v1/prescriptions", prescription(athlete.ID, nil)},
		{coach, "POST", "/v1/athlete/coach-links", map[string]any{"code": "ABCDEFGH"}},
		{admin, "POST", "/v1/coach/invites", nil},
		{admin, "POST", "/v1/athlete/coach-links", map[string]any{"code": "ABCDEFGH"}},
		{admin, "GET", "/v1/coach/athletes", nil},
		{admin, "POST", "/v1/prescriptions", prescription(athlete.ID, nil)},
		{admin, "GET", "/v1/prescriptions", nil},
		{admin, "GET", "/v1/prescriptions/" + id, nil},
	}
	for _, c := range cases {
		res := h.do(request{Method: c.method, Path: c.path, Token: c.who.Access, Body: c.body})
		if res.Status != 403 {
			t.Fatalf("%s %s as %s: status %d, want 403: %s", c.method, c.path, c.who.Email, res.Status, res.Body)
		}
		expect(t, res, 403, "forbidden")
		// And without a token at all: 401.
		expect(t, h.do(request{Method: c.method, Path: c.path, Body: c.body}), 401, "unauthorized")
	}
	// Nothing was written by the refused calls.
	var n int
	if err := h.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM prescriptions`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d prescriptions (%v), want 1", n, err)
	}
}

func TestUnlinkedCallersSeeNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addVariation()
	coach, otherCoach := h.register("coach"), h.register("coach")
	athlete, otherAthlete := h.register("athlete"), h.register("athlete")
	h.link(coach, athlete)
	h.link(otherCoach, otherAthlete)
	id := h.prescribe(coach, athlete.ID)

	// The other coach: the athlete and its prescription look like they do not exist.
	expect(t, h.post("/v1/prescriptions", otherCoach.Access, prescription(athlete.ID, nil)), 404, "not_found")
	notLinked := h.get("/v1/prescriptions/"+id, otherCoach.Access)
	missing := h.get("/v1/prescriptions/00000000-0000-4000-8000-000000000000", otherCoach.Access)
	expect(t, notLinked, 404, "not_found")
	expect(t, missing, 404, "not_found")
	if string(notLinked.Body) != string(missing.Body) {
		t.Fatalf("someone else's and a missing prescription differ:\n%s\n%s", notLinked.Body, missing.Body)
	}
	expect(t, h.get("/v1/prescriptions/not-a-uuid", otherCoach.Access), 404, "not_found")
	expect(t, h.get("/v1/prescriptions?athlete_id="+athlete.ID, otherCoach.Access), 404, "not_found")
	expect(t, h.del("/v1/coach/athletes/"+athlete.ID, otherCoach.Access), 404, "not_found")
	if l := h.listPrescriptions(otherCoach.Access, ""); len(l.Items) != 0 {
		t.Fatalf("another coach lists %d prescriptions", len(l.Items))
	}

	// Prescribing for a coach, an unknown id, or one's own coach id: all 404.
	for _, target := range []string{otherCoach.ID, coach.ID, "00000000-0000-4000-8000-000000000000"} {
		expect(t, h.post("/v1/prescriptions", coach.Access, prescription(target, nil)), 404, "not_found")
	}
	expect(t, h.get("/v1/prescriptions?athlete_id="+coach.ID, coach.Access), 404, "not_found")

	// Another athlete sees neither the prescription nor the list of someone else.
	expect(t, h.get("/v1/prescriptions/"+id, otherAthlete.Access), 404, "not_found")
	expect(t, h.get("/v1/prescriptions?athlete_id="+athlete.ID, otherAthlete.Access), 404, "not_found")
	if l := h.listPrescriptions(otherAthlete.Access, ""); len(l.Items) != 0 {
		t.Fatalf("another athlete lists %d prescriptions", len(l.Items))
	}
}

func TestPrescriptionValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addVariation()
	coach, athlete := h.register("coach"), h.register("athlete")
	h.link(coach, athlete)

	cases := []struct {
		name    string
		changes map[string]any
		field   string
	}{
		{"sets 0", map[string]any{"sets": 0}, "sets"},
		{"sets 21", map[string]any{"sets": 21}, "sets"},
		{"sets missing", map[string]any{"sets": nil}, "sets"},
		{"sets fractional", map[string]any{"sets": 2.5}, "sets"},
		{"reps 0", map[string]any{"reps": 0}, "reps"},
		{"reps 101", map[string]any{"reps": 101}, "reps"},
		{"load three decimals", map[string]any{"load_kg": 2.555}, "load_kg"},
		{"load negative", map[string]any{"load_kg": -0.5}, "load_kg"},
		{"load over 1000", map[string]any{"load_kg": 1000.01}, "load_kg"},
		{"load missing", map[string]any{"load_kg": nil}, "load_kg"},
		{"load as a string", map[string]any{"load_kg": "60"}, "load_kg"},
		{"hold 60001", map[string]any{"pause_hold_ms": 60001}, "pause_hold_ms"},
		{"hold negative", map[string]any{"pause_hold_ms": -1}, "pause_hold_ms"},
		{"hold fractional", map[string]any{"pause_hold_ms": 1500.5}, "pause_hold_ms"},
		{"hold missing", map[string]any{"pause_hold_ms": nil}, "pause_hold_ms"},
		{"no such day", map[string]any{"scheduled_on": "2026-02-30"}, "scheduled_on"},
		{"not a date", map[string]any{"scheduled_on": "tomorrow"}, "scheduled_on"},
		{"date with a time", map[string]any{"scheduled_on": day(1) + "T10:00:00Z"}, "scheduled_on"},
		{"too far ahead", map[string]any{"scheduled_on": day(3 * 366)}, "scheduled_on"},
		{"too far back", map[string]any{"scheduled_on": day(-3 * 366)}, "scheduled_on"},
		{"unknown variation", map[string]any{"variation": "no-such-variation"}, "variation"},
		{"empty variation", map[string]any{"variation": ""}, "variation"},
		{"unknown field", map[string]any{"coach_id": coach.ID}, "coach_id"},
		{"notes of 1001 runes", map[string]any{"notes": strings.Repeat("é", 1001)}, "notes"},
		{"notes with a bidi override", map[string]any{"notes": "ribs\u202edown"}, "notes"},
		{"athlete id malformed", map[string]any{"athlete_id": "nope"}, "athlete_id"},
		{"athlete id missing", map[string]any{"athlete_id": nil}, "athlete_id"},
	}
	for _, c := range cases {
		r := h.post("/v1/prescriptions", coach.Access, prescription(athlete.ID, c.changes))
		if r.Status != 400 {
			t.Fatalf("%s: status %d, want 400: %s", c.name, r.Status, r.Body)
		}
		expect(t, r, 400, "invalid", c.field)
	}
	var n int
	if err := h.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM prescriptions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d prescriptions written by invalid requests (%v)", n, err)
	}

	// The edges are accepted: 1000 runes of notes, no notes, 0 kg, 1000 kg, 2 decimals.
	for _, changes := range []map[string]any{
		{"notes": strings.Repeat("é", 1000)},
		{"notes": nil, "load_kg": 0, "pause_hold_ms": 0, "sets": 1, "reps": 1},
		{"load_kg": 1000, "pause_hold_ms": 60000, "sets": 20, "reps": 100},
		{"load_kg": 2.55, "scheduled_on": day(-365)},
	} {
		r := h.post("/v1/prescriptions", coach.Access, prescription(athlete.ID, changes))
		expect(t, r, 201)
		body := r.json(t)
		if load, ok := changes["load_kg"]; ok && fmt.Sprint(body["load_kg"]) != fmt.Sprint(load) {
			t.Fatalf("load_kg %v came back as %v", load, body["load_kg"])
		}
	}

	// Query parameters of the list.
	expect(t, h.get("/v1/prescriptions?from="+day(5)+"&to="+day(4), coach.Access), 400, "invalid", "to")
	expect(t, h.get("/v1/prescriptions?from=2026-13-01", coach.Access), 400, "invalid", "from")
	expect(t, h.get("/v1/prescriptions?to=yesterday", coach.Access), 400, "invalid", "to")
	expect(t, h.get("/v1/prescriptions?athlete_id=nope", coach.Access), 400, "invalid", "athlete_id")
	expect(t, h.get("/v1/prescriptions?cursor=bogus", coach.Access), 400, "invalid", "cursor")
	// A well-formed cursor whose key is not a date (an athletes-list cursor) is refused.
	nameCursor := base64.RawURLEncoding.EncodeToString([]byte(`{"k":"Ada","i":"` + athlete.ID + `"}`))
	expect(t, h.get("/v1/prescriptions?cursor="+nameCursor, coach.Access), 400, "invalid", "cursor")
}

func TestInviteGuessesAreThrottled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	coach, athlete, bystander := h.register("coach"), h.register("athlete"), h.register("athlete")
	code := h.invite(coach)

	for i := 0; i < 10; i++ { // ten wrong codes are free; the tenth brings a wait
		wrong := fmt.Sprintf("ZZZZZZZ%c", "ABCDEFGHJKLMNPQRSTUVWXYZ"[i])
		expect(t, h.post("/v1/athlete/coach-links", athlete.Access, map[string]any{"code": wrong}), 404, "not_found")
	}
	r := h.post("/v1/athlete/coach-links", athlete.Access, map[string]any{"code": code})
	expect(t, r, 429, "too_many_requests")
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	// The throttle is per athlete: someone else is not slowed down.
	expect(t, h.post("/v1/athlete/coach-links", bystander.Access, map[string]any{"code": "ZZZZZZZZ"}), 404, "not_found")

	// Once the wait has passed, the right code works (it was not used by the refused call).
	h.clock.Advance(2 * time.Second)
	expect(t, h.post("/v1/athlete/coach-links", athlete.Access, map[string]any{"code": code}), 201)
}

func TestOutstandingInvitesAreBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	coach, athlete := h.register("coach"), h.register("athlete")
	// A body is optional, and must then be an empty object.
	expect(t, h.post("/v1/coach/invites", coach.Access, map[string]any{"athlete_id": athlete.ID}), 400, "invalid", "athlete_id")
	for _, bad := range []string{"null", "[]", "{} {}", `"x"`} {
		expect(t, h.post("/v1/coach/invites", coach.Access, bad), 400, "invalid")
	}
	var codes []string
	for i := 0; i < 20; i++ {
		body := any(nil)
		if i == 0 {
			body = map[string]any{}
		}
		r := h.post("/v1/coach/invites", coach.Access, body)
		expect(t, r, 201)
		codes = append(codes, r.json(t)["code"].(string))
	}
	r := h.post("/v1/coach/invites", coach.Access, nil)
	expect(t, r, 429, "too_many_requests")
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 6*24*3600 || s > 7*24*3600 {
		t.Fatalf("Retry-After %q, want about 7 days", r.Header.Get("Retry-After"))
	}
	// Another coach is not affected.
	expect(t, h.post("/v1/coach/invites", h.register("coach").Access, nil), 201)
	// A used invite no longer counts.
	expect(t, h.post("/v1/athlete/coach-links", athlete.Access, map[string]any{"code": codes[0]}), 201)
	expect(t, h.post("/v1/coach/invites", coach.Access, nil), 201)
	expect(t, h.post("/v1/coach/invites", coach.Access, nil), 429, "too_many_requests")
	// Nor does an expired one.
	if _, err := h.store.Pool().Exec(context.Background(),
		`UPDATE coach_invites SET expires_at = now() - interval '1 second' WHERE code = $1`, codes[1]); err != nil {
		t.Fatal(err)
	}
	expect(t, h.post("/v1/coach/invites", coach.Access, nil), 201)

	seen := map[string]bool{}
	for _, c := range codes {
		if seen[c] {
			t.Fatalf("code %s issued twice", c)
		}
		seen[c] = true
	}
}
