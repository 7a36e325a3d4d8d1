package main

// loadgen takeover: how long a set is unavailable when its owner node is
// killed with SIGKILL (DESIGN.md §7: another node takes it over on the next
// command once the dead node's lease lapses, at most 5 s).
//
// It starts two `repcue serve` processes itself (the same database, keys and
// NATS, on two loopback ports) and, per run, with the athlete of one set of
// `repcue seed --load`:
//
//  1. connects to one node, subscribes, and does a rep up to `top` (each
//     phase acknowledged);
//  2. finds the set's owner node (its lease in PostgreSQL) and kills it with
//     SIGKILL, noting how long its lease had left;
//  3. reconnects to the other node and subscribes again every 50 ms (with the
//     old epoch and seq, as a phone does) until it gets a `snapshot` of a new
//     epoch: kill → snapshot;
//  4. sends `down` and waits for its `ack`: kill → first ack; then `bottom`
//     and `set.end`, checking the seq of every frame and that every
//     acknowledged event is stored exactly once;
//  5. starts the killed node again for the next run, whose athlete connects to
//     the other node (so the nodes take turns dying).
//
// Loopback only; bounded (-run-timeout per run); every child is stopped on
// any exit, Ctrl-C included, and dies with loadgen if loadgen is killed.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

type takeoverOptions struct {
	runs       int
	repcue     string
	addrs      [2]string
	natsURL    string
	runTimeout time.Duration
	retryEvery time.Duration
	jsonOut    bool
	keepLogs   bool
	term       bool // SIGTERM (a hand-over) instead of SIGKILL
}

func takeoverMain(args []string) {
	var o takeoverOptions
	fs := flag.NewFlagSet("takeover", flag.ExitOnError)
	fs.IntVar(&o.runs, "runs", 20, "kills to time (1–200)")
	fs.StringVar(&o.repcue, "repcue", "bin/repcue", "the repcue binary to run as the two nodes (and to seed the accounts)")
	a := fs.String("addr", "127.0.0.1:18301", "node 1's address (loopback only)")
	b := fs.String("addr2", "127.0.0.1:18302", "node 2's address (loopback only)")
	fs.StringVar(&o.natsURL, "nats", "nats://127.0.0.1:4222", "REPCUE_NATS_URL of both nodes")
	fs.DurationVar(&o.runTimeout, "run-timeout", 30*time.Second, "give up on a run after this long")
	fs.DurationVar(&o.retryEvery, "retry-every", 50*time.Millisecond, "how often the athlete subscribes again while the set is unavailable")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&o.keepLogs, "keep-logs", false, "keep the nodes' logs (else kept only when something failed)")
	sig := fs.String("signal", "kill", "how the owner node is stopped: kill (SIGKILL: its lease lapses) or term (SIGTERM: it hands its sets over; the athlete reconnects when its socket closes)")
	_ = fs.Parse(args)
	o.addrs = [2]string{*a, *b}
	switch *sig {
	case "kill":
	case "term":
		o.term = true
	default:
		fail(errors.New("-signal is kill or term"))
	}
	if o.runs < 1 || o.runs > 200 || o.runTimeout < 10*time.Second || o.runTimeout > 5*time.Minute || o.retryEvery < 10*time.Millisecond || *a == *b {
		fail(errors.New("-runs 1–200, -run-timeout 10s–5m, -retry-every at least 10ms, two different addresses"))
	}
	for _, addr := range o.addrs {
		if err := checkLoopback(addr); err != nil {
			fail(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := runTakeover(ctx, o)
	if r != nil {
		if o.jsonOut {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(r)
		} else {
			r.print(os.Stdout)
		}
	}
	if err != nil {
		fail(err)
	}
	if !r.OK {
		os.Exit(2)
	}
}

// child is one `repcue serve` process.
type child struct {
	n       int // 1 or 2
	addr    string
	cmd     *exec.Cmd
	nodeID  string
	done    chan struct{} // closed when the process has exited
	started time.Time
}

type cluster struct {
	o      takeoverOptions
	env    []string
	dir    string
	mu     sync.Mutex
	nodes  [2]*child
	starts int
}

// environment: this process's, with what `make run` would find for the
// database and keys, and without the listeners a second process could not share.
func (cl *cluster) environment() error {
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "REPCUE_ADDR", "REPCUE_PPROF_ADDR", "REPCUE_METRICS_ADDR", "REPCUE_NATS_URL", "REPCUE_LOG_LEVEL", "REPCUE_ACCESS_TTL":
			continue
		}
		env = append(env, kv)
	}
	out := func(args ...string) (string, error) {
		cmd := exec.Command(cl.o.repcue, args...)
		cmd.Stderr = os.Stderr
		b, err := cmd.Output()
		return strings.TrimSpace(string(b)), err
	}
	if os.Getenv("DATABASE_URL") == "" {
		url, err := out("devdb")
		if err != nil {
			return fmt.Errorf("%s devdb: %w", cl.o.repcue, err)
		}
		env = append(env, "DATABASE_URL="+url)
		os.Setenv("DATABASE_URL", url) // for the storage checks
	}
	if os.Getenv("REPCUE_JWT_KEY_FILE") == "" {
		key, err := out("devkey")
		if err != nil {
			return fmt.Errorf("%s devkey: %w", cl.o.repcue, err)
		}
		env = append(env, "REPCUE_JWT_KEY_FILE="+key)
	}
	cl.env = append(env, "REPCUE_NATS_URL="+cl.o.natsURL, "REPCUE_LOG_LEVEL=info", "REPCUE_ACCESS_TTL=1h")
	return nil
}

// start runs node n (0 or 1) and waits until it is ready and has said its node id.
func (cl *cluster) start(ctx context.Context, n int) error {
	cl.mu.Lock()
	cl.starts++
	logPath := filepath.Join(cl.dir, fmt.Sprintf("node%d-start%d.log", n+1, cl.starts))
	cl.mu.Unlock()
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(cl.o.repcue, "serve")
	cmd.Env = append(slices.Clone(cl.env), "REPCUE_ADDR="+cl.o.addrs[n])
	// Its own process group (a Ctrl-C reaches loadgen only, which stops it),
	// and killed with loadgen should loadgen itself be killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return err
	}
	cmd.Stdout = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	c := &child{n: n + 1, addr: cl.o.addrs[n], cmd: cmd, done: make(chan struct{}), started: time.Now()}
	cl.mu.Lock()
	cl.nodes[n] = c
	cl.mu.Unlock()
	nodeID := make(chan string, 1)
	go func() {
		defer func() { _ = cmd.Wait(); logFile.Close(); close(c.done) }()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = logFile.Write(append(line, '\n'))
			var l struct {
				Msg  string `json:"msg"`
				Node string `json:"node"`
			}
			if json.Unmarshal(line, &l) == nil && l.Msg == "joined the cluster" {
				select {
				case nodeID <- l.Node:
				default:
				}
			}
		}
		_, _ = io.Copy(logFile, stderr)
	}()
	deadline := time.After(30 * time.Second)
	for c.nodeID == "" {
		select {
		case c.nodeID = <-nodeID:
		case <-c.done:
			return fmt.Errorf("node %d exited at start; see %s", n+1, logPath)
		case <-deadline:
			return fmt.Errorf("node %d did not say its node id in 30 s; see %s", n+1, logPath)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	hc := http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := hc.Get("http://" + c.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.done:
			return fmt.Errorf("node %d exited at start; see %s", n+1, logPath)
		case <-deadline:
			return fmt.Errorf("node %d is not ready after 30 s; see %s", n+1, logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopAll stops every child still running: SIGTERM (a hand-over), then
// SIGKILL after 15 s.
func (cl *cluster) stopAll() {
	cl.mu.Lock()
	nodes := cl.nodes
	cl.mu.Unlock()
	for _, c := range nodes {
		if c != nil {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, c := range nodes {
		if c == nil {
			continue
		}
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
}

// takeoverRun is what one kill measured.
type takeoverRun struct {
	Killed        int     `json:"killed_node"`                          // 1 or 2
	ClosedMs      float64 `json:"signal_to_socket_closed_ms,omitempty"` // -signal term: when the athlete's socket was closed
	LeaseLeftMs   float64 `json:"lease_left_ms"`
	SnapshotMs    float64 `json:"kill_to_snapshot_ms"`
	AckMs         float64 `json:"kill_to_first_ack_ms"`
	Unavailable   int     `json:"unavailable_answers"`
	AnswerMs      float64 `json:"unavailable_answer_max_ms"` // the slowest of those answers, from its subscribe
	Acked         int     `json:"acked_events"`
	StoredOnce    bool    `json:"acked_stored_once"`
	StoredEvents  int     `json:"stored_events"`
	RepInSnapshot int     `json:"rep_in_snapshot"`
	Problem       string  `json:"problem,omitempty"`
}

type takeoverReport struct {
	Runs      []takeoverRun                 `json:"runs"`
	Summary   map[string]map[string]float64 `json:"summary_ms"`
	LoadAvg   [2]string                     `json:"load_average_before_after"`
	NATS      string                        `json:"nats"`
	Addrs     [2]string                     `json:"addrs"`
	Logs      string                        `json:"logs,omitempty"`
	Completed int                           `json:"completed"`
	Signal    string                        `json:"signal"`
	OK        bool                          `json:"ok"`
}

func (r *takeoverReport) print(w io.Writer) {
	how := "SIGKILL"
	if r.Signal == "term" {
		how = "SIGTERM"
	}
	fmt.Fprintf(w, "takeover after %s: %d runs (%d completed), nodes %s and %s over %s; load average %s → %s\n",
		how, len(r.Runs), r.Completed, r.Addrs[0], r.Addrs[1], r.NATS, r.LoadAvg[0], r.LoadAvg[1])
	for i, x := range r.Runs {
		fmt.Fprintf(w, "  run %2d: killed node %d  lease left %5.0f ms  kill→snapshot %6.0f ms  kill→ack %6.0f ms  unavailable ×%d (slowest answer %.0f ms)  acked %d stored once %v",
			i+1, x.Killed, x.LeaseLeftMs, x.SnapshotMs, x.AckMs, x.Unavailable, x.AnswerMs, x.Acked, x.StoredOnce)
		if x.ClosedMs > 0 {
			fmt.Fprintf(w, "  (socket closed after %.0f ms)", x.ClosedMs)
		}
		if x.Problem != "" {
			fmt.Fprintf(w, "  PROBLEM: %s", x.Problem)
		}
		fmt.Fprintln(w)
	}
	for _, k := range []string{"lease_left", "kill_to_snapshot", "kill_to_first_ack", "snapshot_after_lease"} {
		if s := r.Summary[k]; s != nil && s["n"] > 0 {
			fmt.Fprintf(w, "  %-22s n=%-3.0f min=%6.0f  p50=%6.0f  max=%6.0f ms\n", k, s["n"], s["min"], s["p50"], s["max"])
		}
	}
	if r.Logs != "" {
		fmt.Fprintf(w, "  the nodes' logs: %s\n", r.Logs)
	}
	fmt.Fprintf(w, "  ok: %v\n", r.OK)
}

func runTakeover(ctx context.Context, o takeoverOptions) (rep *takeoverReport, err error) {
	dir, err := os.MkdirTemp("", "loadgen-takeover")
	if err != nil {
		return nil, err
	}
	cl := &cluster{o: o, dir: dir}
	rep = &takeoverReport{NATS: o.natsURL, Addrs: o.addrs, LoadAvg: [2]string{loadAvg(), ""}, Signal: "kill"}
	if o.term {
		rep.Signal = "term"
	}
	defer func() {
		cl.stopAll()
		rep.LoadAvg[1] = loadAvg()
		if err != nil || !rep.OK || o.keepLogs {
			rep.Logs = dir
		} else {
			os.RemoveAll(dir)
		}
	}()
	if err := cl.environment(); err != nil {
		return rep, err
	}
	accounts, _, err := provision(options{sets: o.runs, coachEvery: 10, repcue: o.repcue, seedEnv: cl.env})
	if err != nil {
		return rep, err
	}
	db, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return rep, err
	}
	defer db.Close(context.Background())
	for n := range 2 {
		if err := cl.start(ctx, n); err != nil {
			return rep, err
		}
	}
	fmt.Fprintf(os.Stderr, "two nodes up: %s (node %s), %s (node %s); load %s\n",
		o.addrs[0], cl.nodes[0].nodeID, o.addrs[1], cl.nodes[1].nodeID, loadAvg())
	var leaseLeft, snap, ack, afterLease []time.Duration
	for i := range o.runs {
		runCtx, cancel := context.WithTimeout(ctx, o.runTimeout)
		x, victim, err := cl.once(runCtx, db, i, accounts.Athletes[i].SetID, accounts.Athletes[i].Token)
		cancel()
		if x != nil {
			rep.Runs = append(rep.Runs, *x)
			fmt.Fprintf(os.Stderr, "run %d: killed node %d, lease left %.0f ms, kill→snapshot %.0f ms, kill→ack %.0f ms, unavailable ×%d %s\n",
				i+1, x.Killed, x.LeaseLeftMs, x.SnapshotMs, x.AckMs, x.Unavailable, x.Problem)
			if x.Problem == "" {
				rep.Completed++
				ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
				leaseLeft, snap, ack = append(leaseLeft, ms(x.LeaseLeftMs)), append(snap, ms(x.SnapshotMs)), append(ack, ms(x.AckMs))
				afterLease = append(afterLease, ms(x.SnapshotMs-x.LeaseLeftMs))
			}
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		if err != nil {
			return rep, fmt.Errorf("run %d: %w", i+1, err)
		}
		if victim >= 0 {
			if err := cl.start(ctx, victim); err != nil {
				return rep, err
			}
		}
	}
	sum := func(d []time.Duration) map[string]float64 {
		s := summarize(d)
		if len(d) > 0 {
			s["min"] = float64(d[0].Microseconds()) / 1000
		}
		return s
	}
	rep.Summary = map[string]map[string]float64{
		"lease_left": sum(leaseLeft), "kill_to_snapshot": sum(snap), "kill_to_first_ack": sum(ack), "snapshot_after_lease": sum(afterLease),
	}
	rep.OK = rep.Completed == o.runs
	return rep, nil
}

// once is run i: the athlete of setID on one node, its owner killed, the set
// taken over through the other. It returns the index of the node it killed
// (-1: none), to be started again.
func (cl *cluster) once(ctx context.Context, db *pgx.Conn, i int, setID, token string) (*takeoverRun, int, error) {
	first := cl.nodes[i%2]
	x := &takeoverRun{}
	c := &counters{}
	s, err := dial(first.addr, token, c)
	if err != nil {
		return nil, -1, err
	}
	defer s.conn.Close()
	defer context.AfterFunc(ctx, func() { _ = s.conn.Close() })() // Ctrl-C or the run's timeout: stop reading
	ts := &tsock{s: s, ctx: ctx, set: setID}
	snap, err := ts.subscribe("", 0)
	if err != nil {
		return nil, -1, err
	}
	if snap.Type != "snapshot" {
		return nil, -1, fmt.Errorf("the first subscribe was answered %s %s", snap.Type, snap.Code)
	}
	var acked []string
	for _, p := range []string{"up", "top"} {
		id, err := ts.phase(p)
		if err != nil {
			return nil, -1, err
		}
		acked = append(acked, id)
	}
	epoch0, last0 := ts.epoch, ts.last
	// The owner: the node its lease names.
	var owner string
	if err := db.QueryRow(ctx, `SELECT coalesce(node_id::text, '') FROM set_leases WHERE set_id = $1`, setID).Scan(&owner); err != nil {
		return nil, -1, fmt.Errorf("the set's lease: %w", err)
	}
	victim := -1
	for n, c := range cl.nodes {
		if c.nodeID == owner {
			victim = n
		}
	}
	if victim < 0 {
		return nil, -1, fmt.Errorf("the set's lease names node %q, neither of ours", owner)
	}
	v, survivor := cl.nodes[victim], cl.nodes[1-victim]
	x.Killed = v.n
	var left float64
	asked := time.Now()
	if err := db.QueryRow(ctx, `SELECT extract(epoch FROM expires_at - now())::float8 FROM nodes WHERE id = $1`, owner).Scan(&left); err != nil {
		return nil, -1, fmt.Errorf("the owner's node row: %w", err)
	}
	killed := time.Now()
	sig := syscall.SIGKILL
	if cl.o.term {
		sig = syscall.SIGTERM
	}
	if err := v.cmd.Process.Signal(sig); err != nil {
		return nil, -1, err
	}
	x.LeaseLeftMs = left*1000 - ms(killed.Sub(asked)) // from the kill on
	// Wait for the node to be gone before it is started again.
	defer func() {
		select {
		case <-v.done:
		case <-time.After(30 * time.Second):
			_ = v.cmd.Process.Kill()
			<-v.done
		}
	}()
	if cl.o.term {
		// A phone reconnects when the server closes its socket (1001).
		for {
			if _, err := ts.next(); err != nil {
				break
			}
		}
		x.ClosedMs = ms(time.Since(killed))
	} else {
		_ = s.conn.Close()
		select {
		case <-v.done:
		case <-ctx.Done():
			return x, victim, ctx.Err()
		}
	}
	s2, err := dial(survivor.addr, token, c)
	if err != nil {
		return x, victim, err
	}
	defer s2.conn.Close()
	defer context.AfterFunc(ctx, func() { _ = s2.conn.Close() })()
	ts2 := &tsock{s: s2, ctx: ctx, set: setID, epoch: epoch0, last: last0}
	for {
		sent := time.Now()
		f, err := ts2.subscribe(epoch0, last0)
		if err != nil {
			x.Problem = fmt.Sprintf("no snapshot after %v: %v", time.Since(killed).Round(time.Millisecond), err)
			return x, victim, nil
		}
		if f.Type == "snapshot" {
			if f.Epoch == epoch0 {
				x.Problem = "a snapshot of the dead owner's epoch"
				return x, victim, nil
			}
			x.SnapshotMs = ms(time.Since(killed))
			if f.State != nil {
				x.RepInSnapshot = f.State.Rep
			}
			break
		}
		if f.Type == "replayed" {
			x.Problem = "a replay in the dead owner's epoch " + epoch0
			return x, victim, nil
		}
		if f.Code != "unavailable" {
			x.Problem = fmt.Sprintf("subscribe answered %s %s: %s", f.Type, f.Code, f.Message)
			return x, victim, nil
		}
		x.Unavailable++
		x.AnswerMs = max(x.AnswerMs, ms(time.Since(sent)))
		select {
		case <-ctx.Done():
			x.Problem = "no snapshot before the run's timeout"
			return x, victim, nil
		case <-time.After(time.Until(sent.Add(cl.o.retryEvery))):
		}
	}
	if x.RepInSnapshot != 1 {
		x.Problem = fmt.Sprintf("the taken-over set shows rep %d, want 1", x.RepInSnapshot)
	}
	id, err := ts2.phase("down")
	if err != nil {
		x.Problem = "down: " + err.Error()
		return x, victim, nil
	}
	x.AckMs = ms(time.Since(killed))
	acked = append(acked, id)
	if id, err = ts2.phase("bottom"); err != nil {
		x.Problem = "bottom: " + err.Error()
		return x, victim, nil
	}
	acked = append(acked, id)
	if err := ts2.end(); err != nil {
		x.Problem = "set.end: " + err.Error()
		return x, victim, nil
	}
	x.Acked = len(acked) + 1
	if g, d := c.gaps.Load(), c.dups.Load(); g+d > 0 && x.Problem == "" {
		x.Problem = fmt.Sprintf("%d gaps, %d duplicates", g, d)
	}
	// Every acknowledged event stored once, and nothing else stored.
	rows, err := db.Query(ctx, `SELECT event_id::text FROM set_events WHERE set_id = $1`, setID)
	if err != nil {
		return x, victim, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return x, victim, err
	}
	x.StoredEvents = len(ids)
	count := map[string]int{}
	for _, id := range ids {
		count[id]++
	}
	x.StoredOnce = true
	for _, id := range append(acked, ts2.endID) {
		if count[id] != 1 {
			x.StoredOnce = false
		}
	}
	if !x.StoredOnce && x.Problem == "" {
		x.Problem = fmt.Sprintf("acknowledged events not stored exactly once (stored %d events)", len(ids))
	}
	return x, victim, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// tsock is one socket of a takeover run, read synchronously.
type tsock struct {
	s     *sock
	ctx   context.Context
	set   string
	epoch string
	last  int64
	endID string
	queue []frame
}

// next returns the next frame other than hold.tick, checking seq on the way.
func (t *tsock) next() (frame, error) {
	for len(t.queue) == 0 {
		deadline, _ := t.ctx.Deadline()
		if deadline.IsZero() || time.Until(deadline) > 5*time.Second {
			deadline = time.Now().Add(5 * time.Second)
		}
		_ = t.s.conn.SetReadDeadline(deadline)
		_, msg, err := t.s.conn.ReadMessage()
		if err != nil {
			return frame{}, err
		}
		for _, line := range strings.Split(string(msg), "\n") {
			if strings.HasPrefix(line, string(holdTickPrefix)) {
				continue
			}
			var f frame
			if err := json.Unmarshal([]byte(line), &f); err != nil {
				return frame{}, fmt.Errorf("unreadable frame %q", line)
			}
			t.queue = append(t.queue, f)
		}
	}
	f := t.queue[0]
	t.queue = t.queue[1:]
	switch {
	case f.Type == "snapshot" || f.Type == "replayed":
		t.epoch, t.last = f.Epoch, f.LastSeq
	case f.Seq != nil:
		switch {
		case f.Epoch != t.epoch:
			t.s.c.gaps.Add(1) // a frame of another epoch without a snapshot first
		case *f.Seq <= t.last:
			t.s.c.dups.Add(1)
		case *f.Seq > t.last+1:
			t.s.c.gaps.Add(1)
		}
		t.last = *f.Seq
	}
	return f, nil
}

// subscribe sends a subscribe (with the epoch and seq known, if any) and
// returns its answer: snapshot, replayed, or an error about the set.
func (t *tsock) subscribe(epoch string, since int64) (frame, error) {
	msg := fmt.Sprintf(`{"type":"subscribe","set_id":%q}`, t.set)
	if epoch != "" {
		msg = fmt.Sprintf(`{"type":"subscribe","set_id":%q,"since_seq":%d,"epoch":%q}`, t.set, since, epoch)
	}
	if err := t.s.send([]byte(msg)); err != nil {
		return frame{}, err
	}
	for {
		f, err := t.next()
		if err != nil {
			return f, err
		}
		if f.SetID == t.set && (f.Type == "snapshot" || f.Type == "replayed" || f.Type == "error") {
			return f, nil
		}
	}
}

// phase sends a rep phase and waits for its ack; an error frame fails it.
func (t *tsock) phase(p string) (string, error) {
	id := uuid.NewString()
	if err := t.s.send(fmt.Appendf(nil, `{"type":"rep.phase","set_id":%q,"phase":%q,"event_id":%q,"client_ts":%d}`, t.set, p, id, time.Now().UnixMilli())); err != nil {
		return "", err
	}
	return id, t.await(id, "ack")
}

// end sends set.end and waits for both its ack (its commit) and set.ended.
func (t *tsock) end() error {
	t.endID = uuid.NewString()
	if err := t.s.send(fmt.Appendf(nil, `{"type":"set.end","set_id":%q,"event_id":%q}`, t.set, t.endID)); err != nil {
		return err
	}
	var acked, ended bool
	for !acked || !ended {
		f, err := t.next()
		if err != nil {
			return err
		}
		switch {
		case f.Type == "error" && (f.EventID == t.endID || f.EventID == ""):
			return fmt.Errorf("error %s: %s", f.Code, f.Message)
		case f.Type == "ack" && f.EventID == t.endID:
			acked = true
		case f.Type == "set.ended":
			ended = true
		}
	}
	return nil
}

func (t *tsock) await(id, typ string) error {
	for {
		f, err := t.next()
		if err != nil {
			return err
		}
		switch {
		case f.Type == "error" && (f.EventID == id || f.EventID == ""):
			return fmt.Errorf("error %s: %s", f.Code, f.Message)
		case f.Type == typ && (typ != "ack" || f.EventID == id):
			return nil
		}
	}
}
