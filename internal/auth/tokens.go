package auth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
)

// MaxTokenBytes bounds an access token before it is parsed.
const MaxTokenBytes = 2048

const accessType = "access"

// Claims are the claims of an access token. Every one is required.
type Claims struct {
	jwt.RegisteredClaims
	Role      domain.Role `json:"role"`
	Type      string      `json:"typ"`
	SessionID string      `json:"sid"` // the refresh-token family this token was issued from
}

// Principal is the verified caller of a request.
type Principal struct {
	UserID    uuid.UUID
	Role      domain.Role
	SessionID uuid.UUID
	ExpiresAt time.Time
}

// Tokens issues and verifies access tokens signed with Ed25519.
type Tokens struct {
	key      ed25519.PrivateKey
	chain    []byte // the HMAC key refresh-token successors are derived with
	kid      string
	issuer   string
	audience string
	ttl      time.Duration
	parser   *jwt.Parser
	now      func() time.Time

	// verified remembers the tokens this signer has verified, by SHA-256 of
	// the token: the same bytes verify the same way under the same key, so a
	// repeat only has its expiry checked again (an Ed25519 verification and
	// the claims' JSON cost ~100 µs; a lookup ~1 µs).
	verifiedMu sync.Mutex
	verified   map[[32]byte]Principal
}

// Leeway is the clock skew allowed on exp and iat.
const leeway = 5 * time.Second

// maxVerified bounds the remembered tokens (~100 bytes each); when full, the
// expired ones are dropped, and if none is, all are.
const maxVerified = 1 << 16

// NewTokens builds the signer. now may be nil (time.Now).
func NewTokens(key ed25519.PrivateKey, issuer, audience string, ttl time.Duration, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	pub := key.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	t := &Tokens{
		key: key, issuer: issuer, audience: audience, ttl: ttl, now: now,
		verified: map[[32]byte]Principal{},
		kid:      base64.RawURLEncoding.EncodeToString(sum[:12]),
	}
	mac := hmac.New(sha256.New, key.Seed())
	mac.Write([]byte("repcue refresh-token successor v1"))
	t.chain = mac.Sum(nil)
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
	return t
}

// TTL is the lifetime of an access token.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue signs an access token for a user and session.
func (t *Tokens) Issue(userID uuid.UUID, role domain.Role, sessionID uuid.UUID) (string, error) {
	now := t.now().Truncate(time.Second)
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.issuer,
			Subject:   userID.String(),
			Audience:  jwt.ClaimStrings{t.audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        uuid.NewString(),
		},
		Role:      role,
		Type:      accessType,
		SessionID: sessionID.String(),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = t.kid
	return tok.SignedString(t.key)
}

var errBadToken = &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid or expired access token"}

// Parse verifies an access token strictly: the algorithm is pinned to EdDSA, the
// key is chosen by kid, and iss, aud, exp, iat, sub, role, typ and sid must all be
// present and valid. Any failure is the same unauthorized error. A token verified
// before is recognised by its hash and only its expiry is checked again.
func (t *Tokens) Parse(raw string) (Principal, error) {
	if len(raw) == 0 || len(raw) > MaxTokenBytes {
		return Principal{}, errBadToken
	}
	sum := sha256.Sum256([]byte(raw))
	t.verifiedMu.Lock()
	p, ok := t.verified[sum]
	t.verifiedMu.Unlock()
	if ok {
		if !t.now().Before(p.ExpiresAt.Add(leeway)) { // the parser's own exp rule
			return Principal{}, &domain.Error{Code: domain.CodeUnauthorized, Message: errBadToken.Message, Err: jwt.ErrTokenExpired}
		}
		return p, nil
	}
	p, err := t.verify(raw)
	if err != nil {
		return p, err
	}
	t.remember(sum, p)
	return p, nil
}

func (t *Tokens) remember(sum [32]byte, p Principal) {
	t.verifiedMu.Lock()
	defer t.verifiedMu.Unlock()
	if len(t.verified) >= maxVerified {
		now := t.now()
		for k, q := range t.verified {
			if !now.Before(q.ExpiresAt.Add(leeway)) {
				delete(t.verified, k)
			}
		}
		if len(t.verified) >= maxVerified {
			clear(t.verified)
		}
	}
	t.verified[sum] = p
}

func (t *Tokens) verify(raw string) (Principal, error) {
	var c Claims
	_, err := t.parser.ParseWithClaims(raw, &c, func(tok *jwt.Token) (any, error) {
		if kid, _ := tok.Header["kid"].(string); kid != t.kid {
			return nil, errors.New("unknown kid")
		}
		return t.key.Public(), nil
	})
	if err != nil {
		return Principal{}, &domain.Error{Code: domain.CodeUnauthorized, Message: errBadToken.Message, Err: err}
	}
	if c.IssuedAt == nil || c.Type != accessType || !c.Role.Valid() {
		return Principal{}, errBadToken
	}
	uid, err1 := uuid.Parse(c.Subject)
	sid, err2 := uuid.Parse(c.SessionID)
	if err1 != nil || err2 != nil {
		return Principal{}, errBadToken
	}
	return Principal{UserID: uid, Role: c.Role, SessionID: sid, ExpiresAt: c.ExpiresAt.Time}, nil
}

// JWK is one public key in a JSON Web Key Set.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS returns the public key set of the signer.
func (t *Tokens) JWKS() map[string][]JWK {
	pub := t.key.Public().(ed25519.PublicKey)
	return map[string][]JWK{"keys": {{
		Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub),
		Kid: t.kid, Alg: "EdDSA", Use: "sig",
	}}}
}

// LoadKey reads a PKCS#8 PEM Ed25519 private key (openssl genpkey -algorithm ed25519).
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM \"PRIVATE KEY\" block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return ek, nil
}

// GenerateKey makes a fresh development key.
func GenerateKey() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return k
}

// NewOpaqueToken returns a random token for the client and the SHA-256 the
// server stores: refresh tokens, live tickets.
func NewOpaqueToken() (token string, hash []byte) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashOpaqueToken(token)
}

// Successor is the refresh token that replaces parent when it is rotated:
// HMAC-SHA256 of parent under a key derived from the signing key, so every node
// derives the same one and nothing secret is stored. A phone that retries a
// refresh within the grace window is given the same successor again, and the
// family never branches. It is as unguessable as a random token to anyone
// without the signing key (who could mint access tokens anyway).
func (t *Tokens) Successor(parent string) (token string, hash []byte) {
	mac := hmac.New(sha256.New, t.chain)
	mac.Write([]byte(parent))
	token = base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	return token, HashOpaqueToken(token)
}

// HashOpaqueToken is the stored form of an opaque token.
func HashOpaqueToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}
