package webapp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/config"
	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/httpapi"
	"github.com/repcue/repcue/internal/live"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/testdb"
)

// The demo library's ids (migrations/0003_hip_thrust_library.sql).
const (
	cueRibsDown = "a1f0c3d2-0000-4000-8000-0000000000c4"
)

const otherAdminEmail, otherAdminPassword = "other-admin@example.com", "other admin password"

// server is the real repcue on a free loopback port over a fresh database
// holding the demo accounts of `repcue seed`. No origin is configured: the
// pages are served by the server itself, so their origin is its own.
func server(t *testing.T) string {
	t.Helper()
	store := postgres.NewStore(testdb.New(t))
	hasher := auth.NewHasher(2)
	ctx := context.Background()
	hash := func(p string) (string, error) { return hasher.Hash(ctx, p) }
	if err := store.SeedDemo(ctx, hash); err != nil {
		t.Fatal(err)
	}
	// Two more athletes on the demo coach's floor (resting), and a second admin.
	for _, name := range []string{"Alex Kim", "Sam Rivera"} {
		u, err := store.CreateUser(ctx, domain.User{Email: strings.ReplaceAll(strings.ToLower(name), " ", ".") + "@example.com", DisplayName: name, Role: domain.RoleAthlete}, "unused")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Pool().Exec(ctx, `INSERT INTO coach_links (coach_id, athlete_id) SELECT id, $1 FROM users WHERE email = $2`, u.ID, postgres.DemoAccounts[1].Email); err != nil {
			t.Fatal(err)
		}
	}
	pwHash, err := hash(otherAdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateAdmin(ctx, otherAdminEmail, "Other Admin", pwHash); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.AllowedOrigins = nil
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := live.New(store, log, live.Config{HoldTick: 100 * time.Millisecond})
	registry := prometheus.NewRegistry()
	registry.MustRegister(hub.Collectors()...)
	// Access tokens last a second (plus the parser's 5 s leeway), so every page
	// refreshes its tokens several times during the test.
	app := httpapi.New(httpapi.Deps{Config: cfg, Log: log, Store: store, Tokens: auth.NewTokens(auth.GenerateKey(), "repcue", "repcue-api", time.Second, nil),
		Hasher: hasher, Live: hub, Registry: registry})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln) //nolint:errcheck
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = app.ShutdownWithContext(ctx)
		_ = hub.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

// cutter is a TCP proxy in front of the server whose connections the test can
// cut, and keep refusing, to take one browser off the network for a while.
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func newCutter(t *testing.T, base string) (*cutter, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: strings.TrimPrefix(base, "http://"), conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); c.setDown(true) })
	go c.serve()
	return c, "http://" + ln.Addr().String()
}

func (c *cutter) serve() {
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		go c.pipe(conn)
	}
}

func (c *cutter) pipe(conn net.Conn) {
	up, err := net.Dial("tcp", c.target)
	if err != nil {
		conn.Close()
		return
	}
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		conn.Close()
		up.Close()
		return
	}
	c.conns[conn], c.conns[up] = true, true
	c.mu.Unlock()
	go func() { _, _ = io.Copy(up, conn); up.Close() }()
	_, _ = io.Copy(conn, up)
	conn.Close()
	c.mu.Lock()
	delete(c.conns, conn)
	delete(c.conns, up)
	c.mu.Unlock()
}

// setDown cuts every connection and refuses new ones, or lets them through again.
func (c *cutter) setDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
	if down {
		for conn := range c.conns {
			conn.Close()
		}
	}
}

// chromium finds Debian's chromium. These tests never skip: without a browser
// they fail, saying how to install one (.ci/run does it on a fresh machine).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("REPCUE_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: the browser tests need it (apt-get install -y chromium, or set REPCUE_CHROMIUM)")
	return ""
}

// artifacts is where screenshots go: $REPCUE_ARTIFACTS, else .artifacts/browser
// at the top of the repository (git-ignored).
func artifacts(t *testing.T) string {
	dir := os.Getenv("REPCUE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", ".artifacts", "browser")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// tab is one page in its own browser context (its own storage), with every
// JavaScript exception and console error it shows collected.
type tab struct {
	t       *testing.T
	name    string
	ctx     context.Context
	dir     string
	mu      sync.Mutex
	errors  []string
	console []string // every message, shown when the test fails
}

func newTab(t *testing.T, browser context.Context, name, dir string, width, height int64) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, name: name, ctx: ctx, dir: dir}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m.Time.Format("15:04:05.000")+" "+m.String())
			tb.mu.Unlock()
			// HTTP error statuses are the pages' business (a 412 is expected);
			// exceptions, console errors and CSP refusals are not.
			// So are the failed requests of a browser taken off the network.
			if strings.HasPrefix(m.Text, "Failed to load resource:") || strings.Contains(m.Text, "WebSocket connection to") {
				continue
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				tb.mu.Lock()
				tb.errors = append(tb.errors, m.String()+" at "+m.URL)
				tb.mu.Unlock()
			}
		}
	}()
	tb.run(chromedp.EmulateViewport(width, height))
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		if t.Failed() {
			tb.screenshot("failed-" + name)
			t.Logf("%s: console:\n%s", name, strings.Join(tb.console, "\n"))
		}
		for _, e := range tb.errors {
			t.Errorf("%s: browser error: %s", name, e)
		}
	})
	return tb
}

func (tb *tab) run(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", tb.name, err)
	}
}

// wait polls a JavaScript expression until it is truthy.
func (tb *tab) wait(what, expr string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+expr+")", chromedp.WithPollingTimeout(10*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		tb.t.Fatalf("%s: waiting for %s: %v", tb.name, what, err)
	}
}

func (tb *tab) eval(expr string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr)); err != nil {
		tb.t.Fatalf("%s: %s: %v", tb.name, expr, err)
	}
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("%s: text of %s: %v", tb.name, sel, err)
	}
	return s
}

func (tb *tab) click(sel string) {
	tb.t.Helper()
	tb.run(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

func (tb *tab) screenshot(name string) {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(tb.dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return
	}
	tb.t.Logf("screenshot: %s", p)
}

// accessible checks what a script can check of the visible page: every control
// has a label (or an aria-label) and a tap target of at least 44×44 px.
func (tb *tab) accessible(view string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => {
		const out = [];
		const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
		const name = (el) => el.id || el.name || el.textContent.trim().slice(0, 30);
		for (const el of document.querySelectorAll('input, select, textarea')) {
			if (!visible(el)) continue;
			if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label')) out.push('no label: ' + name(el));
		}
		for (const el of document.querySelectorAll('button, select, input:not([type=checkbox]), textarea, summary')) {
			if (!visible(el)) continue;
			const r = el.getBoundingClientRect();
			if (r.height < 44 || r.width < 44) out.push('small target (' + Math.round(r.width) + '×' + Math.round(r.height) + '): ' + name(el));
		}
		for (const el of document.querySelectorAll('input[type=checkbox]')) {
			const box = (el.closest('label') || el).getBoundingClientRect();
			if (visible(el) && box.height < 44) out.push('small checkbox label: ' + name(el));
		}
		return out;
	})()`))
	if err != nil {
		tb.t.Fatalf("%s: %v", tb.name, err)
	}
	for _, p := range problems {
		tb.t.Errorf("%s (%s): %s", tb.name, view, p)
	}
}

// signIn fills the sign-in form from the keyboard alone: the email field has
// the focus, Tab reaches the password, Enter submits.
func (tb *tab) signIn(base, email, password string) {
	tb.t.Helper()
	tb.run(chromedp.Navigate(base+"/app/"), chromedp.WaitVisible(chromedp.CSS("#email")))
	tb.wait("the focus on the email field", `document.activeElement?.id === 'email'`)
	tb.run(chromedp.KeyEvent(email), chromedp.KeyEvent("\t"))
	tb.wait("the focus on the password field", `document.activeElement?.id === 'password'`)
	tb.run(chromedp.KeyEvent(password + "\r"))
}

// A coach and an athlete do a whole set in two browser contexts against the
// real server; then an admin's edit meets a 412.
func TestBrowserCoachAndAthleteDoASet(t *testing.T) {
	base := server(t)
	dir := artifacts(t)
	t.Logf("screenshots in %s", dir)

	// Cleanups, not defers: the tabs' own cleanups (a screenshot when the test
	// failed) run first, while the browser still lives.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	coach := newTab(t, browser, "coach", dir, 1024, 768)
	athlete := newTab(t, browser, "athlete", dir, 390, 844)
	demo := postgres.DemoAccounts

	// The coach's tablet reaches the server through a cable the test can pull.
	cable, coachBase := newCutter(t, base)
	coach.signIn(coachBase, demo[1].Email, demo[1].Password)
	coach.wait("the athletes' tiles", `document.querySelectorAll('.tile h2').length === 3`)
	coach.wait("the socket", `document.querySelector('#conn')?.dataset.state === 'open'`)

	// The coach prescribes the athlete's second set (through the API).
	coachAPI := signedIn(t, base, demo[1].Email, demo[1].Password)
	var linked struct {
		Items []struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"items"`
	}
	coachAPI.do("GET", "/v1/coach/athletes", nil, nil, 200, &linked)
	athleteID := ""
	for _, a := range linked.Items {
		if a.Email == demo[2].Email {
			athleteID = a.ID
		}
	}
	var rx struct {
		ID string `json:"id"`
	}
	coachAPI.do("POST", "/v1/prescriptions", map[string]any{"athlete_id": athleteID, "variation": "dumbbell-hip-thrust", "sets": 3, "reps": 2,
		"load_kg": 16, "pause_hold_ms": 400, "scheduled_on": time.Now().UTC().Format(time.DateOnly), "notes": "Quick pauses"}, nil, 201, &rx)

	athlete.signIn(base, demo[2].Email, demo[2].Password)
	athlete.wait("the start form", `!!document.querySelector('#start-adhoc')`)
	athlete.screenshot("athlete-start")
	athlete.accessible("start")
	athlete.run(chromedp.SetValue(chromedp.CSS("#hold"), "1500"), chromedp.SetValue(chromedp.CSS("#reps"), "3"))
	athlete.click("#start-adhoc")
	athlete.wait("the live set", `document.querySelector('#btn-up') && !document.querySelector('#btn-up').disabled`)

	// set.started reaches the floor; the tile goes live.
	coach.wait("set.started on the floor", `document.querySelector('.tile[data-live="yes"][data-sub="live"] .reps-count')?.textContent === '0 / 3'`)
	if first := coach.text(`.tile h2`); first != "Demo Athlete" {
		t.Fatalf("the live set's tile is not first: %q", first)
	}

	// Rep 1, held in full: the countdown runs on both screens.
	athlete.click("#btn-up")
	athlete.wait("up", `document.querySelector('#sim-phase').dataset.phase === 'up'`)
	athlete.click("#btn-top")
	coach.wait("the countdown", `/^\d\.\d$/.test(document.querySelector('.tile[data-live="yes"] .ring-label')?.textContent || '')`)
	athlete.wait("the countdown", `/^\d\.\d$/.test(document.querySelector('.sim-live .ring-label')?.textContent || '')`)
	coach.screenshot("coach-hold")
	athlete.screenshot("athlete-hold")
	coach.accessible("floor")
	athlete.accessible("live set")
	coach.wait("the hold done", `document.querySelector('.tile[data-live="yes"] .ring-label')?.textContent === 'held'`)
	athlete.click("#btn-down")
	athlete.wait("down", `document.querySelector('#sim-phase').dataset.phase === 'down'`)
	athlete.click("#btn-bottom")
	athlete.wait("rep 1 done", `document.querySelector('#sim-status').textContent.startsWith('Rep 1: hold')`)

	// A coach cue, one tap: it arrives on the phone, which acknowledges it,
	// and the receipt shows on the floor.
	coach.click(`.tile[data-live="yes"] button[data-cue="` + cueRibsDown + `"]`)
	athlete.wait("the coach's cue", `(() => { const b = document.querySelector('#cue-banner'); return !b.hidden && b.textContent === 'Ribs down'; })()`)
	athlete.screenshot("athlete-cue")
	coach.wait("the receipt", `[...document.querySelectorAll('.tile[data-live="yes"] .receipts li')].some(li => li.dataset.acked === 'yes' && li.textContent.includes('Ribs down'))`)
	coach.screenshot("coach-cue-receipt")

	// The tablet loses its connection: the live tile says it is stale.
	cable.setDown(true)
	coach.wait("the stale tile", `document.querySelector('.tile[data-live="yes"] .stale-banner')?.textContent.startsWith('Stale')`)

	// Meanwhile rep 2 is lowered too soon: the timer flags it and pushes "Pause and squeeze".
	athlete.click("#btn-up")
	athlete.wait("up", `document.querySelector('#sim-phase').dataset.phase === 'up'`)
	athlete.click("#btn-top")
	athlete.wait("top", `document.querySelector('#sim-phase').dataset.phase === 'top'`)
	athlete.click("#btn-down")
	athlete.wait("the timer's fix", `(() => { const b = document.querySelector('#cue-banner'); return !b.hidden && b.textContent === 'Pause and squeeze' && b.dataset.source === 'mistake'; })()`)
	athlete.screenshot("athlete-short-hold")
	coach.screenshot("coach-stale")
	if got := coach.text(`.tile[data-live="yes"] .reps-count`); got != "1 / 3" {
		t.Fatalf("the cut-off tablet shows %q", got)
	}

	// Back online: the tile resubscribes with since_seq and epoch and catches up
	// from the replay (rep 2, the fix and its receipt), and is no longer stale.
	cable.setDown(false)
	coach.wait("the tile caught up", `(() => { const t = document.querySelector('.tile[data-live="yes"]');
		return t && t.dataset.stale === 'no' && t.dataset.sub === 'live' && t.querySelector('.reps-count').textContent === '2 / 3'; })()`)
	coach.wait("the fix on the floor", `[...document.querySelectorAll('.tile[data-live="yes"] .receipts li')].some(li => li.dataset.acked === 'yes' && li.textContent.includes('Fix: Pause and squeeze'))`)
	coach.wait("the cue of the moment", `document.querySelector('.tile[data-live="yes"] .cue-now')?.textContent === 'Pause and squeeze'`)
	athlete.click("#btn-bottom")
	athlete.wait("rep 2 done", `document.querySelector('#sim-status').textContent.includes('too short')`)

	// The set opens to its reps: rep 2 missed its hold.
	coach.click(`.tile[data-live="yes"] .open-set`)
	coach.wait("the reps", `document.querySelectorAll('#set-detail table.reps tbody tr').length === 2`)
	if got := coach.text(`#set-detail table.reps tbody tr:nth-child(2) td:last-child`); got != "short" {
		t.Fatalf("rep 2 hold_met shown as %q", got)
	}
	coach.screenshot("coach-set-detail")
	coach.click(`#set-detail button.close`)

	// The athlete ends the set: the summary on both screens, then feedback.
	athlete.click("#end-set")
	athlete.wait("the summary", `!!document.querySelector('#set-summary dl.summary')`)
	athlete.screenshot("athlete-summary")
	coach.wait("the ended tile", `document.querySelector('.tile .badge')?.textContent === 'Set ended'`)
	if got := coach.text(`.tile .mini-summary`); !strings.Contains(got, "2 reps · holds 1/2") {
		t.Fatalf("floor summary %q", got)
	}
	coach.click(`.tile .open-set`)
	coach.wait("the summary and feedback box", `!!document.querySelector('#set-detail dl.summary') && !!document.querySelector('#feedback-text')`)
	coach.run(chromedp.SendKeys(chromedp.CSS("#feedback-text"), "Great first rep; own the pause on the second."),
		chromedp.Click(chromedp.CSS(`#set-detail form.feedback button[type=submit]`)))
	coach.wait("the feedback stored", `document.querySelector('#set-detail .feedback-list')?.textContent.includes('own the pause')`)
	coach.screenshot("coach-summary-feedback")
	coach.accessible("set detail")
	coach.click(`#set-detail button.close`)
	coach.screenshot("coach-floor-after")
	// The overview's attention codes as badges: the resting athletes have done nothing this week.
	coach.wait("the attention badges", `[...document.querySelectorAll('.tile')].filter(t => t.querySelector('h2').textContent !== 'Demo Athlete')
		.every(t => t.querySelector('.attention-badge[data-code="no_sets_7d"]')?.textContent === 'No sets in 7 days')`)

	// Another set, in the automatic tempo: two reps with their holds met, and
	// the floor sees the new set start.
	athlete.click("#new-set")
	athlete.wait("the prescription", `!!document.querySelector('button[data-prescription="`+rx.ID+`"]')`)
	athlete.screenshot("athlete-prescriptions")
	athlete.click(`button[data-prescription="` + rx.ID + `"]`)
	athlete.wait("the live set", `document.querySelector('#btn-up') && !document.querySelector('#btn-up').disabled`)
	athlete.click("#auto")
	coach.wait("the second set on the floor", `document.querySelector('.tile[data-live="yes"] .meta')?.textContent.startsWith('Dumbbell Hip Thrust · 16 kg · 2 reps')`)
	athlete.wait("the automatic reps", `document.querySelector('#sim-status').textContent.includes('Target reached') && !document.querySelector('#auto').checked`)
	athlete.click("#end-set")
	athlete.wait("the summary", `[...document.querySelectorAll('#set-summary dd')].some(d => d.textContent === '2 / 2')`)

	// The athlete's progress, from the tile: the progression's verdict and the
	// weekly charts, this week holding both sets (60 kg × 2 + 16 kg × 2 = 152 kg;
	// holds 3 of 4).
	coach.wait("the second set ended on the floor", `document.querySelector('.tile[data-athlete="`+athleteID+`"] .mini-summary')?.textContent.includes('holds 2/2')`)
	coach.run(chromedp.Focus(chromedp.CSS(`.tile[data-athlete="`+athleteID+`"] .open-progress`)), chromedp.KeyEvent("\r"))
	coach.wait("the progress panel", `document.querySelector('#progress')?.open && !!document.querySelector('#progress svg.chart-volume')`)
	week := mondayOf(time.Now().UTC())
	coach.wait("this week's bar", `Number(document.querySelector('#progress .chart-volume rect[data-week="`+week+`"]')?.getAttribute('height')) > 0`)
	coach.wait("this week's volume named", `document.querySelector('#progress .chart-volume desc')?.textContent.includes('Week of `+week+`: 152 kg in 2 sets')`)
	coach.wait("this week's compliance", `document.querySelector('#progress .chart-compliance circle[data-week="`+week+`"]')?.dataset.compliance === '0.75'
		&& document.querySelector('#progress .chart-compliance desc').textContent.includes('75 % (3 of 4 holds)')`)
	coach.wait("one dot and no line (the other weeks have no reps)", `document.querySelectorAll('#progress .chart-compliance circle').length === 1
		&& !document.querySelector('#progress .chart-compliance polyline')`)
	coach.wait("the hidden tables", `[...document.querySelectorAll('#progress table.sr-only tbody tr')].filter(tr => tr.textContent.startsWith('`+week+`')).length === 2`)
	if got := coach.text(`#progression`); !strings.Contains(got, "Current rung") || !strings.Contains(got, "Dumbbell Hip Thrust") || !strings.Contains(got, "Next load") {
		t.Fatalf("progression shown as %q", got)
	}
	if got := coach.text(`#progression-reason`); got == "" {
		t.Fatal("no progression reason")
	}
	if got := coach.text(`#next-load-reason`); got == "" {
		t.Fatal("no next load reason")
	}
	coach.screenshot("coach-progress")
	coach.accessible("progress")
	// Escape closes it, and the focus is back on the tile's button.
	coach.run(chromedp.KeyEvent(kb.Escape))
	coach.wait("the panel closed", `!document.querySelector('#progress').open && document.activeElement?.matches('.tile[data-athlete="`+athleteID+`"] .open-progress')`)

	// The admin edits a cue someone else has just changed: 412, both versions shown.
	admin := newTab(t, browser, "admin", dir, 1280, 900)
	admin.signIn(base, demo[0].Email, demo[0].Password)
	admin.wait("the library", `!!document.querySelector('form[data-cue="`+cueRibsDown+`"]')`)
	admin.screenshot("admin-library")
	admin.accessible("library")
	signedIn(t, base, otherAdminEmail, otherAdminPassword).do("PATCH", "/v1/admin/cues/"+cueRibsDown,
		map[string]any{"text": "Ribs down, brace"}, map[string]string{"If-Match": `"1"`}, 200, nil)
	sel := `#cue-` + cueRibsDown + `-text`
	admin.eval(`document.querySelector('` + sel + `').value = ''`)
	admin.run(chromedp.SendKeys(chromedp.CSS(sel), "Ribs stacked"),
		chromedp.Click(chromedp.CSS(`form[data-cue="`+cueRibsDown+`"] button[type=submit]`)))
	admin.wait("the conflict", `(() => { const c = document.querySelector('.conflict[data-conflict="cue"]');
		return c && c.querySelector('.mine').textContent.includes('Ribs stacked') && c.querySelector('.theirs').textContent.includes('Ribs down, brace'); })()`)
	admin.screenshot("admin-conflict")
	admin.accessible("conflict")
	// Saving over theirs, knowingly, with the current version.
	admin.click(`.conflict .primary`)
	admin.wait("the saved edit", `document.querySelector('#cue-`+cueRibsDown+`-text')?.value === 'Ribs stacked' && !document.querySelector('.conflict')`)
	admin.wait("the audit trail", `(() => { const t = [...document.querySelectorAll('.audit-list li')].map(li => li.textContent);
		return t.length >= 2 && t[0].includes('update cue by you') && t[1].includes('update cue by another admin'); })()`)
	admin.screenshot("admin-audit")
}

// mondayOf is the ISO week's Monday holding t, as insights name weeks.
func mondayOf(t time.Time) string {
	return t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7)).Format(time.DateOnly)
}

// client is a plain API client: the other admin, or the coach prescribing.
type client struct {
	t           *testing.T
	base, token string
}

func signedIn(t *testing.T, base, email, password string) *client {
	t.Helper()
	c := &client{t: t, base: base}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, nil, 200, &tok)
	c.token = tok.AccessToken
	return c
}

func (c *client) do(method, path string, body any, header map[string]string, want int, out any) {
	c.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, c.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}
