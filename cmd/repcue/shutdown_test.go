package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/testdb"
)

// TestSIGTERMCommitsThenCloses1001 runs the real binary, ends a set over a live
// socket and sends SIGTERM at once: the socket must get its ack (the event is
// committed) and then close 1001, and the process must exit cleanly.
func TestSIGTERMCommitsThenCloses1001(t *testing.T) {
	pool := testdb.New(t)
	bin := repcueBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+pool.Config().ConnString(), "REPCUE_ADDR="+addr, "REPCUE_LOG_LEVEL=warn", "REPCUE_NATS_URL=", "REPCUE_JWT_KEY_FILE=", "REPCUE_DEV=true")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck
	base := "http://" + addr
	call := func(path, token string, body any, out any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		var resp *http.Response
		for i := 0; i < 50; i++ { // the server may still be starting
			if resp, err = http.DefaultClient.Do(req); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
			req.Body, _ = req.GetBody()
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	var reg struct {
		AccessToken string `json:"access_token"`
	}
	call("/v1/auth/register", "", map[string]string{"email": uuid.NewString() + "@example.com", "password": "a long password", "display_name": "A", "role": "athlete"}, &reg)
	var set struct{ ID string }
	call("/v1/sets", reg.AccessToken, map[string]any{"variation": "barbell-hip-thrust", "load_kg": 50, "target_reps": 5, "pause_hold_ms": 500}, &set)

	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/v1/live", http.Header{"Authorization": {"Bearer " + reg.AccessToken}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	eventID := uuid.NewString()
	_ = conn.WriteJSON(map[string]any{"type": "subscribe", "set_id": set.ID})
	_ = conn.WriteJSON(map[string]any{"type": "rep.phase", "set_id": set.ID, "phase": "top", "event_id": eventID})
	_ = conn.WriteJSON(map[string]any{"type": "set.end", "set_id": set.ID, "event_id": uuid.NewString()})
	_ = conn.WriteJSON(map[string]any{"type": "ping", "client_ts": 1})
	time.Sleep(10 * time.Millisecond) // let the server read them
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	acked := 0
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Fatalf("the socket ended with %v, want close 1001", err)
			}
			break
		}
		for _, line := range bytes.Split(data, []byte("\n")) { // a message may join frames
			var f struct{ Type string }
			_ = json.Unmarshal(line, &f)
			if f.Type == "ack" {
				acked++
			}
		}
	}
	if acked != 2 {
		t.Fatalf("%d of 2 events acknowledged before 1001", acked)
	}
	var stored int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM set_events WHERE set_id = $1`, set.ID).Scan(&stored); err != nil || stored != 2 {
		t.Fatalf("%d events stored (%v), want 2", stored, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the server did not exit after SIGTERM")
	}
}
