package request

import (
	"net/http/httptest"
	"testing"
)

// FuzzClientAddr: whatever X-Forwarded-For a client sends, the address
// is one of the header's entries or the peer's, and a peer that is no
// trusted proxy is never replaced.
func FuzzClientAddr(f *testing.F) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("10.1.1.1:4711", "203.0.113.9, 10.2.2.2")
	f.Add("198.51.100.1:1", "203.0.113.9")
	f.Add("[::ffff:10.1.1.1]:1", "[2001:db8::1]:443,garbage,,")
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		got := ClientAddr(r, trusted)
		p := parseHostPort(peer)
		if !trusted.Contains(p) && got != p {
			t.Fatalf("untrusted peer %q replaced by %v", peer, got)
		}
	})
}
