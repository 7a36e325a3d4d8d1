package live

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/repcue/repcue/internal/postgres"
)

// write is one event to store, and what to do once its transaction is over.
type write struct {
	event  postgres.SetEvent
	ending *postgres.SetEnding
	done   func(error)
}

// committer stores events for every set of the node in batches: it takes what
// has queued up while the previous transaction ran (up to maxBatch) and commits
// it in one transaction. Under light load a batch is one event and nothing
// waits; under heavy load batches grow and the commits per event fall.
type committer struct {
	store    *postgres.Store
	log      *slog.Logger
	metrics  *metrics
	queue    chan write
	maxBatch int

	mu       sync.Mutex
	inFlight int // writes taken from the queue and not yet done
	idle     *sync.Cond
}

func newCommitter(store *postgres.Store, log *slog.Logger, m *metrics, queueSize, maxBatch int) *committer {
	c := &committer{store: store, log: log, metrics: m, queue: make(chan write, queueSize), maxBatch: maxBatch}
	c.idle = sync.NewCond(&c.mu)
	return c
}

// add queues a write. It blocks when the queue is full: the owners then slow
// down rather than lose events. Once the hub has stopped it fails the write.
func (c *committer) add(ctx context.Context, w write) {
	c.mu.Lock()
	c.inFlight++
	c.mu.Unlock()
	select {
	case c.queue <- w:
	case <-ctx.Done():
		w.done(errClosing)
		c.finished(1)
	}
}

// finished counts writes done and wakes drain when none are left.
func (c *committer) finished(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight -= n
	if c.inFlight == 0 {
		c.idle.Broadcast()
	}
}

func (c *committer) run(ctx context.Context) {
	batch := make([]write, 0, c.maxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-c.queue:
			batch = append(batch[:0], w)
		}
	more:
		for len(batch) < c.maxBatch {
			select {
			case w := <-c.queue:
				batch = append(batch, w)
			default:
				break more
			}
		}
		c.commit(batch)
	}
}

func (c *committer) commit(batch []write) {
	events := make([]postgres.SetEvent, 0, len(batch))
	var endings []postgres.SetEnding
	for _, w := range batch {
		events = append(events, w.event)
		if w.ending != nil {
			endings = append(endings, *w.ending)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	start := time.Now()
	err := c.store.AppendEvents(ctx, events, endings)
	cancel()
	c.metrics.commitBatch.Observe(float64(len(events)))
	c.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		c.metrics.commitErrors.Inc()
		c.log.Error("storing live events failed; they stay unacknowledged", "events", len(events), "err", err)
	}
	for _, w := range batch {
		w.done(err)
	}
	c.finished(len(batch))
}

// drain waits until every queued write is done.
func (c *committer) drain() {
	c.mu.Lock()
	for c.inFlight > 0 {
		c.idle.Wait()
	}
	c.mu.Unlock()
}
