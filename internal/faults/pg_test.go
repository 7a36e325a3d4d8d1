//go:build faults

package faults

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repcue/repcue/internal/devdb"
	"github.com/repcue/repcue/internal/postgres"
)

// proxy forwards loopback TCP connections to PostgreSQL, can slow its answers
// down, and can cut every connection mid-commit: it first stops passing PostgreSQL's answers on (so a COMMIT that
// was sent is carried out but its outcome never reaches the server), then
// closes both sides.
type proxy struct {
	ln      net.Listener
	target  string
	latency atomic.Int64 // added to each of PostgreSQL's answers, in ns
	mu      sync.Mutex
	pairs   map[*pair]struct{}
	wg      sync.WaitGroup
}

type pair struct {
	client, server net.Conn
	mute           atomic.Bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, pairs: map[*pair]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut(0)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close() // PostgreSQL is down: so is the connection
			continue
		}
		pr := &pair{client: c, server: s}
		p.mu.Lock()
		p.pairs[pr] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { // server → PostgreSQL
			defer p.wg.Done()
			_, _ = io.Copy(s, c)
			s.Close()
		}()
		go func() { // PostgreSQL → server, unless muted
			defer p.wg.Done()
			buf := make([]byte, 32*1024)
			for {
				n, err := s.Read(buf)
				if d := p.latency.Load(); d > 0 && n > 0 {
					time.Sleep(time.Duration(d))
				}
				if n > 0 && !pr.mute.Load() {
					if _, werr := c.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			c.Close()
			p.mu.Lock()
			delete(p.pairs, pr)
			p.mu.Unlock()
		}()
	}
}

// cut mutes PostgreSQL's answers on every open connection, waits for what was
// sent to be carried out, and closes them all. It returns how many it cut.
func (p *proxy) cut(wait time.Duration) int {
	p.mu.Lock()
	pairs := make([]*pair, 0, len(p.pairs))
	for pr := range p.pairs {
		pairs = append(pairs, pr)
		pr.mute.Store(true)
	}
	p.mu.Unlock()
	time.Sleep(wait)
	for _, pr := range pairs {
		pr.client.Close()
		pr.server.Close()
	}
	return len(pairs)
}

// TestPostgresRestartedAndCutMidCommit runs the real server against a private
// PostgreSQL cluster (never the shared one) through a proxy, while four phones
// stream rep phases: the server's connections are cut mid-commit three times,
// then PostgreSQL is stopped (fast) for 2 s and started, then crashed
// (immediate) for 1 s and started. Acks must pause while PostgreSQL is down
// (nothing sent then is acknowledged before it is back), everything must resume
// by itself, and every acknowledged event must be stored exactly once.
func TestPostgresRestartedAndCutMidCommit(t *testing.T) {
	ctx := context.Background()
	cluster, err := devdb.StartCluster(ctx)
	if err != nil {
		t.Fatalf("a private PostgreSQL cluster: %v", err)
	}
	t.Cleanup(cluster.Destroy)
	if err := cluster.Server().EnsureDatabase(ctx, "repcue"); err != nil {
		t.Fatal(err)
	}
	pool, err := postgres.Open(ctx, cluster.URL("repcue"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, "127.0.0.1:"+strconv.Itoa(cluster.Port))
	srv := newServer(t, "postgres://postgres@"+px.addr()+"/repcue?sslmode=disable")
	srv.start()
	a := api{t: t, base: "http://" + srv.addr}

	const nSets = 4
	athletes := a.registerMany("athlete", nSets)
	phones := make([]*phone, nSets)
	for i, ath := range athletes {
		p := &phone{setID: a.newSet(ath, 0), tr: newTracker()}
		if p.ws, err = dialWS(srv.addr, ath.Token, p.tr); err != nil {
			t.Fatal(err)
		}
		_ = p.ws.send(map[string]any{"type": "subscribe", "set_id": p.setID})
		if !p.tr.eventually(10*time.Second, func() bool { return p.tr.snapshots == 1 }) {
			t.Fatal("no snapshot")
		}
		phones[i] = p
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range phones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(30 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					p.sendNext()
				}
			}
		}()
	}
	time.Sleep(time.Second)
	cuts := 0
	for range 3 {
		cuts += px.cut(100 * time.Millisecond)
		time.Sleep(400 * time.Millisecond)
	}
	time.Sleep(time.Second)

	type outage struct {
		mode             string
		down, up, backAt time.Time // stopped; start begun; answering again
	}
	var outages []outage
	for _, o := range []struct {
		mode string
		gap  time.Duration
	}{{"fast", 2 * time.Second}, {"immediate", time.Second}} {
		if err := cluster.Stop(o.mode); err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		time.Sleep(o.gap)
		up := time.Now()
		if err := cluster.Start(ctx); err != nil {
			t.Fatal(err)
		}
		outages = append(outages, outage{o.mode, down, up, time.Now()})
		time.Sleep(1500 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	stopped := time.Now()

	// Everything resumes by itself. The phones resend what is still not
	// acknowledged 2 s after they stopped, then every 3 s, as the apps do.
	if pool, err = postgres.Open(ctx, cluster.URL("repcue")); err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	resent, rounds := 0, 0
	var unackedStored, unackedAtResend int
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := 0
		for _, p := range phones {
			left += p.unacked()
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still unacknowledged 30 s after the last fault", left)
		}
		if time.Since(stopped) > 2*time.Second+3*time.Second*time.Duration(rounds) {
			if rounds == 0 { // how many of those still waiting were stored by the server's own retries
				for _, p := range phones {
					s := stored(t, pool, p.setID)
					for _, e := range p.events() {
						if _, ok := p.tr.acked(e.id); !ok {
							unackedAtResend++
							if s.ids[e.id] {
								unackedStored++
							}
						}
					}
				}
			}
			rounds++
			var mu sync.Mutex
			var rw sync.WaitGroup
			for _, p := range phones {
				rw.Add(1)
				go func() {
					defer rw.Done()
					n := p.resend()
					mu.Lock()
					resent += n
					mu.Unlock()
				}()
			}
			rw.Wait()
		}
		time.Sleep(50 * time.Millisecond)
	}
	allAcked := time.Since(outages[len(outages)-1].backAt)

	totalSent, totalAcked, totalStored, totalDups, ackedDown, resyncs := 0, 0, 0, 0, 0, 0
	for _, p := range phones {
		p.tr.mu.Lock()
		resyncs += p.tr.snapshots - 1
		p.tr.mu.Unlock()
		acked, nStored, dups := checkPhone(t, pool, p)
		totalSent += len(p.events())
		totalAcked += acked
		totalStored += nStored
		totalDups += dups
		for _, e := range p.events() {
			at, _ := p.tr.acked(e.id)
			for _, o := range outages {
				if e.at.After(o.down) && at.Before(o.up) {
					ackedDown++
					t.Errorf("event %s sent while PostgreSQL was down (%s) was acknowledged before it was back", e.id, o.mode)
				}
			}
		}
		if p.ws.closed() {
			t.Errorf("set %s: the phone's socket was closed: %v", p.setID, p.ws.endErr)
		}
		if len(p.tr.errors) > 0 {
			t.Errorf("set %s: error frames: %v", p.setID, p.tr.errors)
		}
		p.tr.mu.Lock()
		v := p.tr.sets[p.setID]
		if v.rep != p.tops() || v.duplicates != 0 || v.gaps != 0 || len(v.epochs) != 1 {
			t.Errorf("set %s: live reps %d (lockouts sent %d), seq duplicates %d, gaps %d, epochs %d", p.setID, v.rep, p.tops(), v.duplicates, v.gaps, len(v.epochs))
		}
		p.tr.mu.Unlock()
		if nStored != len(p.events()) {
			t.Errorf("set %s: %d events sent, %d stored", p.setID, len(p.events()), nStored)
		}
	}
	for _, o := range outages {
		var firstAck time.Time
		for _, p := range phones {
			for _, e := range p.events() {
				if at, ok := p.tr.acked(e.id); ok && at.After(o.up) && (firstAck.IsZero() || at.Before(firstAck)) {
					firstAck = at
				}
			}
		}
		t.Logf("PostgreSQL stopped (%s) for %s: first ack %s after its start began (pg_ctl start took %s)",
			o.mode, o.up.Sub(o.down).Round(time.Millisecond), firstAck.Sub(o.up).Round(time.Millisecond), o.backAt.Sub(o.up).Round(time.Millisecond))
	}
	t.Logf("%d server connections cut mid-commit; sent %d, acked %d, stored %d, duplicates %d, acked while down %d; "+
		"unacknowledged 2 s after the last event %d (%d of them already stored by the server's retries), resent %d in %d round(s), resyncs (snapshots after the first) %d; all acked %s after the last restart",
		cuts, totalSent, totalAcked, totalStored, totalDups, ackedDown, unackedAtResend, unackedStored, resent, rounds, resyncs, allAcked.Round(time.Millisecond))
	// The server stores failed writes again by itself: the phones waiting on
	// their open sockets must get those acks without having to resend.
	if unackedStored > 0 {
		t.Errorf("%d events the server had stored by its own retries were still unacknowledged 2 s after the phones stopped: acks did not resume by themselves", unackedStored)
	}
	if cuts == 0 {
		t.Error("the proxy cut no connection: the test did not test the cut")
	}
}
