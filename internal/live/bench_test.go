package live

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/reptimer"
)

// discardSocket accepts every write at once.
type discardSocket struct{ stop chan struct{} }

func (s discardSocket) ReadMessage() ([]byte, error) { <-s.stop; return nil, errInterrupted }
func (s discardSocket) WriteMessage([]byte) error    { return nil }
func (s discardSocket) WritePing() error             { return nil }
func (s discardSocket) WriteClose(int, string) error { return nil }
func (s discardSocket) Interrupt()                   {}

// BenchmarkFanout measures what the set's owner spends to broadcast one state
// frame to N watchers on its node: encoding once, keeping it for replay,
// handing it to the node's relay of the set, queueing it per socket (the
// sockets' writers drain their queues concurrently).
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			cfg := Config{SendQueue: 1 << 16}
			cfg.defaults()
			h := &Hub{cfg: cfg, metrics: newMetrics(), bus: Solo{}, relays: map[uuid.UUID]*relay{}}
			o := newOwner(h, uuid.New())
			o.epoch = newEpoch()
			r := newRelay(h, o.id)
			h.relays[o.id] = r
			o.m.state = reptimer.New(reptimer.Config{PauseHoldMS: 1000}, time.Now())
			stop := make(chan struct{})
			var clients []*client
			for i := 0; i < n; i++ {
				c := newClient(h, Principal{}, discardSocket{stop})
				go c.writeLoop()
				clients = append(clients, c)
				r.watchers[c] = &watcher{synced: true, epoch: o.epoch}
			}
			now := time.Now()
			frame := reptimer.Frame{Type: "state", Payload: reptimer.StatePayload{State: o.m.state.View(now)}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				frame.Seq = int64(i + 1)
				o.broadcast([]reptimer.Frame{frame})
			}
			b.StopTimer()
			if len(r.watchers) != n {
				b.Fatalf("%d of %d watchers were dropped", n-len(r.watchers), n)
			}
			for _, c := range clients {
				c.close(CloseNormal, "", false)
				<-c.written
			}
			close(stop)
		})
	}
}
