// Package auth owns credentials: argon2id password hashes, the EdDSA access
// tokens and their strict parser, opaque refresh tokens and the login throttle.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/repcue/repcue/internal/domain"
)

// Argon2id parameters (RFC 9106 second recommendation scaled to the OWASP floor:
// 19 MiB, 2 passes). Stored in every hash, so they can be raised later.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// PasswordMinRunes and PasswordMaxBytes bound a password.
const (
	PasswordMinRunes = 10
	PasswordMaxBytes = 256
)

// Hasher hashes and checks passwords, with at most a fixed number of hashes
// running at once: each costs about 19 MiB and a few tens of milliseconds of CPU.
type Hasher struct {
	slots chan struct{}
	dummy string
}

// NewHasher allows workers concurrent hashes.
func NewHasher(workers int) *Hasher {
	h := &Hasher{slots: make(chan struct{}, workers)}
	h.dummy = encodeHash(make([]byte, argonSaltLen), argon2.IDKey([]byte("repcue-dummy"), make([]byte, argonSaltLen), argonTime, argonMemory, argonThreads, argonKeyLen), argonTime, argonMemory, argonThreads)
	return h
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &domain.Error{Code: domain.CodeUnavailable, Message: "server busy, try again", RetryAfter: 1e9, Err: ctx.Err()}
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the PHC-format argon2id hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return encodeHash(salt, key, argonTime, argonMemory, argonThreads), nil
}

// Verify reports whether password matches encoded. An empty encoded hash (an
// unknown account) is checked against a dummy hash so that both cases take the
// same time.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	known := encoded != ""
	if !known {
		encoded = h.dummy
	}
	salt, key, t, m, p, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(key)))
	return known && subtle.ConstantTimeCompare(got, key) == 1, nil
}

func encodeHash(salt, key []byte, t, m uint32, p uint8) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decodeHash(s string) (salt, key []byte, t, m uint32, p uint8, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return nil, nil, 0, 0, 0, errors.New("not an argon2id hash")
	}
	var v int
	if _, err = fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return nil, nil, 0, 0, 0, errors.New("unsupported argon2 version")
	}
	if _, err = fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return nil, nil, 0, 0, 0, errors.New("bad argon2 parameters")
	}
	if salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return nil, nil, 0, 0, 0, err
	}
	if key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil {
		return nil, nil, 0, 0, 0, err
	}
	return salt, key, t, m, p, nil
}
