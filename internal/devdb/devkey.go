package devdb

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// devKeyName is the development signing key's file in .devdb/ (ignored by git).
const devKeyName = "jwt-dev.pem"

// SigningKeyFile returns the path of the development access-token signing key
// (Ed25519, PKCS#8 PEM, mode 0600), creating it the first time. `make run`
// passes it as REPCUE_JWT_KEY_FILE, so that tokens survive a restart of the
// development server. It lives in .devdb/ at the top of the checkout, or in a
// private temporary folder when the checkout cannot be written.
func SigningKeyFile() (string, error) {
	dir, err := keyDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, devKeyName)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	return path, writeKeyOnce(dir, devKeyName, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// writeKeyOnce writes a PEM key as dir/name (mode 0600) unless it exists.
// Written aside and linked into place: two `make run`s starting at once both
// end with the same complete key, never a half-written one.
func writeKeyOnce(dir, name string, block *pem.Block) error {
	tmp, err := os.CreateTemp(dir, name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := pem.Encode(tmp, block); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

func keyDir() (string, error) {
	if top, err := checkoutTop(); err == nil {
		dir := filepath.Join(top, ".devdb")
		if err := os.MkdirAll(dir, 0o700); err == nil && writable(dir) {
			return dir, nil
		}
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("repcue-devkey-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("cannot prepare a folder for the development signing key: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s must be a folder only its owner can use", dir)
	}
	return dir, nil
}

func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".probe")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}
