package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/repcue/repcue/api"
	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/config"
	"github.com/repcue/repcue/internal/httpapi"
	"github.com/repcue/repcue/internal/live"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/testdb"
)

// harness is the real app on a fresh database, driven in memory. Every response
// is validated against api/openapi.yaml (the contract test).
type harness struct {
	t      *testing.T
	app    *fiber.App
	store  *postgres.Store
	tokens *auth.Tokens
	key    ed25519.PrivateKey // the tokens' signing key
	clock  *clock
	ip     string
	hub    *live.Hub
	logs   *syncBuffer // everything the server logged, at debug level
	push   *pushSetup  // push notifications; see push_endpoint_test.go
}

// syncBuffer collects log lines from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// listen serves the app on a real loopback port (for WebSockets and limits
// that only a real connection shows) and returns its address.
func (h *harness) listen() string {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	go h.app.Listener(ln) //nolint:errcheck
	h.t.Cleanup(func() { _ = h.app.Shutdown() })
	return ln.Addr().String()
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newNode(t, testdb.New(t), auth.GenerateKey(), &clock{t: time.Now()})
}

// otherNode is a second server on h's database, as another node of the same
// deployment: its own connections, caches and hub, the same signing key and clock.
func (h *harness) otherNode() *harness {
	h.t.Helper()
	pool, err := postgres.Open(context.Background(), h.store.Pool().Config().ConnString())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(pool.Close)
	return newNode(h.t, pool, h.key, h.clock)
}

func newNode(t *testing.T, pool *pgxpool.Pool, key ed25519.PrivateKey, clk *clock) *harness {
	t.Helper()
	store := postgres.NewStore(pool)
	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.AllowedOrigins = []string{"https://coach.example.com"}
	cfg.Push.AllowLoopbackHTTP = true // the tests' push endpoints are local
	tokens := auth.NewTokens(key, "repcue", "repcue-api", 15*time.Minute, clk.Now)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hub := live.New(store, log, live.Config{HoldTick: 50 * time.Millisecond})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
	})
	registry := prometheus.NewRegistry()
	registry.MustRegister(hub.Collectors()...)
	ps := newPushSetup(store, log)
	app := httpapi.New(httpapi.Deps{
		Config:   cfg,
		Log:      log,
		Store:    store,
		Tokens:   tokens,
		Hasher:   auth.NewHasher(4),
		Live:     hub,
		Registry: registry,
		Now:      clk.Now,

		Push:           ps.worker,
		VAPIDPublicKey: ps.key.PublicKey(),
	})
	return &harness{t: t, app: app, store: store, tokens: tokens, key: key, clock: clk, ip: "0.0.0.0", hub: hub, logs: logs, push: ps}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode response: %v: %s", err, r.Body)
	}
}

// request describes one call; Body may be a string (sent as is) or a value (JSON).
type request struct {
	Method, Path, Token string
	Body                any
	Header              map[string]string
}

func (h *harness) do(r request) response {
	h.t.Helper()
	var body io.Reader
	var raw []byte
	switch b := r.Body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			h.t.Fatal(err)
		}
	}
	if raw != nil {
		body = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(r.Method, r.Path, body)
	req.Host = "localhost:8080"
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := h.app.Test(req, 30_000)
	if err != nil {
		h.t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	res := response{Status: resp.StatusCode, Header: resp.Header, Body: out}
	validateContract(h.t, r, raw, res)
	return res
}

func (h *harness) get(path, token string) response {
	h.t.Helper()
	return h.do(request{Method: "GET", Path: path, Token: token})
}

func (h *harness) post(path, token string, body any) response {
	h.t.Helper()
	return h.do(request{Method: "POST", Path: path, Token: token, Body: body})
}

// expect fails the test unless the response has the status (and, for errors, the code).
func expect(t *testing.T, r response, status int, code ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if len(code) > 0 {
		if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("content type %q, want application/problem+json", ct)
		}
		var p map[string]any
		_ = json.Unmarshal(r.Body, &p)
		if p["code"] != code[0] {
			t.Fatalf("code %v, want %s: %s", p["code"], code[0], r.Body)
		}
		if len(code) > 1 && p["field"] != code[1] {
			t.Fatalf("field %v, want %s: %s", p["field"], code[1], r.Body)
		}
	}
}

// account is a registered user with a live session.
type account struct {
	ID, Email, Access, Refresh string
}

var userSeq struct {
	sync.Mutex
	n int
}

func (h *harness) register(role string) account {
	h.t.Helper()
	userSeq.Lock()
	userSeq.n++
	n := userSeq.n
	userSeq.Unlock()
	email := fmt.Sprintf("%s%d-%d@example.com", role, n, time.Now().UnixNano())
	r := h.post("/v1/auth/register", "", map[string]any{
		"email": email, "password": "correct horse battery", "display_name": fmt.Sprintf("%s %d", role, n), "role": role,
	})
	expect(h.t, r, 201)
	var tr struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	r.decode(h.t, &tr)
	return account{ID: tr.User.ID, Email: email, Access: tr.AccessToken, Refresh: tr.RefreshToken}
}

// admin creates an admin account through the store (admins cannot register) and signs it in.
func (h *harness) admin() account {
	h.t.Helper()
	email := fmt.Sprintf("admin-%d@example.com", time.Now().UnixNano())
	hash, err := auth.NewHasher(1).Hash(context.Background(), "correct horse battery")
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.store.CreateAdmin(context.Background(), email, "Admin", hash); err != nil {
		h.t.Fatal(err)
	}
	r := h.post("/v1/auth/login", "", map[string]any{"email": email, "password": "correct horse battery"})
	expect(h.t, r, 200)
	var tr struct {
		User         struct{ ID string } `json:"user"`
		AccessToken  string              `json:"access_token"`
		RefreshToken string              `json:"refresh_token"`
	}
	r.decode(h.t, &tr)
	return account{ID: tr.User.ID, Email: email, Access: tr.AccessToken, Refresh: tr.RefreshToken}
}

// The contract: every response of every test must match api/openapi.yaml.
var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

func validateContract(t *testing.T, r request, reqBody []byte, res response) {
	t.Helper()
	if r.Method == "OPTIONS" {
		return // CORS preflights: described once in the document's description, not per path
	}
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(api.OpenAPI)
		if err != nil {
			specErr = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			specErr = fmt.Errorf("openapi.yaml is invalid: %w", err)
			return
		}
		specRouter, specErr = gorillamux.NewRouter(doc)
	})
	if specErr != nil {
		t.Fatal(specErr)
	}
	req := httptest.NewRequest(r.Method, "http://localhost:8080"+r.Path, bytes.NewReader(reqBody))
	route, params, err := specRouter.FindRoute(req)
	if err != nil {
		if res.Status == 404 || res.Status == 405 {
			return // a path the API does not have, answered as such
		}
		t.Fatalf("contract: %s %s is not in api/openapi.yaml: %v", r.Method, r.Path, err)
	}
	if _, ok := route.Operation.Responses.Map()[fmt.Sprint(res.Status)]; !ok && route.Operation.Responses.Default() == nil {
		t.Fatalf("contract: %s %s answered %d, which api/openapi.yaml does not list: %s", r.Method, route.Path, res.Status, res.Body)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, ExcludeRequestBody: true}}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: res.Status, Header: res.Header,
		Body:    io.NopCloser(bytes.NewReader(res.Body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Fatalf("contract: %s %s → %d does not match api/openapi.yaml: %v\nbody: %s", r.Method, route.Path, res.Status, err, truncate(res.Body))
	}
}

func truncate(b []byte) string {
	s := string(b)
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return strings.TrimSpace(s)
}

const testVariation = "test-variation"

// addVariation installs a small exercise of the tests' own, so that tests do not
// depend on the library's content: a variation, a cue for each phase and the
// mistake the rep timer detects, linked to its fix.
func (h *harness) addVariation() {
	h.t.Helper()
	ctx := context.Background()
	for _, sql := range []string{
		`INSERT INTO exercises (id, slug, name, summary, setup, execution) VALUES ('11111111-1111-4111-8111-111111111111', 'test-exercise', 'Test exercise', 'For tests.', 'Set up.', 'Do it.')`,
		`INSERT INTO variations (exercise_id, slug, name, position, loading, description) VALUES ('11111111-1111-4111-8111-111111111111', '` + testVariation + `', 'Test variation', 1, 'barbell', 'For tests.')`,
		`INSERT INTO cues (id, exercise_id, text, phase, priority) VALUES
			('22222222-2222-4222-8222-222222222221', '11111111-1111-4111-8111-111111111111', 'Tuck, then thrust', 'setup', 10),
			('22222222-2222-4222-8222-222222222222', '11111111-1111-4111-8111-111111111111', 'Drive through heels', 'concentric', 10),
			('22222222-2222-4222-8222-222222222223', '11111111-1111-4111-8111-111111111111', 'Pause and squeeze', 'lockout', 10),
			('22222222-2222-4222-8222-222222222224', '11111111-1111-4111-8111-111111111111', 'Ribs down', 'any', 1)`,
		`INSERT INTO mistakes (id, exercise_id, code, name, fix) VALUES ('33333333-3333-4333-8333-333333333333', '11111111-1111-4111-8111-111111111111', 'no_pause_at_top', 'No pause at top', 'Hold the lockout')`,
		`INSERT INTO mistake_cues (mistake_id, cue_id, position) VALUES ('33333333-3333-4333-8333-333333333333', '22222222-2222-4222-8222-222222222223', 1)`,
	} {
		if _, err := h.store.Pool().Exec(ctx, sql); err != nil {
			h.t.Fatal(err)
		}
	}
}
