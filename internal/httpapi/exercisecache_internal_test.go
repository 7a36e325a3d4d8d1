package httpapi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// A request never takes the result of a read that was under way when it
// arrived; the requests that arrive during one read share the next.
func TestSharedReadAnswersOnlyWithReadsStartedAfterTheRequest(t *testing.T) {
	started := make(chan int64, 4)
	release := make(chan error, 4)
	var mu sync.Mutex
	var reads int64
	s := &sharedRead{timeout: 10 * time.Second, read: func(context.Context) (int64, error) {
		mu.Lock()
		reads++
		v := reads
		mu.Unlock()
		started <- v
		return v, <-release
	}}
	type result struct {
		v   int64
		err error
	}
	get := func(out chan<- result) {
		v, err := s.get(context.Background())
		out <- result{v, err}
	}
	first := make(chan result, 1)
	go get(first)
	if v := <-started; v != 1 {
		t.Fatalf("read %d started first", v)
	}
	// Ten requests arrive while read 1 is under way.
	later := make(chan result, 10)
	for range 10 {
		go get(later)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := 0
		if s.next != nil {
			n = s.next.waiting
		}
		s.mu.Unlock()
		if n == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 10 requests joined the next read", n)
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case r := <-later:
		t.Fatalf("a request was answered (%v) before any read began after it", r)
	default:
	}
	release <- nil
	if r := <-first; r.v != 1 || r.err != nil {
		t.Fatalf("the first request got %+v", r)
	}
	if v := <-started; v != 2 {
		t.Fatalf("read %d started second", v)
	}
	boom := errors.New("database down")
	release <- boom
	for range 10 {
		if r := <-later; r.v != 2 || !errors.Is(r.err, boom) {
			t.Fatalf("a later request got %+v, want read 2's answer", r)
		}
	}
	mu.Lock()
	if reads != 2 {
		t.Fatalf("%d reads for 11 requests in two waves", reads)
	}
	mu.Unlock()

	// Alone, a request waits for one read of its own; a cancelled one stops waiting.
	go func() { release <- nil }()
	if v, err := s.get(context.Background()); v != 3 || err != nil {
		t.Fatalf("a lone request got %d, %v", v, err)
	}
	<-started
	go get(first)
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled request got %v", err)
	}
	release <- nil
	<-first
	<-started // the round the cancelled request had joined still reads: let it end
	release <- nil
}
