package httpapi

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/repcue/repcue/internal/config"
)

func requestFrom(peer string, headers ...string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.SetRequestURI("/livez")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(peer)), nil)
	return &ctx
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	a := &API{cfg: config.Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"),
	}}}
	for _, tc := range []struct {
		name    string
		peer    string
		headers []string
		want    string
	}{
		{"untrusted peer, no header", "203.0.113.5:1234", nil, "203.0.113.5"},
		{"untrusted peer's header is ignored", "203.0.113.5:1234", []string{"X-Forwarded-For", "198.51.100.1"}, "203.0.113.5"},
		{"trusted peer, no header", "10.0.0.1:1234", nil, "10.0.0.1"},
		{"trusted peer names the client", "10.0.0.1:1234", []string{"X-Forwarded-For", "198.51.100.1"}, "198.51.100.1"},
		{"the client's own entries are skipped", "10.0.0.1:1234", []string{"X-Forwarded-For", "1.1.1.1, 2.2.2.2, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops are skipped", "10.0.0.1:1234", []string{"X-Forwarded-For", "1.1.1.1, 198.51.100.1, 10.9.9.9, 10.8.8.8"}, "198.51.100.1"},
		{"several header lines read in order", "10.0.0.1:1234", []string{"X-Forwarded-For", "1.1.1.1", "X-Forwarded-For", "198.51.100.1, 10.2.2.2"}, "198.51.100.1"},
		{"garbage stops the walk at the last vouched address", "10.0.0.1:1234", []string{"X-Forwarded-For", "198.51.100.1, unknown"}, "10.0.0.1"},
		{"garbage further left is never reached", "10.0.0.1:1234", []string{"X-Forwarded-For", "evil, 198.51.100.1"}, "198.51.100.1"},
		{"every hop trusted: the left-most", "10.0.0.1:1234", []string{"X-Forwarded-For", "10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"hop with a port", "10.0.0.1:1234", []string{"X-Forwarded-For", "198.51.100.1:5555"}, "198.51.100.1"},
		{"IPv6 hop with a port", "10.0.0.1:1234", []string{"X-Forwarded-For", "[2001:db8::1]:5555"}, "2001:db8::1"},
		{"IPv4-mapped hop", "10.0.0.1:1234", []string{"X-Forwarded-For", "::ffff:198.51.100.1"}, "198.51.100.1"},
		{"IPv4-mapped trusted peer", "[::ffff:10.0.0.1]:1234", []string{"X-Forwarded-For", "198.51.100.1"}, "198.51.100.1"},
		{"IPv6 trusted peer", "[fd00::1]:1234", []string{"X-Forwarded-For", "2001:db8::7"}, "2001:db8::7"},
		{"zoned hop refused", "10.0.0.1:1234", []string{"X-Forwarded-For", "fe80::1%eth0"}, "10.0.0.1"},
	} {
		if got := a.clientIPOf(requestFrom(tc.peer, tc.headers...)).String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestClientKeyIsPer64ForIPv6(t *testing.T) {
	t.Parallel()
	a := &API{cfg: config.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	app := fiber.New()
	key := func(xff string) string {
		fctx := requestFrom("10.0.0.1:1", "X-Forwarded-For", xff)
		c := app.AcquireCtx(fctx)
		defer app.ReleaseCtx(c)
		return a.clientKey(c)
	}
	if k1, k2 := key("2001:db8:1:2::1"), key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"); k1 != k2 || k1 != "2001:db8:1:2::/64" {
		t.Errorf("one /64: %s and %s", k1, k2)
	}
	if k1, k2 := key("2001:db8:1:2::1"), key("2001:db8:1:3::1"); k1 == k2 {
		t.Errorf("two /64s share the key %s", k1)
	}
	if k1, k2 := key("198.51.100.1"), key("198.51.100.2"); k1 == k2 || k1 != "198.51.100.1" {
		t.Errorf("IPv4: %s and %s", k1, k2)
	}
}

func TestForwardedHTTPS(t *testing.T) {
	t.Parallel()
	a := &API{cfg: config.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	for _, tc := range []struct {
		peer    string
		headers []string
		want    bool
	}{
		{"10.0.0.1:1", []string{"X-Forwarded-Proto", "https"}, true},
		{"10.0.0.1:1", []string{"X-Forwarded-Proto", "http, HTTPS"}, true},
		{"10.0.0.1:1", []string{"X-Forwarded-Proto", "https, http"}, false},
		{"10.0.0.1:1", []string{"X-Forwarded-Proto", "https", "X-Forwarded-Proto", "http"}, false},
		{"10.0.0.1:1", nil, false},
		{"203.0.113.1:1", []string{"X-Forwarded-Proto", "https"}, false},
	} {
		if got := a.forwardedHTTPS(requestFrom(tc.peer, tc.headers...)); got != tc.want {
			t.Errorf("%s %v: %v, want %v", tc.peer, tc.headers, got, tc.want)
		}
	}
}
