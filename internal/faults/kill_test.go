//go:build faults

package faults

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/repcue/repcue/internal/testdb"
)

// TestServerSIGKILLedMidSet kills the real server with SIGKILL while three
// phones stream rep phases, starts it again, and lets the phones do what the
// apps do: reconnect, resubscribe with since_seq and epoch, resend what was not
// acknowledged. PostgreSQL's answers are delayed by a proxy, so the kill lands
// with events applied but not committed. The sets must continue under a new epoch with the rep count of
// what was stored, every acknowledged event must be stored exactly once, and a
// coach watching all three must see no duplicate or missing seq.
func TestServerSIGKILLedMidSet(t *testing.T) {
	pool := testdb.New(t)
	// Through a proxy that delays PostgreSQL's answers by 40 ms, so that at the
	// kill some events are applied (and broadcast) but not yet committed.
	cc := pool.Config().ConnConfig
	px := newProxy(t, net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))))
	px.latency.Store(int64(40 * time.Millisecond))
	dbURL := url.URL{Scheme: "postgres", User: url.UserPassword(cc.User, cc.Password), Host: px.addr(), Path: "/" + cc.Database, RawQuery: "sslmode=disable"}
	srv := newServer(t, dbURL.String())
	srv.start()
	a := api{t: t, base: "http://" + srv.addr}

	const nSets = 3
	coach := a.register("coach")
	athletes := a.registerMany("athlete", nSets)
	coachTr := newTracker()
	coachWS, err := dialWS(srv.addr, coach.Token, coachTr)
	if err != nil {
		t.Fatal(err)
	}
	phones := make([]*phone, nSets)
	tokens := make([]string, nSets)
	for i, ath := range athletes {
		a.link(coach, ath)
		p := &phone{setID: a.newSet(ath, 0), tr: newTracker()}
		if p.ws, err = dialWS(srv.addr, ath.Token, p.tr); err != nil {
			t.Fatal(err)
		}
		phones[i], tokens[i] = p, ath.Token
		_ = p.ws.send(map[string]any{"type": "subscribe", "set_id": p.setID})
		_ = coachWS.send(map[string]any{"type": "subscribe", "set_id": p.setID})
	}
	for _, p := range phones {
		if !p.tr.eventually(10*time.Second, func() bool { return p.tr.snapshots == 1 }) {
			t.Fatal("no snapshot for the athlete")
		}
	}
	if !coachTr.eventually(10*time.Second, func() bool { return coachTr.snapshots == nSets }) {
		t.Fatal("no snapshots for the coach")
	}

	// Stream phases at 40 a second per phone, and SIGKILL the server mid-stream.
	stopStreaming := stream(phones, 25*time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	stopStreaming()
	// A burst (a phone back from a dead spot sends its queue), and the kill
	// right behind it: events in flight, applied and not yet committed.
	parallel(nSets, nSets, func(i int) {
		for range 12 {
			phones[i].sendNext()
		}
	})
	time.Sleep(60 * time.Millisecond) // read and applied, a commit or two under way
	srv.kill()
	oldEpoch := map[string]string{}
	ackedBefore := map[string]int{}
	for _, p := range phones {
		<-p.ws.done
		oldEpoch[p.setID], _ = p.tr.position(p.setID)
		ackedBefore[p.setID] = len(p.events()) - p.unacked()
	}
	<-coachWS.done

	restarted := time.Now()
	srv.start()
	up := time.Now()
	storedAtRestart := map[string]int{}
	topsStored := map[string]int{}
	for _, p := range phones {
		storedAtRestart[p.setID] = stored(t, pool, p.setID).count
		var tops int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM set_events WHERE set_id = $1 AND phase = 'top'`, p.setID).Scan(&tops); err != nil {
			t.Fatal(err)
		}
		topsStored[p.setID] = tops
	}
	// The apps reconnect and resubscribe from where they were.
	if coachWS, err = dialWS(srv.addr, coach.Token, coachTr); err != nil {
		t.Fatal(err)
	}
	for i, p := range phones {
		ws, err := dialWS(srv.addr, tokens[i], p.tr)
		if err != nil {
			t.Fatal(err)
		}
		p.mu.Lock()
		p.ws = ws
		p.mu.Unlock()
	}
	resent := map[string]int{}
	for _, p := range phones {
		// The killed process's lease on the set lapses within 5 s; until then
		// the set answers unavailable, and the apps subscribe again.
		v := func() *setView { return p.tr.sets[p.setID] }
		for deadline := time.Now().Add(10 * time.Second); ; {
			for _, c := range []*wsConn{p.ws, coachWS} {
				epoch, seq := c.tr.position(p.setID)
				_ = c.send(map[string]any{"type": "subscribe", "set_id": p.setID, "since_seq": seq, "epoch": epoch})
			}
			if p.tr.eventually(500*time.Millisecond, func() bool { return v().epoch != oldEpoch[p.setID] }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("set %s: no snapshot of a new epoch within 10 s of the restart", p.setID)
			}
		}
		p.tr.mu.Lock()
		rep := v().rep
		p.tr.mu.Unlock()
		if rep != topsStored[p.setID] {
			t.Errorf("set %s: the reloaded set counts %d reps, %d lockouts are stored", p.setID, rep, topsStored[p.setID])
		}
		resent[p.setID] = p.resend()
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range phones {
		for p.unacked() > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := p.unacked(); n > 0 {
			t.Errorf("set %s: %d events still unacknowledged 20 s after the restart", p.setID, n)
		}
	}
	recovered := time.Since(up)

	// The set goes on: two more reps each.
	for range 8 {
		for _, p := range phones {
			p.sendNext()
		}
		time.Sleep(25 * time.Millisecond)
	}
	for _, p := range phones {
		if !waitUntil(10*time.Second, func() bool { return p.unacked() == 0 }) {
			t.Errorf("set %s: the reps after the restart were not acknowledged", p.setID)
		}
	}
	for i, p := range phones {
		want := p.tops()
		ok := p.tr.eventually(5*time.Second, func() bool { return p.tr.sets[p.setID].rep == want }) &&
			coachTr.eventually(5*time.Second, func() bool { return coachTr.sets[p.setID].rep == want })
		acked, nStored, dups := checkPhone(t, pool, p)
		p.tr.mu.Lock()
		liveRep, epochs := p.tr.sets[p.setID].rep, len(p.tr.sets[p.setID].epochs)
		var errs []map[string]any
		for _, e := range p.tr.errors {
			// A subscribe while the killed process's lease lapses answers
			// unavailable (DESIGN.md §7); nothing else may be refused.
			if e["code"] != "unavailable" || e["event_id"] != nil {
				errs = append(errs, e)
			}
		}
		p.tr.mu.Unlock()
		coachTr.mu.Lock()
		cv := coachTr.sets[p.setID]
		coachRep, cDup, cGap := cv.rep, cv.duplicates, cv.gaps
		repsTwice := 0
		for _, n := range cv.repDone {
			if n > 1 {
				repsTwice++
			}
		}
		coachTr.mu.Unlock()
		t.Logf("set %s: sent %d, acked %d before the kill, stored at restart %d, resent %d, acked %d, stored %d, duplicates %d; "+
			"epochs %d; reps live %d (coach %d), lockouts sent %d; coach seq duplicates %d gaps %d; time to recover %s (restart took %s)",
			p.setID[:8], len(p.events()), ackedBefore[p.setID], storedAtRestart[p.setID], resent[p.setID], acked, nStored, dups,
			epochs, liveRep, coachRep, want, cDup, cGap, recovered.Round(time.Millisecond), up.Sub(restarted).Round(time.Millisecond))
		if !ok || liveRep != want || coachRep != want {
			t.Errorf("set %s: %d reps live (coach %d), %d lockouts sent", p.setID, liveRep, coachRep, want)
		}
		if nStored != len(p.events()) || acked != len(p.events()) {
			t.Errorf("set %s: %d events sent, %d acked, %d stored", p.setID, len(p.events()), acked, nStored)
		}
		if epochs != 2 {
			t.Errorf("set %s: the phone saw %d epochs, want 2", p.setID, epochs)
		}
		if len(errs) != 0 {
			t.Errorf("set %s: the phone got error frames: %v", p.setID, errs)
		}
		if cDup != 0 || cGap != 0 || repsTwice != 0 {
			t.Errorf("set %s: the coach saw %d duplicate and %d missing seqs, %d reps done twice", p.setID, cDup, cGap, repsTwice)
		}
		if len(p.tr.problems) > 0 || len(coachTr.problems) > 0 {
			t.Errorf("protocol problems: %v %v", p.tr.problems, coachTr.problems)
		}
		// Ended, the set rebuilt from storage counts every lockout (a rep that
		// reached top counts).
		var detail struct{ Summary struct{ Reps int } }
		a.call("POST", "/v1/sets/"+p.setID+"/end", tokens[i], nil, nil)
		a.call("GET", "/v1/sets/"+p.setID, coach.Token, nil, &detail)
		if detail.Summary.Reps != want {
			t.Errorf("set %s: GET /v1/sets/{id} after the end sums up %d reps, %d lockouts were sent", p.setID, detail.Summary.Reps, want)
		}
	}
}
