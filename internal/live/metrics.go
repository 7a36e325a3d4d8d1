package live

import "github.com/prometheus/client_golang/prometheus"

// metrics of the hub, registered by main with the server's registry.
type metrics struct {
	commitBatch       prometheus.Histogram
	commitSeconds     prometheus.Histogram
	commitErrors      prometheus.Counter
	slowCloses        prometheus.Counter
	resyncs           prometheus.Counter
	replaysAsSnapshot prometheus.Counter
	moves             prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "repcue_live_commit_batch_events", Help: "Events stored per commit of the live committer.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "repcue_live_commit_seconds", Help: "Time to store one batch of live events.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "repcue_live_commit_errors_total", Help: "Batches of live events that could not be stored (left unacknowledged).",
		}),
		slowCloses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "repcue_live_slow_closes_total", Help: "Sockets closed with 4008 because they could not keep up.",
		}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "repcue_live_resyncs_total", Help: "Sets reloaded from storage under a new epoch because a write was refused for good.",
		}),
		moves: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "repcue_live_set_moves_total", Help: "Live sets this node handed to the node of their athlete's socket.",
		}),
		replaysAsSnapshot: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "repcue_live_replays_as_snapshot_total", Help: "Resubscribes answered with a snapshot because the replay did not fit the socket's send queue.",
		}),
	}
}

// Collectors are the hub's metrics, for the server's Prometheus registry.
func (h *Hub) Collectors() []prometheus.Collector {
	count := func(f func() int) func() float64 {
		return func() float64 {
			h.mu.Lock()
			defer h.mu.Unlock()
			return float64(f())
		}
	}
	return []prometheus.Collector{
		h.metrics.commitBatch, h.metrics.commitSeconds, h.metrics.commitErrors, h.metrics.slowCloses,
		h.metrics.resyncs, h.metrics.replaysAsSnapshot, h.metrics.moves,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "repcue_live_sockets", Help: "Open live sockets."},
			count(func() int {
				n := 0
				for _, m := range h.clients {
					n += len(m)
				}
				return n
			})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "repcue_live_sets", Help: "Sets held in memory by this node."},
			count(func() int { return len(h.sets) })),
	}
}
