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
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/repcue/repcue/internal/domain"
)

// VAPIDKey is the application server's P-256 key pair (RFC 8292). Browsers
// subscribe with its public half; every push is signed with the private half.
type VAPIDKey struct {
	private string // base64url of the 32-byte scalar, as webpush-go takes it
	public  string // base64url of the uncompressed point, as browsers take it
}

// PublicKey is the key browsers pass as applicationServerKey when subscribing.
func (k VAPIDKey) PublicKey() string { return k.public }

func vapidFrom(priv *ecdh.PrivateKey) VAPIDKey {
	return VAPIDKey{
		private: base64.RawURLEncoding.EncodeToString(priv.Bytes()),
		public:  base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
	}
}

// GenerateVAPIDKey makes a fresh key pair (development: subscriptions made
// against it stop working when the server restarts with another).
func GenerateVAPIDKey() VAPIDKey {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // the system's randomness failed
	}
	return vapidFrom(priv)
}

// LoadVAPIDKey reads a P-256 private key: PEM ("EC PRIVATE KEY" as
// `openssl ecparam -name prime256v1 -genkey -noout` writes it, or PKCS#8), or the
// base64url private key that web-push tools print.
func LoadVAPIDKey(path string) (VAPIDKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return VAPIDKey{}, fmt.Errorf("VAPID key: %w", err)
	}
	if block, _ := pem.Decode(raw); block != nil {
		var key any
		if key, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		}
		ec, ok := key.(*ecdsa.PrivateKey)
		if err != nil || !ok || ec.Curve != elliptic.P256() {
			return VAPIDKey{}, fmt.Errorf("VAPID key %s: not a P-256 (prime256v1) private key", path)
		}
		priv, err := ec.ECDH()
		if err != nil {
			return VAPIDKey{}, fmt.Errorf("VAPID key %s: %w", path, err)
		}
		return vapidFrom(priv), nil
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(string(raw)), "="))
	if err == nil {
		var priv *ecdh.PrivateKey
		if priv, err = ecdh.P256().NewPrivateKey(b); err == nil {
			return vapidFrom(priv), nil
		}
	}
	return VAPIDKey{}, fmt.Errorf("VAPID key %s: neither a PEM P-256 private key nor a base64url one", path)
}

// WebPush sends Web Push messages (RFC 8030), encrypted for the subscription
// (RFC 8291, aes128gcm) and signed with the VAPID key (RFC 8292), through
// github.com/SherClockHolmes/webpush-go. It refuses to connect to anything but
// public addresses (loopback too when allowed, for development and tests), so
// a registered endpoint cannot make the server reach into its own network.
type WebPush struct {
	key     VAPIDKey
	subject string
	client  *http.Client
	now     func() time.Time
}

// NewWebPush makes the sender. subject is a mailto: or https: URL push services
// may use to reach the operator.
func NewWebPush(key VAPIDKey, subject string, allowLoopback bool, timeout time.Duration) *WebPush {
	dialer := &net.Dialer{Timeout: timeout, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !reachable(ap.Addr(), allowLoopback) {
			return fmt.Errorf("push: %s is not a public address", address)
		}
		return nil
	}}
	transport := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: timeout,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &WebPush{
		key:     key,
		subject: subject,
		now:     time.Now,
		client: &http.Client{
			Transport: transport,
			Timeout:   timeout,
			// Push services answer; they do not redirect. A redirect is a refusal.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// PublicKey is the VAPID public key browsers subscribe with.
func (w *WebPush) PublicKey() string { return w.key.public }

// Send delivers one message. The push service's answer decides what follows:
// 2xx sent; 404 or 410 the subscription is gone; 429 and 5xx (or no answer)
// retry; any other answer is a refusal that retrying will not change.
func (w *WebPush) Send(ctx context.Context, d domain.Device, m Message) error {
	ttl := int(m.ExpiresAt.Sub(w.now()) / time.Second)
	if ttl < 0 {
		ttl = 0
	}
	resp, err := webpush.SendNotificationWithContext(ctx, m.Payload,
		&webpush.Subscription{Endpoint: d.Endpoint, Keys: webpush.Keys{P256dh: d.P256dh, Auth: d.Auth}},
		&webpush.Options{
			HTTPClient: w.client,
			// webpush-go adds "mailto:" to anything that is not an https: URL.
			Subscriber:      strings.TrimPrefix(w.subject, "mailto:"),
			TTL:             ttl,
			Urgency:         webpush.Urgency(m.Urgency),
			VAPIDPublicKey:  w.key.public,
			VAPIDPrivateKey: w.key.private,
		})
	if err != nil {
		return fmt.Errorf("web push: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s == http.StatusNotFound || s == http.StatusGone:
		return fmt.Errorf("web push: %d: %w", s, ErrGone)
	case s == http.StatusTooManyRequests || s >= 500:
		return &TemporaryError{Status: s, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), w.now())}
	default:
		return &RefusedError{Status: s}
	}
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); 0 if absent.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// reachable reports whether the server may connect to a push endpoint at ip.
func reachable(ip netip.Addr, allowLoopback bool) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return allowLoopback
	}
	return ip.IsGlobalUnicast() && !ip.IsPrivate()
}

// MaxEndpointBytes bounds a subscription's endpoint URL.
const MaxEndpointBytes = 2048

// CheckSubscription validates a browser's PushSubscription: an https endpoint
// on a public host (http on a loopback host only when allowLoopback, for
// development and tests), a P-256 public key (p256dh, 65 bytes, on the curve)
// and a 16-byte auth secret, both base64url as PushSubscription.toJSON gives
// them. Errors name the offending field.
func CheckSubscription(endpoint, p256dh, auth string, allowLoopback bool) error {
	if endpoint == "" || len(endpoint) > MaxEndpointBytes {
		return domain.Invalid("endpoint", "endpoint must be a URL of at most %d bytes", MaxEndpointBytes)
	}
	u, err := url.Parse(endpoint)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.User != nil || u.Fragment != "" || u.Hostname() == "" {
		return domain.Invalid("endpoint", "endpoint must be an absolute https URL without credentials or fragment")
	}
	host := strings.ToLower(u.Hostname())
	loopback := host == "localhost"
	if ip, err := netip.ParseAddr(host); err == nil {
		if !reachable(ip, allowLoopback) {
			return domain.Invalid("endpoint", "endpoint must be on a public host")
		}
		loopback = ip.Unmap().IsLoopback()
	} else if loopback && !allowLoopback {
		return domain.Invalid("endpoint", "endpoint must be on a public host")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback && allowLoopback:
	default:
		return domain.Invalid("endpoint", "endpoint must be an https URL")
	}
	key, err := decodeKey(p256dh)
	if err != nil || len(key) != 65 {
		return domain.Invalid("keys.p256dh", "keys.p256dh must be a base64url P-256 public key (65 bytes)")
	}
	if _, err := ecdh.P256().NewPublicKey(key); err != nil {
		return domain.Invalid("keys.p256dh", "keys.p256dh is not a point on P-256")
	}
	if secret, err := decodeKey(auth); err != nil || len(secret) != 16 {
		return domain.Invalid("keys.auth", "keys.auth must be a base64url 16-byte secret")
	}
	return nil
}

// decodeKey reads base64url with or without padding (browsers send none).
func decodeKey(s string) ([]byte, error) {
	if strings.ContainsAny(s, "+/") {
		return nil, errors.New("not base64url")
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
