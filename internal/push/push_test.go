package push

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repcue/repcue/internal/domain"
)

func subscriptionKeys(t *testing.T) (string, string) {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	return base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()), base64.RawURLEncoding.EncodeToString(auth)
}

func TestCheckSubscriptionEndpoints(t *testing.T) {
	t.Parallel()
	p, a := subscriptionKeys(t)
	for _, c := range []struct {
		endpoint      string
		allowLoopback bool
		ok            bool
	}{
		{"https://fcm.googleapis.com/fcm/send/abc:APA91b", false, true},
		{"https://updates.push.services.mozilla.com/wpush/v2/gAAAA", false, true},
		{"https://203.0.113.7/push", false, true}, // a public address literal
		{"http://fcm.googleapis.com/fcm/send/abc", false, false},
		{"http://fcm.googleapis.com/fcm/send/abc", true, false}, // plain http stays loopback-only
		{"http://127.0.0.1:9999/push", false, false},
		{"http://127.0.0.1:9999/push", true, true},
		{"http://localhost:9999/push", true, true},
		{"https://localhost/push", false, false},
		{"http://[::1]:9999/push", true, true},
		{"https://[::1]/push", false, false},
		{"https://10.0.0.8/push", true, false},
		{"https://192.168.1.1/push", false, false},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"https://[::ffff:10.0.0.1]/push", false, false},
		{"https://[fd00::1]/push", false, false},
		{"https://0.0.0.0/push", false, false},
		{"https://224.0.0.1/push", false, false},
		{"https://u:p@push.example.com/x", false, false},
		{"https://push.example.com/x#frag", false, false},
		{"mailto:someone@example.com", false, false},
		{"push.example.com/x", false, false},
		{"", false, false},
	} {
		err := CheckSubscription(c.endpoint, p, a, c.allowLoopback)
		if (err == nil) != c.ok {
			t.Errorf("%q (loopback allowed: %v): %v, want ok=%v", c.endpoint, c.allowLoopback, err, c.ok)
		}
		if err != nil {
			if de := domain.AsError(err); de.Code != domain.CodeInvalid || de.Field != "endpoint" {
				t.Errorf("%q: %v, want invalid naming endpoint", c.endpoint, err)
			}
		}
	}
}

func TestCheckSubscriptionKeys(t *testing.T) {
	t.Parallel()
	p, a := subscriptionKeys(t)
	const ep = "https://push.example.com/x"
	raw, _ := base64.RawURLEncoding.DecodeString(p)
	for _, c := range []struct {
		name, p256dh, auth, field string
	}{
		{"padded base64url is fine", p + "=", a + "==", ""},
		{"empty p256dh", "", a, "keys.p256dh"},
		{"compressed point", base64.RawURLEncoding.EncodeToString(raw[:33]), a, "keys.p256dh"},
		{"not on the curve", base64.RawURLEncoding.EncodeToString(append([]byte{4}, make([]byte, 64)...)), a, "keys.p256dh"},
		{"standard alphabet", base64.StdEncoding.EncodeToString(raw), a, "keys.p256dh"},
		{"auth of 15 bytes", p, base64.RawURLEncoding.EncodeToString(make([]byte, 15)), "keys.auth"},
		{"auth of 17 bytes", p, base64.RawURLEncoding.EncodeToString(make([]byte, 17)), "keys.auth"},
		{"auth not base64", p, "!!!!!!!!!!!!!!!!!!!!!!", "keys.auth"},
	} {
		err := CheckSubscription(ep, c.p256dh, c.auth, false)
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.field != "" && (err == nil || domain.AsError(err).Field != c.field):
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.field)
		}
	}
}

func TestLoadVAPIDKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, _ := x509.MarshalECPrivateKey(ec)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	priv, _ := ec.ECDH()
	want := base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes())
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalECPrivateKey(p384)
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for name, data := range map[string][]byte{
		"sec1.pem":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"pkcs8.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		"raw.txt":   []byte(base64.RawURLEncoding.EncodeToString(priv.Bytes()) + "\n"),
	} {
		k, err := LoadVAPIDKey(write(name, data))
		if err != nil || k.PublicKey() != want {
			t.Errorf("%s: %v, public key %q, want %q", name, err, k.PublicKey(), want)
		}
	}
	for name, data := range map[string][]byte{
		"p384.pem":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: p384der}),
		"junk.txt":  []byte("not a key"),
		"empty.txt": nil,
	} {
		if _, err := LoadVAPIDKey(write(name, data)); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	if _, err := LoadVAPIDKey(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("a missing file loaded")
	}
}

// Without the loopback allowance the sender refuses to connect to a private
// address, whatever the endpoint's name resolves to: nothing reaches it.
func TestWebPushConnectsToPublicAddressesOnly(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	p, a := subscriptionKeys(t)
	d := domain.Device{Kind: domain.DeviceKindWebPush, Endpoint: strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/x", P256dh: p, Auth: a}
	m := Message{Payload: []byte(`{"type":"t"}`), Urgency: "normal", ExpiresAt: time.Now().Add(time.Hour)}

	err := NewWebPush(GenerateVAPIDKey(), "mailto:ops@example.com", false, 2*time.Second).Send(context.Background(), d, m)
	if err == nil || errors.Is(err, ErrGone) || !strings.Contains(err.Error(), "not a public address") {
		t.Fatalf("send to loopback without the allowance: %v", err)
	}
	if hits.Load() != 0 {
		t.Fatal("the endpoint was reached")
	}
	if err := NewWebPush(GenerateVAPIDKey(), "mailto:ops@example.com", true, 2*time.Second).Send(context.Background(), d, m); err != nil {
		t.Fatalf("send with the allowance: %v", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("%d requests, want 1", hits.Load())
	}
}

func TestWebPushClassifiesAnswers(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if status.Load() == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "120")
		}
		if status.Load() == http.StatusFound {
			w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	p, a := subscriptionKeys(t)
	d := domain.Device{Endpoint: srv.URL + "/x", P256dh: p, Auth: a}
	m := Message{Payload: []byte(`{}`), Urgency: "high", ExpiresAt: time.Now().Add(time.Minute)}
	wp := NewWebPush(GenerateVAPIDKey(), "https://ops.example.com", true, 2*time.Second)
	for _, c := range []struct {
		status int
		check  func(error) bool
	}{
		{201, func(err error) bool { return err == nil }},
		{202, func(err error) bool { return err == nil }},
		{404, func(err error) bool { return errors.Is(err, ErrGone) }},
		{410, func(err error) bool { return errors.Is(err, ErrGone) }},
		{429, func(err error) bool {
			var e *TemporaryError
			return errors.As(err, &e) && e.RetryAfter == 2*time.Minute
		}},
		{500, func(err error) bool { var e *TemporaryError; return errors.As(err, &e) && e.Status == 500 }},
		{503, func(err error) bool { var e *TemporaryError; return errors.As(err, &e) }},
		{400, func(err error) bool { var e *RefusedError; return errors.As(err, &e) }},
		{403, func(err error) bool { var e *RefusedError; return errors.As(err, &e) }},
		{413, func(err error) bool { var e *RefusedError; return errors.As(err, &e) }},
		{302, func(err error) bool { var e *RefusedError; return errors.As(err, &e) }}, // never followed
	} {
		status.Store(int32(c.status))
		if err := wp.Send(context.Background(), d, m); !c.check(err) {
			t.Errorf("answer %d: %v", c.status, err)
		}
	}
}

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	t.Parallel()
	w := NewWorker(nil, Config{Backoff: 10 * time.Second, MaxBackoff: time.Hour}, nil)
	for attempts, base := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second} {
		for range 50 {
			if d := w.backoff(attempts); d > base || d < base*3/4 {
				t.Fatalf("after %d failures: %s, want within [%s, %s]", attempts+1, d, base*3/4, base)
			}
		}
	}
	for _, attempts := range []int{9, 20, 1000} {
		if d := w.backoff(attempts); d > time.Hour || d < 45*time.Minute {
			t.Fatalf("after %d failures: %s, want about the 1h cap", attempts+1, d)
		}
	}
}
