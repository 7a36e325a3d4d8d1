package live

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

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
// waits; under heavy load batches grow and the commits per event fall. When
// the database refuses one set's rows, each set of the batch is stored on its
// own, so a set whose write can never succeed delays no other set's acks.
//
// Writes are spread over a few workers by set, each committing on its own
// connection: a set's writes always go to the same worker, in order, so they
// are stored in the order they were applied, while sets on other workers
// commit at the same time (PostgreSQL then groups their commits).
type committer struct {
	db       *postgres.Store
	log      *slog.Logger
	metrics  *metrics
	queues   []chan write
	maxBatch int

	mu       sync.Mutex
	inFlight int // writes taken from the queue and not yet done
	idle     *sync.Cond
}

func newCommitter(store *postgres.Store, log *slog.Logger, m *metrics, workers, queueSize, maxBatch int) *committer {
	c := &committer{db: store, log: log, metrics: m, maxBatch: maxBatch}
	for range workers {
		c.queues = append(c.queues, make(chan write, queueSize))
	}
	c.idle = sync.NewCond(&c.mu)
	return c
}

// queue is the worker queue of a set.
func (c *committer) queue(setID uuid.UUID) chan write {
	return c.queues[int(binary.LittleEndian.Uint32(setID[12:]))%len(c.queues)]
}

// add queues a write. It blocks when the queue is full: the owners then slow
// down rather than lose events. Once the hub has stopped it fails the write.
func (c *committer) add(ctx context.Context, w write) {
	c.mu.Lock()
	c.inFlight++
	c.mu.Unlock()
	select {
	case c.queue(w.event.SetID) <- w:
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

// run runs the workers until ctx ends.
func (c *committer) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, q := range c.queues {
		wg.Add(1)
		go func() { defer wg.Done(); c.work(ctx, q) }()
	}
	wg.Wait()
}

func (c *committer) work(ctx context.Context, queue chan write) {
	batch := make([]write, 0, c.maxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-queue:
			batch = append(batch[:0], w)
		}
	more:
		for len(batch) < c.maxBatch {
			select {
			case w := <-queue:
				batch = append(batch, w)
			default:
				break more
			}
		}
		c.commit(batch)
	}
}

func (c *committer) commit(batch []write) {
	err := c.store(batch)
	if err != nil && writeRefused(err) && !oneSet(batch) {
		// The database refused a row of one set (its n taken by another
		// process, say): store each set on its own, so that one set's refusal
		// never holds back the others' acks.
		for _, group := range bySet(batch) {
			c.finish(group, c.store(group))
		}
		return
	}
	c.finish(batch, err)
}

// store writes the events of writes (and the endings among them) in one transaction.
func (c *committer) store(writes []write) error {
	events := make([]postgres.SetEvent, 0, len(writes))
	var endings []postgres.SetEnding
	for _, w := range writes {
		events = append(events, w.event)
		if w.ending != nil {
			endings = append(endings, *w.ending)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	start := time.Now()
	err := c.db.AppendEvents(ctx, events, endings)
	cancel()
	c.metrics.commitBatch.Observe(float64(len(events)))
	c.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		c.metrics.commitErrors.Inc()
		c.log.Error("storing live events failed; they stay unacknowledged", "events", len(events), "err", err)
	}
	return err
}

// finish reports the outcome of writes to their owners.
func (c *committer) finish(writes []write, err error) {
	for _, w := range writes {
		w.done(err)
	}
	c.finished(len(writes))
}

func oneSet(writes []write) bool {
	for _, w := range writes[1:] {
		if w.event.SetID != writes[0].event.SetID {
			return false
		}
	}
	return true
}

// bySet splits writes by set, keeping each set's writes in order.
func bySet(writes []write) [][]write {
	index := map[uuid.UUID]int{}
	var groups [][]write
	for _, w := range writes {
		i, ok := index[w.event.SetID]
		if !ok {
			i = len(groups)
			index[w.event.SetID] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], w)
	}
	return groups
}

// drain waits until every queued write is done.
func (c *committer) drain() {
	c.mu.Lock()
	for c.inFlight > 0 {
		c.idle.Wait()
	}
	c.mu.Unlock()
}
