// Command loadgen is the instrument for the live path at gym-floor scale. It
// drives -sets live sets against a repcue (or against its bare relay, for a
// floor) on this machine, each athlete doing reps at a real tempo — up 0.7 s,
// top, lowering after 1.2 s with a 1.0 s prescribed hold, down 0.9 s, bottom
// 0.6 s — and one coach socket per -coach-every sets watching all of them and
// sending a cue about every -cue-every per set. It reports:
//
//   - lockout → coach: from the athlete's `top` leaving the phone to the coach's
//     `state` frame showing that lockout;
//   - cue → athlete: from the coach's `cue.send` to the athlete's `cue` frame;
//   - hold.done lateness: from the hold's `ends_at` to the athlete's `hold.done`;
//   - ack: from a rep phase leaving the phone to its `ack` (after the commit);
//
// as p50/p99/p99.9/max, frames per second each way, the server's CPU and RSS
// (from /proc of the process listening on -addr, and on -coach-addr when the
// coaches' sockets go to another node of a cluster), and socket counts. It checks
// as it goes that every socket sees each set's seq without a gap or a
// duplicate, and at the end that every acknowledged event is in PostgreSQL
// exactly once (DATABASE_URL). Accounts come from `repcue seed --load`, which
// it runs itself (-repcue) unless -accounts names a file it wrote.
//
//	loadgen -sets 1000 -duration 1m              # against repcue on 127.0.0.1:8080
//	loadgen -sets 1000 -duration 1m -relay       # the bare relay, in a child process
//	loadgen relay -addr 127.0.0.1:18090          # serve the relay by itself
//	loadgen -addr 127.0.0.1:18301 -coach-addr 127.0.0.1:18302   # two nodes of a cluster
//	loadgen takeover -runs 20                    # kill -9 a set's owner node, time the takeover (takeover.go)
//
// Athletes subscribe first, and the coaches once every athlete has its
// snapshot: a set's first command reaches the athlete's node, which so takes
// the set's lease (DESIGN.md §7), and only the fan-out to coaches crosses NATS.
//
// It only talks to loopback addresses, and stops by itself.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The tempo of every rep.
const (
	tempoUp     = 700 * time.Millisecond  // bottom → top
	tempoTop    = 1200 * time.Millisecond // top → down (the prescribed hold is 1.0 s)
	tempoDown   = 900 * time.Millisecond  // down → bottom
	tempoBottom = 600 * time.Millisecond  // bottom → next up
	repCycle    = tempoUp + tempoTop + tempoDown + tempoBottom
)

type options struct {
	addr, coachAddr    string
	accounts, repcue   string
	sets, coachEvery   int
	duration, cueEvery time.Duration
	relay, jsonOut     bool
	relayAddr          string
	seedEnv            []string // the environment of `repcue seed --load` (nil: this process's)
	watchPID           int      // another process to report (the NATS server)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "relay" {
		fs := flag.NewFlagSet("relay", flag.ExitOnError)
		addr := fs.String("addr", "127.0.0.1:18090", "where the relay listens (loopback only)")
		_ = fs.Parse(os.Args[2:])
		if err := runRelay(*addr); err != nil {
			fail(err)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "takeover" {
		takeoverMain(os.Args[2:])
		return
	}
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8080", "the repcue server (loopback only); the athletes' node of a cluster")
	flag.StringVar(&o.coachAddr, "coach-addr", "", "the node the coaches' sockets go to (loopback only; default: -addr)")
	flag.IntVar(&o.sets, "sets", 100, "live sets (an athlete socket each)")
	flag.IntVar(&o.coachEvery, "coach-every", 10, "one coach socket per this many sets, watching all of them")
	flag.DurationVar(&o.duration, "duration", time.Minute, "how long the sets run (at most 30m)")
	flag.DurationVar(&o.cueEvery, "cue-every", 7500*time.Millisecond, "a coach cue about this often per set")
	flag.StringVar(&o.accounts, "accounts", "", "a file written by `repcue seed --load` (default: run it for fresh accounts)")
	flag.StringVar(&o.repcue, "repcue", "bin/repcue", "the repcue binary that seeds the accounts (needs the server's DATABASE_URL and REPCUE_JWT_KEY_FILE)")
	flag.BoolVar(&o.relay, "relay", false, "drive the bare relay instead (started as a child process on -relay-addr)")
	flag.StringVar(&o.relayAddr, "relay-addr", "127.0.0.1:18090", "the relay's address with -relay")
	flag.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	flag.IntVar(&o.watchPID, "watch-pid", 0, "another process whose CPU, RSS and I/O bytes to report, e.g. the NATS server's (0: none)")
	flag.Parse()
	if o.coachAddr == "" {
		o.coachAddr = o.addr
	}
	if o.relay && o.coachAddr != o.addr {
		fail(errors.New("-coach-addr needs repcue nodes: the relay is one process (-relay-addr)"))
	}
	if o.sets < 1 || o.sets > 20000 || o.coachEvery < 1 || o.coachEvery > 100 || o.duration <= 0 || o.duration > 30*time.Minute || o.cueEvery < 100*time.Millisecond {
		fail(errors.New("-sets 1–20000, -coach-every 1–100, -duration up to 30m, -cue-every at least 100ms"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	r, err := run(ctx, o)
	if err != nil {
		fail(err)
	}
	if o.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	} else {
		r.print(os.Stdout)
	}
	if !r.OK {
		os.Exit(2)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address: loadgen only targets this machine", addr)
		}
	}
	return nil
}

// accountsFile is what `repcue seed --load` writes.
type accountsFile struct {
	Run      string `json:"run"`
	Athletes []struct {
		UserID string `json:"user_id"`
		Token  string `json:"token"`
		SetID  string `json:"set_id"`
		Coach  int    `json:"coach"`
	} `json:"athletes"`
	Coaches []struct {
		Token string `json:"token"`
	} `json:"coaches"`
}

// provision returns the accounts: from -accounts, or fresh ones from `repcue seed --load`.
func provision(o options) (accountsFile, time.Duration, error) {
	var f accountsFile
	start := time.Now()
	path := o.accounts
	if path == "" {
		dir, err := os.MkdirTemp("", "loadgen")
		if err != nil {
			return f, 0, err
		}
		defer os.RemoveAll(dir)
		path = dir + "/accounts.json"
		cmd := exec.Command(o.repcue, "seed", "--load", fmt.Sprint(o.sets), "--coach-every", fmt.Sprint(o.coachEvery), "--out", path)
		cmd.Env = o.seedEnv
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return f, 0, fmt.Errorf("%s seed --load: %w", o.repcue, err)
		}
		fmt.Fprint(os.Stderr, string(out))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return f, 0, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, 0, err
	}
	if len(f.Athletes) < o.sets {
		return f, 0, fmt.Errorf("%s holds %d athletes; -sets is %d", path, len(f.Athletes), o.sets)
	}
	f.Athletes = f.Athletes[:o.sets]
	return f, time.Since(start), nil
}

// startRelay runs this program's relay in a child process.
func startRelay(addr string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "relay", "-addr", addr)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line := make([]byte, 64)
	n, _ := stdout.Read(line) // the address, once it listens
	if n == 0 {
		_ = cmd.Process.Kill()
		return nil, errors.New("the relay did not start")
	}
	return cmd, nil
}

// setRun is what the loadgen knows of one set while it runs.
type setRun struct {
	id      string
	athlete *sock
	coach   *sock

	mu       sync.Mutex
	topRep   int
	topSent  time.Time
	topSeen  bool      // the coach saw this lockout already (later state frames of it do not count)
	endsAt   time.Time // the current hold's deadline, from the athlete's state
	cueN     int
	cueSent  time.Time
	sent     map[string]time.Time // rep phases sent, not yet acknowledged
	acked    []string
	lockout  []time.Duration
	cue      []time.Duration
	lateness []time.Duration
	ack      []time.Duration
}

type counters struct {
	framesIn, framesOut, messagesOut atomic.Int64 // in: to the server; out: from it
	coachFramesOut                   atomic.Int64
	cuesSent                         atomic.Int64
	codesMu                          sync.Mutex
	codes                            map[string]int64 // error frames by code
	gaps, dups, errorFrames, resyncs atomic.Int64
	firstErr                         atomic.Value
	open                             atomic.Int64
}

// sock is one WebSocket connection of the load generator.
type sock struct {
	conn  *websocket.Conn
	wmu   sync.Mutex
	c     *counters
	last  map[string]int64 // set → last seq seen (reader only)
	snap  map[string]bool  // sets this socket had a snapshot of (reader only)
	coach bool
}

func (s *sock) send(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.c.framesIn.Add(1)
	return s.conn.WriteMessage(websocket.TextMessage, b)
}

var dialer = websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 4096}

func dial(addr, token string, c *counters) (*sock, error) {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	var conn *websocket.Conn
	var err error
	for attempt := 0; attempt < 5; attempt++ { // the accept queue may overflow while thousands dial
		if conn, _, err = dialer.Dial("ws://"+addr+"/v1/live", h); err == nil {
			break
		}
		time.Sleep(time.Duration(200*(attempt+1)) * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	c.open.Add(1)
	return &sock{conn: conn, c: c, last: map[string]int64{}, snap: map[string]bool{}}, nil
}

// frame is what the load generator reads of a server frame.
type frame struct {
	Type    string `json:"type"`
	SetID   string `json:"set_id"`
	Seq     *int64 `json:"seq"`
	Epoch   string `json:"epoch"`
	LastSeq int64  `json:"last_seq"`
	EventID string `json:"event_id"`
	Phase   string `json:"phase"` // relay: the forwarded rep.phase
	Text    string `json:"text"`  // relay: the forwarded cue.send
	Code    string `json:"code"`
	Message string `json:"message"`
	State   *struct {
		Rep   int    `json:"rep"`
		Phase string `json:"phase"`
		Hold  *struct {
			EndsAt time.Time `json:"ends_at"`
		} `json:"hold"`
	} `json:"state"`
	Cue *struct {
		Text string `json:"text"`
	} `json:"cue"`
}

var holdTickPrefix = []byte(`{"type":"hold.tick"`)

// read handles every frame the socket gets until it closes; handle is called
// for each frame that is not a hold.tick, after the seq check.
func (s *sock) read(handle func(at time.Time, f *frame)) {
	defer s.c.open.Add(-1)
	for {
		_, msg, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		at := time.Now()
		s.c.messagesOut.Add(1)
		for len(msg) > 0 {
			line := msg
			if i := bytes.IndexByte(msg, '\n'); i >= 0 {
				line, msg = msg[:i], msg[i+1:]
			} else {
				msg = nil
			}
			s.c.framesOut.Add(1)
			if s.coach {
				s.c.coachFramesOut.Add(1)
			}
			if bytes.HasPrefix(line, holdTickPrefix) {
				continue
			}
			var f frame
			if err := json.Unmarshal(line, &f); err != nil {
				s.c.firstErr.CompareAndSwap(nil, fmt.Sprintf("unreadable frame %q", line))
				s.c.errorFrames.Add(1)
				continue
			}
			switch {
			case f.Type == "snapshot" || f.Type == "replayed":
				if f.Type == "snapshot" {
					if s.snap[f.SetID] {
						s.c.resyncs.Add(1)
					}
					s.snap[f.SetID] = true
				}
				s.last[f.SetID] = f.LastSeq
			case f.Seq != nil:
				last, ok := s.last[f.SetID]
				switch {
				case !ok:
				case *f.Seq <= last:
					s.c.dups.Add(1)
				case *f.Seq > last+1:
					s.c.gaps.Add(1)
				}
				s.last[f.SetID] = *f.Seq
			case f.Type == "error":
				s.c.errorFrames.Add(1)
				s.c.firstErr.CompareAndSwap(nil, fmt.Sprintf("error frame: %s %s", f.Code, f.Message))
				s.c.codesMu.Lock()
				if s.c.codes == nil {
					s.c.codes = map[string]int64{}
				}
				s.c.codes[f.Code]++
				s.c.codesMu.Unlock()
			}
			handle(at, &f)
		}
	}
}

func summarize(d []time.Duration) map[string]float64 {
	if len(d) == 0 {
		return map[string]float64{"n": 0}
	}
	slices.Sort(d)
	q := func(p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
	}
	return map[string]float64{"n": float64(len(d)), "p50": q(0.50), "p99": q(0.99), "p99.9": q(0.999), "max": float64(d[len(d)-1].Microseconds()) / 1000}
}

func run(ctx context.Context, o options) (*jsonReport, error) {
	target, coachTarget := o.addr, o.coachAddr
	if o.relay {
		target, coachTarget = o.relayAddr, o.relayAddr
	}
	for _, a := range []string{target, coachTarget} {
		if err := checkLoopback(a); err != nil {
			return nil, err
		}
	}
	nCoaches := (o.sets + o.coachEvery - 1) / o.coachEvery
	if err := raiseFileLimit(o.sets + nCoaches + 100); err != nil {
		return nil, err
	}
	rep := &jsonReport{Target: "repcue", Addr: target, CoachAddr: coachTarget, Sets: o.sets, Sockets: o.sets + nCoaches}
	var accounts accountsFile
	if o.relay {
		rep.Target = "relay"
		relay, err := startRelay(o.relayAddr)
		if err != nil {
			return nil, err
		}
		defer func() { _ = relay.Process.Kill(); _ = relay.Wait() }()
		for i := 0; i < o.sets; i++ {
			accounts.Athletes = append(accounts.Athletes, struct {
				UserID string `json:"user_id"`
				Token  string `json:"token"`
				SetID  string `json:"set_id"`
				Coach  int    `json:"coach"`
			}{SetID: uuid.NewString(), Coach: i / o.coachEvery})
		}
		accounts.Coaches = make([]struct {
			Token string `json:"token"`
		}, nCoaches)
	} else {
		var took time.Duration
		var err error
		if accounts, took, err = provision(o); err != nil {
			return nil, err
		}
		rep.Provision = took.Round(time.Millisecond).String()
	}
	nodes := serverNodes(target, coachTarget)
	if o.watchPID > 0 {
		nodes = append(nodes, &nodeWatch{addr: "-", role: "watched", pid: o.watchPID})
	}
	c := &counters{}
	sets := make([]*setRun, o.sets)
	for i, a := range accounts.Athletes {
		sets[i] = &setRun{id: a.SetID, sent: map[string]time.Time{}}
	}
	// Connect: coaches first (each subscribes to its sets), then athletes.
	if coachTarget == target {
		fmt.Fprintf(os.Stderr, "connecting %d sockets to %s (load %s)\n", o.sets+nCoaches, target, loadAvg())
	} else {
		fmt.Fprintf(os.Stderr, "connecting %d athlete sockets to %s, %d coach sockets to %s (load %s)\n", o.sets, target, nCoaches, coachTarget, loadAvg())
	}
	rep.LoadAvg[0] = loadAvg()
	var wg sync.WaitGroup
	var connErr atomic.Value
	sem := make(chan struct{}, 64)
	coachSocks := make([]*sock, nCoaches)
	for ci := range nCoaches {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s, err := dial(coachTarget, accounts.Coaches[ci].Token, c)
			if err != nil {
				connErr.CompareAndSwap(nil, err)
				return
			}
			s.coach = true
			coachSocks[ci] = s
		}()
	}
	wg.Wait()
	athleteSocks := make([]*sock, o.sets)
	for i, a := range accounts.Athletes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s, err := dial(target, a.Token, c)
			if err != nil {
				connErr.CompareAndSwap(nil, err)
				return
			}
			athleteSocks[i] = s
			sets[i].athlete = s
			sets[i].coach = coachSocks[a.Coach]
		}()
	}
	wg.Wait()
	if err, _ := connErr.Load().(error); err != nil {
		closeAll(coachSocks, athleteSocks)
		return nil, fmt.Errorf("connecting: %w", err)
	}
	byID := map[string]*setRun{}
	for _, s := range sets {
		byID[s.id] = s
	}
	// Readers.
	var readers sync.WaitGroup
	for _, cs := range coachSocks {
		readers.Add(1)
		go func() {
			defer readers.Done()
			cs.read(func(at time.Time, f *frame) { coachFrame(o.relay, byID, at, f) })
		}()
	}
	var athletesIn atomic.Int64 // athlete sockets that have their set's first snapshot
	for i, as := range athleteSocks {
		set := sets[i]
		readers.Add(1)
		go func() {
			defer readers.Done()
			first := true
			as.read(func(at time.Time, f *frame) {
				if first && f.Type == "snapshot" && f.SetID == set.id {
					first = false
					athletesIn.Add(1)
				}
				athleteFrame(o.relay, set, at, f)
			})
		}()
	}
	// Subscribe everyone: the athletes first, so that each set's owner is the
	// node of its athlete's socket (the first command of a set claims it),
	// then, once every athlete has its snapshot, the coaches.
	subscribe := func(s *sock, setID string) error {
		return s.send(fmt.Appendf(nil, `{"type":"subscribe","set_id":%q}`, setID))
	}
	for i, set := range sets {
		if err := subscribe(set.athlete, set.id); err != nil {
			return nil, err
		}
		if i%200 == 199 {
			time.Sleep(20 * time.Millisecond) // a few hundred subscriptions at a time
		}
	}
	for deadline := time.Now().Add(time.Minute); athletesIn.Load() < int64(o.sets); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "loadgen: only %d of %d athletes had a snapshot after a minute; going on\n", athletesIn.Load(), o.sets)
			break
		}
	}
	for i, set := range sets {
		if err := subscribe(set.coach, set.id); err != nil {
			return nil, err
		}
		if i%200 == 199 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(time.Second)
	// Run.
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	nodes.begin()
	self0, _ := readProc(os.Getpid())
	start := time.Now()
	var drivers sync.WaitGroup
	for _, set := range sets {
		drivers.Add(1)
		go func() { defer drivers.Done(); athleteDriver(runCtx, set) }()
	}
	for ci, cs := range coachSocks {
		var mine []*setRun
		for i, a := range accounts.Athletes {
			if a.Coach == ci {
				mine = append(mine, sets[i])
			}
		}
		drivers.Add(1)
		go func() { defer drivers.Done(); coachDriver(runCtx, cs, mine, o.cueEvery) }()
	}
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		var lastIn, lastOut int64
		lastAt := time.Now()
		for {
			select {
			case <-runCtx.Done():
				return
			case now := <-t.C:
				rss := nodes.sample()
				in, out := c.framesIn.Load(), c.framesOut.Load()
				secs := now.Sub(lastAt).Seconds()
				fmt.Fprintf(os.Stderr, "%5.0fs  open %d  in %.0f/s  out %.0f/s  server rss %s MiB  gaps %d dups %d resyncs %d errors %d  load %s\n",
					now.Sub(start).Seconds(), c.open.Load(), float64(in-lastIn)/secs, float64(out-lastOut)/secs,
					rss, c.gaps.Load(), c.dups.Load(), c.resyncs.Load(), c.errorFrames.Load(), loadAvg())
				lastIn, lastOut, lastAt = in, out, now
				rep.PeakOpen = max(rep.PeakOpen, c.open.Load())
			}
		}
	}()
	drivers.Wait()
	elapsed := time.Since(start)
	nodes.end(elapsed)
	self1, _ := readProc(os.Getpid())
	<-progressDone
	time.Sleep(2 * time.Second) // the last acks
	rep.Closed = int64(o.sets+nCoaches) - c.open.Load()
	closeAll(coachSocks, athleteSocks)
	readers.Wait()

	rep.Duration = elapsed.Round(time.Millisecond).String()
	rep.LoadAvg[1] = loadAvg()
	var lockout, cue, lateness, ack []time.Duration
	var acked []string
	setIDs := make([]string, 0, len(sets))
	for _, s := range sets {
		lockout, cue, lateness, ack = append(lockout, s.lockout...), append(cue, s.cue...), append(lateness, s.lateness...), append(ack, s.ack...)
		acked = append(acked, s.acked...)
		rep.Unacked += len(s.sent)
		setIDs = append(setIDs, s.id)
	}
	rep.Latency = map[string]map[string]float64{
		"lockout_to_coach": summarize(lockout), "cue_to_athlete": summarize(cue),
		"hold_done_lateness": summarize(lateness), "ack": summarize(ack),
	}
	if o.relay {
		delete(rep.Latency, "hold_done_lateness") // the relay has no timer
	}
	rep.FramesInPerS = float64(c.framesIn.Load()) / elapsed.Seconds()
	rep.FramesOutPerS = float64(c.framesOut.Load()) / elapsed.Seconds()
	rep.CoachFramesS = float64(c.coachFramesOut.Load()) / elapsed.Seconds()
	rep.MsgsOutPerS = float64(c.messagesOut.Load()) / elapsed.Seconds()
	rep.Nodes = nodes.figures()
	for _, n := range rep.Nodes {
		if n.Role == "watched" {
			continue
		}
		rep.ServerCPU += n.CPU
		rep.ServerRSSMiB += n.RSSMiB
	}
	rep.LoadgenCPU = (self1.cpu - self0.cpu) / elapsed.Seconds()
	rep.Gaps, rep.Duplicates, rep.ErrorFrames, rep.Resyncs = c.gaps.Load(), c.dups.Load(), c.errorFrames.Load(), c.resyncs.Load()
	rep.FirstError, _ = c.firstErr.Load().(string)
	rep.ErrorCodes = c.codes
	rep.CuesSent = c.cuesSent.Load()
	rep.Acked = len(acked)
	if !o.relay {
		if err := checkStored(ctx, setIDs, acked, rep); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: the storage check failed:", err)
		}
	}
	rep.OK = rep.Gaps == 0 && rep.Duplicates == 0 && rep.ErrorFrames == 0 && rep.Closed == 0 && (o.relay || (rep.Checked && rep.Missing == 0 && rep.CueDuplicates == 0 && rep.CuesDistinct <= rep.CuesSent))
	return rep, nil
}

type jsonReport struct {
	Target        string                        `json:"target"`
	Addr          string                        `json:"addr"`       // the athletes' sockets
	CoachAddr     string                        `json:"coach_addr"` // the coaches' sockets
	Sets          int                           `json:"sets"`
	Sockets       int                           `json:"sockets"`
	PeakOpen      int64                         `json:"peak_open_sockets"`
	Duration      string                        `json:"duration"`
	Provision     string                        `json:"provision,omitempty"`
	LoadAvg       [2]string                     `json:"load_average_before_after"`
	Latency       map[string]map[string]float64 `json:"latency_ms"`
	FramesInPerS  float64                       `json:"frames_in_per_s"`
	FramesOutPerS float64                       `json:"frames_out_per_s"`
	CoachFramesS  float64                       `json:"coach_frames_out_per_s"` // of those, to the coaches' sockets
	MsgsOutPerS   float64                       `json:"messages_out_per_s"`
	ServerCPU     float64                       `json:"server_cpu_cores"`   // every node's, summed
	ServerRSSMiB  float64                       `json:"server_rss_max_mib"` // every node's peak, summed
	Nodes         []nodeFigures                 `json:"nodes"`
	Owners        map[string]int                `json:"set_owners,omitempty"` // node id → sets whose lease it holds at the end
	LoadgenCPU    float64                       `json:"loadgen_cpu_cores"`
	Gaps          int64                         `json:"gaps"`
	Duplicates    int64                         `json:"duplicates"`
	Resyncs       int64                         `json:"resync_snapshots"` // snapshots after a socket's first of a set (a new epoch, a gap seen by a node)
	ErrorFrames   int64                         `json:"error_frames"`
	FirstError    string                        `json:"first_error,omitempty"`
	ErrorCodes    map[string]int64              `json:"error_codes,omitempty"`
	// Coaches' cue.send frames: each is sent once (no event_id, never
	// resent) with a text unique within its set, so each must be stored at
	// most once — exactly once unless an error frame refused it.
	CuesSent      int64 `json:"cues_sent"`
	CuesStored    int64 `json:"cues_stored"`
	CuesDistinct  int64 `json:"cues_stored_distinct"`
	CueDuplicates int64 `json:"cues_stored_twice"` // stored rows beyond the first of one cue.send
	Closed        int64 `json:"sockets_closed_early"`
	Acked         int   `json:"acked_events"`
	Unacked       int   `json:"unacked_at_end"`
	StoredOnce    int   `json:"acked_stored_once"`
	Missing       int   `json:"acked_not_stored_once"`
	Checked       bool  `json:"storage_checked"`
	OK            bool  `json:"ok"`
}

func (r *jsonReport) print(w *os.File) {
	fmt.Fprintf(w, "%s: %d sets, %d sockets (peak open %d) for %s; load average %s → %s\n", r.Target, r.Sets, r.Sockets, r.PeakOpen, r.Duration, r.LoadAvg[0], r.LoadAvg[1])
	fmt.Fprintf(w, "athletes on %s, coaches on %s\n", r.Addr, r.CoachAddr)
	if r.Provision != "" {
		fmt.Fprintf(w, "accounts provisioned in %s\n", r.Provision)
	}
	for _, k := range []string{"lockout_to_coach", "cue_to_athlete", "hold_done_lateness", "ack"} {
		s, ok := r.Latency[k]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "  %-20s n=%-7.0f p50=%7.2f  p99=%7.2f  p99.9=%7.2f  max=%8.2f ms\n", k, s["n"], s["p50"], s["p99"], s["p99.9"], s["max"])
	}
	fmt.Fprintf(w, "  frames/s in %.0f, out %.0f (to coaches %.0f; in %.0f messages/s); server CPU %.2f cores, RSS max %.0f MiB; loadgen CPU %.2f cores\n",
		r.FramesInPerS, r.FramesOutPerS, r.CoachFramesS, r.MsgsOutPerS, r.ServerCPU, r.ServerRSSMiB, r.LoadgenCPU)
	for _, n := range r.Nodes {
		fmt.Fprintf(w, "    node %s (%s, pid %d): CPU %.2f cores, RSS max %.0f MiB, I/O %.0f KiB/s read, %.0f KiB/s written\n", n.Addr, n.Role, n.PID, n.CPU, n.RSSMiB, n.ReadKiBs, n.WriteKiBs)
	}
	if len(r.Owners) > 0 {
		fmt.Fprintf(w, "  set leases at the end, per holding node: %v\n", r.Owners)
	}
	fmt.Fprintf(w, "  gaps %d, duplicates %d, resync snapshots %d, error frames %d, sockets closed early %d\n", r.Gaps, r.Duplicates, r.Resyncs, r.ErrorFrames, r.Closed)
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s; error frames by code: %v\n", r.FirstError, r.ErrorCodes)
	}
	if r.Checked {
		fmt.Fprintf(w, "  acked events %d: stored exactly once %d, not %d; unacknowledged at the end %d\n", r.Acked, r.StoredOnce, r.Missing, r.Unacked)
		fmt.Fprintf(w, "  coach cues sent %d, stored %d (distinct %d, stored twice %d)\n", r.CuesSent, r.CuesStored, r.CuesDistinct, r.CueDuplicates)
	}
	fmt.Fprintf(w, "  ok: %v\n", r.OK)
}

func closeAll(groups ...[]*sock) {
	for _, g := range groups {
		for _, s := range g {
			if s != nil {
				_ = s.conn.Close()
			}
		}
	}
}

// athleteDriver does reps at the tempo until ctx ends, starting at a random
// point of the first cycle so that the sets do not move in step.
func athleteDriver(ctx context.Context, set *setRun) {
	sleep := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	if !sleep(rand.N(repCycle)) {
		return
	}
	phase := func(p string) bool {
		id := uuid.NewString()
		now := time.Now()
		set.mu.Lock()
		set.sent[id] = now
		if p == "top" {
			set.topRep++
			set.topSent, set.topSeen = now, false
		}
		set.mu.Unlock()
		return set.athlete.send(fmt.Appendf(nil, `{"type":"rep.phase","set_id":%q,"phase":%q,"event_id":%q,"client_ts":%d}`, set.id, p, id, now.UnixMilli())) == nil
	}
	for {
		if !phase("up") || !sleep(tempoUp) || !phase("top") || !sleep(tempoTop) ||
			!phase("down") || !sleep(tempoDown) || !phase("bottom") || !sleep(tempoBottom) {
			return
		}
	}
}

// coachDriver sends each of its sets a cue about every cueEvery, in turn.
func coachDriver(ctx context.Context, s *sock, sets []*setRun, cueEvery time.Duration) {
	if len(sets) == 0 {
		return
	}
	gap := cueEvery / time.Duration(len(sets))
	t := time.NewTimer(rand.N(gap) + gap)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		set := sets[i%len(sets)]
		set.mu.Lock()
		set.cueN++
		n := set.cueN
		set.cueSent = time.Now()
		set.mu.Unlock()
		if s.send(fmt.Appendf(nil, `{"type":"cue.send","set_id":%q,"text":"Ribs down #%d"}`, set.id, n)) != nil {
			return
		}
		s.c.cuesSent.Add(1)
		t.Reset(gap/2 + rand.N(gap)) // about gap on average
	}
}

func cueNumber(text string) int {
	var n int
	_, _ = fmt.Sscanf(text[strings.LastIndexByte(text, '#')+1:], "%d", &n)
	return n
}

// coachFrame measures lockout → coach: the state frame of the lockout (relay:
// the forwarded top).
func coachFrame(relay bool, byID map[string]*setRun, at time.Time, f *frame) {
	set := byID[f.SetID]
	if set == nil {
		return
	}
	var top bool
	var rep int
	if relay {
		top = f.Type == "rep.phase" && f.Phase == "top"
	} else if f.Type == "state" && f.State != nil && f.State.Phase == "top" {
		top, rep = true, f.State.Rep
	}
	if !top {
		return
	}
	set.mu.Lock()
	if (relay || rep == set.topRep) && !set.topSeen {
		set.lockout = append(set.lockout, at.Sub(set.topSent))
		set.topSeen = true
	}
	set.mu.Unlock()
}

// athleteFrame takes acks, the hold's deadline, hold.done and cues, and
// acknowledges each cue as the phone would.
func athleteFrame(relay bool, set *setRun, at time.Time, f *frame) {
	if f.SetID != set.id {
		return
	}
	switch {
	case f.Type == "ack":
		set.mu.Lock()
		if sent, ok := set.sent[f.EventID]; ok {
			delete(set.sent, f.EventID)
			set.ack = append(set.ack, at.Sub(sent))
			set.acked = append(set.acked, f.EventID)
		}
		set.mu.Unlock()
	case f.Type == "state" && f.State != nil && f.State.Phase == "top" && f.State.Hold != nil:
		set.mu.Lock()
		set.endsAt = f.State.Hold.EndsAt
		set.mu.Unlock()
	case f.Type == "hold.done":
		set.mu.Lock()
		if !set.endsAt.IsZero() {
			set.lateness = append(set.lateness, at.Sub(set.endsAt))
			set.endsAt = time.Time{}
		}
		set.mu.Unlock()
	case (!relay && f.Type == "cue" && f.Cue != nil) || (relay && f.Type == "cue.send"):
		text := f.Text
		if !relay {
			text = f.Cue.Text
		}
		n := cueNumber(text)
		set.mu.Lock()
		if n == set.cueN && n > 0 {
			set.cue = append(set.cue, at.Sub(set.cueSent))
		}
		set.mu.Unlock()
		if f.Seq != nil {
			_ = set.athlete.send(fmt.Appendf(nil, `{"type":"cue.ack","set_id":%q,"cue_seq":%d}`, set.id, *f.Seq))
		}
	}
}

// checkStored looks every acknowledged event up in PostgreSQL: each must be
// stored exactly once.
func checkStored(ctx context.Context, setIDs, acked []string, rep *jsonReport) error {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/repcue?sslmode=disable"
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT event_id::text, count(*) FROM set_events WHERE set_id = ANY($1::uuid[]) GROUP BY event_id`, setIDs)
	if err != nil {
		return err
	}
	stored := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		stored[id] = n
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT (set_id, text)) FROM set_events WHERE set_id = ANY($1::uuid[]) AND type = 'cue.send' AND text LIKE 'Ribs down #%'`, setIDs).Scan(&rep.CuesStored, &rep.CuesDistinct); err != nil {
		return err
	}
	rep.CueDuplicates = rep.CuesStored - rep.CuesDistinct
	rows, err = conn.Query(ctx, `SELECT coalesce(node_id::text, 'released'), count(*) FROM set_leases WHERE set_id = ANY($1::uuid[]) GROUP BY 1`, setIDs)
	if err != nil {
		return err
	}
	rep.Owners = map[string]int{}
	for rows.Next() {
		var node string
		var n int
		if err := rows.Scan(&node, &n); err != nil {
			return err
		}
		rep.Owners[node] = n
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range acked {
		if stored[id] == 1 {
			rep.StoredOnce++
		} else {
			rep.Missing++
		}
	}
	rep.Checked = true
	return nil
}
