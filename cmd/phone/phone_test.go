package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/config"
	"github.com/repcue/repcue/internal/httpapi"
	"github.com/repcue/repcue/internal/live"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/testdb"
)

// server is the real app on a fresh database, served on a free loopback port.
func server(t *testing.T) string {
	t.Helper()
	store := postgres.NewStore(testdb.New(t))
	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := live.New(store, log, live.Config{HoldTick: 100 * time.Millisecond})
	app := httpapi.New(httpapi.Deps{Config: cfg, Log: log, Store: store,
		Tokens: auth.NewTokens(auth.GenerateKey(), "repcue", "repcue-api", 15*time.Minute, time.Now),
		Hasher: auth.NewHasher(4), Live: hub, Registry: prometheus.NewRegistry(), Now: time.Now})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln) //nolint:errcheck
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
		_ = app.Shutdown()
	})
	return "http://" + ln.Addr().String()
}

// syncBuffer is what the phone prints, read while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// frames are the frames the phone printed as received, by type.
func frames(out string) map[string][]map[string]any {
	byType := map[string][]map[string]any{}
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "< "); ok {
			var f map[string]any
			if json.Unmarshal([]byte(rest), &f) == nil {
				byType[f["type"].(string)] = append(byType[f["type"].(string)], f)
			}
		}
	}
	return byType
}

// The phone against the real server: it signs in, starts a set, does reps at
// a tempo whose hold is too short (the timer pushes its fix), acknowledges
// the cue, leaves the set live; a second run takes the set by id, does a rep
// and ends it; the set's detail shows what was done.
func TestPhoneAgainstTheServer(t *testing.T) {
	base := server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	email := fmt.Sprintf("phone-%d@example.com", time.Now().UnixNano())
	var reg struct {
		AccessToken string `json:"access_token"`
	}
	if status, raw, err := call(ctx, "POST", base+"/v1/auth/register", "", nil, map[string]any{
		"email": email, "password": "correct horse battery", "display_name": "Phone", "role": "athlete"}, &reg); err != nil || status != 201 {
		t.Fatalf("register: %d %s %v", status, raw, err)
	}
	o := options{base: base, email: email, password: "correct horse battery", variation: "barbell-hip-thrust", load: 60,
		targetReps: 5, holdMS: 300, reps: 2, tempo: tempo{50 * time.Millisecond, 100 * time.Millisecond, 50 * time.Millisecond, 20 * time.Millisecond},
		end: false, ackTimeout: 2 * time.Second}
	out := &syncBuffer{}
	if err := run(ctx, o, out); err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	got := frames(out.String())
	if len(got["snapshot"]) != 1 || len(got["ack"]) != 8 || len(got["rep.done"]) != 2 {
		t.Fatalf("first run: %d snapshots, %d acks, %d rep.done\n%s", len(got["snapshot"]), len(got["ack"]), len(got["rep.done"]), out)
	}
	if len(got["cue"]) != 2 || len(got["cue.ack"]) != 2 { // a fix each rep, each acknowledged
		t.Fatalf("cues %d, receipts %d\n%s", len(got["cue"]), len(got["cue.ack"]), out)
	}
	setID := got["snapshot"][0]["set_id"].(string)

	// The set is live: starting another names it.
	o2 := o
	if err := run(ctx, o2, io.Discard); err == nil || !strings.Contains(err.Error(), "-set "+setID) {
		t.Fatalf("start while live: %v", err)
	}
	// Carry on with it by id; end it at the top of the rep.
	o2.setID, o2.reps, o2.end, o2.endAtTop = setID, 1, true, true
	out = &syncBuffer{}
	if err := run(ctx, o2, out); err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if got := frames(out.String()); len(got["set.ended"]) != 1 || !strings.Contains(out.String(), "# set "+setID+" ended") {
		t.Fatalf("second run did not end the set:\n%s", out)
	}
	var detail struct {
		Status string `json:"status"`
		Reps   []struct {
			HoldMS  *int `json:"hold_ms"`
			HoldMet bool `json:"hold_met"`
		} `json:"reps"`
		Cues []struct {
			Acknowledged bool    `json:"acknowledged"`
			SentBy       *string `json:"sent_by"`
			Mistake      *struct {
				Name string `json:"name"`
			} `json:"mistake"`
		} `json:"cues"`
	}
	if status, raw, err := call(ctx, "GET", base+"/v1/sets/"+setID, reg.AccessToken, nil, nil, &detail); err != nil || status != 200 {
		t.Fatalf("detail: %d %s %v", status, raw, err)
	}
	if detail.Status != "ended" || len(detail.Reps) != 3 || len(detail.Cues) != 2 {
		t.Fatalf("detail %+v", detail)
	}
	for _, c := range detail.Cues {
		if !c.Acknowledged || c.SentBy != nil || c.Mistake == nil || c.Mistake.Name == "" {
			t.Fatalf("cue %+v", c)
		}
	}
	// The last rep was ended at the top: held up to the end, capped at the target.
	if last := detail.Reps[2]; last.HoldMS == nil || *last.HoldMS > 300 {
		t.Fatalf("rep ended at the top: %+v", last)
	}
	// A third run on the ended set says so and does nothing.
	out = &syncBuffer{}
	if err := run(ctx, o2, out); err != nil || !strings.Contains(out.String(), "has ended already") {
		t.Fatalf("ended set: %v\n%s", err, out)
	}
}
