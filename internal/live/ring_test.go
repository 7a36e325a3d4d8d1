package live

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/reptimer"
)

func TestRing(t *testing.T) {
	t.Parallel()
	r := newRing(4)
	if got, ok := r.since(0); !ok || len(got) != 0 {
		t.Fatalf("empty ring since 0: %v %v", got, ok)
	}
	for s := int64(1); s <= 6; s++ {
		r.push(s, []byte(fmt.Sprint(s)))
	}
	cases := []struct {
		since int64
		want  string
		ok    bool
	}{
		{6, "", true}, {5, "6", true}, {2, "3456", true}, {1, "", false}, {0, "", false}, {7, "", false},
	}
	for _, c := range cases {
		got, ok := r.since(c.since)
		s := ""
		for _, b := range got {
			s += string(b)
		}
		if ok != c.ok || s != c.want {
			t.Errorf("since(%d) = %q %v, want %q %v", c.since, s, ok, c.want, c.ok)
		}
	}
}

// A broadcast frame is encoded into a buffer of exactly its size: the replay
// window keeps 256 of them per set.
func TestBroadcastFrameHasNoSpareCapacity(t *testing.T) {
	for _, seq := range []int64{1, 9, 10, 12345, 1 << 40} {
		f := reptimer.Frame{Type: "hold.done", Seq: seq, Payload: reptimer.HoldDonePayload{Rep: 3, HeldMS: 1000}}
		b := encodeBroadcast(f, uuid.New(), "0123456789abcdef")
		if len(b) != cap(b) || !json.Valid(b) {
			t.Fatalf("seq %d: %d bytes in %d: %s", seq, len(b), cap(b), b)
		}
	}
}
