package main

import (
	"bytes"
	"context"
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

	"github.com/repcue/repcue/internal/testdb"
)

// Without REPCUE_JWT_KEY_FILE, serve refuses to start unless REPCUE_DEV says
// this is a development server; it says so before touching the database.
func TestServeRefusesWithoutSigningKey(t *testing.T) {
	t.Setenv("REPCUE_JWT_KEY_FILE", "")
	t.Setenv("REPCUE_DEV", "")
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	err := run(context.Background(), []string{"serve"})
	if err == nil || !strings.Contains(err.Error(), "REPCUE_JWT_KEY_FILE is not set") {
		t.Fatalf("serve without a key: %v, want a refusal naming REPCUE_JWT_KEY_FILE", err)
	}
	// With the development setting it gets past the key (and fails at the
	// unreachable database instead).
	t.Setenv("REPCUE_DEV", "true")
	err = run(context.Background(), []string{"serve"})
	if err == nil || strings.Contains(err.Error(), "REPCUE_JWT_KEY_FILE") {
		t.Fatalf("serve with REPCUE_DEV=true: %v, want it past the key check", err)
	}
}

// A connection string pgx cannot parse is named in no error: pgx's own
// message would quote "password = secret" as it is.
func TestUnparsableDatabaseURLIsNotPrinted(t *testing.T) {
	t.Setenv("REPCUE_DEV", "true")
	for _, dsn := range []string{
		"host=db password = s3cret port=abc",
		"postgres://u:s3c%zzret@db/x",
	} {
		t.Setenv("DATABASE_URL", dsn)
		err := run(context.Background(), []string{"serve"})
		if err == nil || strings.Contains(err.Error(), "s3c") || !strings.Contains(err.Error(), "DATABASE_URL cannot be parsed") {
			t.Errorf("DATABASE_URL=%q: %v", dsn, err)
		}
	}
}

// The real binary, as `make run` starts it: the development key from
// `repcue devkey`, /metrics on its own listener only, and a start-up log that
// shows no password of a keyword/value DATABASE_URL.
func TestServeWithDevKeyAndMetricsListener(t *testing.T) {
	pool := testdb.New(t)
	bin := repcueBinary(t)
	checkout := t.TempDir() // devkey keeps the key in the checkout's .devdb/
	if err := os.WriteFile(filepath.Join(checkout, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	devkey := exec.Command(bin, "devkey")
	devkey.Dir = checkout
	out, err := devkey.Output()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := strings.TrimSpace(string(out))
	if keyFile != filepath.Join(checkout, ".devdb", "jwt-dev.pem") {
		t.Fatalf("devkey printed %q", keyFile)
	}
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	c := pool.Config().ConnConfig
	dsn := "host=" + c.Host + " port=" + strconv.Itoa(int(c.Port)) + " user=" + c.User + " dbname=" + c.Database +
		" password=s3cret-unused sslmode=disable"
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn, "REPCUE_ADDR="+addr, "REPCUE_METRICS_ADDR="+metricsAddr,
		"REPCUE_JWT_KEY_FILE="+keyFile, "REPCUE_DEV=", "REPCUE_LOG_LEVEL=info", "REPCUE_NATS_URL=")
	var logs syncWriter
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	get := func(url string) (int, string) {
		t.Helper()
		var resp *http.Response
		var err error
		for range 100 { // the server may still be starting
			if resp, err = http.Get(url); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", url, err, logs.String())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, _ := get("http://" + addr + "/livez"); status != 200 {
		t.Fatalf("/livez: %d", status)
	}
	if status, _ := get("http://" + addr + "/metrics"); status != 404 {
		t.Fatalf("/metrics on the main listener: %d, want 404 with REPCUE_METRICS_ADDR set", status)
	}
	status, body := get("http://" + metricsAddr + "/metrics")
	if status != 200 || !strings.Contains(body, `repcue_http_requests_total{method="GET",route="/livez",status="200"} 1`) {
		t.Fatalf("/metrics on the metrics listener: %d\n%.2000s", status, body)
	}
	if status, _ := get("http://" + metricsAddr + "/livez"); status != 404 {
		t.Fatalf("the metrics listener serves more than /metrics: %d", status)
	}
	log := logs.String()
	if !strings.Contains(log, "password=xxxxx") || strings.Contains(log, "s3cret") {
		t.Fatalf("start-up log does not mask the keyword/value password:\n%s", log)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncWriter collects the server's stderr.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
