package httpapi_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/uuid"
)

// The reproduction, end to end: up and top uploaded, the server's
// clock runs past the 200 ms hold, then down (50 ms after top) and bottom
// uploaded, then set.end. What the phone saw live and what GET /v1/sets/{id}
// rebuilds from storage agree: the hold was cut short (holds_met 0, avg_hold
// 50), and the fix cue pushed has the same seq in both.
func TestUploadedRepLiveEqualsItsRebuild(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	addr := h.listen()
	r := h.post("/v1/sets", w.accounts[athlete].Access, map[string]any{"variation": w.variation(), "load_kg": 60, "target_reps": 1, "pause_hold_ms": 200})
	expect(t, r, 201)
	setID := r.json(t)["id"].(string)
	a, _, err := dial(t, addr, w.accounts[athlete].Access, "", "")
	if err != nil {
		t.Fatal(err)
	}
	a.send(map[string]any{"type": "subscribe", "set_id": setID})
	a.next("snapshot")

	t0 := time.Now().Add(-time.Minute)
	upload := func(events ...map[string]any) {
		t.Helper()
		for _, e := range events {
			e["event_id"] = uuid.NewString()
			if e["type"] == nil {
				e["type"] = "rep.phase"
			}
		}
		r := h.post("/v1/sets/"+setID+"/events", w.accounts[athlete].Access, map[string]any{"events": events})
		expect(t, r, 200)
		if res := r.json(t); res["accepted"] != float64(len(events)) {
			t.Fatalf("upload %s", r.Body)
		}
	}
	at := func(ms int) string {
		return t0.Add(time.Duration(ms) * time.Millisecond).UTC().Format(time.RFC3339Nano)
	}
	upload(map[string]any{"phase": "up", "at": at(0)}, map[string]any{"phase": "top", "at": at(100)})
	time.Sleep(400 * time.Millisecond) // the hold's deadline passes on the server's clock too
	upload(map[string]any{"phase": "down", "at": at(150)}, map[string]any{"phase": "bottom", "at": at(1000)})
	upload(map[string]any{"type": "set.end", "at": at(2000)})

	var cueSeq any
	var ended map[string]any
	for ended == nil {
		_ = a.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m map[string]any
		if err := a.readJSON(&m); err != nil {
			t.Fatal(err)
		}
		switch m["type"] {
		case "cue":
			cueSeq = m["seq"]
		case "set.ended":
			ended = m
		}
	}
	live := ended["summary"].(map[string]any)

	r = h.get("/v1/sets/"+setID, w.accounts[athlete].Access)
	expect(t, r, 200)
	var detail struct {
		Summary map[string]any `json:"summary"`
		Cues    []struct {
			Seq any `json:"seq"`
		} `json:"cues"`
	}
	r.decode(t, &detail)
	if fmt.Sprint(live) != fmt.Sprint(detail.Summary) {
		t.Fatalf("live summary %v\nrebuilt      %v", live, detail.Summary)
	}
	if live["holds_met"] != float64(0) || live["avg_hold_ms"] != float64(50) {
		t.Fatalf("summary %v: the uploaded hold lasted 50 ms", live)
	}
	if len(detail.Cues) != 1 || cueSeq == nil || detail.Cues[0].Seq != cueSeq {
		t.Fatalf("the fix cue had seq %v live; rebuilt cues %s", cueSeq, r.Body)
	}
}

// A resubscribe after 300 frames, over real sockets: the replay does not fit
// the socket's queue of 256, so it is answered with a snapshot — not a 4008
// close that the client would answer with the same resubscribe forever.
func TestLongReplayIsASnapshotOverRealSockets(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	addr := h.listen()
	r := h.post("/v1/sets", w.accounts[athlete].Access, map[string]any{"variation": w.variation(), "load_kg": 60, "target_reps": 1, "pause_hold_ms": 200})
	expect(t, r, 201)
	setID := r.json(t)["id"].(string)
	c, _, err := dial(t, addr, w.accounts[coach].Access, "", "")
	if err != nil {
		t.Fatal(err)
	}
	// 150 cues: 300 broadcast frames (a cue and a state each), sent by a coach
	// who does not watch the set, within the frame rate of a socket.
	for i := 0; i < 150; i++ {
		c.send(map[string]any{"type": "cue.send", "set_id": setID, "text": fmt.Sprint("Cue ", i)})
		if i%25 == 24 {
			c.send(map[string]any{"type": "ping", "client_ts": i})
			c.next("pong") // no error frame came first
			time.Sleep(400 * time.Millisecond)
		}
	}
	a, _, err := dial(t, addr, w.accounts[athlete].Access, "", "")
	if err != nil {
		t.Fatal(err)
	}
	a.send(map[string]any{"type": "subscribe", "set_id": setID})
	snap := a.next("snapshot")
	if snap["last_seq"] != float64(300) {
		t.Fatalf("snapshot %v, want last_seq 300", snap)
	}
	for i := 0; i < 3; i++ { // the client resubscribes from the start, as after a reconnect
		a.send(map[string]any{"type": "subscribe", "set_id": setID, "since_seq": 0, "epoch": snap["epoch"]})
		if m := a.next("snapshot"); m["last_seq"] != float64(300) || m["epoch"] != snap["epoch"] {
			t.Fatalf("resubscribe answered %v", m)
		}
	}
	a.send(map[string]any{"type": "subscribe", "set_id": setID, "since_seq": 297, "epoch": snap["epoch"]})
	for seq := 298; seq <= 300; seq++ {
		var m map[string]any
		_ = a.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := a.readJSON(&m); err != nil || m["seq"] != float64(seq) {
			t.Fatalf("short replay: %v %v, want seq %d", m, err, seq)
		}
	}
	a.next("replayed")
	a.send(map[string]any{"type": "ping", "client_ts": 1})
	a.next("pong")
	_ = a.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
}
