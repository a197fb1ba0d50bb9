package server

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetricsEndpoint(t *testing.T) {
	s, _ := newTestHandler(t, Config{})
	h := s.Handler()
	pushBlob(t, h, "r", []byte("some bytes"))
	do(h, http.MethodGet, "/v2/", nil, nil)
	rec := do(h, http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, 200, rec.Code)
	body := rec.Body.String()
	for _, name := range []string{
		`berth_http_requests_total{code="201",method="POST",route="upload"} 1`,
		`berth_http_requests_total{code="200",method="GET",route="base"} 1`,
		"berth_http_request_duration_seconds_bucket",
		`berth_http_request_bytes_total{route="upload"} 10`,
		"berth_http_response_bytes_total",
		"berth_uploads_in_progress 0",
		"berth_store_blobs 1",
		"berth_store_bytes 10",
		"berth_store_repositories 1",
		"berth_gc_collections_total 0",
	} {
		assert.Contains(t, body, name)
	}
	// Two servers in one process do not collide (own registries).
	s2, _ := newTestHandler(t, Config{DisableMetrics: true})
	requireOCIError(t, do(s2.Handler(), http.MethodGet, "/metrics", nil, nil), 404, "NOT_FOUND")
}
