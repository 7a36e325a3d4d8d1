//go:build faults

package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// serverBin is the real binary, built once from ./cmd/repcue.
var serverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "repcue-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBin = filepath.Join(dir, "repcue")
	if out, err := exec.Command("go", "build", "-o", serverBin, "../../cmd/repcue").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the server: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ---- the server process ----

type server struct {
	t      *testing.T
	addr   string
	env    []string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.b.String()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// newServer prepares the real binary against dbURL on a free loopback port
// with a signing key that survives restarts; start runs it.
func newServer(t *testing.T, dbURL string, env ...string) *server {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "jwt.pem")
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, addr: freeAddr(t), log: &syncBuffer{}}
	s.env = append(os.Environ(), "DATABASE_URL="+dbURL, "REPCUE_ADDR="+s.addr, "REPCUE_JWT_KEY_FILE="+keyFile,
		"REPCUE_LOG_LEVEL=warn", "REPCUE_NATS_URL=", "REPCUE_HASH_WORKERS=4")
	s.env = append(s.env, env...)
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("server log (tail):\n%s", s.log.tail(6000))
		}
	})
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs the binary and waits (at most 20 s) until it answers /livez.
func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command(serverBin, "serve")
	s.cmd.Env = s.env
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(s.cmd, s.exited)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + s.addr + "/livez")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-s.exited:
			s.t.Fatalf("the server exited at start:\n%s", s.log.tail(4000))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatal("the server did not answer /livez within 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// resetPeakMemory resets the kernel's peak resident set (VmHWM) of the server,
// where the kernel allows it.
func (s *server) resetPeakMemory() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.cmd.Process.Pid), []byte("5"), 0)
}

// memory reads the server's resident set now and its peak, in MiB, from /proc.
func (s *server) memory() (rss, peak float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		s.t.Fatalf("reading the server's memory: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kib, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kib / 1024
		case "VmHWM:":
			peak = kib / 1024
		}
	}
	return rss, peak
}

// ---- REST ----

type api struct {
	t    *testing.T
	base string
}

type account struct {
	ID    string
	Token string
}

// call does one request. 429 and 503 are waited out (their Retry-After, for
// at most 30 s in all): the setup of a test is not what it tests.
func (a api) call(method, path, token string, body, out any) {
	a.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, b, err := a.try(method, path, token, body)
		if err == nil && status < 300 {
			if out != nil {
				if err := json.Unmarshal(b, out); err != nil {
					a.t.Fatalf("%s %s: %v: %s", method, path, err, b)
				}
			}
			return
		}
		if (err != nil || status == 429 || status == 503) && time.Now().Before(deadline) {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		a.t.Fatalf("%s %s: %d %v %s", method, path, status, err, b)
	}
}

func (a api) try(method, path, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (a api) register(role string) account {
	a.t.Helper()
	var out struct {
		User        struct{ ID string }
		AccessToken string `json:"access_token"`
	}
	a.call("POST", "/v1/auth/register", "", map[string]any{
		"email": "faults-" + uuid.NewString() + "@example.com", "password": "a long fault password", "display_name": "Fault " + role, "role": role,
	}, &out)
	return account{ID: out.User.ID, Token: out.AccessToken}
}

// registerMany registers n accounts of role, a few at a time.
func (a api) registerMany(role string, n int) []account {
	out := make([]account, n)
	parallel(n, 4, func(i int) { out[i] = a.register(role) })
	return out
}

func (a api) link(coach, athlete account) {
	a.t.Helper()
	var invite struct{ Code string }
	a.call("POST", "/v1/coach/invites", coach.Token, nil, &invite)
	a.call("POST", "/v1/athlete/coach-links", athlete.Token, map[string]any{"code": invite.Code}, nil)
}

func (a api) newSet(athlete account, holdMS int) string {
	a.t.Helper()
	var set struct{ ID string }
	a.call("POST", "/v1/sets", athlete.Token, map[string]any{"variation": "barbell-hip-thrust", "load_kg": 80, "target_reps": 100, "pause_hold_ms": holdMS}, &set)
	return set.ID
}

// ---- WebSocket clients ----

type frame map[string]any

func (f frame) str(k string) string { s, _ := f[k].(string); return s }
func (f frame) num(k string) int64  { n, _ := f[k].(float64); return int64(n) }
func (f frame) obj(k string) frame  { m, _ := f[k].(map[string]any); return m }
func (f frame) state() frame        { return f.obj("state") }
func (f frame) typ() string         { return f.str("type") }
func (f frame) isBroadcast() bool   { _, ok := f["seq"]; return ok }
func stateRep(st frame) int         { return int(st.num("rep")) }
func closeCodeOf(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// wsConn is one real WebSocket. Every server message is split on newlines
// (DESIGN §4: one message may carry several frames) and each frame goes to the
// tracker, from the reader goroutine.
type wsConn struct {
	conn   *websocket.Conn
	wmu    sync.Mutex
	tr     *tracker
	done   chan struct{}
	endErr error // why the reader ended; read after done
}

func dialWS(addr, token string, tr *tracker) (*wsConn, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial("ws://"+addr+"/v1/live", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return nil, err
	}
	c := &wsConn{conn: conn, tr: tr, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *wsConn) read() {
	defer close(c.done)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			c.endErr = err
			c.tr.ended(err)
			return
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var f frame
			if err := json.Unmarshal(line, &f); err != nil {
				c.tr.fail("not a JSON frame: %q", line)
				continue
			}
			c.tr.handle(f)
		}
	}
}

func (c *wsConn) send(m map[string]any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteJSON(m)
}

// drop ends the connection without a close handshake, as a lost network does.
func (c *wsConn) drop() {
	_ = c.conn.NetConn().Close()
	<-c.done
}

func (c *wsConn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// tracker is what one client knows: per set the epoch and last seq it saw,
// the live rep count, and anomalies (duplicate or missing seqs); acks by event.
type tracker struct {
	mu        sync.Mutex
	sets      map[string]*setView
	acks      map[string]time.Time // event_id → first ack
	ackFrames int
	errors    []frame
	problems  []string
	snapshots int
	replays   int
	replayed  int // frames received inside replays
	closes    map[int]int
}

type setView struct {
	epoch      string
	lastSeq    int64
	rep        int
	status     string
	duplicates int // broadcast frames with a seq already seen in the epoch
	gaps       int // broadcast frames that skipped a seq
	repDone    map[string]int
	replaying  bool
	epochs     map[string]bool
	answers    int // snapshots and ends of replays: answers to a subscribe
}

func newTracker() *tracker {
	return &tracker{sets: map[string]*setView{}, acks: map[string]time.Time{}, closes: map[int]int{}}
}

func (tr *tracker) view(setID string) *setView {
	v := tr.sets[setID]
	if v == nil {
		v = &setView{repDone: map[string]int{}, epochs: map[string]bool{}}
		tr.sets[setID] = v
	}
	return v
}

func (tr *tracker) fail(format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.problems = append(tr.problems, fmt.Sprintf(format, args...))
}

func (tr *tracker) ended(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.closes[closeCodeOf(err)]++
}

func (tr *tracker) handle(f frame) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	switch f.typ() {
	case "ack":
		tr.ackFrames++
		if _, ok := tr.acks[f.str("event_id")]; !ok {
			tr.acks[f.str("event_id")] = time.Now()
		}
		return
	case "error":
		tr.errors = append(tr.errors, f)
		return
	case "snapshot":
		v := tr.view(f.str("set_id"))
		tr.snapshots++
		v.epoch, v.lastSeq, v.replaying = f.str("epoch"), f.num("last_seq"), false
		v.epochs[v.epoch] = true
		v.answers++
		v.rep, v.status = stateRep(f.state()), f.state().str("status")
		return
	case "replayed":
		v := tr.view(f.str("set_id"))
		tr.replays++
		v.replaying = false
		v.answers++
		if f.str("epoch") != v.epoch || f.num("last_seq") != v.lastSeq {
			tr.problems = append(tr.problems, fmt.Sprintf("replayed %v after seq %d of epoch %s", f, v.lastSeq, v.epoch))
		}
		return
	}
	if !f.isBroadcast() {
		return
	}
	v := tr.view(f.str("set_id"))
	if v.replaying {
		tr.replayed++
	}
	if f.str("epoch") != v.epoch {
		tr.problems = append(tr.problems, fmt.Sprintf("%s frame of epoch %s while the client follows epoch %s (no snapshot in between)", f.typ(), f.str("epoch"), v.epoch))
		v.epoch = f.str("epoch")
		v.epochs[v.epoch] = true
	}
	switch seq := f.num("seq"); {
	case seq <= v.lastSeq:
		v.duplicates++
	case seq > v.lastSeq+1:
		v.gaps++
		v.lastSeq = seq
	default:
		v.lastSeq = seq
	}
	switch f.typ() {
	case "state":
		v.rep, v.status = stateRep(f.state()), f.state().str("status")
	case "rep.done":
		v.repDone[fmt.Sprintf("%s/%d", v.epoch, f.obj("rep").num("n"))]++
	}
}

// resubscribing notes that the client asks for a replay after since: frames
// from there on are expected again.
func (tr *tracker) resubscribing(setID string, since int64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	v := tr.view(setID)
	v.lastSeq, v.replaying = since, true
}

func (tr *tracker) position(setID string) (epoch string, seq int64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	v := tr.view(setID)
	return v.epoch, v.lastSeq
}

func (tr *tracker) acked(id string) (time.Time, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	at, ok := tr.acks[id]
	return at, ok
}

// eventually waits until cond (called under the tracker's lock) holds, for at most d.
func (tr *tracker) eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		tr.mu.Lock()
		ok := cond()
		tr.mu.Unlock()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// parallel runs fn(0..n-1) on workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// waitUntil polls cond (which takes its own locks) for at most d.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// ---- the athlete's phone ----

var cycle = []string{"up", "top", "down", "bottom"}

type sentEvent struct {
	id    string
	phase string
	at    time.Time
}

// phone sends rep phases in order, remembers them, and resends those not
// acknowledged, as the apps do.
// stream has every phone send its next phase at each tick, until the returned
// stop is called (which waits for them).
func stream(phones []*phone, every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range phones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					p.sendNext()
				}
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}

type phone struct {
	setID string
	tr    *tracker
	mu    sync.Mutex
	ws    *wsConn
	sent  []sentEvent
}

func (p *phone) sendNext() {
	p.mu.Lock()
	e := sentEvent{id: uuid.NewString(), phase: cycle[len(p.sent)%len(cycle)], at: time.Now()}
	p.sent = append(p.sent, e)
	ws := p.ws
	p.mu.Unlock()
	_ = ws.send(map[string]any{"type": "rep.phase", "set_id": p.setID, "phase": e.phase, "event_id": e.id, "client_ts": e.at.UnixMilli()})
}

// resend sends again, in order, every event not acknowledged yet; it returns how many.
func (p *phone) resend() int {
	p.mu.Lock()
	events := append([]sentEvent(nil), p.sent...)
	ws := p.ws
	p.mu.Unlock()
	n := 0
	for _, e := range events {
		if _, ok := p.tr.acked(e.id); ok {
			continue
		}
		n++
		_ = ws.send(map[string]any{"type": "rep.phase", "set_id": p.setID, "phase": e.phase, "event_id": e.id, "client_ts": e.at.UnixMilli()})
		time.Sleep(25 * time.Millisecond) // within the 50 frames/s a socket may send
	}
	return n
}

// drive sends n phases, one every 25 ms (within the 50 frames/s a socket may send).
func (p *phone) drive(n int) {
	for range n {
		p.sendNext()
		time.Sleep(25 * time.Millisecond)
	}
}

func (p *phone) events() []sentEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]sentEvent(nil), p.sent...)
}

func (p *phone) unacked() int {
	n := 0
	for _, e := range p.events() {
		if _, ok := p.tr.acked(e.id); !ok {
			n++
		}
	}
	return n
}

func (p *phone) tops() int {
	n := 0
	for _, e := range p.events() {
		if e.phase == "top" {
			n++
		}
	}
	return n
}

// ---- what is stored ----

type storedEvents struct {
	count      int
	distinct   int
	ids        map[string]bool
	nContigous bool // n runs 1..count without a hole
}

func stored(t *testing.T, pool *pgxpool.Pool, setID string) storedEvents {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, `SELECT event_id::text, n FROM set_events WHERE set_id = $1 ORDER BY n`, setID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	s := storedEvents{ids: map[string]bool{}, nContigous: true}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		s.count++
		if n != s.count {
			s.nContigous = false
		}
		s.ids[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	s.distinct = len(s.ids)
	return s
}

// checkPhone verifies a phone's events against storage: every acked event is
// stored, nothing is stored twice, and (once all are acked) nothing is missing.
// It returns acked, stored and duplicates.
func checkPhone(t *testing.T, pool *pgxpool.Pool, p *phone) (acked, nStored, dups int) {
	t.Helper()
	s := stored(t, pool, p.setID)
	for _, e := range p.events() {
		if _, ok := p.tr.acked(e.id); ok {
			acked++
			if !s.ids[e.id] {
				t.Errorf("set %s: event %s (%s) was acknowledged but is not stored", p.setID, e.id, e.phase)
			}
		}
	}
	if s.count != s.distinct {
		t.Errorf("set %s: %d rows for %d events", p.setID, s.count, s.distinct)
	}
	if !s.nContigous {
		t.Errorf("set %s: the stored events' n has holes (an applied event was lost)", p.setID)
	}
	return acked, s.count, s.count - s.distinct
}
