//go:build faults

package faults

import (
	"sync"
	"testing"
	"time"

	"github.com/repcue/repcue/internal/testdb"
)

// TestReconnectStorm runs 200 live sets, each watched by its athlete's phone
// and by one of 10 coaches' tablets (20 sets each). Every socket drops at once
// and reconnects, resubscribing to each of its sets with the since_seq and
// epoch of an earlier point: most sets are a few frames further on (a short
// replay), nLong are a few hundred further (a replay longer than a socket's
// send queue), and one phone in ten resumes with an epoch the server has moved
// on from (a snapshot). Each subscribe must get its replay or a snapshot, no socket may be
// closed (4008 or otherwise), no seq may be missed or repeated, and the
// server's memory must stay within its budget.
func TestReconnectStorm(t *testing.T) {
	pool := testdb.New(t)
	srv := newServer(t, pool.Config().ConnString())
	srv.start()
	a := api{t: t, base: "http://" + srv.addr}

	// nLong sets resume from a point more frames back (about 300) than a
	// socket's send queue holds (256): the hub must answer those with a snapshot
	// (DESIGN §4: a resubscribe never ends in a 4008 close).
	const nSets, nCoaches, nLong = 200, 10, 20
	const memoryBudgetMiB = 256 // resident, during the storm
	setupStart := time.Now()
	athletes := a.registerMany("athlete", nSets)
	coaches := a.registerMany("coach", nCoaches)
	phones := make([]*phone, nSets)
	parallel(nSets, 4, func(i int) {
		a.link(coaches[i%nCoaches], athletes[i])
		phones[i] = &phone{setID: a.newSet(athletes[i], 0), tr: newTracker()}
	})

	// Every socket: the athletes' phones, then the coaches' tablets.
	type sock struct {
		token string
		tr    *tracker
		sets  []string
		ws    *wsConn
		since map[string]int64
		epoch map[string]string
		stale bool // resumes with an old epoch: must get a snapshot
	}
	socks := make([]*sock, 0, nSets+nCoaches)
	for i, p := range phones {
		socks = append(socks, &sock{token: athletes[i].Token, tr: p.tr, sets: []string{p.setID}, stale: i%10 == 9})
	}
	for c := range nCoaches {
		s := &sock{token: coaches[c].Token, tr: newTracker()}
		for i := c; i < nSets; i += nCoaches {
			s.sets = append(s.sets, phones[i].setID)
		}
		socks = append(socks, s)
	}
	connect := func(s *sock, resume bool) {
		ws, err := dialWS(srv.addr, s.token, s.tr)
		if err != nil {
			t.Errorf("dial: %v", err)
			return
		}
		s.ws = ws
		for _, setID := range s.sets {
			m := map[string]any{"type": "subscribe", "set_id": setID}
			if resume {
				m["since_seq"], m["epoch"] = s.since[setID], s.epoch[setID]
				s.tr.resubscribing(setID, s.since[setID])
				if s.stale {
					m["epoch"] = "0000000000000000" // an epoch the server has moved on from
				}
			}
			if err := ws.send(m); err != nil {
				t.Errorf("subscribe: %v", err)
			}
		}
	}
	answered := func(n int) bool { // or closed: then no answer is coming
		for _, s := range socks {
			if s.ws != nil && s.ws.closed() {
				continue
			}
			ok := true
			s.tr.mu.Lock()
			for _, setID := range s.sets {
				if s.tr.view(setID).answers < n {
					ok = false
				}
			}
			s.tr.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	}
	parallel(len(socks), 8, func(i int) { connect(socks[i], false) })
	if !waitUntil(30*time.Second, func() bool { return answered(1) }) {
		t.Fatal("not every subscribe was answered")
	}
	for i, p := range phones {
		p.mu.Lock()
		p.ws = socks[i].ws
		p.mu.Unlock()
	}
	setup := time.Since(setupStart)

	// Two reps on every set, then a checkpoint each client will resume from,
	// then one more rep on most sets and fifty on nLong of them.
	allAcked := func() bool {
		for _, p := range phones {
			if p.unacked() > 0 {
				return false
			}
		}
		return true
	}
	parallel(nSets, nSets, func(i int) { phones[i].drive(8) })
	if !waitUntil(30*time.Second, allAcked) {
		t.Fatal("the warm-up was not acknowledged")
	}
	for _, s := range socks {
		s.since, s.epoch = map[string]int64{}, map[string]string{}
		for _, setID := range s.sets {
			s.epoch[setID], s.since[setID] = s.tr.position(setID)
		}
	}
	parallel(nSets, nSets, func(i int) {
		if i < nLong {
			phones[i].drive(200)
		} else {
			phones[i].drive(4)
		}
	})
	bySet := map[string]*phone{}
	for _, p := range phones {
		bySet[p.setID] = p
	}
	caughtUp := func() bool { // every socket has seen every set's latest frame
		for _, s := range socks {
			for _, setID := range s.sets {
				_, seq := s.tr.position(setID)
				if _, latest := bySet[setID].tr.position(setID); seq != latest {
					return false
				}
			}
		}
		return true
	}
	if !waitUntil(30*time.Second, allAcked) || !waitUntil(10*time.Second, caughtUp) {
		t.Fatal("the sets did not settle before the storm")
	}
	latest := map[string]int64{}
	behindLong, behindShort := int64(0), int64(0)
	for i, p := range phones {
		_, latest[p.setID] = p.tr.position(p.setID)
		behind := latest[p.setID] - socks[i].since[p.setID]
		if i < nLong {
			behindLong = max(behindLong, behind)
		} else {
			behindShort = max(behindShort, behind)
		}
	}
	rssBefore, _ := srv.memory()
	srv.resetPeakMemory()
	sampling := make(chan struct{})
	sampled := make(chan float64, 1)
	go func() { // the peak, also where clear_refs cannot reset VmHWM
		top := 0.0
		for {
			rss, _ := srv.memory()
			top = max(top, rss)
			select {
			case <-sampling:
				sampled <- top
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	snapsBefore, replaysBefore := 0, 0
	for _, s := range socks {
		s.tr.mu.Lock()
		snapsBefore += s.tr.snapshots
		replaysBefore += s.tr.replays
		s.tr.mu.Unlock()
	}

	// The storm: every socket drops, then every client reconnects at once.
	var wg sync.WaitGroup
	for _, s := range socks {
		wg.Add(1)
		go func() { defer wg.Done(); s.ws.drop() }()
	}
	wg.Wait()
	stormStart := time.Now()
	start := make(chan struct{})
	for _, s := range socks {
		wg.Add(1)
		go func() { defer wg.Done(); <-start; connect(s, true) }()
	}
	close(start)
	wg.Wait()
	ok := waitUntil(60*time.Second, func() bool { return answered(2) })
	recovered := time.Since(stormStart)
	rssAfter, hwm := srv.memory()
	close(sampling)
	peak := max(<-sampled, hwm)

	closed, tooSlow := 0, 0
	snaps, replays, replayedFrames, dups, gaps := 0, 0, 0, 0, 0
	var problems []string
	for _, s := range socks {
		if s.ws != nil && s.ws.closed() {
			closed++
			if closeCodeOf(s.ws.endErr) == 4008 {
				tooSlow++
			}
		}
		s.tr.mu.Lock()
		snaps += s.tr.snapshots
		replays += s.tr.replays
		replayedFrames += s.tr.replayed
		for _, v := range s.tr.sets {
			dups += v.duplicates
			gaps += v.gaps
		}
		problems = append(problems, s.tr.problems...)
		s.tr.mu.Unlock()
	}
	t.Logf("setup of %d sets, %d coaches and %d sockets took %s", nSets, nCoaches, len(socks), setup.Round(time.Millisecond))
	t.Logf("storm: %d sockets dropped and resubscribed to %d sets (replays of up to %d frames on %d sets, up to %d on the rest): "+
		"%d replays (%d frames), %d snapshots, %d sockets closed (%d with 4008), seq duplicates %d, gaps %d; "+
		"every subscribe answered in %s; server RSS %.0f MiB before, %.0f MiB after, peak during the storm %.0f MiB",
		len(socks), nSets*2, behindLong, nLong, behindShort, replays-replaysBefore, replayedFrames, snaps-snapsBefore,
		closed, tooSlow, dups, gaps, recovered.Round(time.Millisecond), rssBefore, rssAfter, peak)
	if !ok {
		t.Errorf("not every subscribe was answered within 60 s of the storm")
	}
	if closed > 0 {
		t.Errorf("%d sockets were closed after resubscribing (%d with 4008 too slow)", closed, tooSlow)
	}
	if dups > 0 || gaps > 0 || len(problems) > 0 {
		t.Errorf("seq duplicates %d, gaps %d, protocol problems %v", dups, gaps, problems)
	}
	if peak > memoryBudgetMiB {
		t.Errorf("the server's resident memory peaked at %.0f MiB, over its %d MiB budget", peak, memoryBudgetMiB)
	}
	if want := nSets / 10; snaps-snapsBefore < want {
		t.Errorf("%d snapshots, want at least %d (the phones resuming with a stale epoch)", snaps-snapsBefore, want)
	}
	if t.Failed() {
		return
	}

	// Life goes on: one more rep everywhere, seen by every socket.
	for i, p := range phones {
		p.mu.Lock()
		p.ws = socks[i].ws
		p.mu.Unlock()
	}
	parallel(nSets, nSets, func(i int) { phones[i].drive(4) })
	if !waitUntil(30*time.Second, allAcked) || !waitUntil(10*time.Second, caughtUp) {
		t.Error("the sets did not go on after the storm")
	}
}
