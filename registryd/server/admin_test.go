package server

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/engine"
)

// TestAdminAPI runs gc, fsck and lifecycle preview/apply through the
// daemon's admin API on a live store.
func TestAdminAPI(t *testing.T) {
	s, _ := newTestHandler(t, Config{})
	h := s.Handler()
	const mt = "application/vnd.oci.image.manifest.v1+json"
	push := func(tag, layer string) {
		cfg := pushBlob(t, h, "r", []byte(`{"tag":"`+tag+`"}`))
		l := pushBlob(t, h, "r", []byte(layer))
		m := imageManifest(cfg, l, len(`{"tag":"`+tag+`"}`), len(layer), nil, "")
		require.Equal(t, 201, do(h, http.MethodPut, "/v2/r/manifests/"+tag, m, map[string]string{"Content-Type": mt}).Code)
	}
	push("v1", "layer one")
	push("v2", "layer two")

	// Lifecycle: keep one image tagged v*.
	policy := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	rec := do(h, http.MethodPost, "/admin/v1/lifecycle/preview?repository=r", []byte(policy), nil)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var preview []engine.Expiry
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &preview))
	require.Len(t, preview, 1)
	assert.Equal(t, []string{"v1"}, preview[0].Tags)
	require.Equal(t, 200, do(h, http.MethodGet, "/v2/r/manifests/v1", nil, map[string]string{"Accept": mt}).Code, "preview changes nothing")

	rec = do(h, http.MethodPost, "/admin/v1/lifecycle/apply?repository=r", []byte(policy), nil)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	requireOCIError(t, do(h, http.MethodGet, "/v2/r/manifests/v1", nil, map[string]string{"Accept": mt}), 404, "MANIFEST_UNKNOWN")

	// A dry run lists the expired image's blobs, the real run sweeps them.
	rec = do(h, http.MethodPost, "/admin/v1/gc?dry-run=true&grace=0s", nil, nil)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var r engine.GCReport
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &r))
	assert.True(t, r.DryRun)
	assert.Len(t, r.Plan.Blobs, 2)
	rec = do(h, http.MethodPost, "/admin/v1/gc?grace=0s", nil, nil)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &r))
	assert.Equal(t, 2, r.BlobsSwept)

	rec = do(h, http.MethodPost, "/admin/v1/fsck?verify=true", nil, nil)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var f engine.FsckReport
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &f))
	assert.True(t, f.Clean(), "%+v", f.Corrupt)

	requireOCIError(t, do(h, http.MethodPost, "/admin/v1/lifecycle/preview?repository=r", []byte(`{"rules":[]}`), nil), 400, "UNSUPPORTED")
	requireOCIError(t, do(h, http.MethodPost, "/admin/v1/nope", nil, nil), 404, "NOT_FOUND")
	requireOCIError(t, do(h, http.MethodGet, "/admin/v1/gc", nil, nil), 405, "UNSUPPORTED")
	requireOCIError(t, do(h, http.MethodPost, "/admin/v1/gc?grace=soon", nil, nil), 400, "UNSUPPORTED")
}

// TestAdminNeedsCredentials: anonymous pull does not open the admin API.
func TestAdminNeedsCredentials(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "htpasswd")
	require.NoError(t, os.WriteFile(file, []byte("admin:"+string(hash)+"\n"), 0o600))
	s, _ := newTestHandler(t, Config{HtpasswdFile: file, AnonymousPull: true})
	h := s.Handler()
	requireOCIError(t, do(h, http.MethodPost, "/admin/v1/gc?dry-run=1", nil, nil), 401, "UNAUTHORIZED")
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:pw"))
	rec := do(h, http.MethodPost, "/admin/v1/gc?dry-run=1", nil, map[string]string{"Authorization": auth})
	require.Equal(t, 200, rec.Code, rec.Body.String())
}
