package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

type exerciseBody struct {
	Slug       string   `json:"slug"`
	Name       string   `json:"name"`
	KeyTips    []string `json:"key_tips"`
	Variations []struct {
		Slug        string         `json:"slug"`
		Name        string         `json:"name"`
		Position    int            `json:"position"`
		AdvanceWhen map[string]any `json:"advance_when"`
	} `json:"variations"`
	FocusPoints []struct{ Title string } `json:"focus_points"`
	Cues        []struct {
		ID, Text, Phase string
		Priority        int
	} `json:"cues"`
	Mistakes []struct {
		ID     string   `json:"id"`
		Name   string   `json:"name"`
		CueIDs []string `json:"cue_ids"`
	} `json:"mistakes"`
}

func TestTheHipThrustLibraryIsInstalled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.register("athlete")
	r := h.get("/v1/exercises", a.Access)
	expect(t, r, 200)
	if !strings.Contains(string(r.Body), `"slug":"hip-thrust"`) {
		t.Fatalf("exercises: %s", r.Body)
	}
	r = h.get("/v1/exercises/hip-thrust", a.Access)
	expect(t, r, 200)
	var e exerciseBody
	r.decode(t, &e)
	if e.Name != "Hip Thrust" || len(e.KeyTips) != 3 || len(e.FocusPoints) != 4 || len(e.Variations) != 5 {
		t.Fatalf("exercise: %s", r.Body)
	}
	for i, v := range e.Variations {
		if v.Position != i+1 || v.AdvanceWhen["sets"] == nil || v.AdvanceWhen["reps"] == nil {
			t.Fatalf("variation %d: %+v", i, v)
		}
	}
	if e.Variations[2].Slug != "barbell-hip-thrust" || !strings.Contains(e.Variations[2].Name, "Barbell") {
		t.Fatalf("barbell variation: %+v", e.Variations[2])
	}
	want := map[string]string{"Drive through heels": "concentric", "Tuck, then thrust": "setup", "Pause and squeeze": "lockout", "Ribs down": "any"}
	cueIDs := map[string]string{}
	for _, c := range e.Cues {
		if want[c.Text] != c.Phase {
			t.Fatalf("cue %q in phase %s", c.Text, c.Phase)
		}
		cueIDs[c.Text] = c.ID
	}
	if len(cueIDs) != 4 {
		t.Fatalf("cues: %+v", e.Cues)
	}
	var noPause string
	if err := h.store.Pool().QueryRow(context.Background(), `SELECT id FROM mistakes WHERE code = 'no_pause_at_top'`).Scan(&noPause); err != nil {
		t.Fatal(err)
	}
	for _, m := range e.Mistakes {
		if m.ID == noPause && (len(m.CueIDs) != 1 || m.CueIDs[0] != cueIDs["Pause and squeeze"]) {
			t.Fatalf("no pause at top is not fixed by Pause and squeeze: %+v", m)
		}
	}
	if len(e.Mistakes) != 4 {
		t.Fatalf("mistakes: %+v", e.Mistakes)
	}
	expect(t, h.get("/v1/exercises/nope", a.Access), 404, "not_found")
}

func TestExerciseETagAndAdminEdits(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, adm := h.register("athlete"), h.admin()
	r := h.get("/v1/exercises/hip-thrust", a.Access)
	etag := r.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") {
		t.Fatalf("ETag %q is not strong", etag)
	}
	r = h.do(request{Method: "GET", Path: "/v1/exercises/hip-thrust", Token: a.Access, Header: map[string]string{"If-None-Match": etag}})
	expect(t, r, 304)
	if len(r.Body) != 0 {
		t.Fatal("304 with a body")
	}

	// An admin adds a cue: the exercise's ETag changes.
	r = h.post("/v1/admin/exercises/hip-thrust/cues", adm.Access, map[string]any{"text": "Cafe\u0301 knees out", "phase": "concentric", "priority": 3})
	expect(t, r, 201)
	cue := r.json(t)
	if cue["text"] != "Caf\u00e9 knees out" || r.Header.Get("ETag") != `"1"` {
		t.Fatalf("created cue %s (ETag %s): not NFC or no ETag", r.Body, r.Header.Get("ETag"))
	}
	id := cue["id"].(string)
	r = h.do(request{Method: "GET", Path: "/v1/exercises/hip-thrust", Token: a.Access, Header: map[string]string{"If-None-Match": etag}})
	expect(t, r, 200)
	if r.Header.Get("ETag") == etag {
		t.Fatal("the ETag did not change with the library")
	}

	// PATCH needs If-Match: 428 without, 412 stale, 200 current.
	patch := func(ifMatch string, body any) response {
		hdr := map[string]string{}
		if ifMatch != "" {
			hdr["If-Match"] = ifMatch
		}
		return h.do(request{Method: "PATCH", Path: "/v1/admin/cues/" + id, Token: adm.Access, Header: hdr, Body: body})
	}
	expect(t, patch("", map[string]any{"priority": 4}), 428, "precondition_required")
	expect(t, patch(`"7"`, map[string]any{"priority": 4}), 412, "precondition_failed")
	r = patch(`"1"`, map[string]any{"priority": 4})
	expect(t, r, 200)
	if r.json(t)["version"] != float64(2) || r.Header.Get("ETag") != `"2"` {
		t.Fatalf("after patch: %s", r.Body)
	}
	expect(t, patch(`"1"`, map[string]any{"priority": 5}), 412, "precondition_failed")
	expect(t, patch(`W/"2"`, map[string]any{"priority": 5}), 412, "precondition_failed") // weak tags never match
	expect(t, patch(`"7", "9"`, map[string]any{"priority": 5}), 412, "precondition_failed")
	r = patch(`"1", "2"`, map[string]any{"priority": 3}) // a list matches any of its tags
	expect(t, r, 200)
	r = patch(`*`, map[string]any{"priority": 4})
	expect(t, r, 200) // "*": whatever the current version is
	if r.Header.Get("ETag") != `"4"` {
		t.Fatalf("ETag after If-Match: * is %s", r.Header.Get("ETag"))
	}
	expect(t, patch(`"4"`, map[string]any{"text": nil}), 400, "invalid", "text")
	expect(t, patch(`"4"`, map[string]any{}), 400, "invalid")
	expect(t, patch(`"4"`, map[string]any{"phase": "overhead"}), 400, "invalid", "phase")
	expect(t, patch(`"4"`, map[string]any{"text": strings.Repeat("é", 121)}), 400, "invalid", "text")
	expect(t, patch(`"4"`, map[string]any{"text": "Ribs\u202edown"}), 400, "invalid", "text")
	r = patch(`"4"`, map[string]any{"text": strings.Repeat("é", 120)})
	expect(t, r, 200)

	// Soft delete: gone from the exercise, still in the table.
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/admin/cues/" + id, Token: adm.Access, Header: map[string]string{"If-Match": `"1"`}}), 412)
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/admin/cues/" + id, Token: adm.Access}), 204)
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/admin/cues/" + id, Token: adm.Access}), 404)
	r = h.get("/v1/exercises/hip-thrust", a.Access)
	if strings.Contains(string(r.Body), id) {
		t.Fatal("a deleted cue is still listed")
	}
	var deleted bool
	_ = h.store.Pool().QueryRow(context.Background(), `SELECT deleted_at IS NOT NULL FROM cues WHERE id = $1`, id).Scan(&deleted)
	if !deleted {
		t.Fatal("the deleted cue's row is gone or not marked")
	}

	// The audit trail, newest first, filtered by entity.
	r = h.get("/v1/admin/audit?entity=cue&entity_id="+id, adm.Access)
	expect(t, r, 200)
	var audit struct {
		Items []struct {
			ActorID string         `json:"actor_id"`
			Action  string         `json:"action"`
			Before  map[string]any `json:"before"`
			After   map[string]any `json:"after"`
		} `json:"items"`
	}
	r.decode(t, &audit)
	actions := []string{}
	for _, e := range audit.Items {
		actions = append(actions, e.Action)
		if e.ActorID != adm.ID {
			t.Fatalf("audit actor %s", e.ActorID)
		}
	}
	if strings.Join(actions, ",") != "delete,update,update,update,update,create" {
		t.Fatalf("audit actions %v", actions)
	}
	first, last := audit.Items[len(audit.Items)-1], audit.Items[0]
	if first.Before != nil || first.After["text"] != "Caf\u00e9 knees out" || last.After != nil || last.Before["version"] != float64(5) {
		t.Fatalf("audit before/after: %+v", audit.Items)
	}
	update := audit.Items[4] // the first update
	if update.Before["priority"] != float64(3) || update.After["priority"] != float64(4) {
		t.Fatalf("update entry %+v", update)
	}
	expect(t, h.get("/v1/admin/audit?entity=set", adm.Access), 400, "invalid", "entity")
}

func TestMistakeCueIDsAreChecked(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	adm := h.admin()
	h.addVariation() // a second exercise, whose cues do not belong to the hip thrust
	var hipCue string
	_ = h.store.Pool().QueryRow(context.Background(), `SELECT id FROM cues WHERE text = 'Ribs down' AND exercise_id = (SELECT id FROM exercises WHERE slug = 'hip-thrust')`).Scan(&hipCue)
	otherCue := "22222222-2222-4222-8222-222222222224"
	post := func(ids any) response {
		return h.post("/v1/admin/exercises/hip-thrust/mistakes", adm.Access, map[string]any{"name": "Knees caving", "fix": "Press the knees out.", "cue_ids": ids})
	}
	expect(t, post([]string{otherCue}), 400, "invalid", "cue_ids")
	expect(t, post([]string{"00000000-0000-4000-8000-000000000000"}), 400, "invalid", "cue_ids")
	expect(t, post([]string{}), 400, "invalid", "cue_ids")
	expect(t, post([]string{hipCue, hipCue}), 400, "invalid", "cue_ids")
	expect(t, post([]string{"nope"}), 400, "invalid", "cue_ids")
	r := post([]string{hipCue})
	expect(t, r, 201)
	m := r.json(t)
	id := m["id"].(string)
	r = h.do(request{Method: "PATCH", Path: "/v1/admin/mistakes/" + id, Token: adm.Access, Header: map[string]string{"If-Match": `"1"`},
		Body: map[string]any{"cue_ids": []string{otherCue}}})
	expect(t, r, 400, "invalid", "cue_ids")
	r = h.do(request{Method: "PATCH", Path: "/v1/admin/mistakes/" + id, Token: adm.Access, Header: map[string]string{"If-Match": `"1"`},
		Body: map[string]any{"fix": "Push the knees out over the toes."}})
	expect(t, r, 200)
	if r.json(t)["version"] != float64(2) {
		t.Fatalf("mistake after patch: %s", r.Body)
	}
	// The mistake the rep timer detects cannot be deleted.
	var noPause string
	_ = h.store.Pool().QueryRow(context.Background(), `SELECT id FROM mistakes WHERE code = 'no_pause_at_top'`).Scan(&noPause)
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/admin/mistakes/" + noPause, Token: adm.Access}), 409, "conflict")
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/admin/mistakes/" + id, Token: adm.Access}), 204)
	var created string
	_ = h.store.Pool().QueryRow(context.Background(), `SELECT entity_id FROM audit_log WHERE action = 'create' AND entity = 'mistake'`).Scan(&created)
	if created != id {
		t.Fatalf("audit of the created mistake: %s", created)
	}
}

func TestLibraryEditsReachNewSets(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	adm, a := h.admin(), h.register("athlete")
	// A higher-priority setup cue becomes the cue of the moment of the next set.
	r := h.post("/v1/admin/exercises/hip-thrust/cues", adm.Access, map[string]any{"text": "Chin tucked", "phase": "setup", "priority": 50})
	expect(t, r, 201)
	addr := h.listen()
	r = h.post("/v1/sets", a.Access, map[string]any{"variation": "barbell-hip-thrust", "load_kg": 100, "target_reps": 5, "pause_hold_ms": 1000})
	expect(t, r, 201)
	setID := r.json(t)["id"].(string)
	ws, _, err := dial(t, addr, a.Access, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ws.send(map[string]any{"type": "subscribe", "set_id": setID})
	snap := ws.next("snapshot")
	cue := snap["state"].(map[string]any)["cue"].(map[string]any)
	if cue["text"] != "Chin tucked" || cue["source"] != "auto" {
		t.Fatalf("cue of the moment %v", cue)
	}
}

// The exercise body is cached per node (exercisecache.go); every change of
// anything it shows, made through the admin API of any node or straight in the
// database, is seen by the next GET on every node, with a new ETag.
func TestExerciseCacheFollowsEditsOnEveryNode(t *testing.T) {
	t.Parallel()
	a := newHarness(t)
	b := a.otherNode()
	ath, adm := a.register("athlete"), a.admin()
	type exercise struct {
		Cues []struct {
			ID, Text string
			Version  int
		}
		Mistakes []struct {
			ID, Name string
			CueIDs   []string `json:"cue_ids"`
			Version  int
		}
	}
	read := func(h *harness) (exercise, string, string) {
		t.Helper()
		r := h.get("/v1/exercises/hip-thrust", ath.Access)
		expect(t, r, 200)
		var e exercise
		r.decode(t, &e)
		return e, r.Header.Get("ETag"), string(r.Body)
	}
	// same reads both nodes (twice each: the second answer comes from the
	// cache) and requires one body and ETag, which differs from the previous one.
	var lastTag string
	same := func(step string) (exercise, string) {
		t.Helper()
		var first, firstTag string
		var e exercise
		for i, h := range []*harness{a, b, a, b} {
			got, tag, body := read(h)
			if i == 0 {
				e, first, firstTag = got, body, tag
				continue
			}
			if body != first || tag != firstTag {
				t.Fatalf("%s: node %d answered another body or ETag (%s vs %s)", step, i%2, tag, firstTag)
			}
		}
		if firstTag == lastTag {
			t.Fatalf("%s: the ETag %s did not change", step, firstTag)
		}
		lastTag = firstTag
		return e, first
	}
	e, _ := same("first read")

	// A cue edited through node a: node b sees it at once, and its old ETag no longer matches.
	cue := e.Cues[0]
	r := a.do(request{Method: "PATCH", Path: "/v1/admin/cues/" + cue.ID, Token: adm.Access,
		Header: map[string]string{"If-Match": fmt.Sprintf(`"%d"`, cue.Version)}, Body: map[string]any{"text": "Edited on node a"}})
	expect(t, r, 200)
	old := lastTag
	_, body := same("cue edited on a")
	if !strings.Contains(body, "Edited on node a") {
		t.Fatal("the edited cue is not shown")
	}
	expect(t, b.do(request{Method: "GET", Path: "/v1/exercises/hip-thrust", Token: ath.Access, Header: map[string]string{"If-None-Match": old}}), 200)
	expect(t, b.do(request{Method: "GET", Path: "/v1/exercises/hip-thrust", Token: ath.Access, Header: map[string]string{"If-None-Match": lastTag}}), 304)

	// A mistake created through node b, then its cue links changed, then deleted.
	r = b.post("/v1/admin/exercises/hip-thrust/mistakes", adm.Access, map[string]any{"name": "Made on node b", "fix": "Fix it", "cue_ids": []string{cue.ID}})
	expect(t, r, 201)
	mistakeID := r.json(t)["id"].(string)
	e, body = same("mistake created on b")
	if !strings.Contains(body, "Made on node b") {
		t.Fatal("the new mistake is not shown")
	}
	r = b.do(request{Method: "PATCH", Path: "/v1/admin/mistakes/" + mistakeID, Token: adm.Access,
		Header: map[string]string{"If-Match": `"1"`}, Body: map[string]any{"cue_ids": []string{e.Cues[1].ID, cue.ID}}})
	expect(t, r, 200)
	e, _ = same("mistake's cues changed on b")
	for _, m := range e.Mistakes {
		if m.ID == mistakeID && strings.Join(m.CueIDs, ",") != e.Cues[1].ID+","+cue.ID {
			t.Fatalf("the mistake's cue_ids are %v", m.CueIDs)
		}
	}
	expect(t, b.do(request{Method: "DELETE", Path: "/v1/admin/mistakes/" + mistakeID, Token: adm.Access}), 204)
	_, body = same("mistake deleted on b")
	if strings.Contains(body, mistakeID) {
		t.Fatal("the deleted mistake is still shown")
	}

	// A cue created and deleted through a.
	r = a.post("/v1/admin/exercises/hip-thrust/cues", adm.Access, map[string]any{"text": "New on node a", "phase": "lockout", "priority": 1})
	expect(t, r, 201)
	newCue := r.json(t)["id"].(string)
	if _, body = same("cue created on a"); !strings.Contains(body, newCue) {
		t.Fatal("the new cue is not shown")
	}
	expect(t, a.do(request{Method: "DELETE", Path: "/v1/admin/cues/" + newCue, Token: adm.Access}), 204)
	if _, body = same("cue deleted on a"); strings.Contains(body, newCue) {
		t.Fatal("the deleted cue is still shown")
	}

	// Changes made outside the API (a migration, psql) to every table the body shows.
	for _, stmt := range []string{
		`UPDATE exercises SET summary = 'Changed in SQL' WHERE slug = 'hip-thrust'`,
		`UPDATE focus_points SET title = 'Changed in SQL' WHERE position = 1`,
		`UPDATE variations SET description = 'Changed in SQL' WHERE slug = 'barbell-hip-thrust'`,
		`UPDATE cues SET text = 'Changed in SQL' WHERE id = '` + cue.ID + `'`,
		`UPDATE mistakes SET fix = 'Changed in SQL' WHERE id = '` + e.Mistakes[0].ID + `'`,
		`DELETE FROM mistake_cues WHERE mistake_id = 'a1f0c3d2-0000-4000-8000-0000000000d1' AND position = 2`,
	} {
		if _, err := b.store.Pool().Exec(context.Background(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
		same(stmt)
	}
}
