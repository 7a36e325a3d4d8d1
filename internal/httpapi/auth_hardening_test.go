package httpapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/config"
	"github.com/repcue/repcue/internal/httpapi"
	"github.com/repcue/repcue/internal/live"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/testdb"
)

// newTunedHarness is newHarness with the parts the auth tests tune: the hasher
// (to watch its queue) and the hub's session re-check interval.
func newTunedHarness(t *testing.T, hasher *auth.Hasher, sessionCheck time.Duration) *harness {
	t.Helper()
	pool := testdb.New(t)
	store := postgres.NewStore(pool)
	clk := &clock{t: time.Now()}
	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.AllowedOrigins = []string{"https://coach.example.com"}
	tokens := auth.NewTokens(auth.GenerateKey(), "repcue", "repcue-api", 15*time.Minute, clk.Now)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hub := live.New(store, log, live.Config{HoldTick: 50 * time.Millisecond, SessionCheck: sessionCheck})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
	})
	registry := prometheus.NewRegistry()
	registry.MustRegister(hub.Collectors()...)
	app := httpapi.New(httpapi.Deps{Config: cfg, Log: log, Store: store, Tokens: tokens, Hasher: hasher, Live: hub, Registry: registry, Now: clk.Now})
	return &harness{t: t, app: app, store: store, tokens: tokens, clock: clk, ip: "0.0.0.0", hub: hub, logs: logs}
}

// burst runs fn(0) … fn(n-1) at the same moment, each in its own goroutine,
// and returns their results in order.
func burst[T any](n int, fn func(i int) T) []T {
	out := make([]T, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func login(h *harness, email, password string) response {
	h.t.Helper()
	return h.post("/v1/auth/login", "", map[string]any{"email": email, "password": password})
}

// Thirty wrong passwords for one account sent at once: at most five are
// checked (401), the others are refused before any hashing (429).
func TestConcurrentWrongPasswordsGetAtMostFive401s(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.register("athlete")
	const n = 30
	statuses := burst(n, func(i int) response { return login(h, a.Email, fmt.Sprintf("wrong password %d", i)) })
	count := map[int]int{}
	for _, r := range statuses {
		count[r.Status]++
		if r.Status == 429 && r.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	// 503 (no hashing slot in time) is possible on a starved machine; it is not
	// a failure and is not counted as one.
	if count[401] > 5 || count[401]+count[503] != 5 || count[429] != n-5 {
		t.Fatalf("%d wrong passwords at once answered %v: want at most five 401, the rest 429", n, count)
	}
	// A 503 took its reservation back: make up for it, so that the account has
	// five failures as if every guess had been checked.
	for missing, tries := count[503], 0; missing > 0; tries++ {
		if tries == 200 {
			t.Fatal("the machine is too busy to check a password")
		}
		switch login(h, a.Email, "wrong password again").Status {
		case 401:
			missing--
		case 503: // still busy: let the other tests' hashing drain
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The real user waits like everyone else, then gets in.
	expect(t, login(h, a.Email, "correct horse battery"), 429, "too_many_requests")
	h.clock.Advance(2 * time.Second)
	expect(t, login(h, a.Email, "correct horse battery"), 200)
}

// Failures are also counted per address: twenty wrong sign-ins from one
// address, each at a different account, and the next is refused, whichever
// account it is for.
func TestAddressThrottleIsConsulted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.register("coach")
	for i := 0; i < 20; i++ {
		expect(t, login(h, fmt.Sprintf("nobody-%d@example.com", i), "wrong password!"), 401, "unauthorized")
	}
	r := login(h, "nobody-else@example.com", "wrong password!")
	expect(t, r, 429, "too_many_requests")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	expect(t, login(h, a.Email, "correct horse battery"), 429, "too_many_requests")
	h.clock.Advance(2 * time.Second)
	expect(t, login(h, a.Email, "correct horse battery"), 200)
	// A success there counted for nothing: the address is still under its
	// doubling wait after the next failure.
	expect(t, login(h, "nobody-0@example.com", "wrong password!"), 401)
	expect(t, login(h, "nobody-1@example.com", "wrong password!"), 429)
}

// Invite-code guesses sent at once are counted one by one too.
func TestConcurrentInviteGuessesAreCounted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	athlete := h.register("athlete")
	const n = 30
	statuses := burst(n, func(i int) int {
		return h.post("/v1/athlete/coach-links", athlete.Access, map[string]any{"code": fmt.Sprintf("ZZZZZZ%02d", i+20)}).Status
	})
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count[404] != 10 || count[429] != n-10 {
		t.Fatalf("%d wrong codes at once answered %v: want ten 404, the rest 429", n, count)
	}
}

// A flood of sign-ups does not hold up another user's sign-in: it waits for
// at most one running hash, not behind the flood. Judged by order (how many
// sign-ups finished while the sign-in was under way), which a slow machine
// does not change, and by a generous time bound.
func TestSignUpFloodDoesNotDelaySignIn(t *testing.T) {
	t.Parallel()
	const workers, flood = 2, 60
	hasher := auth.NewHasher(workers)
	h := newTunedHarness(t, hasher, 0)
	a := h.register("athlete")

	var mu sync.Mutex
	var finished []int // statuses of the sign-ups, in the order they were answered
	var wg sync.WaitGroup
	for i := 0; i < flood; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.post("/v1/auth/register", "", map[string]any{
				"email": fmt.Sprintf("flood-%d@example.com", i), "password": "correct horse battery", "display_name": "Flood", "role": "athlete",
			})
			if r.Status == 503 && r.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			mu.Lock()
			finished = append(finished, r.Status)
			mu.Unlock()
		}()
	}
	// Wait until the whole flood has reached the hasher: queued, running, or
	// already answered (503 at once when the queue is full).
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		answered := len(finished)
		mu.Unlock()
		if hasher.Waiting()[auth.Bulk]+answered >= flood-3*workers {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flood never queued")
		}
		time.Sleep(2 * time.Millisecond)
	}
	mu.Lock()
	before := len(finished)
	mu.Unlock()
	began := time.Now()
	r := login(h, a.Email, "correct horse battery")
	took := time.Since(began)
	mu.Lock()
	during := 0
	for _, s := range finished[before:] {
		if s == 201 {
			during++
		}
	}
	mu.Unlock()
	wg.Wait()
	count := map[int]int{}
	for _, s := range finished {
		count[s]++
	}
	t.Logf("sign-in answered %d in %s; %d sign-ups answered 201 meanwhile; the flood's answers: %v", r.Status, took.Round(time.Millisecond), during, count)
	if count[201]+count[503] != flood {
		t.Fatalf("the flood got other answers than 201 and 503: %v", count)
	}
	switch {
	case r.Status == 503:
		// Only if no hash finished within MaxWait (a starved machine): then it must be quick.
		if took > 3*time.Second {
			t.Fatalf("503 after %s", took)
		}
	case r.Status != 200:
		t.Fatalf("the sign-in answered %d: %s", r.Status, r.Body)
	}
	// The sign-in ran at most behind the hashes under way when it came (one per
	// worker), beside one more per other worker: a few sign-ups, not the flood.
	if during > 4*workers {
		t.Fatalf("%d sign-ups finished while the sign-in was under way: it queued behind the flood", during)
	}
	if took > 5*time.Second {
		t.Fatalf("the sign-in took %s", took)
	}
}

// session is a session made directly in the store, without hashing a password.
func newSession(t *testing.T, h *harness, userID string) (refresh string, family uuid.UUID) {
	t.Helper()
	family = uuid.New()
	refresh, hash := auth.NewOpaqueToken()
	if err := h.store.CreateSession(context.Background(), uuid.MustParse(userID), family, hash, time.Hour); err != nil {
		t.Fatal(err)
	}
	return refresh, family
}

// refresher refreshes in a loop, as a phone whose refresh races a logout, and
// keeps every token it was given.
type refresher struct {
	h      *harness
	mu     sync.Mutex
	tokens []string // refresh tokens, the first one included
	access []string
	stop   chan struct{}
	done   chan struct{}
}

func startRefresher(h *harness, first string) *refresher {
	r := &refresher{h: h, tokens: []string{first}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		cur := first
		for {
			select {
			case <-r.stop:
				return
			default:
			}
			res := h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": cur})
			if res.Status != 200 {
				if res.Status != 401 {
					h.t.Errorf("a refresh answered %d: %s", res.Status, res.Body)
				}
				return // the family was revoked
			}
			var tr struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
			}
			res.decode(h.t, &tr)
			cur = tr.RefreshToken
			r.mu.Lock()
			r.tokens = append(r.tokens, cur)
			r.access = append(r.access, tr.AccessToken)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *refresher) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.tokens) }

// await waits until the loop holds n tokens (or has stopped).
func (r *refresher) await(n int) {
	for r.count() < n {
		select {
		case <-r.done:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// finish stops the loop and returns every token it was given.
func (r *refresher) finish() (refresh, access []string) {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tokens, r.access
}

// expectFamilyDead checks that no refresh token of a family works any more,
// and that its access tokens stop working once the session re-check (5 s) has passed.
func expectFamilyDead(t *testing.T, h *harness, trial int, family uuid.UUID, refresh, access []string) {
	t.Helper()
	for i, tok := range refresh {
		if r := h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": tok}); r.Status != 401 {
			t.Fatalf("trial %d: refresh token %d of %d still works after the family was revoked: %d", trial, i+1, len(refresh), r.Status)
		}
	}
	active, err := h.store.ActiveSessions(context.Background(), []uuid.UUID{family})
	if err != nil || active[family] {
		t.Fatalf("trial %d: the session is still active (%v)", trial, err)
	}
	if len(access) > 0 {
		h.clock.Advance(6 * time.Second)
		expect(t, h.get("/v1/me", access[len(access)-1]), 401, "unauthorized")
	}
}

// A logout racing a client that refreshes in a loop: afterwards no token of the
// family works, whatever the loop was doing when the logout came.
func TestLogoutWinsOverARacingRefresh(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.register("athlete")
	for trial := 0; trial < 25; trial++ {
		first, family := newSession(t, h, a.ID)
		loop := startRefresher(h, first)
		loop.await(1 + rand.IntN(3))
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		expect(t, h.post("/v1/auth/logout", "", map[string]any{"refresh_token": first}), 204)
		refresh, access := loop.finish()
		expectFamilyDead(t, h, trial, family, refresh, access)
	}
}

// Reuse of a token rotated out beyond the grace window revokes the family even
// while the rightful client keeps refreshing.
func TestReuseRevokesTheFamilyEvenWhileRefreshesRace(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.register("coach")
	for trial := 0; trial < 15; trial++ {
		stolen, family := newSession(t, h, a.ID)
		r := h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": stolen})
		expect(t, r, 200)
		next := r.json(t)["refresh_token"].(string)
		// The stolen token was rotated out long ago.
		if _, err := h.store.Pool().Exec(context.Background(), `UPDATE refresh_tokens SET rotated_at = now() - interval '1 minute' WHERE token_hash = $1`, auth.HashOpaqueToken(stolen)); err != nil {
			t.Fatal(err)
		}
		loop := startRefresher(h, next)
		loop.await(1 + rand.IntN(3))
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		expect(t, h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": stolen}), 401, "unauthorized")
		refresh, access := loop.finish()
		expectFamilyDead(t, h, trial, family, append(refresh, stolen), access)
	}
}

// Within the grace window a rotated-out token yields the same successor again,
// however many times and however concurrently it is presented: the family
// never branches.
func TestRefreshRetryInGraceGetsTheSameSuccessor(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.register("athlete")

	refreshOf := func(tok string) string {
		t.Helper()
		r := h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": tok})
		expect(t, r, 200)
		return r.json(t)["refresh_token"].(string)
	}
	next := refreshOf(a.Refresh)
	if again := refreshOf(a.Refresh); again != next {
		t.Fatal("a retry within the grace window got a different successor")
	}

	// Two refreshes of one token at once (a phone retrying on a slow network).
	tok, family := newSession(t, h, a.ID)
	got := burst(8, func(int) string {
		r := h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": tok})
		if r.Status != 200 {
			return ""
		}
		return r.json(t)["refresh_token"].(string)
	})
	for _, g := range got {
		if g == "" || g != got[0] {
			t.Fatalf("concurrent refreshes of one token got %q", got)
		}
	}
	var tokens int
	if err := h.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM refresh_tokens WHERE family_id = $1`, family).Scan(&tokens); err != nil {
		t.Fatal(err)
	}
	if tokens != 2 {
		t.Fatalf("the family holds %d tokens after one rotation retried, want 2", tokens)
	}
	// The chain goes on from the one successor.
	expect(t, h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": got[0]}), 200)
}

// A disabled account: its access tokens stop working within the session
// re-check, its live socket is closed 4001, its refresh token and password are
// refused. Both ways of disabling: the store's DisableUser (which also ends
// the sessions) and disabled_at alone (which must be enough by itself).
func TestDisabledAccountLosesEverySession(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		disable func(h *harness, a account)
	}{
		{"DisableUser", func(h *harness, a account) {
			if _, err := h.store.DisableUser(context.Background(), a.Email); err != nil {
				h.t.Fatal(err)
			}
		}},
		{"disabled_at alone", func(h *harness, a account) {
			if _, err := h.store.Pool().Exec(context.Background(), `UPDATE users SET disabled_at = now() WHERE id = $1`, a.ID); err != nil {
				h.t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newTunedHarness(t, auth.NewHasher(2), 100*time.Millisecond)
			a := h.register("athlete")
			addr := h.listen()
			ws, _, err := dial(t, addr, a.Access, "", "")
			if err != nil {
				t.Fatal(err)
			}
			ws.send(map[string]any{"type": "ping", "client_ts": 1})
			ws.next("pong")
			expect(t, h.get("/v1/me", a.Access), 200)

			c.disable(h, a)

			_ = ws.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				_, _, err := ws.conn.ReadMessage()
				if err == nil {
					continue
				}
				if !websocket.IsCloseError(err, 4001) {
					t.Fatalf("the socket ended with %v, want close 4001", err)
				}
				break
			}
			h.clock.Advance(6 * time.Second)
			expect(t, h.get("/v1/me", a.Access), 401, "unauthorized")
			expect(t, h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": a.Refresh}), 401, "unauthorized")
			expect(t, login(h, a.Email, "correct horse battery"), 401, "unauthorized")
		})
	}
}
