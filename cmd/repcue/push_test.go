package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/repcue/repcue/internal/config"
)

// The VAPID key: from the file when one is set, made up only in development,
// and otherwise push is off.
func TestVAPIDKeyChoice(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(ec)
	file := filepath.Join(t.TempDir(), "vapid.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	key, on, err := vapidKey(config.Config{Push: config.Push{VAPIDKeyFile: file}}, log)
	if err != nil || !on || key.PublicKey() == "" {
		t.Fatalf("from a file: on=%v, %v", on, err)
	}
	if _, _, err := vapidKey(config.Config{Push: config.Push{VAPIDKeyFile: file + ".missing"}}, log); err == nil {
		t.Fatal("a missing key file was accepted")
	}
	if key, on, err := vapidKey(config.Config{Dev: true}, log); err != nil || !on || key.PublicKey() == "" {
		t.Fatalf("development: on=%v, %v", on, err)
	}
	if key, on, err := vapidKey(config.Config{}, log); err != nil || on || key.PublicKey() != "" {
		t.Fatalf("neither: on=%v, key %q, %v; want push off", on, key.PublicKey(), err)
	}
}
