package httpapi_test

import (
	"testing"
)

// Browsers on an allowed dashboard origin get their preflight answered and may
// read the answers; any other origin gets no CORS headers; nothing is ever
// allowed for every origin or with credentials.
func TestCORSForAllowedOriginsOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const allowed = "https://coach.example.com" // the harness's REPCUE_ALLOWED_ORIGINS

	preflight := func(origin string) response {
		return h.do(request{Method: "OPTIONS", Path: "/v1/auth/login", Header: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}})
	}
	r := preflight(allowed + "/") // the same origin, written with a trailing slash
	if r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") == "" ||
		r.Header.Get("Access-Control-Allow-Methods") == "" || r.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight from %s: %d %v", allowed, r.Status, r.Header)
	}
	r = h.do(request{Method: "GET", Path: "/livez", Header: map[string]string{"Origin": allowed}})
	if r.Header.Get("Access-Control-Allow-Origin") != allowed || r.Header.Get("Access-Control-Expose-Headers") == "" {
		t.Fatalf("simple request from %s: %v", allowed, r.Header)
	}
	for _, origin := range []string{"https://evil.example", "null", allowed + ".evil.example"} {
		r = preflight(origin)
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("preflight from %s allowed %q", origin, got)
		}
		r = h.do(request{Method: "GET", Path: "/livez", Header: map[string]string{"Origin": origin}})
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("request from %s allowed %q", origin, got)
		}
	}
}
