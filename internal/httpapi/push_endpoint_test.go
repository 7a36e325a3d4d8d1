package httpapi_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/push"
)

// testVAPIDSubject is the contact the tests' workers sign with.
const testVAPIDSubject = "mailto:ops@repcue.example"

// pushSetup is the push side of a harness: the server's VAPID key and a worker
// the app wakes after commits. The worker runs only when a test calls runPush.
type pushSetup struct {
	outbox push.Outbox
	key    push.VAPIDKey
	worker *push.Worker
	log    *slog.Logger
}

func newPushSetup(outbox push.Outbox, log *slog.Logger) *pushSetup {
	key := push.GenerateVAPIDKey()
	return &pushSetup{outbox: outbox, key: key, log: log, worker: newTestWorker(outbox, key, log, 8)}
}

// newTestWorker is a worker as serve builds it, with a quick poll and backoff.
func newTestWorker(outbox push.Outbox, key push.VAPIDKey, log *slog.Logger, maxAttempts int, opts ...func(*push.Config)) *push.Worker {
	cfg := push.Config{
		Senders:     map[string]push.Sender{domain.DeviceKindWebPush: push.NewWebPush(key, testVAPIDSubject, true, 5*time.Second)},
		Poll:        50 * time.Millisecond,
		Backoff:     50 * time.Millisecond,
		MaxBackoff:  200 * time.Millisecond,
		MaxAttempts: maxAttempts,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return push.NewWorker(outbox, cfg, log)
}

// run runs a worker until the test ends (or stop is called); stop waits for it.
func run(t *testing.T, w *push.Worker) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// pushEndpoint is a push service of the test's own: it checks the VAPID
// Authorization of every request (an ES256 JWT whose aud is the endpoint's
// origin, signed by the server's key), decrypts the body with the
// subscription's private key (RFC 8291, aes128gcm) and records the notice.
type pushEndpoint struct {
	t     *testing.T
	srv   *httptest.Server
	vapid string // the server's VAPID public key, base64url
	delay time.Duration

	mu       sync.Mutex
	subs     map[string]*subscription
	answers  map[string][]int // statuses to answer next, per subscription; then 201
	requests map[string]int   // requests seen, per subscription
	got      chan received
}

type subscription struct {
	name string
	priv *ecdh.PrivateKey
	auth []byte
}

type received struct {
	Sub     string
	Notice  map[string]any
	Urgency string
	TTL     int
}

func newPushEndpoint(t *testing.T, vapidPublicKey string) *pushEndpoint {
	e := &pushEndpoint{t: t, vapid: vapidPublicKey, subs: map[string]*subscription{},
		answers: map[string][]int{}, requests: map[string]int{}, got: make(chan received, 1000)}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

// subscribe makes a browser-side subscription: its endpoint URL and keys as
// PushSubscription.toJSON() gives them.
func (e *pushEndpoint) subscribe(name string) map[string]any {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	e.mu.Lock()
	e.subs[name] = &subscription{name: name, priv: priv, auth: auth}
	e.mu.Unlock()
	b64 := base64.RawURLEncoding.EncodeToString
	return map[string]any{
		"endpoint":       e.srv.URL + "/push/" + name,
		"expirationTime": nil,
		"keys":           map[string]any{"p256dh": b64(priv.PublicKey().Bytes()), "auth": b64(auth)},
	}
}

// answer queues statuses for the next requests to a subscription.
func (e *pushEndpoint) answer(name string, statuses ...int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.answers[name] = append(e.answers[name], statuses...)
}

func (e *pushEndpoint) requestsTo(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests[name]
}

func (e *pushEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/push/")
	e.mu.Lock()
	sub := e.subs[name]
	e.requests[name]++
	status := http.StatusCreated
	if q := e.answers[name]; len(q) > 0 {
		status, e.answers[name] = q[0], q[1:]
	}
	e.mu.Unlock()
	if e.delay > 0 {
		time.Sleep(e.delay)
	}
	if sub == nil {
		http.Error(w, "no such subscription", http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(r.Body)
	notice, err := e.check(r, sub, body)
	if err != nil {
		e.t.Errorf("push endpoint: %s: %v", name, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if status == http.StatusCreated {
		ttl, _ := strconv.Atoi(r.Header.Get("TTL"))
		e.got <- received{Sub: name, Notice: notice, Urgency: r.Header.Get("Urgency"), TTL: ttl}
	}
	w.WriteHeader(status)
}

// check verifies the request as a push service does and returns the notice.
func (e *pushEndpoint) check(r *http.Request, sub *subscription, body []byte) (map[string]any, error) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Encoding") != "aes128gcm" {
		return nil, fmt.Errorf("want POST with Content-Encoding aes128gcm, got %s %q", r.Method, r.Header.Get("Content-Encoding"))
	}
	if ttl, err := strconv.Atoi(r.Header.Get("TTL")); err != nil || ttl <= 0 {
		return nil, fmt.Errorf("TTL %q is not a positive number of seconds", r.Header.Get("TTL"))
	}
	// RFC 8292: Authorization: vapid t=<JWT>, k=<public key>.
	authz, ok := strings.CutPrefix(r.Header.Get("Authorization"), "vapid ")
	if !ok {
		return nil, fmt.Errorf("authorization %q is not a vapid one", r.Header.Get("Authorization"))
	}
	var token, k string
	for _, part := range strings.Split(authz, ",") {
		kv := strings.SplitN(strings.TrimSpace(part), "=", 2)
		if len(kv) == 2 && kv[0] == "t" {
			token = kv[1]
		} else if len(kv) == 2 && kv[0] == "k" {
			k = kv[1]
		}
	}
	if k != e.vapid {
		return nil, fmt.Errorf("vapid k=%q is not the server's public key %q", k, e.vapid)
	}
	raw, err := base64.RawURLEncoding.DecodeString(k)
	if err != nil {
		return nil, err
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, err
	}
	origin := "http://" + r.Host
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(origin), jwt.WithExpirationRequired())
	if err != nil {
		return nil, fmt.Errorf("vapid JWT: %w", err)
	}
	if claims["sub"] != testVAPIDSubject {
		return nil, fmt.Errorf("vapid sub %v, want %s", claims["sub"], testVAPIDSubject)
	}
	if exp, _ := claims.GetExpirationTime(); exp == nil || exp.After(time.Now().Add(24*time.Hour)) {
		return nil, fmt.Errorf("vapid exp %v is more than 24 hours away", exp)
	}
	plain, err := decryptAES128GCM(sub, body)
	if err != nil {
		return nil, err
	}
	var notice map[string]any
	if err := json.Unmarshal(plain, &notice); err != nil {
		return nil, fmt.Errorf("payload is not JSON: %w: %q", err, plain)
	}
	return notice, nil
}

// decryptAES128GCM undoes RFC 8291 with the user agent's keys: the header
// (salt, record size, the sender's ephemeral public key), an ECDH secret mixed
// with the auth secret, then the content encryption key and nonce (RFC 8188).
func decryptAES128GCM(sub *subscription, body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("body shorter than the aes128gcm header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 || len(body) < 21+idlen {
		return nil, fmt.Errorf("keyid of %d bytes, want the sender's 65-byte public key", idlen)
	}
	keyID, ciphertext := body[21:21+idlen], body[21+idlen:]
	if uint32(len(ciphertext)) > rs {
		return nil, fmt.Errorf("%d bytes of ciphertext in one record of at most %d", len(ciphertext), rs)
	}
	senderPub, err := ecdh.P256().NewPublicKey(keyID)
	if err != nil {
		return nil, err
	}
	secret, err := sub.priv.ECDH(senderPub)
	if err != nil {
		return nil, err
	}
	prkKey, err := hkdf.Extract(sha256.New, secret, sub.auth)
	if err != nil {
		return nil, err
	}
	keyInfo := "WebPush: info\x00" + string(sub.priv.PublicKey().Bytes()) + string(keyID)
	ikm, err := hkdf.Expand(sha256.New, prkKey, keyInfo, 32)
	if err != nil {
		return nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, ciphertext, nil)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	// The last record: data, the delimiter 0x02, then zero padding.
	end := len(plain) - 1
	for end >= 0 && plain[end] == 0 {
		end--
	}
	if end < 0 || plain[end] != 2 {
		return nil, errors.New("no last-record delimiter")
	}
	return plain[:end], nil
}

// next waits for the next delivered push.
func (e *pushEndpoint) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-e.got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no push arrived within 10 s")
		return received{}
	}
}

// quiet fails if a push arrives within d.
func (e *pushEndpoint) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-e.got:
		t.Fatalf("unexpected push to %s: %v", r.Sub, r.Notice)
	case <-time.After(d):
	}
}

// testSubscription is a well-formed subscription on a public push service host,
// with a fresh endpoint, for tests that never send to it.
func testSubscription() map[string]any {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	b64 := base64.RawURLEncoding.EncodeToString
	return map[string]any{
		"endpoint": "https://push.example.com/send/" + b64(auth),
		"keys":     map[string]any{"p256dh": b64(priv.PublicKey().Bytes()), "auth": b64(auth)},
	}
}
