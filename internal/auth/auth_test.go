package auth

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestHashAndVerify(t *testing.T) {
	t.Parallel()
	h := NewHasher(2)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("unexpected encoding %q", enc)
	}
	if ok, err := h.Verify(ctx, enc, "correct horse battery"); !ok || err != nil {
		t.Fatalf("the right password failed: %v", err)
	}
	if ok, _ := h.Verify(ctx, enc, "correct horse batterY"); ok {
		t.Fatal("a wrong password passed")
	}
	if ok, _ := h.Verify(ctx, "", "anything at all"); ok {
		t.Fatal("an unknown account passed")
	}
	other, _ := h.Hash(ctx, "correct horse battery")
	if other == enc {
		t.Fatal("two hashes of one password share a salt")
	}
}

func TestHasherBoundsConcurrency(t *testing.T) {
	t.Parallel()
	h := NewHasher(1)
	h.slots <- struct{}{} // the only slot is taken
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "correct horse battery"); err == nil {
		t.Fatal("a hash ran beyond the bound")
	}
	<-h.slots
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := NewThrottle(2, time.Second, 8*time.Second, func() time.Time { return now })
	th.Fail("k")
	th.Fail("k")
	if w := th.Wait("k"); w != 0 {
		t.Fatalf("free failures must not wait, got %s", w)
	}
	wants := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, want := range wants {
		th.Fail("k")
		if w := th.Wait("k"); w != want {
			t.Fatalf("failure %d: wait %s, want %s", i+3, w, want)
		}
	}
	if th.Wait("other") != 0 {
		t.Fatal("keys leak into each other")
	}
	now = now.Add(9 * time.Second)
	if th.Wait("k") != 0 {
		t.Fatal("the wait never ends")
	}
	th.Succeed("k")
	th.Fail("k")
	if th.Wait("k") != 0 {
		t.Fatal("success did not clear the count")
	}
}

func TestThrottleMemoryIsBounded(t *testing.T) {
	t.Parallel()
	th := NewThrottle(1, time.Second, time.Minute, nil)
	th.limit = 100
	for i := 0; i < 1000; i++ {
		th.Fail(strings.Repeat("x", i%50) + string(rune('a'+i%26)) + string(rune(i)))
	}
	if len(th.entries) > 100 {
		t.Fatalf("%d entries kept, limit 100", len(th.entries))
	}
}
