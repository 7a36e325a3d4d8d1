package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// keygen writes a key once: a second run keeps the first key.
func TestKeygenWritesAKeyOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, kind := range []string{"jwt", "vapid"} {
		path := filepath.Join(dir, kind+".pem")
		if err := run(context.Background(), []string{"keygen", kind, path}); err != nil {
			t.Fatal(err)
		}
		first, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(first, []byte("PRIVATE KEY")) {
			t.Fatalf("%s key: %q, %v", kind, first, err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s key mode %v", kind, fi.Mode().Perm())
		}
		if err := run(context.Background(), []string{"keygen", kind, path}); err != nil {
			t.Fatal(err)
		}
		if again, _ := os.ReadFile(path); !bytes.Equal(first, again) {
			t.Fatalf("%s key replaced by a second keygen", kind)
		}
	}
	if err := run(context.Background(), []string{"keygen", "rsa", filepath.Join(dir, "x.pem")}); err == nil {
		t.Fatal("an unknown key kind was accepted")
	}
}

// healthcheck succeeds only on a 200 from /readyz.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	if err := run(context.Background(), []string{"healthcheck", srv.URL + "/readyz"}); err != nil {
		t.Fatalf("a ready server: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := run(context.Background(), []string{"healthcheck", srv.URL + "/readyz"}); err == nil {
		t.Fatal("a server answering 503 was called healthy")
	}
	srv.Close()
	if err := run(context.Background(), []string{"healthcheck", srv.URL + "/readyz"}); err == nil {
		t.Fatal("no server was called healthy")
	}
}
