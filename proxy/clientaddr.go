package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// DefaultTrustedForwarders are the front addresses trusted when
// Config.TrustedForwarders is nil: loopback only, so a front server on the
// same host (the README's nginx, Caddy and Traefik) works with no setting,
// and a client reaching the proxy from anywhere else cannot choose its
// address.
var DefaultTrustedForwarders = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

// ParseTrustedForwarders reads a comma-separated list of CIDR prefixes or
// single addresses ("10.0.0.0/8, 192.0.2.7, ::1"); "none" (or "") trusts
// no forwarder, and returns an empty, non-nil list.
func ParseTrustedForwarders(s string) ([]netip.Prefix, error) {
	out := []netip.Prefix{}
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return out, nil
	}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("trusted forwarder %q: %w", f, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted forwarder %q: want an address or a CIDR prefix", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// forwarders is the list of trusted front addresses.
type forwarders []netip.Prefix

func (f forwarders) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range f {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// PeerAddr is the address a request's connection comes from.
func PeerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// clientIP is the address the request is from, for quotas, eviction and
// client_ip caveats. A request from a trusted forwarder is its client's:
// the right-most X-Forwarded-For address that is not a trusted forwarder
// itself (every hop to its right was added by a front we trust; the ones
// to its left were written by the client and prove nothing). Without
// X-Forwarded-For, X-Real-IP. A hop that does not parse stops the walk at
// the front that passed it on. Any other request is its peer's, whatever
// it claims.
func (p *Proxy) clientIP(r *http.Request) netip.Addr {
	return p.forwarders.client(r)
}

func (f forwarders) client(r *http.Request) netip.Addr {
	peer := PeerAddr(r)
	if !peer.IsValid() || !f.trusted(peer) {
		return peer
	}
	xff := r.Header.Values("X-Forwarded-For")
	if len(xff) == 0 {
		if a, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-Ip"))); err == nil {
			return a.Unmap()
		}
		return peer
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return client
			}
			client = a.Unmap()
			if !f.trusted(client) {
				return client
			}
		}
	}
	return client
}

// ClientPrefix is the unit per-client bounds count in: an IPv4 address, or
// the IPv6 /64 around an address (what one subscriber is usually given).
func ClientPrefix(a netip.Addr) netip.Prefix { return clientKey(a.Unmap()) }

// IsTrustedForwarder reports whether a is one of Config.TrustedForwarders,
// a front server whose connections carry many clients.
func (p *Proxy) IsTrustedForwarder(a netip.Addr) bool { return p.forwarders.trusted(a) }
