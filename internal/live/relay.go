package live

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

// relay hands one set's frames to the sockets of this node that watch it,
// wherever the set's owner runs. Every watcher gets the set's broadcast frames
// in seq order, each once, with no gap: it starts from its owner's sync (a
// replay or a snapshot, and the seq it ends at), and when a frame shows a gap
// or a new epoch (another owner) it asks the owner for a sync again rather
// than skip.
type relay struct {
	hub *Hub
	set uuid.UUID

	mu       sync.Mutex
	watchers map[*client]*watcher
	recent   []busFrame // the latest frames from another node's owner (a circle), to catch a watcher up after its sync
	next     int        // where the next one goes in recent
	unwatch  func()     // the bus subscription to the set's frames
}

// watcher is where one socket stands in the set's frames.
type watcher struct {
	synced bool      // false while its sync is on its way
	asked  time.Time // when its sync was asked for
	epoch  string
	last   int64
}

// recentFrames is how many frames a relay keeps to catch a watcher up: what
// an owner on another node broadcast between answering a sync and the sync's
// arrival. An owner on this node answers a sync in the same goroutine that
// broadcasts, so nothing comes between and nothing is kept.
const recentFrames = 64

func newRelay(h *Hub, set uuid.UUID) *relay {
	return &relay{hub: h, set: set, watchers: map[*client]*watcher{}, unwatch: h.bus.Watch(set)}
}

// add starts a socket's watch; its frames flow once its sync arrives.
func (r *relay) add(c *client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.watchers[c] == nil {
		r.watchers[c] = &watcher{asked: time.Now()}
	}
}

// remove ends a socket's watch and, when frame is given, sends it as the
// watch's last word: no frame of the set follows it.
func (r *relay) remove(c *client, frame []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.watchers, c)
	if frame != nil {
		c.enqueue(frame)
	}
}

func (r *relay) empty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.watchers {
		if c.isClosing() {
			delete(r.watchers, c)
		}
	}
	return len(r.watchers) == 0
}

// deliver hands a frame of the set to the watchers: from its owner on this
// node, or from another node's (remote).
func (r *relay) deliver(f busFrame, remote bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case f.Data == nil: // the set has a new epoch: watchers of an older one resync
		for c, w := range r.watchers {
			if w.synced && w.epoch != f.Epoch {
				r.resync(c, w)
			}
		}
		return
	case f.Seq == 0: // hold.tick: not numbered, not replayed
		for c, w := range r.watchers {
			if w.synced && w.epoch == f.Epoch && !c.enqueue(f.Data) {
				delete(r.watchers, c)
			}
		}
		return
	}
	if remote {
		if len(r.recent) < recentFrames {
			r.recent = append(r.recent, f)
		} else {
			r.recent[r.next] = f
		}
		r.next = (r.next + 1) % recentFrames
	}
	for c, w := range r.watchers {
		if w.synced {
			r.send(c, w, f)
		}
	}
}

// send gives a watcher one broadcast frame: the next one is sent, one it has
// is skipped, and a gap or another epoch makes it resync.
func (r *relay) send(c *client, w *watcher, f busFrame) {
	switch {
	case f.Epoch == w.epoch && f.Seq == w.last+1:
		if c.enqueue(f.Data) {
			w.last = f.Seq
		} else {
			delete(r.watchers, c)
		}
	case f.Epoch == w.epoch && f.Seq <= w.last:
	default:
		r.resync(c, w)
	}
}

// resync asks the owner for a snapshot for a watcher that fell out of step
// (DESIGN.md §7: a snapshot rather than a skip); its frames wait for it.
func (r *relay) resync(c *client, w *watcher) {
	w.synced, w.asked = false, time.Now()
	go r.hub.resubscribe(c, r.set)
}

// syncLost is how long a watcher waits for its sync before asking again (an
// answer from another node can be lost with NATS).
const syncLost = 5 * time.Second

// askAgain asks again for the syncs that have not come.
func (r *relay) askAgain(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c, w := range r.watchers {
		if !w.synced && now.Sub(w.asked) > syncLost {
			r.resync(c, w)
		}
	}
}

// resyncAll makes every watcher resync: the set's owner on this node gave it up.
func (r *relay) resyncAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c, w := range r.watchers {
		if w.synced {
			r.resync(c, w)
		}
	}
}

// synced is the owner's answer to a watcher's subscribe: its frames are
// queued, then whatever the owner broadcast since.
func (r *relay) synced(c *client, m syncMsg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.watchers[c]
	if w == nil {
		return // unsubscribed meanwhile
	}
	frames := make([][]byte, len(m.Frames))
	for i, f := range m.Frames {
		frames[i] = f
	}
	if m.Replay {
		switch c.enqueueReplay(frames) {
		case replayClosed:
			delete(r.watchers, c)
			return
		case replayTooLong: // a snapshot instead, never a 4008 (DESIGN.md §4)
			r.resync(c, w)
			return
		}
	} else if !c.enqueue(frames[0]) {
		delete(r.watchers, c)
		return
	}
	w.synced, w.epoch, w.last = true, m.Epoch, m.LastSeq
	for i := range r.recent { // oldest first
		f := r.recent[(r.next+i)%len(r.recent)]
		if f.Epoch == w.epoch && f.Seq > w.last {
			if r.send(c, w, f); !w.synced || r.watchers[c] == nil {
				return
			}
		}
	}
}
