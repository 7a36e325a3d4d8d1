package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/uuid"
)

// wsClient is one real WebSocket client of the test.
type wsClient struct {
	t       *testing.T
	conn    *websocket.Conn
	pending [][]byte // frames of the last message not read yet
}

func dial(t *testing.T, addr, token, ticket, origin string) (*wsClient, *http.Response, error) {
	t.Helper()
	u := "ws://" + addr + "/v1/live"
	if ticket != "" {
		u += "?ticket=" + ticket
	}
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	conn, resp, err := websocket.DefaultDialer.Dial(u, hdr)
	if err != nil {
		return nil, resp, err
	}
	c := &wsClient{t: t, conn: conn}
	t.Cleanup(func() { conn.Close() })
	return c, resp, nil
}

func (c *wsClient) send(frame map[string]any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(frame); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame of type typ, skipping hold ticks and set.started
// (which is sent on its own time) unless asked for.
func (c *wsClient) next(typ string) map[string]any {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		data, err := c.read()
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", typ, err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Fatalf("not JSON: %s", data)
		}
		if (m["type"] == "hold.tick" || m["type"] == "set.started") && typ != m["type"] {
			continue
		}
		if m["type"] != typ {
			c.t.Fatalf("got %s, want %s", data, typ)
		}
		return m
	}
}

func (c *wsClient) phase(setID, phase string) string {
	id := uuid.NewString()
	c.send(map[string]any{"type": "rep.phase", "set_id": setID, "phase": phase, "event_id": id, "client_ts": time.Now().UnixMilli()})
	return id
}

func TestLiveWholeSetWithTwoCoaches(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	h.addVariation()
	variation := testVariation
	addr := h.listen()
	w.link(otherCoach, athlete) // a second coach of the same athlete

	// Coach 1 uses a bearer token (an app); coach 2 a ticket from a browser page.
	c1, _, err := dial(t, addr, w.accounts[coach].Access, "", "")
	if err != nil {
		t.Fatal(err)
	}
	r := h.post("/v1/live/tickets", w.accounts[otherCoach].Access, nil)
	expect(t, r, 201)
	c2, _, err := dial(t, addr, "", r.json(t)["ticket"].(string), "https://coach.example.com")
	if err != nil {
		t.Fatal(err)
	}
	c1.send(map[string]any{"type": "ping", "client_ts": 1}) // both sockets are registered
	c1.next("pong")
	c2.send(map[string]any{"type": "ping", "client_ts": 1})
	c2.next("pong")

	r = h.post("/v1/sets", w.accounts[athlete].Access, map[string]any{"variation": variation, "load_kg": 80, "target_reps": 3, "pause_hold_ms": 300})
	expect(t, r, 201)
	setID := r.json(t)["id"].(string)
	for _, c := range []*wsClient{c1, c2} {
		if m := c.next("set.started"); m["set_id"] != setID || m["athlete_id"] != w.accounts[athlete].ID {
			t.Fatalf("set.started %v", m)
		}
	}

	a, _, err := dial(t, addr, w.accounts[athlete].Access, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wsClient{a, c1, c2} {
		c.send(map[string]any{"type": "subscribe", "set_id": setID})
		snap := c.next("snapshot")
		if snap["last_seq"] != float64(0) || snap["state"].(map[string]any)["phase"] != "idle" {
			t.Fatalf("snapshot %v", snap)
		}
	}

	// Rep 1: held.
	up := a.phase(setID, "up")
	a.next("state")
	if m := a.next("ack"); m["event_id"] != up {
		t.Fatalf("ack %v", m)
	}
	a.phase(setID, "top")
	st := a.next("state")
	hold := st["state"].(map[string]any)["hold"].(map[string]any)
	if hold["target_ms"] != float64(300) || st["state"].(map[string]any)["rep"] != float64(1) {
		t.Fatalf("state at top %v", st)
	}
	a.next("ack")
	tick := a.next("hold.tick")
	if tick["rep"] != float64(1) || tick["remaining_ms"].(float64) > 300 {
		t.Fatalf("tick %v", tick)
	}
	if m := a.next("hold.done"); m["rep"] != float64(1) || m["held_ms"] != float64(300) {
		t.Fatalf("hold.done %v", m)
	}
	a.next("state")
	a.phase(setID, "down")
	a.next("state")
	a.next("ack")
	a.phase(setID, "bottom")
	a.next("state")
	if rd := a.next("rep.done")["rep"].(map[string]any); rd["n"] != float64(1) || rd["hold_met"] != true {
		t.Fatalf("rep.done %v", rd)
	}
	a.next("ack")

	// Rep 2: down before the deadline pushes "Pause and squeeze".
	a.phase(setID, "top")
	a.next("state")
	a.next("ack")
	a.phase(setID, "down")
	a.next("state")
	cue := a.next("cue")
	if c := cue["cue"].(map[string]any); c["text"] != "Pause and squeeze" || c["source"] != "mistake" {
		t.Fatalf("mistake cue %v", cue)
	}
	a.next("ack")

	// A coach's cue reaches the phone, and the phone's receipt reaches everyone.
	c1.send(map[string]any{"type": "cue.send", "set_id": setID, "text": "Ribs down"})
	cue = a.next("cue")
	if c := cue["cue"].(map[string]any); c["text"] != "Ribs down" || c["source"] != "coach" || c["id"] != nil {
		t.Fatalf("coach cue %v", cue)
	}
	a.next("state")
	a.send(map[string]any{"type": "cue.ack", "set_id": setID, "cue_seq": cue["seq"]})
	if m := a.next("cue.ack"); m["cue_seq"] != cue["seq"] {
		t.Fatalf("cue.ack %v", m)
	}

	// Coach 2 saw every broadcast frame, gap-free, in the same order.
	var seq float64
	for seq < cue["seq"].(float64)+1 {
		_ = c2.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		data, err := c2.read()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		if m["type"] == "hold.tick" {
			continue
		}
		if m["seq"] != seq+1 {
			t.Fatalf("coach 2 got seq %v after %v: %s", m["seq"], seq, data)
		}
		seq = m["seq"].(float64)
	}

	// The athlete's phone reconnects and catches up from the seq it had.
	a.conn.Close()
	a, _, err = dial(t, addr, w.accounts[athlete].Access, "", "")
	if err != nil {
		t.Fatal(err)
	}
	a.send(map[string]any{"type": "subscribe", "set_id": setID, "since_seq": cue["seq"], "epoch": cue["epoch"]})
	next := a.next("state") // the state after the coach's cue
	if next["seq"] != cue["seq"].(float64)+1 {
		t.Fatalf("replay starts with %v", next)
	}
	a.next("cue.ack")
	a.next("replayed")

	a.phase(setID, "bottom")
	a.next("state")
	a.next("rep.done")
	a.next("ack")
	a.send(map[string]any{"type": "set.end", "set_id": setID, "event_id": uuid.NewString()})
	a.next("state")
	ended := a.next("set.ended")
	sum := ended["summary"].(map[string]any)
	if sum["reps"] != float64(2) || sum["holds_met"] != float64(1) || sum["cues_sent"] != float64(2) || sum["cues_acknowledged"] != float64(1) {
		t.Fatalf("summary %v", sum)
	}
	a.next("ack")

	r = h.get("/v1/sets/"+setID, w.accounts[coach].Access)
	expect(t, r, 200)
	var detail struct {
		Status string `json:"status"`
		Reps   []struct {
			HoldMet bool `json:"hold_met"`
		} `json:"reps"`
		Cues []struct {
			Text         string `json:"text"`
			Acknowledged bool   `json:"acknowledged"`
		} `json:"cues"`
		Summary map[string]any `json:"summary"`
	}
	r.decode(t, &detail)
	if detail.Status != "ended" || len(detail.Reps) != 2 || detail.Reps[1].HoldMet || len(detail.Cues) != 2 || !detail.Cues[1].Acknowledged || detail.Summary["reps"] != float64(2) {
		t.Fatalf("set detail %s", r.Body)
	}
}

func TestLiveUpgradeIsCheckedFirst(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	addr := w.h.listen()
	cases := []struct {
		name, token, ticket, origin string
		status                      int
	}{
		{"no credentials", "", "", "", 401},
		{"bad token", "nope", "", "", 401},
		{"unknown ticket", "", "nope", "", 401},
		{"foreign origin", w.accounts[coach].Access, "", "https://evil.example.com", 403},
	}
	for _, c := range cases {
		_, resp, err := dial(t, addr, c.token, c.ticket, c.origin)
		if err == nil || resp == nil || resp.StatusCode != c.status {
			t.Errorf("%s: %v %v, want %d", c.name, err, resp, c.status)
		}
	}
	r := w.h.post("/v1/live/tickets", w.accounts[coach].Access, nil)
	ticket := r.json(t)["ticket"].(string)
	if _, _, err := dial(t, addr, "", ticket, "https://coach.example.com"); err != nil {
		t.Fatal(err)
	}
	if _, resp, err := dial(t, addr, "", ticket, "https://coach.example.com"); err == nil || resp.StatusCode != 401 {
		t.Fatalf("a ticket worked twice: %v", err)
	}
	// Not an upgrade at all.
	resp, err := http.Get("http://" + addr + "/v1/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("plain GET: %d", resp.StatusCode)
	}
}

func TestLiveFrameOverTheLimitCloses1009(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	addr := w.h.listen()
	a, _, err := dial(t, addr, w.accounts[athlete].Access, "", "")
	if err != nil {
		t.Fatal(err)
	}
	big := `{"type":"ping","client_ts":1,"pad":"` + strings.Repeat("x", 17<<10) + `"}`
	if err := a.conn.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
		t.Fatal(err)
	}
	_ = a.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = a.conn.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("read after a big frame: %v, want close 1009", err)
	}
}

func TestOfflineUploadIsIdempotent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	h.addVariation()
	variation := testVariation
	r := h.post("/v1/sets", w.accounts[athlete].Access, map[string]any{"variation": variation, "load_kg": 60.5, "target_reps": 2, "pause_hold_ms": 1000})
	expect(t, r, 201)
	setID := r.json(t)["id"].(string)

	// Recorded on the phone before the set was created on the server.
	start := time.Now().Add(-10 * time.Minute)
	at := func(ms int) string {
		return start.Add(time.Duration(ms) * time.Millisecond).UTC().Format("2006-01-02T15:04:05.000Z")
	}
	ids := make([]string, 9)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	events := []map[string]any{ // deliberately out of order: applied by their at
		{"event_id": ids[1], "type": "rep.phase", "phase": "top", "at": at(800)},
		{"event_id": ids[0], "type": "rep.phase", "phase": "up", "at": at(0)},
		{"event_id": ids[2], "type": "rep.phase", "phase": "down", "at": at(2000)},
		{"event_id": ids[3], "type": "rep.phase", "phase": "bottom", "at": at(3000)},
		{"event_id": ids[4], "type": "rep.phase", "phase": "bottom", "at": at(3100)}, // refused: bottom twice
		{"event_id": ids[5], "type": "rep.phase", "phase": "top", "at": at(4000)},
		{"event_id": ids[6], "type": "rep.phase", "phase": "down", "at": at(4400)}, // hold cut short
		{"event_id": ids[7], "type": "rep.phase", "phase": "bottom", "at": at(5400)},
		{"event_id": ids[8], "type": "set.end", "at": at(6000)},
	}
	r = h.post("/v1/sets/"+setID+"/events", w.accounts[athlete].Access, map[string]any{"events": events})
	expect(t, r, 200)
	var res struct {
		Accepted, Duplicates int
		Rejected             []struct{ EventID, Code string } `json:"rejected"`
	}
	r.decode(t, &res)
	if res.Accepted != 8 || res.Duplicates != 0 || len(res.Rejected) != 1 || res.Rejected[0].Code != "invalid_transition" {
		t.Fatalf("first upload %s", r.Body)
	}
	r = h.post("/v1/sets/"+setID+"/events", w.accounts[athlete].Access, map[string]any{"events": events})
	expect(t, r, 200)
	r.decode(t, &res)
	if res.Accepted != 0 || res.Duplicates != 8 || len(res.Rejected) != 1 {
		t.Fatalf("second upload %s", r.Body)
	}
	var stored int
	_ = h.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM set_events WHERE set_id = $1`, setID).Scan(&stored)
	if stored != 8 {
		t.Fatalf("%d events stored, want 8", stored)
	}
	r = h.get("/v1/sets/"+setID, w.accounts[athlete].Access)
	expect(t, r, 200)
	var detail struct {
		Status string
		Reps   []struct {
			ConcentricMS *int `json:"concentric_ms"`
			HoldMS       int  `json:"hold_ms"`
			EccentricMS  int  `json:"eccentric_ms"`
			HoldMet      bool `json:"hold_met"`
		}
	}
	r.decode(t, &detail)
	if detail.Status != "ended" || len(detail.Reps) != 2 || *detail.Reps[0].ConcentricMS != 800 || detail.Reps[0].HoldMS != 1200 ||
		!detail.Reps[0].HoldMet || detail.Reps[1].ConcentricMS != nil || detail.Reps[1].HoldMS != 400 || detail.Reps[1].HoldMet || detail.Reps[1].EccentricMS != 1000 {
		t.Fatalf("detail %s", r.Body)
	}
	// The coach sees it; an unlinked coach does not; the coach may not upload.
	expect(t, h.get("/v1/sets/"+setID, w.accounts[coach].Access), 200)
	expect(t, h.get("/v1/sets/"+setID, w.accounts[otherCoach].Access), 404, "not_found")
	expect(t, h.post("/v1/sets/"+setID+"/events", w.accounts[coach].Access, map[string]any{"events": events}), 403, "forbidden")
	expect(t, h.post("/v1/sets/"+setID+"/events", w.accounts[otherAthlete].Access, map[string]any{"events": events}), 404, "not_found")
	bad := []map[string]any{{"event_id": uuid.NewString(), "type": "rep.phase", "phase": "up", "at": "yesterday"}}
	expect(t, h.post("/v1/sets/"+setID+"/events", w.accounts[athlete].Access, map[string]any{"events": bad}), 400, "invalid", "events[0].at")
}

func TestUnlinkStopsLiveWatchingAtOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	h.addVariation()
	addr := h.listen()
	r := h.post("/v1/sets", w.accounts[athlete].Access, map[string]any{"variation": testVariation, "load_kg": 80, "target_reps": 3, "pause_hold_ms": 300})
	expect(t, r, 201)
	setID := r.json(t)["id"].(string)
	c, _, err := dial(t, addr, w.accounts[coach].Access, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c.send(map[string]any{"type": "subscribe", "set_id": setID})
	c.next("snapshot")
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/coach/athletes/" + w.accounts[athlete].ID, Token: w.accounts[coach].Access}), 204)
	if m := c.next("unsubscribed"); m["set_id"] != setID || m["reason"] != "unlinked" {
		t.Fatalf("unsubscribed %v", m)
	}
	c.send(map[string]any{"type": "subscribe", "set_id": setID})
	if m := c.next("error"); m["code"] != "not_found" {
		t.Fatalf("resubscribing after the unlink: %v", m)
	}
	c.send(map[string]any{"type": "cue.send", "set_id": setID, "text": "Ribs down"})
	if m := c.next("error"); m["code"] != "not_found" {
		t.Fatalf("cueing after the unlink: %v", m)
	}
}

func TestLiveSocketsPerAccountAreBounded(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	addr := w.h.listen()
	for i := 0; i < 20; i++ {
		c, _, err := dial(t, addr, w.accounts[coach].Access, "", "")
		if err != nil {
			t.Fatal(err)
		}
		c.send(map[string]any{"type": "ping", "client_ts": i}) // registered before the next dial
		c.next("pong")
	}
	if _, resp, err := dial(t, addr, w.accounts[coach].Access, "", ""); err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("the 21st socket: %v", err)
	}
	if _, _, err := dial(t, addr, w.accounts[athlete].Access, "", ""); err != nil {
		t.Fatalf("another account is refused too: %v", err)
	}
}
