package httpapi_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/repcue/repcue/internal/httpapi"
)

// Compressed-body bombs, each inflating to 100 MiB of zeros, built cheaply
// (compressing 100 MiB under the race detector takes a minute).
var (
	bombsOnce                      sync.Once
	gzipBomb, zlibBomb, brotliBomb []byte
	doubleGzipBomb                 []byte
)

const bombBytes = 100 << 20

// brotliBombHex is fasthttp.AppendBrotliBytesLevel(nil, make([]byte, 100<<20), 11).
const brotliBombHex = "cbffff3ff82700e2b14020f7fe8fffff7ff04f00c4611180eefd1fffffffe09f0088c30200ddfb3ffeffffc13f" +
	"0110870500baf77ffcffff837f02200e0b0074effff8ffff07ff04401c1600e8defff1ffff0ffe0980382c00d0bdffe3ffff" +
	"1ffc1300715800a07bffc7ffff3ff82700e2b00040f7fe8fffff7ff04f00c4610180eefd1fffffffe09f0088c30200ddfb3f" +
	"feffffc13f0110870500baf77ff9ffff837f02200e0b0074ef7f00"

func bombs(t *testing.T) {
	t.Helper()
	bombsOnce.Do(func() {
		const chunk = 1 << 20
		zeros := make([]byte, chunk)
		// gzip: a body may hold many members, decoded one after the other.
		member := gzipped(zeros)
		gzipBomb = bytes.Repeat(member, bombBytes/chunk)
		doubleGzipBomb = gzipped(gzipBomb)
		// zlib (HTTP's "deflate"): the part of a deflate stream between two
		// flushes that encodes a chunk of zeros refers only to zeros before it,
		// so it can be repeated.
		var raw bytes.Buffer
		fw, _ := flate.NewWriter(&raw, flate.BestCompression)
		_, _ = fw.Write(zeros)
		_ = fw.Flush()
		head := raw.Len()
		_, _ = fw.Write(zeros)
		_ = fw.Flush()
		segment := bytes.Clone(raw.Bytes()[head:])
		_ = fw.Close()
		tail := raw.Bytes()[head+len(segment):]
		zlibBomb = append([]byte{0x78, 0xda}, raw.Bytes()[:head]...)
		zlibBomb = append(zlibBomb, bytes.Repeat(segment, bombBytes/chunk-1)...)
		zlibBomb = append(zlibBomb, tail...)
		// Adler-32 of n zeros: a = 1, b = n mod 65521.
		zlibBomb = binary.BigEndian.AppendUint32(zlibBomb, uint32(bombBytes%65521)<<16|1)
		var err error
		if brotliBomb, err = hex.DecodeString(brotliBombHex); err != nil {
			t.Fatal(err)
		}
	})
}

func gzipped[T string | []byte](s T) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

// allocated reports the bytes the process allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A compressed body is inflated to at most 1 MiB whatever it claims, and a
// coding the server does not decode is refused; a small bomb can never cost
// the server more than a few MiB. Not parallel: it measures the process's
// allocations.
func TestCompressedBodiesAreBounded(t *testing.T) {
	bombs(t)
	h := newHarness(t)
	login := func(encoding string, body []byte) response {
		return h.do(request{Method: "POST", Path: "/v1/auth/login", Body: body,
			Header: map[string]string{"Content-Encoding": encoding}})
	}
	const budget = 16 << 20 // far below what any bomb inflates to
	// The first answer loads api/openapi.yaml for the contract check: not
	// the request's cost, so it is paid before anything is measured.
	expect(t, h.get("/livez", ""), 200)
	for _, tc := range []struct {
		name, encoding string
		body           []byte
		status         int
		code           string
	}{
		{"gzip bomb", "gzip", gzipBomb, 413, "payload_too_large"},
		{"x-gzip bomb", "x-gzip", gzipBomb, 413, "payload_too_large"},
		{"deflate bomb", "deflate", zlibBomb, 413, "payload_too_large"},
		{"br bomb", "br", brotliBomb, 413, "payload_too_large"},
		{"gzip, gzip", "gzip, gzip", doubleGzipBomb, 415, "unsupported_media_type"},
		{"identity, gzip bomb", "identity, GZIP", gzipBomb, 413, "payload_too_large"},
		{"unknown coding", "zstd", gzipBomb, 415, "unsupported_media_type"},
		{"compress", "compress", []byte("x"), 415, "unsupported_media_type"},
		{"not gzip at all", "gzip", []byte("{\"email\":\"a@b.c\"}"), 400, "invalid"},
	} {
		var r response
		n := allocated(func() { r = login(tc.encoding, tc.body) })
		expect(t, r, tc.status, tc.code)
		if n > budget {
			t.Errorf("%s: the request allocated %d MiB", tc.name, n>>20)
		}
		t.Logf("%s (%d bytes sent): %d, %.1f MiB allocated", tc.name, len(tc.body), r.Status, float64(n)/(1<<20))
	}

	// Two Content-Encoding lines are a chain too.
	req := httptest.NewRequest("POST", "/v1/auth/login", bytes.NewReader(gzipped(gzipped(`{}`))))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("Content-Encoding", "gzip")
	req.Header.Add("Content-Encoding", "gzip")
	resp, err := h.app.Test(req, 30_000)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Fatalf("two Content-Encoding: gzip lines: %d, want 415", resp.StatusCode)
	}

	// What inflates within the limit is decoded and read as usual.
	ok := `{"email":"nobody@example.com","password":"wrong password!"}`
	expect(t, login("gzip", gzipped(ok)), 401, "unauthorized")
	expect(t, login("identity", []byte(ok)), 401, "unauthorized")
	big := fmt.Sprintf(`{"email":"nobody@example.com","password":"%s"}`, strings.Repeat("x", httpapi.MaxBodyBytes))
	expect(t, login("gzip", gzipped(big)), 413, "payload_too_large")

	// Every route, the live upgrade included, goes through the same gate.
	var a account = h.register("athlete")
	for _, route := range h.app.GetRoutes(true) {
		if route.Method == "HEAD" {
			continue // Fiber adds HEAD to every GET: the same middleware, already covered
		}
		path := strings.NewReplacer(":slug", "hip-thrust", ":id", "00000000-0000-4000-8000-000000000000",
			":athlete_id", "00000000-0000-4000-8000-000000000000").Replace(route.Path)
		hdr := map[string]string{"Content-Encoding": "gzip"}
		if route.Path == "/v1/live" {
			hdr["Connection"], hdr["Upgrade"] = "Upgrade", "websocket"
			hdr["Sec-WebSocket-Version"], hdr["Sec-WebSocket-Key"] = "13", "dGhlIHNhbXBsZSBub25jZQ=="
		}
		var r response
		n := allocated(func() {
			r = h.do(request{Method: route.Method, Path: path, Token: a.Access, Body: gzipBomb, Header: hdr})
		})
		expect(t, r, 413, "payload_too_large")
		if n > budget {
			t.Errorf("%s %s: the request allocated %d MiB", route.Method, path, n>>20)
		}
		hdr["Content-Encoding"] = "snappy"
		r = h.do(request{Method: route.Method, Path: path, Token: a.Access, Body: `{}`, Header: hdr})
		if r.Status != 415 {
			t.Errorf("%s %s with Content-Encoding: snappy: %d, want 415", route.Method, path, r.Status)
		}
	}
}

// The reproduction of the outside review: requests alternating GET and an
// unknown method on one keep-alive connection, where fasthttp reuses the same
// buffers. Labels kept from those buffers turned into GETB, POS, … and /metrics
// then failed. Every label must come from a fixed set.
func TestMetricsLabelsAreFixedStrings(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	addr := h.listen()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	roundTrip := func(method, path, body string) *http.Response {
		t.Helper()
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", method, path, len(body), body)
		req, _ := http.NewRequest(method, path, nil)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for i := range 80 {
		if i%2 == 0 {
			if r := roundTrip("GET", "/livez", ""); r.StatusCode != 200 {
				t.Fatalf("GET /livez: %d", r.StatusCode)
			}
			continue
		}
		r := roundTrip("ZZZ", "/livez", "")
		if r.StatusCode != 400 || r.Header.Get("Content-Type") != "application/problem+json" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("ZZZ /livez: %d %v", r.StatusCode, r.Header)
		}
	}
	for i := range 10 { // other methods and lengths through the same buffers
		roundTrip("POST", "/v1/auth/login", `{"email":1}`)
		roundTrip("PATCH", "/v1/admin/cues/x", "")
		roundTrip("GET", fmt.Sprintf("/no/such/path/%d", i), "")
		roundTrip("PROPFIND", "/v1/me", "")
	}

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d: %s", resp.StatusCode, body)
	}
	methods := map[string]bool{"OTHER": true}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"} {
		methods[m] = true
	}
	routes := map[string]bool{"none": true}
	for _, r := range h.app.GetRoutes(true) {
		routes[r.Path] = true
	}
	label := regexp.MustCompile(`^repcue_http_request(?:s_total|_seconds_count)\{method="([^"]*)",route="([^"]*)"`)
	counts := map[string]string{}
	for _, line := range strings.Split(string(body), "\n") {
		m := label.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if !methods[m[1]] || !routes[m[2]] {
			t.Errorf("a label outside the fixed sets: %s", line)
		}
		if strings.HasPrefix(line, "repcue_http_requests_total") {
			i := strings.LastIndexByte(line, ' ')
			counts[line[len("repcue_http_requests_total"):i]] = line[i+1:]
		}
	}
	for series, want := range map[string]string{
		`{method="GET",route="/livez",status="200"}`:          "40",
		`{method="OTHER",route="none",status="400"}`:          "50",
		`{method="GET",route="none",status="404"}`:            "10",
		`{method="POST",route="/v1/auth/login",status="400"}`: "10",
	} {
		if counts[series] != want {
			t.Errorf("%s counted %q, want %s (all: %v)", series, counts[series], want, counts)
		}
	}
}

// With REPCUE_METRICS_ADDR set, the API's listener has no /metrics; the
// separate listener serves it (and nothing else).
func TestMetricsOnTheirOwnListener(t *testing.T) {
	t.Setenv("REPCUE_METRICS_ADDR", "127.0.0.1:19999")
	h := newHarness(t)
	resp, err := h.app.Test(httptest.NewRequest("GET", "/metrics", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("/metrics on the main listener: %d, want 404", resp.StatusCode)
	}
	for _, r := range h.app.GetRoutes(true) {
		if r.Path == "/metrics" {
			t.Fatal("/metrics is registered on the main app")
		}
	}
	reg := prometheus.NewRegistry()
	probe := prometheus.NewCounter(prometheus.CounterOpts{Name: "repcue_probe_total", Help: "A probe."})
	reg.MustRegister(probe)
	probe.Inc()
	srv := httptest.NewServer(httpapi.MetricsHandler(reg))
	defer srv.Close()
	resp, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "repcue_probe_total 1") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("/metrics on its listener: %d %v\n%.1500s", resp.StatusCode, resp.Header, body)
	}
	if resp, err := http.Get(srv.URL + "/livez"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("the metrics listener serves other paths: %v %v", resp, err)
	}
}

// failLogins sends n wrong sign-ins, each for another (unknown) account, as the
// client behind the given X-Forwarded-For, and returns the last status.
func failLogins(h *harness, n int, xff func(i int) string) int {
	h.t.Helper()
	status := 0
	for i := range n {
		r := h.do(request{Method: "POST", Path: "/v1/auth/login", Header: map[string]string{"X-Forwarded-For": xff(i)},
			Body: map[string]any{"email": fmt.Sprintf("nobody-%d-%d@example.com", i, loginSeq.Add(1)), "password": "wrong password!"}})
		status = r.Status
		if r.Status != 401 && r.Status != 429 {
			h.t.Fatalf("login: %d %s", r.Status, r.Body)
		}
	}
	return status
}

var loginSeq atomic.Int64

// addressFailures is more than the per-address login throttle lets through
// (20 free failures), whatever the exact count.
const addressFailures = 23

// Behind a trusted proxy each client is throttled on its own address; the
// addresses a client writes into X-Forwarded-For itself are not believed; IPv6
// clients are throttled per /64.
func TestLoginThrottleKeysOnTheClientAddress(t *testing.T) {
	// app.Test connections come from 0.0.0.0: that is the proxy here.
	t.Setenv("REPCUE_TRUSTED_PROXIES", "0.0.0.0/32, 10.0.0.0/8")
	h := newHarness(t)
	fixed := func(s string) func(int) string { return func(int) string { return s } }

	// One client behind the proxy, failing on many accounts, ends up waiting.
	if s := failLogins(h, addressFailures, fixed("203.0.113.1")); s != 429 {
		t.Fatalf("%d failures from one client: last %d, want 429", addressFailures, s)
	}
	// Another client behind the same proxy is not locked out with it.
	if s := failLogins(h, 1, fixed("203.0.113.2")); s != 401 {
		t.Fatalf("another client behind the proxy: %d, want 401", s)
	}
	// A client prepending addresses of its own is still the address the proxy
	// saw; a second trusted proxy in the chain is skipped.
	if s := failLogins(h, 1, fixed("198.51.100.77, 203.0.113.1")); s != 429 {
		t.Fatalf("spoofed prefix: %d, want 429", s)
	}
	if s := failLogins(h, 1, fixed("203.0.113.1, 10.1.2.3")); s != 429 {
		t.Fatalf("through two trusted proxies: %d, want 429", s)
	}

	// IPv6: addresses within one /64 are one client; the next /64 is another.
	if s := failLogins(h, addressFailures, func(i int) string { return fmt.Sprintf("2001:db8:1:2::%x", i+1) }); s != 429 {
		t.Fatalf("%d failures from one /64: last %d, want 429", addressFailures, s)
	}
	if s := failLogins(h, 1, fixed("2001:db8:1:2:ffff:ffff:ffff:ffff")); s != 429 {
		t.Fatalf("another address of the same /64: %d, want 429", s)
	}
	if s := failLogins(h, 1, fixed("2001:db8:1:3::1")); s != 401 {
		t.Fatalf("the next /64: %d, want 401", s)
	}
}

// A peer that is not a trusted proxy gains nothing by claiming addresses.
func TestUntrustedForwardedForIsIgnored(t *testing.T) {
	t.Setenv("REPCUE_TRUSTED_PROXIES", "10.0.0.0/8") // not the peer 0.0.0.0
	h := newHarness(t)
	if s := failLogins(h, addressFailures, func(i int) string { return fmt.Sprintf("203.0.113.%d", i+1) }); s != 429 {
		t.Fatalf("%d failures, each claiming another address: last %d, want 429", addressFailures, s)
	}
}

// Guessing invite codes from many athlete accounts at one address meets the
// per-address limit; an athlete elsewhere is not slowed down.
func TestInviteGuessesAreThrottledPerAddress(t *testing.T) {
	t.Setenv("REPCUE_TRUSTED_PROXIES", "0.0.0.0/32")
	h := newHarness(t)
	guess := func(a account, xff string, i int) response {
		return h.do(request{Method: "POST", Path: "/v1/athlete/coach-links", Token: a.Access,
			Header: map[string]string{"X-Forwarded-For": xff}, Body: map[string]any{"code": fmt.Sprintf("ZZZZZZ%02d", i%100)}})
	}
	// 5 accounts × 8 wrong codes: each account stays under its own limit (10
	// free), the address (30 free) does not.
	refused := 0
	var a account
	for i := range 40 {
		if i%8 == 0 {
			a = h.register("athlete") // a fresh account for each 8 guesses
		}
		r := guess(a, "198.51.100.7", i)
		switch r.Status {
		case 404:
			if refused > 0 {
				t.Fatalf("guess %d answered 404 after a 429", i)
			}
		case 429:
			refused++
		default:
			t.Fatalf("guess %d: %d %s", i, r.Status, r.Body)
		}
	}
	if refused < 5 {
		t.Fatalf("40 wrong codes from one address: %d refused, want the last ones refused", refused)
	}
	expect(t, guess(h.register("athlete"), "198.51.100.7", 99), 429, "too_many_requests")
	expect(t, guess(h.register("athlete"), "198.51.100.8", 99), 404, "not_found")
}

// An Origin is compared in one normalised form by the gate and the upgrader
// alike; a handshake the upgrader refuses is the client's error (4xx), never a
// 500, and spends no ticket.
func TestLiveOriginIsNormalisedOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	addr := h.listen()
	a := h.register("coach")
	for _, origin := range []string{
		"https://coach.example.com",
		"https://coach.example.com/",
		"HTTPS://Coach.Example.COM:443",
	} {
		c, resp, err := dial(t, addr, a.Access, "", origin)
		if err != nil {
			t.Fatalf("Origin %q: %v %v", origin, err, resp)
		}
		c.conn.Close()
	}
	for _, origin := range []string{"https://evil.example.com", "https://coach.example.com:8443", "null", "https://coach.example.com/x"} {
		if _, resp, err := dial(t, addr, a.Access, "", origin); err == nil || resp == nil || resp.StatusCode != 403 {
			t.Errorf("Origin %q: %v %v, want 403", origin, err, resp)
		}
	}

	ticket := h.post("/v1/live/tickets", a.Access, nil).json(t)["ticket"].(string)
	raw := func(extra string) int {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /v1/live?ticket=%s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n%s\r\n", ticket, extra)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for name, extra := range map[string]string{
		"no key":      "Sec-WebSocket-Version: 13\r\n",
		"blank key":   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key:  \r\n",
		"version 8":   "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
		"no version":  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
		"both absent": "",
	} {
		if s := raw(extra); s != 400 {
			t.Errorf("%s: %d, want 400", name, s)
		}
	}
	if _, resp, err := dial(t, addr, "", ticket, "https://coach.example.com/"); err != nil {
		t.Fatalf("the ticket was spent by refused handshakes: %v %v", err, resp)
	}
	if strings.Contains(h.logs.String(), "level=ERROR") {
		t.Fatalf("refused handshakes logged errors:\n%s", h.logs.String())
	}
}

// Every response says nosniff, also those Fiber makes before any route runs;
// HSTS only when the request came over HTTPS.
func TestSecurityHeaders(t *testing.T) {
	t.Setenv("REPCUE_TRUSTED_PROXIES", "")
	h := newHarness(t)
	addr := h.listen()
	check := func(name string, header http.Header, hsts bool) {
		t.Helper()
		if header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no X-Content-Type-Options: nosniff (%v)", name, header)
		}
		if got := header.Get("Strict-Transport-Security") != ""; got != hsts {
			t.Errorf("%s: HSTS %v, want %v", name, got, hsts)
		}
	}
	check("200", h.get("/livez", "").Header, false)
	check("404", h.get("/no/such/path", "").Header, false)
	check("401", h.get("/v1/me", "").Header, false)
	check("400", h.post("/v1/auth/login", "", `{"email":1}`).Header, false)
	check("metrics", h.get("/metrics", "").Header, false)
	check("415", h.do(request{Method: "POST", Path: "/v1/auth/login", Body: `{}`, Header: map[string]string{"Content-Encoding": "zz"}}).Header, false)
	check("untrusted X-Forwarded-Proto", h.do(request{Method: "GET", Path: "/livez", Header: map[string]string{"X-Forwarded-Proto": "https"}}).Header, false)
	resp, err := h.app.Test(httptest.NewRequest("ZZZ", "/livez", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	check("unknown method", resp.Header, false)

	// 413 from Content-Length, refused by fasthttp before any route runs.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 2<<20)
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("oversized Content-Length: %d", resp.StatusCode)
	}
	check("413", resp.Header, false)

	// Behind a trusted proxy that terminated TLS.
	t.Setenv("REPCUE_TRUSTED_PROXIES", "0.0.0.0/32")
	h = newHarness(t)
	xfp := func(v string) http.Header {
		return h.do(request{Method: "GET", Path: "/livez", Header: map[string]string{"X-Forwarded-Proto": v}}).Header
	}
	check("trusted https", xfp("https"), true)
	check("trusted HTTPS", xfp("HTTPS"), true)
	check("trusted http", xfp("http"), false)
	check("trusted, nearest hop http", xfp("https, http"), false)
	check("trusted, 404", h.do(request{Method: "GET", Path: "/nope", Header: map[string]string{"X-Forwarded-Proto": "https"}}).Header, true)
	check("trusted, no header", h.get("/livez", "").Header, false)
}

// Served over TLS directly, every response carries HSTS.
func TestHSTSOverTLS(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ts := httptest.NewUnstartedServer(nil) // only for its certificate
	ts.StartTLS()
	cert := ts.TLS.Certificates[0]
	client := ts.Client()
	ts.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	go h.app.Listener(ln) //nolint:errcheck
	t.Cleanup(func() { _ = h.app.Shutdown() })
	for _, path := range []string{"/livez", "/nope"} {
		resp, err := client.Get("https://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Strict-Transport-Security") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s over TLS: %d %v", path, resp.StatusCode, resp.Header)
		}
	}
}
