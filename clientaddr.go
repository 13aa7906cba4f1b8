package main

import (
	"crypto/sha256"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address a request comes from: the TCP peer, or, when
// the peer is a trusted proxy, the right-most X-Forwarded-For address that
// is not itself trusted. An untrusted peer's X-Forwarded-For is ignored,
// or anyone could pick their own address.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{} // not TCP (a test recorder): one shared key
	}
	addr := peer.Addr().Unmap().WithZone("")
	if len(trusted) == 0 || !inPrefixes(addr, trusted) {
		return addr
	}
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, ok := parseHop(strings.TrimSpace(hops[j]))
			if !ok {
				// Not an address: what the proxy wrote for its client
				// ("unknown", an obfuscated id). Stopping at the proxy
				// would put everyone behind it in one bucket; the text
				// stands for the client instead.
				return unparsedHop(hops[j])
			}
			addr = hop
			if !inPrefixes(addr, trusted) {
				return addr
			}
		}
	}
	return addr // every hop trusted: the left-most one
}

// parseHop reads one X-Forwarded-For hop: an address, or an address and
// port as some load balancers write it (192.0.2.1:4711, [2001:db8::1]:4711).
// A zone is dropped: it names a link of the proxy, not the client.
func parseHop(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// unparsedHop stands for a hop that is not an address: an address of the
// discard-only prefix 100::/64 (RFC 6666) whose low 64 bits hash the text,
// so each such client has a bucket of its own that no real address shares.
func unparsedHop(hop string) netip.Addr {
	sum := sha256.Sum256([]byte(strings.TrimSpace(hop)))
	var a [16]byte
	a[0] = 0x01
	copy(a[8:], sum[:8])
	return netip.AddrFrom16(a)
}

// limitKey is the key RATE_LIMIT counts a client address under: an IPv4
// address, or the /64 of an IPv6 one — a single user or network holds a
// whole /64 and picks any address in it.
func limitKey(a netip.Addr) netip.Addr {
	if a.Is6() && !unparsedPrefix.Contains(a) { // a hop's text is one client of its own
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// unparsedPrefix holds the addresses that stand for hops that are not
// addresses (unparsedHop).
var unparsedPrefix = netip.MustParsePrefix("100::/64")

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
