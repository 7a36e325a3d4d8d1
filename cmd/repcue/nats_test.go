package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/repcue/repcue/internal/testdb"
)

var (
	buildOnce sync.Once
	buildDir  string
	builtBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// repcueBinary builds the binary once for the package's tests.
func repcueBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "repcue-bin-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "repcue")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = &buildFailure{err, string(out)}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

type buildFailure struct {
	err error
	out string
}

func (b *buildFailure) Error() string { return "build: " + b.err.Error() + "\n" + b.out }

// With REPCUE_NATS_URL, /readyz follows the bus: 503 with Retry-After while
// NATS is down, 200 again once the node has reconnected by itself; /livez
// stays 200 throughout.
func TestServeReadinessFollowsNATS(t *testing.T) {
	pool := testdb.New(t)
	port := freePort(t)
	startNATS := func() *natsserver.Server {
		t.Helper()
		srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
		if err != nil {
			t.Fatal(err)
		}
		go srv.Start()
		if !srv.ReadyForConnections(5 * time.Second) {
			t.Fatal("NATS did not start")
		}
		return srv
	}
	nats := startNATS()
	t.Cleanup(func() { nats.Shutdown() })

	addr := freeAddr(t)
	cmd := exec.Command(repcueBinary(t), "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+pool.Config().ConnString(), "REPCUE_ADDR="+addr, "REPCUE_LOG_LEVEL=warn",
		"REPCUE_NATS_URL=nats://127.0.0.1:"+strconv.Itoa(port), "REPCUE_JWT_KEY_FILE=", "REPCUE_DEV=true")
	var logs syncWriter
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	status := func(path string) (int, string, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, "", ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
	}
	until := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, logs.String())
			}
		}
	}
	until("the node to be ready", func() bool { s, _, _ := status("/readyz"); return s == 200 })
	nats.Shutdown()
	nats.WaitForShutdown()
	until("/readyz to say the bus is down", func() bool {
		s, retry, body := status("/readyz")
		return s == 503 && retry != "" && strings.Contains(body, "bus")
	})
	if s, _, _ := status("/livez"); s != 200 {
		t.Fatalf("/livez with NATS down: %d", s)
	}
	nats = startNATS()
	until("the node to reconnect and be ready again", func() bool { s, _, _ := status("/readyz"); return s == 200 })
}

func freePort(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(freeAddr(t))
	port, _ := strconv.Atoi(p)
	return port
}
