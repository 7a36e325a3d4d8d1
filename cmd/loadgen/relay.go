package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"

	ws "github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
)

// The bare relay: a minimal Fiber WebSocket forwarder for the same sockets,
// frame sizes and rates as the gym floor, with none of repcue's work (no
// authentication, no rep timer, no database, no checks beyond reading the
// type and set). A `subscribe` is answered with a snapshot-sized frame; any
// other frame naming a set is sent, numbered, to every socket subscribed to the
// set, and acknowledged to its sender when it has an event_id. Each socket has
// a writer goroutine draining a bounded queue and joining what is queued into
// one newline-separated message, as repcue does: the ratio between the two is
// the cost of what repcue does per frame.

type relayConn struct {
	conn *ws.Conn
	send chan []byte
	gone chan struct{}
	once sync.Once
}

type relaySet struct {
	mu   sync.Mutex
	seq  int64
	subs map[*relayConn]struct{}
}

type relay struct {
	mu   sync.Mutex
	sets map[string]*relaySet
}

func (r *relay) set(id string) *relaySet {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sets[id]
	if s == nil {
		s = &relaySet{subs: map[*relayConn]struct{}{}}
		r.sets[id] = s
	}
	return s
}

func (c *relayConn) enqueue(b []byte) {
	select {
	case c.send <- b:
	default:
		c.once.Do(func() { close(c.gone) }) // too slow, as 4008
	}
}

func (c *relayConn) writeLoop() {
	buf := make([]byte, 0, 64<<10)
	for {
		select {
		case <-c.gone:
			_ = c.conn.Close()
			return
		case b := <-c.send:
			buf = append(buf[:0], b...)
		drain:
			for len(buf) < 32<<10 {
				select {
				case b := <-c.send:
					buf = append(append(buf, '\n'), b...)
				default:
					break drain
				}
			}
			if err := c.conn.WriteMessage(ws.TextMessage, buf); err != nil {
				c.once.Do(func() { close(c.gone) })
				_ = c.conn.Close()
				return
			}
		}
	}
}

var snapshotPad = bytes.Repeat([]byte("x"), 300)

func (r *relay) serve(conn *ws.Conn) {
	c := &relayConn{conn: conn, send: make(chan []byte, 256), gone: make(chan struct{})}
	go c.writeLoop()
	var subs []*relaySet
	defer func() {
		for _, s := range subs {
			s.mu.Lock()
			delete(s.subs, c)
			s.mu.Unlock()
		}
		c.once.Do(func() { close(c.gone) })
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var f struct {
			Type    string `json:"type"`
			SetID   string `json:"set_id"`
			EventID string `json:"event_id"`
		}
		if json.Unmarshal(data, &f) != nil || f.SetID == "" {
			continue
		}
		s := r.set(f.SetID)
		if f.Type == "subscribe" {
			s.mu.Lock()
			s.subs[c] = struct{}{}
			b := fmt.Appendf(nil, `{"type":"snapshot","set_id":%q,"epoch":"relay","last_seq":%d,"state":{"pad":"%s"}}`, f.SetID, s.seq, snapshotPad)
			c.enqueue(b)
			s.mu.Unlock()
			subs = append(subs, s)
			continue
		}
		s.mu.Lock()
		s.seq++
		// {"seq":N,"epoch":"relay",<the frame's own fields>}
		b := make([]byte, 0, len(data)+48)
		b = append(b, `{"seq":`...)
		b = strconv.AppendInt(b, s.seq, 10)
		b = append(b, `,"epoch":"relay",`...)
		b = append(b, bytes.TrimPrefix(bytes.TrimSpace(data), []byte("{"))...)
		for sub := range s.subs {
			sub.enqueue(b)
		}
		s.mu.Unlock()
		if f.EventID != "" {
			c.enqueue(fmt.Appendf(nil, `{"type":"ack","set_id":%q,"event_id":%q}`, f.SetID, f.EventID))
		}
	}
}

// runRelay serves the relay on addr (loopback) until killed, printing the
// address once it listens.
func runRelay(addr string) error {
	if err := checkLoopback(addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	r := &relay{sets: map[string]*relaySet{}}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/v1/live", ws.New(r.serve, ws.Config{ReadBufferSize: 4096, WriteBufferSize: 4096}))
	fmt.Fprintln(os.Stdout, ln.Addr().String())
	return app.Listener(ln)
}
