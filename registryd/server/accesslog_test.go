package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAccessLogNamesThePrincipal: over real HTTP, the access log line
// names who the request was authenticated as (nothing when it was not),
// its request ID, and, behind a trusted proxy, the client's address.
func TestAccessLogNamesThePrincipal(t *testing.T) {
	var log syncBuffer
	s, _ := newTestHandler(t, Config{Logger: slog.New(slog.NewTextHandler(&log, nil)),
		HtpasswdFile: writeHtpasswd(t, "alice", "pw"), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)

	get := func(auth, xff string) int {
		req, err := http.NewRequest(http.MethodGet, ts.URL+"/v2/team/app/tags/list", nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := ts.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusNotFound, get(basic("alice", "pw"), "203.0.113.9"))
	assert.Equal(t, http.StatusUnauthorized, get("", ""))
	lines := log.String()
	assert.Contains(t, lines, `status=404`)
	assert.Contains(t, lines, `repository=team/app route=tags remote=127.0.0.1:`)
	assert.Contains(t, lines, `principal=arn:aws:iam::000000000000:user/alice request_id=`)
	assert.Contains(t, lines, `source_ip=203.0.113.9`)
	assert.Contains(t, lines, `principal="" request_id=`, "the refused request names no principal")
	assert.Contains(t, lines, `source_ip=127.0.0.1`)
}
