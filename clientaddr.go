package main

import (
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
	addr := peer.Addr().Unmap()
	if len(trusted) == 0 || !inPrefixes(addr, trusted) {
		return addr
	}
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return addr // garbage: the last address we can vouch for
			}
			addr = hop.Unmap()
			if !inPrefixes(addr, trusted) {
				return addr
			}
		}
	}
	return addr // every hop trusted: the left-most one
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
