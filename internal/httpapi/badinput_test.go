package httpapi_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// TestBadBodiesOnEveryRoute sends malformed bodies to every route of the matrix
// that takes a JSON body, as a caller the route accepts. Each must be refused
// with a problem (400, 413 or 415), never a 500, and nothing may be written.
func TestBadBodiesOnEveryRoute(t *testing.T) {
	t.Parallel()
	bodies := []struct {
		name, body, contentType string
		status                  int
	}{
		{"unknown field", `{"is_admin":true}`, "application/json", 400},
		{"case variant", `{"Email":"x@example.com"}`, "application/json", 400},
		{"trailing data", `{} {}`, "application/json", 400},
		{"truncated", `{"email":`, "application/json", 400},
		{"not an object", `[1,2,3]`, "application/json", 400},
		{"wrong type", `{"email":5,"password":5,"refresh_token":5,"text":5,"name":5,"athlete_id":5,"code":5}`, "application/json", 400},
		{"null", `null`, "application/json", 400},
		{"deep", strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40), "application/json", 400},
		{"invalid utf-8", "{\"email\":\"\xff\xfe\"}", "application/json", 400},
		{"form", `email=a`, "application/x-www-form-urlencoded", 415},
	}
	rows := matrix()
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w := newWorld(t)
	for _, key := range keys {
		rw := rows[key]
		obj := noObject
		if len(rw.objects) > 0 {
			obj = rw.objects[0]
		}
		req := rw.build(w, obj)
		if req.Body == nil || req.Method == "GET" {
			continue
		}
		caller := anonymous
		for _, a := range actors {
			if s := rw.want(a, obj); s >= 200 && s < 300 {
				caller = a
				break
			}
		}
		for _, b := range bodies {
			r := req
			r.Token = w.token(caller)
			r.Body = b.body
			r.Header = map[string]string{"Content-Type": b.contentType}
			for k, v := range req.Header {
				r.Header[k] = v // keep If-Match and the like
			}
			res := w.h.do(r)
			if res.Status != b.status || res.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s with %s: status %d, want %d problem: %s", key, b.name, res.Status, b.status, truncate(res.Body))
			}
		}
	}
}

// TestBodyOverTheLimit is judged from Content-Length, before the body is read,
// on a real listener (fasthttp refuses the body while reading the request).
func TestBodyOverTheLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go h.app.Listener(ln) //nolint:errcheck
	t.Cleanup(func() { _ = h.app.Shutdown() })

	// Only the headers are sent: the answer must come from Content-Length alone.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", 2<<20)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 413 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d (%s), want 413 problem", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestPanicsAnswerAnOpaque500 adds a route that panics (outside the matrix's
// app) and checks the client learns nothing of it.
func TestPanicsAnswerAnOpaque500(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.app.Get("/panic-for-test", func(*fiber.Ctx) error { panic("secret internal detail") })
	h.app.Get("/error-for-test", func(*fiber.Ctx) error { return errors.New("pq: secret table name") })
	for _, path := range []string{"/panic-for-test", "/error-for-test"} {
		req := httptest.NewRequest("GET", path, nil)
		req.Host = "localhost:8080"
		resp, err := h.app.Test(req, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/problem+json" ||
			strings.Contains(string(body), "secret") || !strings.Contains(string(body), `"code":"internal"`) {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}
