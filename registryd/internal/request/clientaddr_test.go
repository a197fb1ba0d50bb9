package request

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClientAddr: the TCP peer is the client unless it is a trusted
// proxy; then X-Forwarded-For is read from the right, past trusted
// proxies, and what the client claims further left is never believed.
func TestClientAddr(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.7,2001:db8::/32")
	require.NoError(t, err)
	tests := []struct {
		name, peer string
		xff        []string
		trusted    TrustedProxies
		want       string
	}{
		{"no proxies configured", "198.51.100.1:4711", []string{"203.0.113.9"}, nil, "198.51.100.1"},
		{"peer not trusted: header ignored", "198.51.100.1:4711", []string{"203.0.113.9"}, trusted, "198.51.100.1"},
		{"one trusted proxy", "10.1.1.1:4711", []string{"203.0.113.9"}, trusted, "203.0.113.9"},
		{"spoofed left of the client", "10.1.1.1:4711", []string{"1.2.3.4, 203.0.113.9"}, trusted, "203.0.113.9"},
		{"a chain of trusted proxies", "10.1.1.1:4711", []string{"1.2.3.4, 203.0.113.9, 192.0.2.7, 10.9.9.9"}, trusted, "203.0.113.9"},
		{"several headers", "10.1.1.1:4711", []string{"1.2.3.4", "203.0.113.9, 10.2.2.2"}, trusted, "203.0.113.9"},
		{"entries with ports", "10.1.1.1:4711", []string{"203.0.113.9:5555, [2001:db8::5]:443"}, trusted, "203.0.113.9"},
		{"every entry trusted: the leftmost", "10.1.1.1:4711", []string{"10.3.3.3, 10.2.2.2"}, trusted, "10.3.3.3"},
		{"no header", "10.1.1.1:4711", nil, trusted, "10.1.1.1"},
		{"garbage ends the walk", "10.1.1.1:4711", []string{"203.0.113.9, garbage, 10.2.2.2"}, trusted, "10.2.2.2"},
		{"IPv6 peer", "[2001:db8::1]:4711", []string{"203.0.113.9"}, trusted, "203.0.113.9"},
		{"IPv4-mapped peer", "[::ffff:10.1.1.1]:4711", []string{"203.0.113.9"}, trusted, "203.0.113.9"},
		{"IPv4-mapped client", "10.1.1.1:4711", []string{"::ffff:203.0.113.9"}, trusted, "203.0.113.9"},
		{"no peer address", "pipe", []string{"203.0.113.9"}, trusted, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			assert.Equal(t, tt.want, ClientAddr(r, tt.trusted).String())
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	p, err := ParseTrustedProxies("10.0.0.0/8,192.0.2.7, ,2001:db8::1,10.1.2.3/8")
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.0/8,192.0.2.7/32,2001:db8::1/128,10.0.0.0/8", p.String())
	for _, bad := range []string{"10.0.0.0/33", "nope", "10.0.0.0/8,x", "::ffff:10.0.0.0/104"} {
		_, err := ParseTrustedProxies(bad)
		require.ErrorIs(t, err, ErrTrustedProxies, bad)
	}
	empty, err := ParseTrustedProxies("")
	require.NoError(t, err)
	assert.Empty(t, empty)
}

func TestNewInfo(t *testing.T) {
	r := httptest.NewRequest("GET", "https://registry.example/v2/", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	r.Header.Set("User-Agent", "crane/0.20")
	info := NewInfo(r, nil)
	assert.Equal(t, "192.0.2.1", info.SourceIP.String())
	assert.True(t, info.SecureTransport)
	assert.Equal(t, "crane/0.20", info.UserAgent)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, info.RequestID)
	assert.NotEqual(t, info.RequestID, NewInfo(r, nil).RequestID)
	assert.Equal(t, "", info.PrincipalName(), "not authenticated yet")
}
