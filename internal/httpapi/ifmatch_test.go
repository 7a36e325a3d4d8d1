package httpapi_test

import (
	"cmp"
	"context"
	"strings"
	"testing"
)

// Every admin edit of the library (PATCH and DELETE under /v1/admin: cues,
// mistakes, variations' load steps) against
// every kind of If-Match. A PATCH needs one (428 without); a DELETE may go
// without (DESIGN §3: → 204). A stale or weak tag is 412 and changes nothing;
// "*" and the current tag go through. A route missing from the table fails.
func TestIfMatchOnEveryAdminEdit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	adm := h.admin()
	var hipCue string
	if err := h.store.Pool().QueryRow(context.Background(),
		`SELECT id FROM cues WHERE text = 'Ribs down' AND exercise_id = (SELECT id FROM exercises WHERE slug = 'hip-thrust')`).Scan(&hipCue); err != nil {
		t.Fatal(err)
	}

	type route struct {
		create  func() string // a fresh object; its ETag is "1"
		request func(id string, header map[string]string) request
		ok      int // the answer when the precondition holds
		// noHeader is the answer without If-Match.
		noHeader int
		table    string // the object's table, to check that a refusal changed nothing
		// deleted is the SQL telling whether the row was deleted (variations never are).
		deleted string
	}
	newCue := func() string {
		r := h.post("/v1/admin/exercises/hip-thrust/cues", adm.Access, map[string]any{"text": "Knees out", "phase": "concentric", "priority": 1})
		expect(t, r, 201)
		return r.json(t)["id"].(string)
	}
	newMistake := func() string {
		r := h.post("/v1/admin/exercises/hip-thrust/mistakes", adm.Access, map[string]any{"name": "Knees caving", "fix": "Press the knees out.", "cue_ids": []string{hipCue}})
		expect(t, r, 201)
		return r.json(t)["id"].(string)
	}
	// Variations are not created by admins: the dumbbell rung is put back at
	// version 1 before each case.
	dumbbell := func() string {
		var id string
		if err := h.store.Pool().QueryRow(context.Background(),
			`UPDATE variations SET version = 1, load_step_kg = 2 WHERE slug = 'dumbbell-hip-thrust' RETURNING id`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	routes := map[string]route{
		"PATCH /v1/admin/variations/:id": {create: dumbbell, ok: 200, noHeader: 428, table: "variations", deleted: "false",
			request: func(id string, hdr map[string]string) request {
				return request{Method: "PATCH", Path: "/v1/admin/variations/" + id, Token: adm.Access, Header: hdr, Body: map[string]any{"load_step_kg": 2.5}}
			}},
		"PATCH /v1/admin/cues/:id": {create: newCue, ok: 200, noHeader: 428, table: "cues",
			request: func(id string, hdr map[string]string) request {
				return request{Method: "PATCH", Path: "/v1/admin/cues/" + id, Token: adm.Access, Header: hdr, Body: map[string]any{"priority": 9}}
			}},
		"DELETE /v1/admin/cues/:id": {create: newCue, ok: 204, noHeader: 204, table: "cues",
			request: func(id string, hdr map[string]string) request {
				return request{Method: "DELETE", Path: "/v1/admin/cues/" + id, Token: adm.Access, Header: hdr}
			}},
		"PATCH /v1/admin/mistakes/:id": {create: newMistake, ok: 200, noHeader: 428, table: "mistakes",
			request: func(id string, hdr map[string]string) request {
				return request{Method: "PATCH", Path: "/v1/admin/mistakes/" + id, Token: adm.Access, Header: hdr, Body: map[string]any{"fix": "Push the knees out over the toes."}}
			}},
		"DELETE /v1/admin/mistakes/:id": {create: newMistake, ok: 204, noHeader: 204, table: "mistakes",
			request: func(id string, hdr map[string]string) request {
				return request{Method: "DELETE", Path: "/v1/admin/mistakes/" + id, Token: adm.Access, Header: hdr}
			}},
	}
	for _, r := range h.app.GetRoutes(true) {
		if (r.Method == "PATCH" || r.Method == "DELETE") && strings.HasPrefix(r.Path, "/v1/admin/") {
			if _, ok := routes[r.Method+" "+r.Path]; !ok {
				t.Errorf("%s %s edits with If-Match but is not in this table", r.Method, r.Path)
			}
		}
	}

	cases := []struct {
		name    string
		ifMatch string // "" sends no header
		want    func(route) (int, string)
	}{
		{"no If-Match", "", func(r route) (int, string) {
			if r.noHeader == 428 {
				return 428, "precondition_required"
			}
			return r.noHeader, ""
		}},
		{"stale", `"7"`, func(route) (int, string) { return 412, "precondition_failed" }},
		{"weak", `W/"1"`, func(route) (int, string) { return 412, "precondition_failed" }},
		{"any", `*`, func(r route) (int, string) { return r.ok, "" }},
		{"current", `"1"`, func(r route) (int, string) { return r.ok, "" }},
		{"list holding the current", `"7", "1"`, func(r route) (int, string) { return r.ok, "" }},
	}
	for key, rt := range routes {
		for _, c := range cases {
			id := rt.create()
			hdr := map[string]string{}
			if c.ifMatch != "" {
				hdr["If-Match"] = c.ifMatch
			}
			res := h.do(rt.request(id, hdr))
			status, code := c.want(rt)
			if res.Status != status {
				t.Fatalf("%s with %s: status %d, want %d: %s", key, c.name, res.Status, status, res.Body)
			}
			if code != "" {
				expect(t, res, status, code)
			}
			if status == 412 { // the entity as it is now, to show beside the admin's
				cur, _ := res.json(t)["current"].(map[string]any)
				if cur["id"] != id || cur["version"] != float64(1) || res.Header.Get("ETag") != `"1"` {
					t.Fatalf("%s with %s: 412 without the current entity and its ETag: %s %v", key, c.name, res.Body, res.Header)
				}
			}
			var version int
			var deleted bool
			deletedSQL := cmp.Or(rt.deleted, "deleted_at IS NOT NULL")
			if err := h.store.Pool().QueryRow(context.Background(),
				`SELECT version, `+deletedSQL+` FROM `+rt.table+` WHERE id = $1`, id).Scan(&version, &deleted); err != nil {
				t.Fatal(err)
			}
			changed := version != 1 || deleted
			if changed != (status < 300) {
				t.Fatalf("%s with %s answered %d, and the row changed: %v (version %d, deleted %v)", key, c.name, status, changed, version, deleted)
			}
			if status == 200 && res.Header.Get("ETag") != `"2"` {
				t.Fatalf("%s with %s: ETag %q after the edit, want \"2\"", key, c.name, res.Header.Get("ETag"))
			}
		}
	}
}

// An admin reads one cue or mistake with the ETag an edit names in If-Match.
func TestAdminReadsOneCueAndMistakeWithTheirETags(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	adm := h.admin()
	r := h.post("/v1/admin/exercises/hip-thrust/cues", adm.Access, map[string]any{"text": "Chin tucked", "phase": "lockout", "priority": 2})
	expect(t, r, 201)
	cue := r.json(t)["id"].(string)
	r = h.get("/v1/admin/cues/"+cue, adm.Access)
	expect(t, r, 200)
	if r.Header.Get("ETag") != `"1"` || r.json(t)["text"] != "Chin tucked" {
		t.Fatalf("GET cue: %s %v", r.Body, r.Header)
	}
	r = h.post("/v1/admin/exercises/hip-thrust/mistakes", adm.Access, map[string]any{"name": "Chin up", "fix": "Look ahead, chin tucked.", "cue_ids": []string{cue}})
	expect(t, r, 201)
	mistake := r.json(t)["id"].(string)
	expect(t, h.do(request{Method: "PATCH", Path: "/v1/admin/mistakes/" + mistake, Token: adm.Access,
		Header: map[string]string{"If-Match": `"1"`}, Body: map[string]any{"name": "Chin lifted"}}), 200)
	r = h.get("/v1/admin/mistakes/"+mistake, adm.Access)
	expect(t, r, 200)
	if r.Header.Get("ETag") != `"2"` || r.json(t)["name"] != "Chin lifted" {
		t.Fatalf("GET mistake: %s %v", r.Body, r.Header)
	}
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/admin/mistakes/" + mistake, Token: adm.Access}), 204)
	expect(t, h.get("/v1/admin/mistakes/"+mistake, adm.Access), 404, "not_found")
}
