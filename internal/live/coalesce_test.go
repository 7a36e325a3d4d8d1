package live

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"
)

// recordingSocket keeps every message as written; each write waits for a
// token from gate, so a test decides when the writer gets through.
type recordingSocket struct {
	gate     chan struct{}
	mu       sync.Mutex
	messages [][]byte
	stop     chan struct{}
	once     sync.Once
	code     int
}

func newRecordingSocket() *recordingSocket {
	return &recordingSocket{gate: make(chan struct{}), stop: make(chan struct{})}
}

func (s *recordingSocket) ReadMessage() ([]byte, error) { <-s.stop; return nil, errInterrupted }
func (s *recordingSocket) WriteMessage(b []byte) error {
	select {
	case <-s.gate:
	case <-s.stop:
		return errInterrupted
	}
	s.mu.Lock()
	s.messages = append(s.messages, bytes.Clone(b))
	s.mu.Unlock()
	return nil
}
func (s *recordingSocket) WritePing() error { return nil }
func (s *recordingSocket) WriteClose(code int, _ string) error {
	s.mu.Lock()
	s.code = code
	s.mu.Unlock()
	return nil
}
func (s *recordingSocket) Interrupt() { s.once.Do(func() { close(s.stop) }) }

func (s *recordingSocket) written() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.messages {
		out = append(out, string(m))
	}
	return out
}

func testClient(t *testing.T, queue int, sock Socket) *client {
	t.Helper()
	cfg := Config{SendQueue: queue}
	cfg.defaults()
	c := newClient(&Hub{cfg: cfg, metrics: newMetrics()}, Principal{}, sock)
	go c.writeLoop()
	return c
}

// Frames queued while the socket was busy go out together: one message, the
// frames in queue order separated by newlines; a frame queued alone goes out
// alone, as it is.
func TestFramesQueuedTogetherAreWrittenAsOneMessage(t *testing.T) {
	s := newRecordingSocket()
	c := testClient(t, 16, s)
	c.enqueue([]byte(`{"n":1}`))
	time.Sleep(20 * time.Millisecond) // the writer holds frame 1 and waits on the socket
	for i := 2; i <= 5; i++ {
		c.enqueue(fmt.Appendf(nil, `{"n":%d}`, i))
	}
	s.gate <- struct{}{} // frame 1 goes
	s.gate <- struct{}{} // then 2–5, joined
	c.enqueue([]byte(`{"n":6}`))
	s.gate <- struct{}{}
	c.close(CloseGoingAway, "bye", true)
	select {
	case <-c.written:
	case <-time.After(2 * time.Second): // frames left to write one by one: stop the writer
		s.Interrupt()
		<-c.written
	}
	want := []string{`{"n":1}`, `{"n":2}` + "\n" + `{"n":3}` + "\n" + `{"n":4}` + "\n" + `{"n":5}`, `{"n":6}`}
	if got := s.written(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("messages %q, want %q", got, want)
	}
	if s.code != CloseGoingAway {
		t.Fatalf("close %d, want %d", s.code, CloseGoingAway)
	}
}

// One message holds at most about maxWriteBytes: a long queue goes out in
// several messages, in order, nothing lost or repeated.
func TestJoinedMessagesAreBounded(t *testing.T) {
	s := newRecordingSocket()
	c := testClient(t, 1024, s)
	frame := bytes.Repeat([]byte("x"), 1000)
	c.enqueue([]byte("first"))
	time.Sleep(20 * time.Millisecond)
	for i := 0; i < 100; i++ {
		c.enqueue(fmt.Appendf(nil, `%d%s`, i, frame))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case s.gate <- struct{}{}:
			case <-c.written:
				return
			}
		}
	}()
	c.close(CloseNormal, "", true)
	<-done
	var got []string
	for _, m := range s.written()[1:] {
		if len(m) > maxWriteBytes+len(frame)+8 {
			t.Fatalf("a message of %d bytes", len(m))
		}
		got = append(got, string(bytes.Join(bytes.Split([]byte(m), []byte("\n")), []byte("|"))))
	}
	var want []string
	for i := 0; i < 100; i++ {
		want = append(want, fmt.Sprintf("%d%s", i, frame))
	}
	if joined := string(bytes.Join(toBytes(got), []byte("|"))); joined != string(bytes.Join(toBytes(want), []byte("|"))) {
		t.Fatal("the frames after the first were not written once each, in order")
	}
	if len(s.written()) < 4 {
		t.Fatalf("%d messages for 100 KB of frames: not bounded", len(s.written()))
	}
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}
