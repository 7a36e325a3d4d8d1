package auth

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
)

var fixedNow = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func newTestTokens() *Tokens {
	seed := make([]byte, ed25519.SeedSize)
	return NewTokens(ed25519.NewKeyFromSeed(seed), "repcue", "repcue-api", 15*time.Minute, func() time.Time { return fixedNow })
}

func TestIssueAndParse(t *testing.T) {
	t.Parallel()
	tk := newTestTokens()
	uid, sid := uuid.New(), uuid.New()
	raw, err := tk.Issue(uid, domain.RoleCoach, sid)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tk.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID != uid || p.SessionID != sid || p.Role != domain.RoleCoach {
		t.Fatalf("parsed %+v", p)
	}
}

// sign makes a token with arbitrary claims and header, signed by key.
func sign(t *testing.T, tk *Tokens, method jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseRefusesEveryTamperedToken(t *testing.T) {
	t.Parallel()
	tk := newTestTokens()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{
			"iss": "repcue", "aud": []string{"repcue-api"}, "sub": uuid.NewString(), "sid": uuid.NewString(),
			"exp": fixedNow.Add(time.Minute).Unix(), "iat": fixedNow.Unix(), "role": "athlete", "typ": "access",
		}
	}
	without := func(k string) jwt.MapClaims { c := good(); delete(c, k); return c }
	with := func(k string, v any) jwt.MapClaims { c := good(); c[k] = v; return c }
	_, otherKey, _ := ed25519.GenerateKey(nil)

	control := sign(t, tk, jwt.SigningMethodEdDSA, tk.key, good(), tk.kid)
	if _, err := tk.Parse(control); err != nil {
		t.Fatalf("the control token must pass: %v", err)
	}
	cases := map[string]string{
		"no iss":        sign(t, tk, jwt.SigningMethodEdDSA, tk.key, without("iss"), tk.kid),
		"wrong iss":     sign(t, tk, jwt.SigningMethodEdDSA, tk.key, with("iss", "evil"), tk.kid),
		"no aud":        sign(t, tk, jwt.SigningMethodEdDSA, tk.key, without("aud"), tk.kid),
		"wrong aud":     sign(t, tk, jwt.SigningMethodEdDSA, tk.key, with("aud", "other"), tk.kid),
		"no exp":        sign(t, tk, jwt.SigningMethodEdDSA, tk.key, without("exp"), tk.kid),
		"expired":       sign(t, tk, jwt.SigningMethodEdDSA, tk.key, with("exp", fixedNow.Add(-time.Minute).Unix()), tk.kid),
		"no iat":        sign(t, tk, jwt.SigningMethodEdDSA, tk.key, without("iat"), tk.kid),
		"future iat":    sign(t, tk, jwt.SigningMethodEdDSA, tk.key, with("iat", fixedNow.Add(time.Hour).Unix()), tk.kid),
		"future nbf":    sign(t, tk, jwt.SigningMethodEdDSA, tk.key, with("nbf", fixedNow.Add(time.Hour).Unix()), tk.kid),
		"no sub":        sign(t, tk, jwt.SigningMethodEdDSA, tk.key, without("sub"), tk.kid),
		"bad sub":       sign(t, tk, jwt.SigningMethodEdDSA, tk.key, with("sub", "' OR 1=1"), tk.kid),
		"no sid":        sign(t, tk, jwt.SigningMethodEdDSA, tk.key, without("sid"), tk.kid),
		"no role":       sign(t, tk, jwt.SigningMethodEdDSA, tk.key, without("role"), tk.kid),
		"bad role":      sign(t, tk, jwt.SigningMethodEdDSA, tk.key, with("role", "root"), tk.kid),
		"refresh typ":   sign(t, tk, jwt.SigningMethodEdDSA, tk.key, with("typ", "refresh"), tk.kid),
		"no typ":        sign(t, tk, jwt.SigningMethodEdDSA, tk.key, without("typ"), tk.kid),
		"no kid":        sign(t, tk, jwt.SigningMethodEdDSA, tk.key, good(), ""),
		"kid injection": sign(t, tk, jwt.SigningMethodEdDSA, tk.key, good(), "../../etc/passwd"),
		"other key":     sign(t, tk, jwt.SigningMethodEdDSA, otherKey, good(), tk.kid),
		"HS256 with the public key": sign(t, tk, jwt.SigningMethodHS256,
			[]byte(tk.key.Public().(ed25519.PublicKey)), good(), tk.kid),
		"alg none": sign(t, tk, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good(), tk.kid),
		"too long": strings.Repeat("a", MaxTokenBytes+1),
		"empty":    "",
		"dots":     strings.Repeat(".", 1000),
	}
	// A tampered payload keeps the original signature.
	parts := strings.Split(control, ".")
	tampered := good()
	tampered["role"] = "admin"
	forged := sign(t, tk, jwt.SigningMethodEdDSA, otherKey, tampered, tk.kid)
	cases["tampered payload"] = parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2]
	cases["jku header"] = withHeader(t, control, `{"alg":"EdDSA","kid":"`+tk.kid+`","jku":"http://evil/keys"}`)

	for name, raw := range cases {
		if _, err := tk.Parse(raw); err == nil || domain.ErrorCode(err) != domain.CodeUnauthorized {
			t.Errorf("%s: accepted or wrong error: %v", name, err)
		}
	}
}

func withHeader(t *testing.T, token, header string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + parts[1] + "." + parts[2]
}

func FuzzParse(f *testing.F) {
	tk := newTestTokens()
	uid, sid := uuid.MustParse("6f1c2a54-8a43-4a41-9b1e-0b6f0e5f2d11"), uuid.MustParse("0d0f5a4e-44a5-4b7a-8c42-6c2f3f4e5a66")
	good, _ := tk.Issue(uid, domain.RoleAthlete, sid)
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(good[:len(good)-2])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := tk.Parse(raw)
		if err != nil {
			if domain.ErrorCode(err) != domain.CodeUnauthorized {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		// Whatever is accepted must carry exactly what this signer issued (the
		// fixed key signs only this user's token, in any fuzzing process).
		if p.UserID != uid || p.SessionID != sid || p.Role != domain.RoleAthlete {
			t.Fatalf("accepted a token that was not issued: %q", raw)
		}
	})
}

func TestLoadKey(t *testing.T) {
	t.Parallel()
	k := GenerateKey()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadKey(good)
	if err != nil || !loaded.Equal(k) {
		t.Fatalf("LoadKey: %v", err)
	}
	bad := filepath.Join(dir, "bad.pem")
	_ = os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, err := LoadKey(bad); err == nil {
		t.Fatal("a file without a key was accepted")
	}
	if _, err := LoadKey(filepath.Join(dir, "missing.pem")); err == nil {
		t.Fatal("a missing file was accepted")
	}
}

// A token verified once is remembered by its hash, but only while it is valid:
// it expires on the parser's rule (exp plus the leeway), and a token that differs
// in any byte is verified afresh.
func TestRememberedTokensStillExpire(t *testing.T) {
	t.Parallel()
	now := fixedNow
	tk := NewTokens(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), "repcue", "repcue-api", 15*time.Minute, func() time.Time { return now })
	raw, err := tk.Issue(uuid.New(), domain.RoleAthlete, uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Parse(raw); err != nil {
		t.Fatal(err)
	}
	tampered := raw[:len(raw)-2] + map[bool]string{true: "A", false: "B"}[raw[len(raw)-2] != 'A'] + raw[len(raw)-1:]
	if _, err := tk.Parse(tampered); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("a token with another signature after the genuine one: %v", err)
	}
	now = fixedNow.Add(15*time.Minute + 4*time.Second) // within the leeway
	if _, err := tk.Parse(raw); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	if _, err := newTestTokensAt(now).Parse(raw); err != nil {
		t.Fatalf("the parser's own rule disagrees: %v", err)
	}
	now = fixedNow.Add(15*time.Minute + 5*time.Second)
	if _, err := tk.Parse(raw); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("an expired token that was verified before: %v", err)
	}
	if _, err := newTestTokensAt(now).Parse(raw); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("the parser's own rule disagrees: %v", err)
	}
}

func newTestTokensAt(now time.Time) *Tokens {
	return NewTokens(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), "repcue", "repcue-api", 15*time.Minute, func() time.Time { return now })
}
