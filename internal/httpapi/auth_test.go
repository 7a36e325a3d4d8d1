package httpapi_test

import (
	"strings"
	"testing"
	"time"
)

func TestRegisterLoginMe(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.post("/v1/auth/register", "", map[string]any{
		"email": "  Ada@Example.COM ", "password": "correct horse battery", "display_name": "Ada", "role": "athlete",
	})
	expect(t, r, 201)
	body := r.json(t)
	user := body["user"].(map[string]any)
	if user["email"] != "ada@example.com" || user["role"] != "athlete" || body["token_type"] != "Bearer" {
		t.Fatalf("unexpected body %s", r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("token responses must not be cached")
	}

	// The same address in another letter case is taken.
	r = h.post("/v1/auth/register", "", map[string]any{
		"email": "ADA@example.com", "password": "another long password", "display_name": "Ada 2", "role": "coach",
	})
	expect(t, r, 409, "conflict", "email")

	r = h.post("/v1/auth/login", "", map[string]any{"email": "ada@EXAMPLE.com", "password": "correct horse battery"})
	expect(t, r, 200)
	access := r.json(t)["access_token"].(string)

	r = h.get("/v1/me", access)
	expect(t, r, 200)
	if me := r.json(t); me["email"] != "ada@example.com" || me["display_name"] != "Ada" {
		t.Fatalf("me: %s", r.Body)
	}
}

func TestRegisterRefusesAdminAndShortPasswords(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cases := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"admin role", map[string]any{"email": "a@example.com", "password": "correct horse battery", "display_name": "A", "role": "admin"}, "role"},
		{"short password", map[string]any{"email": "a@example.com", "password": "short", "display_name": "A", "role": "athlete"}, "password"},
		{"nine runes", map[string]any{"email": "a@example.com", "password": "ééééééééé", "display_name": "A", "role": "athlete"}, "password"},
		{"bad email", map[string]any{"email": "not-an-email", "password": "correct horse battery", "display_name": "A", "role": "athlete"}, "email"},
		{"empty name", map[string]any{"email": "a@example.com", "password": "correct horse battery", "display_name": " ", "role": "athlete"}, "display_name"},
		{"long name", map[string]any{"email": "a@example.com", "password": "correct horse battery", "display_name": strings.Repeat("x", 81), "role": "athlete"}, "display_name"},
	}
	for _, c := range cases {
		r := h.post("/v1/auth/register", "", c.body)
		if r.Status != 400 {
			t.Fatalf("%s: status %d: %s", c.name, r.Status, r.Body)
		}
		expect(t, r, 400, "invalid", c.field)
	}
	// Ten runes are enough, even multi-byte ones.
	r := h.post("/v1/auth/register", "", map[string]any{"email": "b@example.com", "password": "éééééééééé", "display_name": "B", "role": "athlete"})
	expect(t, r, 201)
}

func TestLoginFailuresLookTheSameAndAreThrottled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.register("athlete")

	wrong := h.post("/v1/auth/login", "", map[string]any{"email": a.Email, "password": "wrong password!"})
	unknown := h.post("/v1/auth/login", "", map[string]any{"email": "nobody@example.com", "password": "wrong password!"})
	expect(t, wrong, 401, "unauthorized")
	expect(t, unknown, 401, "unauthorized")
	if string(wrong.Body) != string(unknown.Body) {
		t.Fatalf("unknown email and wrong password differ:\n%s\n%s", wrong.Body, unknown.Body)
	}

	for i := 0; i < 4; i++ { // five failures are free; the fifth brings a wait
		expect(t, h.post("/v1/auth/login", "", map[string]any{"email": a.Email, "password": "wrong password!"}), 401)
	}
	r := h.post("/v1/auth/login", "", map[string]any{"email": a.Email, "password": "correct horse battery"})
	expect(t, r, 429, "too_many_requests")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Not locked out for good: once the wait has passed the real user gets in.
	h.clock.Advance(2 * time.Second)
	expect(t, h.post("/v1/auth/login", "", map[string]any{"email": a.Email, "password": "correct horse battery"}), 200)
}

func TestRefreshRotationAndReuse(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.register("coach")

	r := h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": a.Refresh})
	expect(t, r, 200)
	second := r.json(t)["refresh_token"].(string)
	if second == a.Refresh {
		t.Fatal("refresh did not rotate the token")
	}

	// A phone retrying within the grace window gets a pair too, and the session lives on.
	r = h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": a.Refresh})
	expect(t, r, 200)
	retried := r.json(t)["refresh_token"].(string)
	expect(t, h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": second}), 200)

	// Past the grace window, reuse of a rotated-out token revokes the whole family.
	if _, err := h.store.Pool().Exec(t.Context(), `UPDATE refresh_tokens SET rotated_at = rotated_at - interval '10 seconds'`); err != nil {
		t.Fatal(err)
	}
	expect(t, h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": a.Refresh}), 401, "unauthorized")
	expect(t, h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": retried}), 401, "unauthorized")

	expect(t, h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": "garbage"}), 401, "unauthorized")
}

func TestLogoutEndsTheSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.register("athlete")
	expect(t, h.get("/v1/me", a.Access), 200)
	r := h.post("/v1/auth/logout", "", map[string]any{"refresh_token": a.Refresh})
	expect(t, r, 204)
	// The session's access token stops working too, once the short cache has passed.
	h.clock.Advance(6 * time.Second)
	expect(t, h.get("/v1/me", a.Access), 401, "unauthorized")
	expect(t, h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": a.Refresh}), 401)
	expect(t, h.post("/v1/auth/logout", "", map[string]any{"refresh_token": a.Refresh}), 204)
}

func TestAccessTokensAreCheckedStrictly(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.register("athlete")
	expect(t, h.get("/v1/me", ""), 401, "unauthorized")
	expect(t, h.get("/v1/me", a.Refresh), 401, "unauthorized")
	expect(t, h.get("/v1/me", a.Access+"x"), 401, "unauthorized")
	expect(t, h.get("/v1/me", strings.Repeat("a.", 1500)), 401, "unauthorized")
	h.clock.Advance(16 * time.Minute)
	expect(t, h.get("/v1/me", a.Access), 401, "unauthorized")
}

func TestJWKSAndOps(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.get("/.well-known/jwks.json", "")
	expect(t, r, 200)
	keys := r.json(t)["keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["alg"] != "EdDSA" {
		t.Fatalf("jwks: %s", r.Body)
	}
	expect(t, h.get("/livez", ""), 200)
	expect(t, h.get("/readyz", ""), 200)
	r = h.get("/metrics", "")
	expect(t, r, 200)
	for _, m := range []string{"repcue_http_requests_total", "repcue_live_sockets", "repcue_live_commit_batch_events"} {
		if !strings.Contains(string(r.Body), m) {
			t.Fatalf("metrics lack %s", m)
		}
	}
	r = h.get("/openapi.yaml", "")
	expect(t, r, 200)
	if !strings.HasPrefix(string(r.Body), "openapi: 3.1") {
		t.Fatal("openapi.yaml not served")
	}
	expect(t, h.get("/v1/nothing-here", ""), 404, "not_found")
}
