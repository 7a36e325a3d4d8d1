package live

import (
	"fmt"
	"testing"
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
