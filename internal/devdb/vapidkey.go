package devdb

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
)

// devVAPIDKeyName is the development VAPID key's file in .devdb/ (ignored by git).
const devVAPIDKeyName = "vapid-dev.pem"

// VAPIDKeyFile returns the path of the development Web Push (VAPID) key
// (P-256, SEC 1 PEM, mode 0600), creating it the first time, next to the
// development signing key. `make run` passes it as REPCUE_VAPID_PRIVATE_KEY_FILE,
// so that browser push subscriptions survive a restart of the development server.
func VAPIDKeyFile() (string, error) {
	dir, err := keyDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, devVAPIDKeyName)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", err
	}
	return path, writeKeyOnce(dir, devVAPIDKeyName, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}
