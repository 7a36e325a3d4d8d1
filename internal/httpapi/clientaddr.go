package httpapi

import (
	"bytes"
	"net"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// clientIP is the address of the client, as throttles and logs see it: the
// socket's peer, unless that peer is a trusted proxy (REPCUE_TRUSTED_PROXIES);
// then X-Forwarded-For is read from the right, each hop added by a trusted
// proxy, and the first address not itself trusted is the client. An address a
// client wrote into the header itself (to its left) is never believed.
func (a *API) clientIP(c *fiber.Ctx) netip.Addr {
	return a.clientIPOf(c.Context())
}

func (a *API) clientIPOf(fctx *fasthttp.RequestCtx) netip.Addr {
	addr := peerIP(fctx)
	if !a.trustedProxy(addr) {
		return addr
	}
	hops := forwardedFor(&fctx.Request.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			break // garbage: the last address a trusted proxy vouched for stands
		}
		addr = hop
		if !a.trustedProxy(addr) {
			break
		}
	}
	return addr
}

// clientKey is the key per-address throttles count under: an IPv4 address, or
// the /64 of an IPv6 one (one subscriber usually holds a whole /64).
func (a *API) clientKey(c *fiber.Ctx) string {
	addr := a.clientIP(c)
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().String()
	}
	return addr.String()
}

func (a *API) trustedProxy(addr netip.Addr) bool {
	for _, p := range a.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// peerIP is the socket's remote address, IPv4-mapped forms unmapped.
func peerIP(fctx *fasthttp.RequestCtx) netip.Addr {
	if tcp, ok := fctx.RemoteAddr().(*net.TCPAddr); ok {
		if addr, ok := netip.AddrFromSlice(tcp.IP); ok {
			return addr.Unmap()
		}
	}
	addr, _ := netip.AddrFromSlice(fctx.RemoteIP())
	return addr.Unmap()
}

// forwardedFor lists the X-Forwarded-For hops of every such header, in order.
func forwardedFor(h *fasthttp.RequestHeader) []string {
	var hops []string
	for _, v := range h.PeekAll(fiber.HeaderXForwardedFor) {
		for _, hop := range bytes.Split(v, []byte{','}) {
			hops = append(hops, strings.TrimSpace(string(hop)))
		}
	}
	return hops
}

// parseHop reads one X-Forwarded-For entry: an address, or an address with a
// port as some proxies write it (1.2.3.4:5678, [2001:db8::1]:5678).
func parseHop(s string) (netip.Addr, bool) {
	if addr, err := netip.ParseAddr(s); err == nil && addr.Zone() == "" {
		return addr.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// forwardedHTTPS reports whether the request reached the server over TLS, or
// over TLS to a trusted proxy that says so with X-Forwarded-Proto (the
// right-most value, the one the nearest proxy added).
func (a *API) forwardedHTTPS(fctx *fasthttp.RequestCtx) bool {
	if fctx.IsTLS() {
		return true
	}
	if !a.trustedProxy(peerIP(fctx)) {
		return false
	}
	values := fctx.Request.Header.PeekAll(fiber.HeaderXForwardedProto)
	if len(values) == 0 {
		return false
	}
	last := values[len(values)-1]
	if i := bytes.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(string(last)), "https")
}
