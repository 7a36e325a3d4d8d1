// Command phone is a small athlete's phone for the terminal: it signs in,
// starts a set (or takes one by id), opens /v1/live, does reps at a tempo —
// each phase sent as rep.phase and resent until the server acknowledges it —,
// acknowledges every pushed cue (cue.ack), ends the set and prints every frame
// it sends (">") and receives ("<"), splitting server messages on newlines.
//
//	go run ./cmd/phone                          # demo athlete: start a set, 3 reps, end it
//	go run ./cmd/phone -reps 2 -end=false       # leave the set live …
//	go run ./cmd/phone -set <id> -reps 1        # … and carry on with it by id, then end it
//	go run ./cmd/phone -set <id> -reps 0        # just end a set
//	go run ./cmd/phone -tempo 800ms,300ms,1s,500ms   # up→top, the hold, down→bottom, rest
//
// The tempo's hold shorter than the set's pause_hold_ms makes the timer push
// its fix ("Pause and squeeze"); -end-at-top ends the set while the last rep
// is held at the top.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/uuid"
)

// options are the command's flags.
type options struct {
	base, email, password, setID string
	variation                    string
	load                         float64
	targetReps, holdMS, reps     int
	tempo                        tempo
	end, endAtTop                bool
	ackTimeout                   time.Duration
}

// tempo is how long each part of a rep takes: up→top (concentric), top→down
// (the hold), down→bottom (eccentric) and bottom→next up (rest).
type tempo struct{ concentric, hold, eccentric, rest time.Duration }

func (t *tempo) String() string {
	return fmt.Sprintf("%v,%v,%v,%v", t.concentric, t.hold, t.eccentric, t.rest)
}

func (t *tempo) Set(s string) error {
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return errors.New("the tempo is four durations: up→top, hold, down→bottom, rest (e.g. 800ms,1200ms,1s,500ms)")
	}
	var d [4]time.Duration
	for i, p := range parts {
		v, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || v < 0 {
			return fmt.Errorf("tempo: %q is not a duration", p)
		}
		d[i] = v
	}
	*t = tempo{d[0], d[1], d[2], d[3]}
	return nil
}

func main() {
	o := options{tempo: tempo{800 * time.Millisecond, 1200 * time.Millisecond, time.Second, 500 * time.Millisecond}}
	flag.StringVar(&o.base, "base", "http://localhost:8080", "the server's base URL")
	flag.StringVar(&o.email, "email", "athlete@demo.repcue.dev", "the athlete to sign in as")
	flag.StringVar(&o.password, "password", "demo-athlete-password", "its password")
	flag.StringVar(&o.setID, "set", "", "a set of the athlete to use (default: start one)")
	flag.StringVar(&o.variation, "variation", "barbell-hip-thrust", "variation of a new set")
	flag.Float64Var(&o.load, "load", 100, "load_kg of a new set")
	flag.IntVar(&o.targetReps, "target-reps", 5, "target_reps of a new set")
	flag.IntVar(&o.holdMS, "hold", 1000, "pause_hold_ms of a new set")
	flag.IntVar(&o.reps, "reps", 3, "reps to do (0: none)")
	flag.Var(&o.tempo, "tempo", "up→top, hold, down→bottom, rest")
	flag.BoolVar(&o.end, "end", true, "end the set after the reps (set.end)")
	flag.BoolVar(&o.endAtTop, "end-at-top", false, "end the set at the top of the last rep, without lowering")
	flag.DurationVar(&o.ackTimeout, "ack-timeout", 3*time.Second, "resend a phase not acknowledged within this")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "phone:", err)
		os.Exit(1)
	}
}

// phone is one run: the socket, what it waits for, and where it prints.
type phone struct {
	o     options
	out   io.Writer
	conn  *websocket.Conn
	setID string

	mu       sync.Mutex // guards the writer, out and the maps below
	acks     map[string]chan struct{}
	ended    chan json.RawMessage // the set.ended summary
	snapshot chan string          // the phase of the first snapshot
	closed   chan error
}

func run(ctx context.Context, o options, out io.Writer) error {
	base, err := url.Parse(strings.TrimRight(o.base, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		return fmt.Errorf("-base must be an http(s) URL: %q", o.base)
	}
	token, err := login(ctx, o)
	if err != nil {
		return err
	}
	if o.setID == "" {
		if o.setID, err = startSet(ctx, o, token, out); err != nil {
			return err
		}
	}
	ws := *base
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[base.Scheme]
	ws.Path += "/v1/live"
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, ws.String(), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return fmt.Errorf("open %s: %w", ws.String(), err)
	}
	defer conn.Close()
	p := &phone{o: o, out: out, conn: conn, setID: o.setID, acks: map[string]chan struct{}{},
		ended: make(chan json.RawMessage, 1), snapshot: make(chan string, 1), closed: make(chan error, 1)}
	go p.read()
	go func() { <-ctx.Done(); conn.Close() }()
	return p.session(ctx)
}

// session subscribes, does the reps and ends the set.
func (p *phone) session(ctx context.Context) error {
	if err := p.send(map[string]any{"type": "subscribe", "set_id": p.setID}); err != nil {
		return err
	}
	var phase string
	select {
	case phase = <-p.snapshot:
	case err := <-p.closed:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("no snapshot within 10 s")
	}
	if phase == "ended" {
		p.printf("# the set has ended already; start another (omit -set)\n")
		return nil
	}
	// Where the set stands decides the first phase to send.
	steps := []struct {
		phase string
		after time.Duration
	}{{"up", p.o.tempo.concentric}, {"top", p.o.tempo.hold}, {"down", p.o.tempo.eccentric}, {"bottom", p.o.tempo.rest}}
	first := map[string]int{"idle": 0, "bottom": 0, "up": 1, "top": 2, "down": 3}[phase]
	for rep := 0; rep < p.o.reps; rep++ {
		for i := first; i < len(steps); i++ {
			if err := p.event(ctx, map[string]any{"type": "rep.phase", "set_id": p.setID, "phase": steps[i].phase}); err != nil {
				return err
			}
			if p.o.endAtTop && rep == p.o.reps-1 && steps[i].phase == "top" {
				break
			}
			if err := sleep(ctx, steps[i].after); err != nil {
				return err
			}
		}
		first = 0
	}
	if !p.o.end && !p.o.endAtTop {
		p.printf("# the set is still live: carry on with -set %s, or end it with -set %s -reps 0\n", p.setID, p.setID)
		return sleep(ctx, 300*time.Millisecond) // cue receipts on their way
	}
	if err := p.event(ctx, map[string]any{"type": "set.end", "set_id": p.setID}); err != nil {
		return err
	}
	select {
	case sum := <-p.ended:
		p.printf("# set %s ended: %s\n", p.setID, sum)
		return nil
	case err := <-p.closed:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("no set.ended within 10 s")
	}
}

// event sends an athlete event with a new event_id and resends it (the same
// id) until it is acknowledged.
func (p *phone) event(ctx context.Context, frame map[string]any) error {
	id := uuid.NewString()
	frame["event_id"] = id
	acked := make(chan struct{})
	p.mu.Lock()
	p.acks[id] = acked
	p.mu.Unlock()
	for attempt := 1; ; attempt++ {
		if frame["type"] == "rep.phase" {
			frame["client_ts"] = time.Now().UnixMilli()
		}
		if err := p.send(frame); err != nil {
			return err
		}
		select {
		case <-acked:
			return nil
		case err := <-p.closed:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.o.ackTimeout):
			if attempt == 5 {
				return fmt.Errorf("event %s was not acknowledged after %d tries", id, attempt)
			}
		}
	}
}

func (p *phone) send(frame map[string]any) error {
	b, _ := json.Marshal(frame)
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "> %s\n", b)
	return p.conn.WriteMessage(websocket.TextMessage, b)
}

func (p *phone) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format, args...)
}

// read prints every frame the server sends (a message may hold several,
// newline-separated) and answers what needs an answer.
func (p *phone) read() {
	for {
		_, data, err := p.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				err = fmt.Errorf("the server closed the socket: %d %s", ce.Code, ce.Text)
			}
			p.closed <- err
			return
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(line) > 0 {
				p.frame(line)
			}
		}
	}
}

func (p *phone) frame(line []byte) {
	p.printf("< %s\n", line)
	var f struct {
		Type    string          `json:"type"`
		SetID   string          `json:"set_id"`
		Seq     int64           `json:"seq"`
		EventID string          `json:"event_id"`
		Summary json.RawMessage `json:"summary"`
		State   struct {
			Phase string `json:"phase"`
		} `json:"state"`
	}
	if json.Unmarshal(line, &f) != nil || f.SetID != p.setID {
		return
	}
	switch f.Type {
	case "snapshot":
		select {
		case p.snapshot <- f.State.Phase:
		default:
		}
	case "ack":
		p.mu.Lock()
		if ch, ok := p.acks[f.EventID]; ok {
			close(ch)
			delete(p.acks, f.EventID)
		}
		p.mu.Unlock()
	case "cue": // shown (printed): acknowledge its receipt
		_ = p.send(map[string]any{"type": "cue.ack", "set_id": p.setID, "cue_seq": f.Seq})
	case "set.ended":
		select {
		case p.ended <- f.Summary:
		default:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call makes a JSON request and decodes a 2xx answer into v; any other
// answer is returned as an error with the problem document.
func call(ctx context.Context, method, url, token string, header map[string]string, body, v any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, val := range header {
		req.Header.Set(k, val)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 && v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			return resp.StatusCode, raw, err
		}
	}
	return resp.StatusCode, raw, nil
}

func login(ctx context.Context, o options) (string, error) {
	var res struct {
		AccessToken string `json:"access_token"`
	}
	status, raw, err := call(ctx, "POST", strings.TrimRight(o.base, "/")+"/v1/auth/login", "", nil,
		map[string]string{"email": o.email, "password": o.password}, &res)
	if err != nil {
		return "", err
	}
	if status != 200 {
		return "", fmt.Errorf("sign-in as %s: %d %s", o.email, status, raw)
	}
	return res.AccessToken, nil
}

// startSet starts an ad hoc set under a new Idempotency-Key (a retry after a
// lost answer would get the same set). If the athlete has a live set already,
// it says how to use or end it.
func startSet(ctx context.Context, o options, token string, out io.Writer) (string, error) {
	var set struct {
		ID string `json:"id"`
	}
	body := map[string]any{"variation": o.variation, "load_kg": o.load, "target_reps": o.targetReps, "pause_hold_ms": o.holdMS}
	status, raw, err := call(ctx, "POST", strings.TrimRight(o.base, "/")+"/v1/sets", token,
		map[string]string{"Idempotency-Key": uuid.NewString()}, body, &set)
	if err != nil {
		return "", err
	}
	switch status {
	case 200, 201:
		fmt.Fprintf(out, "# started set %s\n", set.ID)
		return set.ID, nil
	case 409:
		var problem struct {
			LiveSetID string `json:"live_set_id"`
		}
		if json.Unmarshal(raw, &problem) == nil && problem.LiveSetID != "" {
			return "", fmt.Errorf("the athlete has a live set already: carry on with -set %s, or end it with -set %s -reps 0",
				problem.LiveSetID, problem.LiveSetID)
		}
	}
	return "", fmt.Errorf("start a set: %d %s", status, raw)
}
