package request

// The client's address behind trusted proxies.

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ErrTrustedProxies reports an unusable list of trusted proxies.
var ErrTrustedProxies = errors.New("request: bad trusted proxies")

// TrustedProxies are the networks of the reverse proxies whose
// X-Forwarded-For header is believed. None: the header is ignored, and the
// client is the TCP peer.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies parses a comma-separated list of CIDR prefixes
// ("10.0.0.0/8,192.0.2.7/32"); a bare address is a /32 (/128) prefix.
// Blank entries are skipped.
func ParseTrustedProxies(list string) (TrustedProxies, error) {
	var out TrustedProxies
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := ParseTrustedProxy(item)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParseTrustedProxy parses one CIDR prefix or address.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w: %q: want a CIDR prefix such as 10.0.0.0/8", ErrTrustedProxies, s)
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("%w: %q: write an IPv4 prefix as IPv4", ErrTrustedProxies, s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: %q: want a CIDR prefix such as 10.0.0.0/8 or an address", ErrTrustedProxies, s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Contains reports whether a is the address of a trusted proxy.
func (t TrustedProxies) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// String is the list as ParseTrustedProxies reads it.
func (t TrustedProxies) String() string {
	s := make([]string, len(t))
	for i, p := range t {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// ClientAddr returns the address of the client that sent r: the TCP
// peer, unless the peer is a trusted proxy; then X-Forwarded-For is read
// from its right end (what the nearest proxy appended) leftwards, past
// every trusted proxy, and the first address that is not one is the
// client. Addresses left of it are whatever the client claims and are
// never believed. When every address is a trusted proxy the leftmost is
// the client; an entry that is no address ends the walk at the last
// address read. The zero Addr when the peer's address does not parse
// (a handler served without a network connection).
func ClientAddr(r *http.Request, trusted TrustedProxies) netip.Addr {
	peer := parseHostPort(r.RemoteAddr)
	if !peer.IsValid() || len(trusted) == 0 || !trusted.Contains(peer) {
		return peer
	}
	values := r.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(values) - 1; i >= 0; i-- {
		entries := strings.Split(values[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			a := parseForwarded(strings.TrimSpace(entries[j]))
			if !a.IsValid() {
				return client
			}
			client = a
			if !trusted.Contains(a) {
				return client
			}
		}
	}
	return client
}

// parseHostPort parses "host:port" or a bare address, as RemoteAddr is.
func parseHostPort(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// parseForwarded parses one X-Forwarded-For entry: an address, with or
// without a port ("192.0.2.1", "192.0.2.1:4711", "[2001:db8::1]:4711",
// "2001:db8::1").
func parseForwarded(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	return netip.Addr{}
}
