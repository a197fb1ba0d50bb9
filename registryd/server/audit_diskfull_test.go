package server

import (
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/internal/faultfs"
)

// TestAuditUnwritableRefuses: when the audit log cannot write (its disk
// is full), requests are refused as retryable, 503 with Retry-After (OCI
// UNAVAILABLE, ECR ServerException), the metrics say the log is unhealthy,
// the daemon logs the failure once for the whole streak (not once per
// request), and once space is back requests are served and recorded
// again.
func TestAuditUnwritableRefuses(t *testing.T) {
	// The audit log's own disk fills up (internal/faultfs fails its
	// writes with ENOSPC; the store's other files write on).
	disk := faultfs.New(vfs.Default, 1<<40)
	auditDir := filepath.Join(t.TempDir(), "audit")
	s := newAuditServer(t, &engine.Options{AuditDir: auditDir, AuditMaxBytes: engine.MinAuditMaxBytes, FS: disk})
	resp, _ := s.oci(t, "alice", http.MethodGet, "/v2/", nil, nil)
	require.Equal(t, 200, resp.StatusCode)
	disk.Inject(faultfs.OpWrite|faultfs.OpSync, auditDir, syscall.ENOSPC)

	// Requests go on until the log refuses one.
	refused := 0
	for i := 0; i < 1000 && refused == 0; i++ {
		resp, body := s.oci(t, "alice", http.MethodGet, "/v2/", nil, nil)
		if resp.StatusCode == 200 {
			continue
		}
		require.Equal(t, 503, resp.StatusCode, "%s", body)
		assert.Contains(t, string(body), `"UNAVAILABLE"`)
		assert.Equal(t, "5", resp.Header.Get("Retry-After"))
		refused++
	}
	require.Equal(t, 1, refused, "the log never refused")
	// Still full: every API refuses, pulls and pushes, allowed or denied.
	for _, path := range []string{"/v2/", "/v2/app/tags/list"} {
		resp, _ := s.oci(t, "alice", http.MethodGet, path, nil, nil)
		assert.Equal(t, 503, resp.StatusCode, path)
	}
	resp, _ = s.oci(t, "bob", http.MethodPut, "/v2/app/manifests/v1", []byte("{}"), nil)
	assert.Equal(t, 503, resp.StatusCode)
	resp, body := s.ecr(t, aliceKey, aliceSecret, "DescribeRepositories", `{}`)
	assert.Equal(t, 503, resp.StatusCode)
	assert.Contains(t, string(body), "ServerException")
	assert.Equal(t, "5", resp.Header.Get("Retry-After"))
	resp, _ = s.oci(t, "alice", http.MethodPost, "/admin/v1/gc?dry-run=true", nil, nil)
	assert.Equal(t, 503, resp.StatusCode)

	_, metrics := s.oci(t, "alice", http.MethodGet, "/metrics", nil, nil)
	assert.Contains(t, string(metrics), "berth_audit_healthy 0")
	assert.NotContains(t, string(metrics), "berth_audit_write_errors_total 0")
	assert.Contains(t, string(metrics), "berth_audit_last_error_timestamp_seconds")
	st2 := s.e.AuditStatus()
	assert.False(t, st2.Healthy)
	assert.Contains(t, st2.LastError, "no space left")
	assert.GreaterOrEqual(t, st2.Failed, uint64(6))

	logs := s.log.String()
	assert.Equal(t, 1, strings.Count(logs, "cannot write"), "one line for the streak:\n%s", logs)
	assert.NotContains(t, logs, "request failed")
	assert.NotContains(t, logs, "ECR API call failed")

	// Space again: served and recorded.
	disk.Inject(0, "", nil)
	resp, _ = s.oci(t, "alice", http.MethodGet, "/v2/", nil, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Len(t, s.records(t, resp.Header.Get("X-Request-Id")), 1)
	assert.True(t, s.e.AuditStatus().Healthy)
	assert.Contains(t, s.log.String(), "writes again")
}
