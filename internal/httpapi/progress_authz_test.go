package httpapi_test

import (
	"context"
	"time"
)

// progressMatrix is the authorisation matrix's rows for the progress routes.
func progressMatrix() map[string]row {
	athleteView := visibleTo(200, athlete, coach, otherAthlete, otherCoach, admin)
	coachOnly := roles(map[actor]int{athlete: 403, otherAthlete: 403, coach: 200, otherCoach: 200, admin: 403})
	onAthlete := func(suffix string) func(*world, object) request {
		return func(w *world, obj object) request {
			return request{Method: "GET", Path: "/v1/athletes/" + w.athleteOf(obj) + suffix}
		}
	}
	return map[string]row{
		"PATCH /v1/me": {
			build: func(*world, object) request {
				return request{Method: "PATCH", Path: "/v1/me", Body: map[string]any{"units": "lb"}}
			},
			want: signedIn(200),
		},
		"PATCH /v1/admin/variations/:id": {
			objects: []object{own, missing},
			build: func(w *world, obj object) request {
				id := nilUUID
				if obj == own {
					if err := w.h.store.Pool().QueryRow(context.Background(),
						`SELECT id::text FROM variations WHERE slug = 'barbell-hip-thrust'`).Scan(&id); err != nil {
						w.h.t.Fatal(err)
					}
				}
				return request{Method: "PATCH", Path: "/v1/admin/variations/" + id, Header: map[string]string{"If-Match": "*"},
					Body: map[string]any{"load_step_kg": 2.5}}
			},
			want: adminOnly(200),
		},
		"GET /v1/athletes/:id/progression": {
			objects: allObjects, build: onAthlete("/progression?exercise=hip-thrust"), want: athleteView,
		},
		"POST /v1/athletes/:id/progression/prescribe": {
			objects: allObjects,
			build: func(w *world, obj object) request {
				return request{Method: "POST", Path: "/v1/athletes/" + w.athleteOf(obj) + "/progression/prescribe",
					Body: map[string]any{"exercise": "hip-thrust", "scheduled_on": w.h.clock.Now().UTC().Format(time.DateOnly)}}
			},
			want: ownedBy(201, coach, otherCoach),
		},
		"GET /v1/athletes/:id/insights":   {objects: allObjects, build: onAthlete("/insights"), want: athleteView},
		"GET /v1/athletes/:id/sets.csv":   {objects: allObjects, build: onAthlete("/sets.csv"), want: athleteView},
		"GET /v1/coach/cue-effectiveness": {build: get("/v1/coach/cue-effectiveness"), want: coachOnly},
		"GET /v1/coach/overview":          {build: get("/v1/coach/overview"), want: coachOnly},
	}
}
