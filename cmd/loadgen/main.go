// Command loadgen drives live sets against a running repcue on this machine and
// reports the latencies that matter to an athlete and a coach:
//
//   - lockout → coach: from the athlete's `top` leaving the phone to the coach's
//     `state` frame showing the lockout;
//   - cue → athlete: from the coach's `cue.send` to the athlete's `cue` frame;
//   - hold.done lateness: from the hold's `ends_at` to the athlete's `hold.done`.
//
// It registers a fresh athlete and coach per set, links them with an invite and
// runs -reps reps on each of -sets concurrent sets. It only talks to loopback
// addresses and stops by itself.
//
//	go run ./cmd/loadgen -addr 127.0.0.1:8080 -sets 1 -reps 200
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/uuid"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "the server (loopback only)")
	sets := flag.Int("sets", 1, "concurrent live sets")
	reps := flag.Int("reps", 200, "reps per set")
	hold := flag.Int("hold", 100, "pause_hold_ms of each set")
	variation := flag.String("variation", "barbell-hip-thrust", "variation slug")
	flag.Parse()
	if err := checkLoopback(*addr); err != nil {
		fail(err)
	}
	if *sets < 1 || *sets > 200 || *reps < 1 || *reps > 5000 {
		fail(errors.New("-sets must be 1–200 and -reps 1–5000"))
	}
	var mu sync.Mutex
	var lockout, cue, lateness []time.Duration
	var wg sync.WaitGroup
	errs := make(chan error, *sets)
	start := time.Now()
	for i := 0; i < *sets; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := runSet(*addr, *variation, *reps, *hold)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			lockout, cue, lateness = append(lockout, r.lockout...), append(cue, r.cue...), append(lateness, r.lateness...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fail(err)
	}
	fmt.Printf("%d set(s) × %d reps in %s\n", *sets, *reps, time.Since(start).Round(time.Millisecond))
	report("lockout → coach", lockout)
	report("cue → athlete", cue)
	report("hold.done lateness", lateness)
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

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}

func report(name string, d []time.Duration) {
	if len(d) == 0 {
		fmt.Printf("%-20s no samples\n", name)
		return
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	fmt.Printf("%-20s n=%-6d p50=%-10s p99=%-10s max=%s\n", name, len(d), q(0.50).Round(time.Microsecond), q(0.99).Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond))
}

type results struct{ lockout, cue, lateness []time.Duration }

type api struct{ base string }

func (a api) call(method, path, token string, body, out any) error {
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
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (a api) register(role string) (string, error) {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	err := a.call("POST", "/v1/auth/register", "", map[string]any{
		"email": "loadgen-" + uuid.NewString() + "@example.com", "password": "loadgen password", "display_name": "loadgen " + role, "role": role,
	}, &out)
	return out.AccessToken, err
}

type socket struct {
	conn   *websocket.Conn
	frames chan frame
}

type frame struct {
	at time.Time
	m  map[string]any
}

func connect(addr, token string) (*socket, error) {
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/v1/live", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return nil, err
	}
	s := &socket{conn: conn, frames: make(chan frame, 4096)}
	go func() {
		defer close(s.frames)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			at := time.Now()
			var m map[string]any
			if json.Unmarshal(data, &m) == nil && m["type"] != "hold.tick" {
				s.frames <- frame{at, m}
			}
		}
	}()
	return s, nil
}

func (s *socket) send(m map[string]any) error { return s.conn.WriteJSON(m) }

// await returns the first frame matching ok, within 5 s.
func (s *socket) await(what string, ok func(map[string]any) bool) (frame, error) {
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f, open := <-s.frames:
			if !open {
				return f, fmt.Errorf("socket closed waiting for %s", what)
			}
			if f.m["type"] == "error" {
				return f, fmt.Errorf("error frame waiting for %s: %v", what, f.m)
			}
			if ok(f.m) {
				return f, nil
			}
		case <-timeout:
			return frame{}, fmt.Errorf("no %s within 5 s", what)
		}
	}
}

func is(typ string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["type"] == typ }
}

func runSet(addr, variation string, reps, holdMS int) (results, error) {
	var r results
	a := api{base: "http://" + addr}
	athlete, err := a.register("athlete")
	if err != nil {
		return r, err
	}
	coach, err := a.register("coach")
	if err != nil {
		return r, err
	}
	var invite struct{ Code string }
	if err := a.call("POST", "/v1/coach/invites", coach, nil, &invite); err != nil {
		return r, err
	}
	if err := a.call("POST", "/v1/athlete/coach-links", athlete, map[string]any{"code": invite.Code}, nil); err != nil {
		return r, err
	}
	var set struct{ ID string }
	if err := a.call("POST", "/v1/sets", athlete, map[string]any{"variation": variation, "load_kg": 100, "target_reps": min(reps, 100), "pause_hold_ms": holdMS}, &set); err != nil {
		return r, err
	}
	as, err := connect(addr, athlete)
	if err != nil {
		return r, err
	}
	defer as.conn.Close()
	cs, err := connect(addr, coach)
	if err != nil {
		return r, err
	}
	defer cs.conn.Close()
	for _, s := range []*socket{as, cs} {
		if err := s.send(map[string]any{"type": "subscribe", "set_id": set.ID}); err != nil {
			return r, err
		}
		if _, err := s.await("snapshot", is("snapshot")); err != nil {
			return r, err
		}
	}
	phase := func(p string) (time.Time, error) {
		id := uuid.NewString()
		sent := time.Now()
		if err := as.send(map[string]any{"type": "rep.phase", "set_id": set.ID, "phase": p, "event_id": id, "client_ts": sent.UnixMilli()}); err != nil {
			return sent, err
		}
		_, err := as.await("ack of "+p, func(m map[string]any) bool { return m["type"] == "ack" && m["event_id"] == id })
		return sent, err
	}
	for n := 1; n <= reps; n++ {
		if _, err := phase("up"); err != nil {
			return r, err
		}
		sent, err := phase("top")
		if err != nil {
			return r, err
		}
		f, err := cs.await("lockout on the coach", func(m map[string]any) bool {
			st, _ := m["state"].(map[string]any)
			return m["type"] == "state" && st["phase"] == "top" && st["rep"] == float64(n)
		})
		if err != nil {
			return r, err
		}
		r.lockout = append(r.lockout, f.at.Sub(sent))
		endsAt, _ := time.Parse(time.RFC3339Nano, f.m["state"].(map[string]any)["hold"].(map[string]any)["ends_at"].(string))
		done, err := as.await("hold.done", is("hold.done"))
		if err != nil {
			return r, err
		}
		r.lateness = append(r.lateness, done.at.Sub(endsAt))

		cueSent := time.Now()
		if err := cs.send(map[string]any{"type": "cue.send", "set_id": set.ID, "text": "Ribs down"}); err != nil {
			return r, err
		}
		cue, err := as.await("cue", is("cue"))
		if err != nil {
			return r, err
		}
		r.cue = append(r.cue, cue.at.Sub(cueSent))
		if err := as.send(map[string]any{"type": "cue.ack", "set_id": set.ID, "cue_seq": cue.m["seq"]}); err != nil {
			return r, err
		}
		if _, err := phase("down"); err != nil {
			return r, err
		}
		if _, err := phase("bottom"); err != nil {
			return r, err
		}
	}
	return r, a.call("POST", "/v1/sets/"+set.ID+"/end", athlete, nil, nil)
}
