//go:build faults

package faults

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/config"
	"github.com/repcue/repcue/internal/httpapi"
	"github.com/repcue/repcue/internal/live"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/testdb"
)

// TestSilentSocketIsDropped serves the app in-process with a fast ping (every
// 100 ms) and a 1 s pong wait. An athlete's phone, a coach's tablet and a
// second coach socket watch one set while the athlete streams phases; all
// answer pings for three pong waits and stay open. Then the second coach
// socket stops answering pings (it still reads, and sends nothing): it must be
// closed once the pong wait has passed — not before — while the other two stay
// open and keep receiving every frame.
func TestSilentSocketIsDropped(t *testing.T) {
	const pingPeriod, pongWait = 100 * time.Millisecond, time.Second
	pool := testdb.New(t)
	store := postgres.NewStore(pool)
	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := live.New(store, log, live.Config{PingPeriod: pingPeriod, PongWait: pongWait})
	app := httpapi.New(httpapi.Deps{
		Config: cfg, Log: log, Store: store, Live: hub, Hasher: auth.NewHasher(2),
		Tokens: auth.NewTokens(auth.GenerateKey(), cfg.Issuer, cfg.Audience, cfg.AccessTTL, nil),
	})
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
	addr := ln.Addr().String()
	a := api{t: t, base: "http://" + addr}

	athlete, coach := a.register("athlete"), a.register("coach")
	a.link(coach, athlete)
	p := &phone{setID: a.newSet(athlete, 0), tr: newTracker()}
	if p.ws, err = dialWS(addr, athlete.Token, p.tr); err != nil {
		t.Fatal(err)
	}
	coachTr, silentTr := newTracker(), newTracker()
	coachWS, err := dialWS(addr, coach.Token, coachTr)
	if err != nil {
		t.Fatal(err)
	}
	silentWS, err := dialWS(addr, coach.Token, silentTr)
	if err != nil {
		t.Fatal(err)
	}
	// The second coach socket answers pings until told to stop, and counts them.
	var silent atomic.Bool
	var pings atomic.Int64
	silentWS.conn.SetPingHandler(func(data string) error {
		pings.Add(1)
		if silent.Load() {
			return nil
		}
		silentWS.wmu.Lock()
		defer silentWS.wmu.Unlock()
		return silentWS.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	for _, c := range []*wsConn{p.ws, coachWS, silentWS} {
		_ = c.send(map[string]any{"type": "subscribe", "set_id": p.setID})
		if !c.tr.eventually(5*time.Second, func() bool { return c.tr.snapshots == 1 }) {
			t.Fatal("no snapshot")
		}
	}

	// The athlete streams a phase every 50 ms for the whole test.
	stop := make(chan struct{})
	streaming := make(chan struct{})
	go func() {
		defer close(streaming)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				p.sendNext()
			}
		}
	}()
	defer func() { close(stop); <-streaming }()

	time.Sleep(3 * pongWait)
	for name, c := range map[string]*wsConn{"athlete": p.ws, "coach": coachWS, "second coach": silentWS} {
		if c.closed() {
			t.Fatalf("the %s's socket, answering pings, was closed: %v", name, c.endErr)
		}
	}
	pingsAnswered := pings.Load()
	silent.Store(true)
	silenced := time.Now()
	if !waitUntil(pongWait+5*time.Second, silentWS.closed) {
		t.Fatalf("the silent socket is still open %s after it stopped answering pings", time.Since(silenced).Round(time.Millisecond))
	}
	droppedAfter := time.Since(silenced)
	_, silentSeq := silentTr.position(p.setID)

	time.Sleep(2 * pongWait) // the others go on
	var openOthers int
	for _, c := range []*wsConn{p.ws, coachWS} {
		if !c.closed() {
			openOthers++
		}
	}
	_, athleteSeq := p.tr.position(p.setID)
	_, coachSeq := coachTr.position(p.setID)
	coachTr.mu.Lock()
	v := coachTr.sets[p.setID]
	cDup, cGap := v.duplicates, v.gaps
	coachTr.mu.Unlock()
	t.Logf("ping every %s, pong wait %s: the silent socket (%d pings answered before) was closed %s after it went silent (%s); "+
		"the other two sockets still open: %d of 2, still receiving (coach at seq %d, athlete at %d, the silent one stopped at %d), coach seq duplicates %d gaps %d",
		pingPeriod, pongWait, pingsAnswered, droppedAfter.Round(time.Millisecond), closeText(silentWS.endErr), openOthers, coachSeq, athleteSeq, silentSeq, cDup, cGap)
	if droppedAfter < pongWait-2*pingPeriod {
		t.Errorf("the silent socket was closed after %s, before the %s pong wait", droppedAfter, pongWait)
	}
	if droppedAfter > pongWait+time.Second {
		t.Errorf("the silent socket was closed only %s after it went silent (pong wait %s)", droppedAfter, pongWait)
	}
	if openOthers != 2 {
		t.Errorf("only %d of the 2 answering sockets are still open", openOthers)
	}
	if coachSeq <= silentSeq || athleteSeq <= silentSeq || cDup != 0 || cGap != 0 {
		t.Errorf("the others stopped receiving: coach at seq %d, athlete at %d (silent stopped at %d), duplicates %d gaps %d", coachSeq, athleteSeq, silentSeq, cDup, cGap)
	}
	if !waitUntil(5*time.Second, func() bool { return p.unacked() == 0 }) {
		t.Errorf("%d of the athlete's events were not acknowledged", p.unacked())
	}
}

func closeText(err error) string {
	if code := closeCodeOf(err); code != 0 {
		return "close " + strconv.Itoa(code)
	}
	if err == nil {
		return "no error"
	}
	return err.Error()
}
