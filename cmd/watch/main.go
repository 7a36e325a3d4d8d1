// Command watch prints the live frames of sets, as a coach's tablet receives
// them: it signs in, opens /v1/live, subscribes to the given set (or, without
// one, waits for set.started and subscribes to each set that starts).
//
//	go run ./cmd/watch -email coach@demo.repcue.dev -password demo-coach-password
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/fasthttp/websocket"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "the server")
	email := flag.String("email", "coach@demo.repcue.dev", "account to sign in with")
	password := flag.String("password", "demo-coach-password", "its password")
	setID := flag.String("set", "", "a set to subscribe to (default: every set that starts)")
	flag.Parse()

	body, _ := json.Marshal(map[string]string{"email": *email, "password": *password})
	resp, err := http.Post("http://"+*addr+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		fail(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &login) != nil {
		fail(fmt.Errorf("login: %d %s", resp.StatusCode, b))
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+*addr+"/v1/live", http.Header{"Authorization": {"Bearer " + login.AccessToken}})
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	subscribe := func(id string) {
		if err := conn.WriteJSON(map[string]any{"type": "subscribe", "set_id": id}); err != nil {
			fail(err)
		}
	}
	if *setID != "" {
		subscribe(*setID)
	}
	fmt.Fprintln(os.Stderr, "watching; Ctrl-C to stop")
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			fail(err)
		}
		for _, line := range bytes.Split(data, []byte("\n")) { // a message may join several frames
			fmt.Println(string(line))
			var f struct{ Type, SetID string }
			_ = json.Unmarshal(line, &struct {
				Type  *string `json:"type"`
				SetID *string `json:"set_id"`
			}{&f.Type, &f.SetID})
			if f.Type == "set.started" && *setID == "" {
				subscribe(f.SetID)
			}
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "watch:", err)
	os.Exit(1)
}
