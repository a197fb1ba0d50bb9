package server

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/internal/regtest"
)

// syncBuffer is a log destination for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDispatch: each protocol gets its requests, and the access log and
// the metrics label them by route (and the ECR operation).
func TestDispatch(t *testing.T) {
	var log syncBuffer
	s, _ := newTestHandler(t, Config{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	h := s.Handler()

	rec := regtest.ECRDo(h, "DescribeRepositories", `{}`)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.NotEmpty(t, rec.Header().Get("X-Amzn-RequestId"))
	assert.Empty(t, rec.Header().Get("Docker-Distribution-API-Version"))

	rec = regtest.Do(h, http.MethodGet, "/admin/v1/gc", nil, nil)
	requireOCIError(t, rec, 405, "UNSUPPORTED")
	assert.Equal(t, "registry/2.0", rec.Header().Get("Docker-Distribution-API-Version"))

	requireOCIError(t, regtest.Do(h, http.MethodGet, "/v2/r/tags/list", nil, nil), 404, "NAME_UNKNOWN")
	requireOCIError(t, regtest.Do(h, http.MethodGet, "/elsewhere", nil, nil), 404, "NOT_FOUND")

	rec = regtest.ECRDo(h, "CreateRepository", `{"repositoryName":"team/app"}`)
	require.Equal(t, 200, rec.Code, rec.Body.String())

	lines := log.String()
	for _, want := range []string{
		`repository=team/app route=ecr remote=192.0.2.1:1234 principal=anonymous request_id=` + rec.Header().Get("X-Amzn-RequestId") + " operation=CreateRepository",
		"operation=DescribeRepositories",
		"path=/admin/v1/gc status=405",
		"repository=r route=tags",
		"path=/elsewhere status=404",
	} {
		assert.Contains(t, lines, want)
	}
	metrics := regtest.Do(h, http.MethodGet, "/metrics", nil, nil).Body.String()
	for _, want := range []string{
		`berth_http_requests_total{code="200",method="POST",route="ecr"} 2`,
		`berth_http_requests_total{code="405",method="GET",route="admin"} 1`,
		`berth_http_requests_total{code="404",method="GET",route="tags"} 1`,
		`berth_http_requests_total{code="404",method="GET",route="unknown"} 1`,
		`berth_ecr_calls_total{operation="DescribeRepositories",result="ok"} 1`,
	} {
		assert.Contains(t, metrics, want)
	}
	assert.True(t, strings.Contains(log.String(), "route=metrics"), "the scrape is logged too")
}
