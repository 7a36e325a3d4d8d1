package live

// ring keeps the last frames broadcast for one set, for replay on resubscribe.
type ring struct {
	frames [][]byte // frames[i%len] holds the frame of seq first+i… (circular)
	last   int64    // seq of the newest frame (0: none yet)
	count  int      // how many frames are held
}

func newRing(size int) *ring { return &ring{frames: make([][]byte, size)} }

// push adds the frame with the next seq.
func (r *ring) push(seq int64, frame []byte) {
	r.last = seq
	r.frames[seq%int64(len(r.frames))] = frame
	if r.count < len(r.frames) {
		r.count++
	}
}

// since returns the frames after seq, in order, and whether the ring still
// holds all of them.
func (r *ring) since(seq int64) ([][]byte, bool) {
	if seq > r.last || seq < r.last-int64(r.count) {
		return nil, false
	}
	out := make([][]byte, 0, r.last-seq)
	for s := seq + 1; s <= r.last; s++ {
		out = append(out, r.frames[s%int64(len(r.frames))])
	}
	return out, true
}
