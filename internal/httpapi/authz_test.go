package httpapi_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
)

// The authorisation matrix: every registered route × every kind of caller ×
// (where the route names an object) the caller's own object, another user's
// object and one that does not exist. A route missing from the matrix fails.

type actor string

const (
	anonymous    actor = "anonymous"
	athlete      actor = "athlete"       // owns the "own" objects
	otherAthlete actor = "other-athlete" // owns the "other" objects
	coach        actor = "coach"         // linked to athlete
	otherCoach   actor = "other-coach"   // linked to other-athlete only
	admin        actor = "admin"
)

var actors = []actor{anonymous, athlete, otherAthlete, coach, otherCoach, admin}

// object says whose object a request names.
type object string

const (
	noObject object = "-"
	own      object = "own"   // belongs to (or is visible to) athlete and coach
	others   object = "other" // belongs to other-athlete
	missing  object = "none"  // does not exist
)

// world is the cast of one matrix row: one account per actor, the links between
// them and whatever objects the row needs.
type world struct {
	h            *harness
	accounts     map[actor]account
	hasVariation bool
	sets         map[object]string
}

func newWorld(t *testing.T) *world {
	h := newHarness(t)
	w := &world{h: h, accounts: map[actor]account{}}
	w.accounts[athlete] = h.register("athlete")
	w.accounts[otherAthlete] = h.register("athlete")
	w.accounts[coach] = h.register("coach")
	w.accounts[otherCoach] = h.register("coach")
	w.accounts[admin] = h.admin()
	w.link(coach, athlete)
	w.link(otherCoach, otherAthlete)
	return w
}

func (w *world) link(c, a actor) {
	w.h.t.Helper()
	_, err := w.h.store.Pool().Exec(context.Background(),
		`INSERT INTO coach_links (coach_id, athlete_id) VALUES ($1, $2)`, w.accounts[c].ID, w.accounts[a].ID)
	if err != nil {
		w.h.t.Fatal(err)
	}
}

// variation installs the test exercise once per world and returns its slug.
func (w *world) variation() string {
	if !w.hasVariation {
		w.h.addVariation()
		w.hasVariation = true
	}
	return testVariation
}

// setOf returns a live set of athlete ("own"), of other-athlete ("other"), or
// an id that does not exist, made once per world.
func (w *world) setOf(obj object) string {
	if obj == missing {
		return nilUUID
	}
	if w.sets == nil {
		w.sets = map[object]string{}
	}
	if id, ok := w.sets[obj]; ok {
		return id
	}
	owner := map[object]actor{own: athlete, others: otherAthlete}[obj]
	set, err := w.h.store.CreateSet(context.Background(), postgres.NewSet{
		AthleteID: uuid.MustParse(w.accounts[owner].ID), Variation: w.variation(), LoadKG: 40, TargetReps: 5, PauseHoldMS: 500})
	if err != nil {
		w.h.t.Fatal(err)
	}
	w.sets[obj] = set.ID.String()
	return w.sets[obj]
}

// cue makes a fresh cue of the hip thrust ("own") and returns its id and ETag,
// or a missing id.
func (w *world) cue(obj object) (string, string) {
	if obj == missing {
		return nilUUID, `"1"`
	}
	c, err := w.h.store.CreateCue(context.Background(), uuid.MustParse(w.accounts[admin].ID), "hip-thrust",
		domain.Cue{Text: "Knees out", Phase: domain.PhaseConcentric, Priority: 5})
	if err != nil {
		w.h.t.Fatal(err)
	}
	return c.ID.String(), fmt.Sprintf(`"%d"`, c.Version)
}

// mistake makes a fresh mistake of the hip thrust ("own"), or a missing id.
func (w *world) mistake(obj object) (string, string) {
	if obj == missing {
		return nilUUID, `"1"`
	}
	cue, _ := w.cue(own)
	m, err := w.h.store.CreateMistake(context.Background(), uuid.MustParse(w.accounts[admin].ID), "hip-thrust",
		domain.Mistake{Name: "Knees caving", Fix: "Press out.", CueIDs: []uuid.UUID{uuid.MustParse(cue)}})
	if err != nil {
		w.h.t.Fatal(err)
	}
	return m.ID.String(), fmt.Sprintf(`"%d"`, m.Version)
}

// athleteOf is athlete ("own"), other-athlete ("other") or a missing id.
func (w *world) athleteOf(obj object) string {
	switch obj {
	case own:
		return w.accounts[athlete].ID
	case others:
		return w.accounts[otherAthlete].ID
	}
	return nilUUID
}

// prescriptionOf is a prescription of athlete by coach ("own"), of other-athlete
// by other-coach ("other"), or a missing id.
func (w *world) prescriptionOf(obj object) string {
	if obj == missing {
		return nilUUID
	}
	by := map[object]actor{own: coach, others: otherCoach}[obj]
	date := domain.DateOf(time.Now().UTC())
	p, err := w.h.store.CreatePrescription(context.Background(), domain.Prescription{
		CoachID: uuid.MustParse(w.accounts[by].ID), AthleteID: uuid.MustParse(w.athleteOf(obj)), Variation: w.variation(),
		Sets: 3, Reps: 8, LoadKg: 60, PauseHoldMs: 1000, ScheduledOn: date})
	if err != nil {
		w.h.t.Fatal(err)
	}
	return p.ID.String()
}

// coachOf is coach ("own": linked to athlete), other-coach ("other") or a missing id.
func (w *world) coachOf(obj object) string {
	switch obj {
	case own:
		return w.accounts[coach].ID
	case others:
		return w.accounts[otherCoach].ID
	}
	return nilUUID
}

// inviteOf is a fresh invite code of coach ("own"), of other-coach ("other"),
// or a code nobody holds.
func (w *world) inviteOf(obj object) string {
	if obj == missing {
		return "ZZZZZZZZ"
	}
	by := map[object]actor{own: coach, others: otherCoach}[obj]
	inv, err := w.h.store.CreateInvite(context.Background(), uuid.MustParse(w.accounts[by].ID), time.Hour, 1000)
	if err != nil {
		w.h.t.Fatal(err)
	}
	return inv.Code
}

// freshInvite is an invite code of a new coach nobody is linked to.
func (w *world) freshInvite() string {
	ctx := context.Background()
	c, err := w.h.store.CreateUser(ctx, domain.User{Email: uuid.NewString() + "@example.com", DisplayName: "Coach", Role: domain.RoleCoach}, "unused")
	if err != nil {
		w.h.t.Fatal(err)
	}
	inv, err := w.h.store.CreateInvite(ctx, c.ID, time.Hour, 20)
	if err != nil {
		w.h.t.Fatal(err)
	}
	return inv.Code
}

// deviceOf registers a fresh push device of athlete ("own"), of other-athlete
// ("other"), or returns a missing id.
func (w *world) deviceOf(obj object) string {
	if obj == missing {
		return nilUUID
	}
	owner := map[object]actor{own: athlete, others: otherAthlete}[obj]
	sub := testSubscription()
	keys := sub["keys"].(map[string]any)
	d, _, err := w.h.store.RegisterDevice(context.Background(), domain.Device{
		UserID: uuid.MustParse(w.accounts[owner].ID), Kind: domain.DeviceKindWebPush, Endpoint: sub["endpoint"].(string),
		P256dh: keys["p256dh"].(string), Auth: keys["auth"].(string)}, 10)
	if err != nil {
		w.h.t.Fatal(err)
	}
	return d.ID.String()
}

func (w *world) token(a actor) string {
	if a == anonymous {
		return ""
	}
	return w.accounts[a].Access
}

// row is one route of the matrix.
type row struct {
	objects []object
	// build returns the request for an object (the caller is set by the matrix).
	build func(w *world, obj object) request
	// want is the expected status for a caller and object.
	want func(a actor, obj object) int
}

const nilUUID = "00000000-0000-4000-8000-000000000000"

// Common expectations.
func public(status int) func(actor, object) int { return func(actor, object) int { return status } }

func signedIn(status int) func(actor, object) int {
	return func(a actor, _ object) int {
		if a == anonymous {
			return 401
		}
		return status
	}
}

func matrix() map[string]row {
	m := map[string]row{
		"GET /livez":                 {build: get("/livez"), want: public(200)},
		"GET /readyz":                {build: get("/readyz"), want: public(200)},
		"GET /metrics":               {build: get("/metrics"), want: public(200)},
		"GET /openapi.yaml":          {build: get("/openapi.yaml"), want: public(200)},
		"GET /.well-known/jwks.json": {build: get("/.well-known/jwks.json"), want: public(200)},
		// The web clients are public static files: the same for every caller.
		"GET /app/*": {build: get("/app/"), want: public(200)},
		"POST /v1/auth/register": {
			build: func(w *world, _ object) request {
				return request{Method: "POST", Path: "/v1/auth/register", Body: map[string]any{
					"email": fmt.Sprintf("new-%p@example.com", w), "password": "correct horse battery", "display_name": "New", "role": "athlete"}}
			},
			// The same address twice: the first caller creates it, the rest conflict.
			want: func(a actor, _ object) int {
				if a == anonymous {
					return 201
				}
				return 409
			},
		},
		"POST /v1/auth/login": {
			build: func(w *world, _ object) request {
				return request{Method: "POST", Path: "/v1/auth/login", Body: map[string]any{
					"email": w.accounts[athlete].Email, "password": "correct horse battery"}}
			},
			want: public(200),
		},
		"POST /v1/auth/refresh": {
			objects: []object{own, missing},
			build: func(w *world, obj object) request {
				tok := "unknown-refresh-token"
				if obj == own {
					// A fresh session per call, so that rotation does not interfere.
					r := w.h.post("/v1/auth/login", "", map[string]any{"email": w.accounts[otherAthlete].Email, "password": "correct horse battery"})
					tok = r.json(w.h.t)["refresh_token"].(string)
				}
				return request{Method: "POST", Path: "/v1/auth/refresh", Body: map[string]any{"refresh_token": tok}}
			},
			want: func(_ actor, obj object) int {
				if obj == own {
					return 200
				}
				return 401
			},
		},
		"POST /v1/auth/logout": {
			build: func(w *world, _ object) request {
				return request{Method: "POST", Path: "/v1/auth/logout", Body: map[string]any{"refresh_token": "whatever-token"}}
			},
			want: public(204),
		},
		"GET /v1/me": {build: get("/v1/me"), want: signedIn(200)},
		// Accounts (accounts_test.go has the behaviour).
		"POST /v1/auth/verify-email": {
			build: func(*world, object) request {
				return request{Method: "POST", Path: "/v1/auth/verify-email", Body: map[string]any{"token": "no-such-token"}}
			},
			want: public(400),
		},
		"POST /v1/auth/password-reset": {
			build: func(*world, object) request {
				return request{Method: "POST", Path: "/v1/auth/password-reset", Body: map[string]any{"email": uuid.NewString() + "@example.com"}}
			},
			want: public(202),
		},
		"POST /v1/auth/password-reset/confirm": {
			build: func(*world, object) request {
				return request{Method: "POST", Path: "/v1/auth/password-reset/confirm", Body: map[string]any{
					"token": "no-such-token", "new_password": "another horse battery"}}
			},
			want: public(400),
		},
		// Every actor deletes its own account (signed in moments ago).
		"DELETE /v1/me":     {build: func(*world, object) request { return request{Method: "DELETE", Path: "/v1/me"} }, want: signedIn(204)},
		"GET /v1/me/export": {build: get("/v1/me/export"), want: signedIn(200)},
		"POST /v1/me/password": {
			build: func(*world, object) request {
				return request{Method: "POST", Path: "/v1/me/password", Body: map[string]any{
					"current_password": "correct horse battery", "new_password": "correct horse battery 2"}}
			},
			want: signedIn(204),
		},
		"POST /v1/me/email": {
			build: func(*world, object) request {
				return request{Method: "POST", Path: "/v1/me/email", Body: map[string]any{
					"password": "correct horse battery", "new_email": uuid.NewString() + "@example.com"}}
			},
			want: signedIn(202),
		},
		// Admins are verified (made by the command line): nothing to resend.
		"POST /v1/me/email/verification": {
			build: func(*world, object) request { return request{Method: "POST", Path: "/v1/me/email/verification"} },
			want:  roles(map[actor]int{athlete: 202, otherAthlete: 202, coach: 202, otherCoach: 202, admin: 409}),
		},
		"GET /v1/athlete/coaches": {
			build: get("/v1/athlete/coaches"),
			want:  roles(map[actor]int{athlete: 200, otherAthlete: 200, coach: 403, otherCoach: 403, admin: 403}),
		},
		"DELETE /v1/athlete/coaches/:coach_id": {
			objects: allObjects,
			build: func(w *world, obj object) request {
				return request{Method: "DELETE", Path: "/v1/athlete/coaches/" + w.coachOf(obj)}
			},
			want: ownedBy(204, athlete, otherAthlete),
		},
		"GET /v1/coach/invites": {
			build: get("/v1/coach/invites"),
			want:  roles(map[actor]int{athlete: 403, otherAthlete: 403, coach: 200, otherCoach: 200, admin: 403}),
		},
		"DELETE /v1/coach/invites/:code": {
			objects: allObjects,
			build: func(w *world, obj object) request {
				return request{Method: "DELETE", Path: "/v1/coach/invites/" + w.inviteOf(obj)}
			},
			want: ownedBy(204, coach, otherCoach),
		},

		"GET /v1/exercises":       {build: get("/v1/exercises"), want: signedIn(200)},
		"GET /v1/exercises/:slug": {objects: []object{own, missing}, build: exercise(""), want: found(200)},
		"POST /v1/admin/exercises/:slug/cues": {
			objects: []object{own, missing},
			build:   exercise("POST", "/cues", map[string]any{"text": "Knees out", "phase": "concentric", "priority": 5}),
			want:    adminOnly(201),
		},
		"GET /v1/admin/cues/:id": {
			objects: []object{own, missing},
			build: func(w *world, obj object) request {
				id, _ := w.cue(obj)
				return request{Method: "GET", Path: "/v1/admin/cues/" + id}
			},
			want: adminOnly(200),
		},
		"PATCH /v1/admin/cues/:id": {
			objects: []object{own, missing},
			build: func(w *world, obj object) request {
				id, etag := w.cue(obj)
				return request{Method: "PATCH", Path: "/v1/admin/cues/" + id, Header: map[string]string{"If-Match": etag}, Body: map[string]any{"priority": 7}}
			},
			want: adminOnly(200),
		},
		"DELETE /v1/admin/cues/:id": {
			objects: []object{own, missing},
			build: func(w *world, obj object) request {
				id, _ := w.cue(obj)
				return request{Method: "DELETE", Path: "/v1/admin/cues/" + id}
			},
			want: adminOnly(204),
		},
		"POST /v1/admin/exercises/:slug/mistakes": {
			objects: []object{own, missing},
			build: func(w *world, obj object) request {
				r := exercise("POST", "/mistakes", nil)(w, obj)
				cue, _ := w.cue(own)
				r.Body = map[string]any{"name": "Knees caving", "fix": "Press the knees out against the band.", "cue_ids": []string{cue}}
				return r
			},
			want: adminOnly(201),
		},
		"GET /v1/admin/mistakes/:id": {
			objects: []object{own, missing},
			build: func(w *world, obj object) request {
				id, _ := w.mistake(obj)
				return request{Method: "GET", Path: "/v1/admin/mistakes/" + id}
			},
			want: adminOnly(200),
		},
		"PATCH /v1/admin/mistakes/:id": {
			objects: []object{own, missing},
			build: func(w *world, obj object) request {
				id, etag := w.mistake(obj)
				return request{Method: "PATCH", Path: "/v1/admin/mistakes/" + id, Header: map[string]string{"If-Match": etag}, Body: map[string]any{"name": "Renamed"}}
			},
			want: adminOnly(200),
		},
		"DELETE /v1/admin/mistakes/:id": {
			objects: []object{own, missing},
			build: func(w *world, obj object) request {
				id, _ := w.mistake(obj)
				return request{Method: "DELETE", Path: "/v1/admin/mistakes/" + id}
			},
			want: adminOnly(204),
		},
		"GET /v1/admin/audit": {build: get("/v1/admin/audit"), want: adminOnly(200)},

		"POST /v1/coach/invites": {
			build: func(*world, object) request { return request{Method: "POST", Path: "/v1/coach/invites"} },
			want:  roles(map[actor]int{athlete: 403, otherAthlete: 403, coach: 201, otherCoach: 201, admin: 403}),
		},
		"POST /v1/athlete/coach-links": {
			build: func(w *world, _ object) request {
				return request{Method: "POST", Path: "/v1/athlete/coach-links", Body: map[string]any{"code": w.freshInvite()}}
			},
			want: roles(map[actor]int{athlete: 201, otherAthlete: 201, coach: 403, otherCoach: 403, admin: 403}),
		},
		"GET /v1/coach/athletes": {
			build: get("/v1/coach/athletes"),
			want:  roles(map[actor]int{athlete: 403, otherAthlete: 403, coach: 200, otherCoach: 200, admin: 403}),
		},
		"DELETE /v1/coach/athletes/:athlete_id": {
			objects: allObjects,
			build: func(w *world, obj object) request {
				return request{Method: "DELETE", Path: "/v1/coach/athletes/" + w.athleteOf(obj)}
			},
			want: ownedBy(204, coach, otherCoach),
		},
		"POST /v1/prescriptions": {
			objects: allObjects,
			build: func(w *world, obj object) request {
				return request{Method: "POST", Path: "/v1/prescriptions", Body: map[string]any{
					"athlete_id": w.athleteOf(obj), "variation": w.variation(), "sets": 3, "reps": 8, "load_kg": 60,
					"pause_hold_ms": 1000, "scheduled_on": time.Now().UTC().Format(time.DateOnly), "notes": ""}}
			},
			want: ownedBy(201, coach, otherCoach),
		},
		"GET /v1/prescriptions": {
			build: get("/v1/prescriptions"),
			want:  roles(map[actor]int{athlete: 200, otherAthlete: 200, coach: 200, otherCoach: 200, admin: 403}),
		},
		"GET /v1/prescriptions/:id": {
			objects: allObjects,
			build: func(w *world, obj object) request {
				return request{Method: "GET", Path: "/v1/prescriptions/" + w.prescriptionOf(obj)}
			},
			want: visibleTo(200, athlete, coach, otherAthlete, otherCoach, admin),
		},
		// Only the coach who wrote a prescription edits or deletes it.
		"PATCH /v1/prescriptions/:id": {
			objects: allObjects,
			build: func(w *world, obj object) request {
				return request{Method: "PATCH", Path: "/v1/prescriptions/" + w.prescriptionOf(obj),
					Header: map[string]string{"If-Match": `"1"`}, Body: map[string]any{"reps": 10}}
			},
			want: ownedBy(200, coach, otherCoach),
		},
		"DELETE /v1/prescriptions/:id": {
			objects: allObjects,
			build: func(w *world, obj object) request {
				return request{Method: "DELETE", Path: "/v1/prescriptions/" + w.prescriptionOf(obj),
					Header: map[string]string{"If-Match": `"1"`}}
			},
			want: ownedBy(204, coach, otherCoach),
		},

		"POST /v1/sets": {
			build: func(w *world, _ object) request {
				return request{Method: "POST", Path: "/v1/sets", Body: map[string]any{
					"variation": w.variation(), "load_kg": 50, "target_reps": 5, "pause_hold_ms": 1000}}
			},
			want: roles(map[actor]int{athlete: 201, otherAthlete: 201, coach: 403, otherCoach: 403, admin: 403}),
		},
		"GET /v1/sets": {build: get("/v1/sets"), want: roles(map[actor]int{athlete: 200, otherAthlete: 200, coach: 200, otherCoach: 200, admin: 403})},
		"GET /v1/sets/:id": {
			objects: allObjects,
			build:   func(w *world, obj object) request { return request{Method: "GET", Path: "/v1/sets/" + w.setOf(obj)} },
			want:    visibleTo(200, athlete, coach, otherAthlete, otherCoach, admin),
		},
		"POST /v1/sets/:id/events": {
			objects: allObjects,
			build: func(w *world, obj object) request {
				return request{Method: "POST", Path: "/v1/sets/" + w.setOf(obj) + "/events", Body: map[string]any{"events": []map[string]any{
					{"event_id": uuid.NewString(), "type": "rep.phase", "phase": "up", "at": time.Now().UTC().Format(time.RFC3339Nano)}}}}
			},
			want: ownedBy(200, athlete, otherAthlete),
		},
		"POST /v1/sets/:id/end": {
			objects: allObjects,
			build: func(w *world, obj object) request {
				return request{Method: "POST", Path: "/v1/sets/" + w.setOf(obj) + "/end"}
			},
			want: ownedBy(200, athlete, otherAthlete),
		},
		"POST /v1/sets/:id/feedback": {
			objects: allObjects,
			build: func(w *world, obj object) request {
				return request{Method: "POST", Path: "/v1/sets/" + w.setOf(obj) + "/feedback", Body: map[string]any{"text": "Nice lockouts"}}
			},
			want: ownedBy(201, coach, otherCoach),
		},
		"POST /v1/live/tickets": {
			build: func(*world, object) request { return request{Method: "POST", Path: "/v1/live/tickets"} },
			want:  roles(map[actor]int{athlete: 201, otherAthlete: 201, coach: 201, otherCoach: 201, admin: 403}),
		},
		// The upgrade itself (401/403 before it) is exercised with real sockets in
		// live_test.go; a plain GET is refused for everyone.
		"GET /v1/live": {build: get("/v1/live"), want: public(400)},

		"GET /v1/push/vapid-public-key": {build: get("/v1/push/vapid-public-key"), want: public(200)},
		"POST /v1/me/devices": {
			build: func(*world, object) request {
				return request{Method: "POST", Path: "/v1/me/devices", Body: testSubscription()}
			},
			want: roles(map[actor]int{athlete: 201, otherAthlete: 201, coach: 201, otherCoach: 201, admin: 403}),
		},
		"GET /v1/me/devices": {
			build: get("/v1/me/devices"),
			want:  roles(map[actor]int{athlete: 200, otherAthlete: 200, coach: 200, otherCoach: 200, admin: 403}),
		},
		"DELETE /v1/me/devices/:id": {
			objects: allObjects,
			build: func(w *world, obj object) request {
				return request{Method: "DELETE", Path: "/v1/me/devices/" + w.deviceOf(obj)}
			},
			// A device is its owner's alone: coaches do not see their athletes' devices.
			want: func(a actor, obj object) int {
				switch {
				case a == anonymous:
					return 401
				case a == admin:
					return 403
				case obj == own && a == athlete, obj == others && a == otherAthlete:
					return 204
				}
				return 404
			},
		},
	}
	for key, r := range progressMatrix() { // progress_test.go
		m[key] = r
	}
	return m
}

var allObjects = []object{own, others, missing}

// exercise targets the hip thrust ("own") or a missing exercise, optionally
// under /v1/admin with a suffix and a body.
func exercise(method string, suffix ...any) func(*world, object) request {
	return func(_ *world, obj object) request {
		slug := "hip-thrust"
		if obj == missing {
			slug = "no-such-exercise"
		}
		if method == "" {
			return request{Method: "GET", Path: "/v1/exercises/" + slug}
		}
		r := request{Method: method, Path: "/v1/admin/exercises/" + slug + suffix[0].(string)}
		if len(suffix) > 1 && suffix[1] != nil {
			r.Body = suffix[1]
		}
		return r
	}
}

// found: any signed-in user; 404 for a missing object.
func found(ok int) func(actor, object) int {
	return func(a actor, obj object) int {
		switch {
		case a == anonymous:
			return 401
		case obj == missing:
			return 404
		}
		return ok
	}
}

// adminOnly: admins get ok (404 for a missing object), other roles 403.
func adminOnly(ok int) func(actor, object) int {
	return func(a actor, obj object) int {
		switch {
		case a == anonymous:
			return 401
		case a != admin:
			return 403
		case obj == missing:
			return 404
		}
		return ok
	}
}

// roles gives each signed-in actor its status; anonymous gets 401.
func roles(m map[actor]int) func(actor, object) int {
	return func(a actor, _ object) int {
		if a == anonymous {
			return 401
		}
		return m[a]
	}
}

// visibleTo: the pair (mine, mine-coach) sees own objects, the pair (theirs,
// theirs-coach) sees the other's; anyone else gets 404, and the forbidden role 403.
func visibleTo(ok int, mine, myCoach, theirs, theirCoach, forbidden actor) func(actor, object) int {
	return func(a actor, obj object) int {
		switch {
		case a == anonymous:
			return 401
		case a == forbidden:
			return 403
		case obj == own && (a == mine || a == myCoach), obj == others && (a == theirs || a == theirCoach):
			return ok
		}
		return 404
	}
}

// ownedBy: only the given role may call; of it, first sees own objects, second
// the other's; the remaining roles get 403.
func ownedBy(ok int, first, second actor) func(actor, object) int {
	role := func(a actor) string {
		switch a {
		case athlete, otherAthlete:
			return "athlete"
		case coach, otherCoach:
			return "coach"
		}
		return string(a)
	}
	return func(a actor, obj object) int {
		switch {
		case a == anonymous:
			return 401
		case role(a) != role(first):
			return 403
		case obj == own && a == first, obj == others && a == second:
			return ok
		}
		return 404
	}
}

func get(path string) func(*world, object) request {
	return func(*world, object) request { return request{Method: "GET", Path: path} }
}

func TestAuthorisationMatrix(t *testing.T) {
	t.Parallel()
	rows := matrix()
	app := newHarness(t).app
	var registered []string
	for _, r := range app.GetRoutes(true) {
		if r.Method == "HEAD" {
			continue // Fiber adds HEAD for every GET; the GET row covers it
		}
		registered = append(registered, r.Method+" "+r.Path)
	}
	sort.Strings(registered)
	seen := map[string]bool{}
	for _, key := range registered {
		if seen[key] {
			continue
		}
		seen[key] = true
		rw, ok := rows[key]
		if !ok {
			t.Errorf("route %s is not in the authorisation matrix", key)
			continue
		}
		t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			objs := rw.objects
			if len(objs) == 0 {
				objs = []object{noObject}
			}
			for _, obj := range objs {
				for _, a := range actors {
					req := rw.build(w, obj)
					req.Token = w.token(a)
					res := w.h.do(req)
					if want := rw.want(a, obj); res.Status != want {
						t.Errorf("%s as %s on %s object: status %d, want %d: %s", key, a, obj, res.Status, want, truncate(res.Body))
					}
				}
			}
		})
	}
	for key := range rows {
		if !seen[key] {
			t.Errorf("the matrix has a row for %s, which is not a registered route", key)
		}
	}
}
