package httpapi_test

import (
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
)

// The contract check reads the web clients' files as plain strings.
func init() {
	for _, ct := range []string{"text/html", "text/javascript", "text/css", "image/svg+xml"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
}

// The web clients under /app/: served from the binary with a strict CSP,
// only plain file names, and a working ETag.
func TestWebAppIsServedWithStrictHeaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.get("/app/", "")
	expect(t, r, 200)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("content type %q", ct)
	}
	csp := r.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") {
		t.Errorf("CSP %q allows more than the own origin", csp)
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
	if !strings.Contains(string(r.Body), `src="main.js"`) {
		t.Fatalf("index.html does not load main.js: %s", r.Body)
	}
	js := h.get("/app/main.js", "")
	expect(t, js, 200)
	if ct := js.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Fatalf("main.js content type %q", ct)
	}
	etag := js.Header.Get("ETag")
	again := h.do(request{Method: "GET", Path: "/app/main.js", Header: map[string]string{"If-None-Match": etag}})
	expect(t, again, 304)

	for _, p := range []string{"/app/nope.js", "/app/..%2fgo.mod", "/app/.hidden", "/app/static/main.js"} {
		expect(t, h.get(p, ""), 404, "not_found")
	}
	red := h.get("/app", "")
	if red.Status != 301 || red.Header.Get("Location") != "/app/" {
		t.Fatalf("/app: %d %q", red.Status, red.Header.Get("Location"))
	}
}

// A page served by repcue itself opens live sockets from the server's own
// origin, whatever REPCUE_ALLOWED_ORIGINS lists; a foreign origin still gets 403.
func TestLiveAcceptsTheServersOwnOrigin(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	addr := w.h.listen()
	ticket := func() string {
		return w.h.post("/v1/live/tickets", w.accounts[coach].Access, nil).json(t)["ticket"].(string)
	}
	if _, resp, err := dial(t, addr, "", ticket(), "http://"+addr); err != nil {
		t.Fatalf("own origin refused: %v %v\n%s", err, resp, w.h.logs.String())
	}
	for _, foreign := range []string{"http://evil.example.com", "http://" + addr + ".evil.example.com", "null"} {
		if _, resp, err := dial(t, addr, "", ticket(), foreign); err == nil || resp == nil || resp.StatusCode != 403 {
			t.Errorf("origin %s: %v %v, want 403", foreign, err, resp)
		}
	}
}
