package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/engine/enginetest"
)

// The request and ECR call metrics count what they are told, bound the
// method label, and the uploads gauge reads its function at each scrape.
func TestRequestMetrics(t *testing.T) {
	uploads := 3.0
	m := New(func() float64 { return uploads })
	m.ObserveRequest("manifest", http.MethodGet, 200, 0, 512, 3*time.Millisecond)
	m.ObserveRequest("manifest", http.MethodGet, 200, 0, 488, 40*time.Millisecond)
	m.ObserveRequest("upload", http.MethodPatch, 202, 1000, 0, 2*time.Second)
	m.ObserveRequest("base", "PROPFIND", 405, 0, 0, time.Millisecond)
	m.ObserveECRCall("DescribeRepositories", "ok")
	m.ObserveECRCall("DescribeRepositories", "ok")
	m.ObserveECRCall("CreateRepository", "RepositoryAlreadyExistsException")

	want := `
# HELP berth_http_requests_total HTTP requests answered, by route, method and status code.
# TYPE berth_http_requests_total counter
berth_http_requests_total{code="200",method="GET",route="manifest"} 2
berth_http_requests_total{code="202",method="PATCH",route="upload"} 1
berth_http_requests_total{code="405",method="OTHER",route="base"} 1
# HELP berth_http_request_bytes_total Request body bytes received, by route.
# TYPE berth_http_request_bytes_total counter
berth_http_request_bytes_total{route="base"} 0
berth_http_request_bytes_total{route="manifest"} 0
berth_http_request_bytes_total{route="upload"} 1000
# HELP berth_http_response_bytes_total Response body bytes sent, by route.
# TYPE berth_http_response_bytes_total counter
berth_http_response_bytes_total{route="base"} 0
berth_http_response_bytes_total{route="manifest"} 1000
berth_http_response_bytes_total{route="upload"} 0
# HELP berth_ecr_calls_total ECR management API calls answered, by operation and result (ok, or the AWS error type).
# TYPE berth_ecr_calls_total counter
berth_ecr_calls_total{operation="CreateRepository",result="RepositoryAlreadyExistsException"} 1
berth_ecr_calls_total{operation="DescribeRepositories",result="ok"} 2
# HELP berth_uploads_in_progress Blob upload requests (PATCH, PUT, monolithic POST) being received now.
# TYPE berth_uploads_in_progress gauge
berth_uploads_in_progress 3
`
	require.NoError(t, testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"berth_http_requests_total", "berth_http_request_bytes_total", "berth_http_response_bytes_total",
		"berth_ecr_calls_total", "berth_uploads_in_progress"))

	uploads = 0
	require.NoError(t, testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP berth_uploads_in_progress Blob upload requests (PATCH, PUT, monolithic POST) being received now.
# TYPE berth_uploads_in_progress gauge
berth_uploads_in_progress 0
`), "berth_uploads_in_progress"))

}

// The duration histogram puts each request in its buckets.
func TestRequestDurations(t *testing.T) {
	m := New(func() float64 { return 0 })
	m.ObserveRequest("manifest", http.MethodGet, 200, 0, 512, 250*time.Millisecond)
	m.ObserveRequest("manifest", http.MethodGet, 200, 0, 512, 2*time.Second)
	require.NoError(t, testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP berth_http_request_duration_seconds Time to answer an HTTP request, by route and method.
# TYPE berth_http_request_duration_seconds histogram
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="0.001"} 0
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="0.0025"} 0
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="0.005"} 0
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="0.01"} 0
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="0.025"} 0
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="0.05"} 0
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="0.1"} 0
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="0.25"} 1
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="0.5"} 1
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="1"} 1
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="2.5"} 2
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="5"} 2
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="10"} 2
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="30"} 2
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="60"} 2
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="300"} 2
berth_http_request_duration_seconds_bucket{method="GET",route="manifest",le="+Inf"} 2
berth_http_request_duration_seconds_sum{method="GET",route="manifest"} 2.25
berth_http_request_duration_seconds_count{method="GET",route="manifest"} 2
`), "berth_http_request_duration_seconds"))
}

// The handler serves the text format with the Go and process collectors.
func TestHandler(t *testing.T) {
	m := New(func() float64 { return 0 })
	m.ObserveRequest("base", http.MethodGet, 200, 0, 2, time.Millisecond)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, s := range []string{
		`berth_http_requests_total{code="200",method="GET",route="base"} 1`,
		"# TYPE go_goroutines gauge",
		"# TYPE process_resident_memory_bytes gauge",
	} {
		assert.Contains(t, string(body), s)
	}
}

// The store collector exports a real store's totals and its gc and
// lifecycle counters.
func TestStoreCollector(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// The engine caches its totals for half a minute; its clock moves past
	// that before each scrape that must see new figures.
	clk := enginetest.NewClock()
	e, err := engine.Open(dir, &engine.Options{CreateOnPush: true, Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	defer e.Close()
	c := NewStoreCollector(e)
	require.Equal(t, 16, testutil.CollectAndCount(c), "store totals, gc counters, gc and lifecycle runs by result (zero), images archived; before any collection no gc duration or time, before any expiry no lifecycle series, no schedule no next run")

	// Two images, one layer each, in one repository, a minute apart.
	old := pushImage(t, e, "team/app", "v1", bytes.Repeat([]byte("old layer "), 1000))
	clk.Advance(time.Minute)
	pushImage(t, e, "team/app", "v2", bytes.Repeat([]byte("new layer "), 2000))
	clk.Advance(time.Minute)
	logical, stored := storeSizes(t, e, dir)
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(fmt.Sprintf(`
# HELP berth_store_blobs Blobs stored (each once, whatever the repositories linking it).
# TYPE berth_store_blobs gauge
berth_store_blobs 4
# HELP berth_store_bytes Logical bytes of the blobs stored.
# TYPE berth_store_bytes gauge
berth_store_bytes %d
# HELP berth_store_stored_bytes Bytes the blob files take on disk (compressed, sealed).
# TYPE berth_store_stored_bytes gauge
berth_store_stored_bytes %d
# HELP berth_store_repositories Repositories.
# TYPE berth_store_repositories gauge
berth_store_repositories 1
`, logical, stored)), "berth_store_blobs", "berth_store_bytes", "berth_store_stored_bytes", "berth_store_repositories"))

	// Lifecycle expires the older image (rule 7); a collection sweeps its
	// config and layer.
	expired, err := e.LifecycleApply(ctx, "team/app",
		`{"rules":[{"rulePriority":7,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	require.NoError(t, err)
	require.Len(t, expired, 1)
	require.Equal(t, old, expired[0].Digest)
	r, err := e.CollectGarbage(ctx, engine.GCOptions{Grace: -1})
	require.NoError(t, err)
	require.Equal(t, 2, r.BlobsSwept)
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(fmt.Sprintf(`
# HELP berth_gc_collections_total Garbage collections finished (dry runs excluded).
# TYPE berth_gc_collections_total counter
berth_gc_collections_total 1
# HELP berth_gc_blobs_swept_total Blobs removed by garbage collection.
# TYPE berth_gc_blobs_swept_total counter
berth_gc_blobs_swept_total 2
# HELP berth_gc_bytes_freed_total Stored bytes freed by garbage collection (blobs and orphan files).
# TYPE berth_gc_bytes_freed_total counter
berth_gc_bytes_freed_total %d
# HELP berth_gc_orphan_files_removed_total Orphan blob files (no record) removed by garbage collection.
# TYPE berth_gc_orphan_files_removed_total counter
berth_gc_orphan_files_removed_total 0
# HELP berth_gc_uploads_expired_total Idle upload sessions expired by garbage collection.
# TYPE berth_gc_uploads_expired_total counter
berth_gc_uploads_expired_total 0
# HELP berth_lifecycle_images_expired_total Images expired by lifecycle policies, by rule priority.
# TYPE berth_lifecycle_images_expired_total counter
berth_lifecycle_images_expired_total{rule="7"} 1
`, r.BytesFreed)), "berth_gc_collections_total", "berth_gc_blobs_swept_total", "berth_gc_bytes_freed_total",
		"berth_gc_orphan_files_removed_total", "berth_gc_uploads_expired_total", "berth_lifecycle_images_expired_total"))
	assert.Positive(t, r.BytesFreed)
	assert.Equal(t, 4, testutil.CollectAndCount(c, "berth_gc_last_duration_seconds"), "mark, plan, sweep, total")

	// The store's totals follow.
	clk.Advance(time.Minute)
	logical, stored = storeSizes(t, e, dir)
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(fmt.Sprintf(`
# HELP berth_store_blobs Blobs stored (each once, whatever the repositories linking it).
# TYPE berth_store_blobs gauge
berth_store_blobs 2
# HELP berth_store_bytes Logical bytes of the blobs stored.
# TYPE berth_store_bytes gauge
berth_store_bytes %d
# HELP berth_store_stored_bytes Bytes the blob files take on disk (compressed, sealed).
# TYPE berth_store_stored_bytes gauge
berth_store_stored_bytes %d
`, logical, stored)), "berth_store_blobs", "berth_store_bytes", "berth_store_stored_bytes"))
}

// The schedules' figures: a lifecycle run that fell due, the collection
// after it, the runs it outlasted, and when each schedule runs next.
func TestScheduleMetrics(t *testing.T) {
	ctx := context.Background()
	clk := enginetest.NewClock()
	start := clk.Now()
	e, err := engine.Open(t.TempDir(), &engine.Options{CreateOnPush: true, Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		LifecycleInterval: 24 * time.Hour, GCInterval: 36 * time.Hour, GCAfterLifecycle: true, GCGrace: -1})
	require.NoError(t, err)
	defer e.Close()
	c := NewStoreCollector(e)
	next := func(d time.Duration) float64 { return float64(start.Add(d).UnixNano()) / 1e9 }
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(fmt.Sprintf(`
# HELP berth_schedule_next_run_timestamp_seconds When the next run of each schedule (lifecycle, gc) is due; absent for a schedule that is off.
# TYPE berth_schedule_next_run_timestamp_seconds gauge
berth_schedule_next_run_timestamp_seconds{schedule="gc"} %v
berth_schedule_next_run_timestamp_seconds{schedule="lifecycle"} %v
`, next(36*time.Hour), next(24*time.Hour))), "berth_schedule_next_run_timestamp_seconds"))

	pushImage(t, e, "team/app", "v1", bytes.Repeat([]byte("old layer "), 1000))
	pushImage(t, e, "team/app", "v2", bytes.Repeat([]byte("new layer "), 1000))
	require.NoError(t, e.PutLifecyclePolicy(ctx, "team/app",
		`{"rules":[{"rulePriority":3,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`))
	clk.Advance(24 * time.Hour)
	g := e.GCStats()
	require.NotNil(t, g.LastLifecycleRun)
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(fmt.Sprintf(`
# HELP berth_lifecycle_runs_total Scheduled lifecycle runs (every repository with a policy) by result: ok, failed, or skipped (fell due while the previous one ran).
# TYPE berth_lifecycle_runs_total counter
berth_lifecycle_runs_total{result="failed"} 0
berth_lifecycle_runs_total{result="ok"} 1
berth_lifecycle_runs_total{result="skipped"} 0
# HELP berth_lifecycle_images_expired_total Images expired by lifecycle policies, by rule priority.
# TYPE berth_lifecycle_images_expired_total counter
berth_lifecycle_images_expired_total{rule="3"} 1
# HELP berth_lifecycle_images_archived_total Images lifecycle rules moved to the archive storage class.
# TYPE berth_lifecycle_images_archived_total counter
berth_lifecycle_images_archived_total 0
# HELP berth_lifecycle_last_run_timestamp_seconds When the last scheduled lifecycle run that ended started (absent before the first).
# TYPE berth_lifecycle_last_run_timestamp_seconds gauge
berth_lifecycle_last_run_timestamp_seconds %v
# HELP berth_lifecycle_last_run_duration_seconds How long the last scheduled lifecycle run that ended took.
# TYPE berth_lifecycle_last_run_duration_seconds gauge
berth_lifecycle_last_run_duration_seconds %v
# HELP berth_gc_runs_total Garbage collections by result: ok, failed, or skipped (a scheduled one fell due while another ran).
# TYPE berth_gc_runs_total counter
berth_gc_runs_total{result="failed"} 0
berth_gc_runs_total{result="ok"} 1
berth_gc_runs_total{result="skipped"} 0
# HELP berth_gc_last_run_timestamp_seconds When the last collection that ended (ok or failed) started (absent before the first).
# TYPE berth_gc_last_run_timestamp_seconds gauge
berth_gc_last_run_timestamp_seconds %v
# HELP berth_schedule_next_run_timestamp_seconds When the next run of each schedule (lifecycle, gc) is due; absent for a schedule that is off.
# TYPE berth_schedule_next_run_timestamp_seconds gauge
berth_schedule_next_run_timestamp_seconds{schedule="gc"} %v
berth_schedule_next_run_timestamp_seconds{schedule="lifecycle"} %v
`, next(24*time.Hour), g.LastLifecycleRun.Duration.Seconds(), next(24*time.Hour), next(36*time.Hour), next(48*time.Hour))),
		"berth_lifecycle_runs_total", "berth_lifecycle_images_expired_total", "berth_lifecycle_images_archived_total",
		"berth_lifecycle_last_run_timestamp_seconds", "berth_lifecycle_last_run_duration_seconds",
		"berth_gc_runs_total", "berth_gc_last_run_timestamp_seconds", "berth_schedule_next_run_timestamp_seconds"))
	assert.Positive(t, g.BytesFreed, "the collection after the run")
}

// pushImage pushes a config and one layer as an image tagged tag.
func pushImage(t *testing.T, e *engine.Engine, repo, tag string, layer []byte) digest.Digest {
	t.Helper()
	ctx := context.Background()
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"tag":%q}`, tag))
	cd, err := e.PutBlob(ctx, repo, bytes.NewReader(cfg), digest.FromBytes(cfg))
	require.NoError(t, err)
	ld, err := e.PutBlob(ctx, repo, bytes.NewReader(layer), digest.FromBytes(layer))
	require.NoError(t, err)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd.Digest, Size: cd.Size},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: ld.Digest, Size: ld.Size}}}
	m.SchemaVersion = 2
	payload, err := json.Marshal(m)
	require.NoError(t, err)
	res, err := e.PutManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, payload)
	require.NoError(t, err)
	return res.Digest
}

// storeSizes sums the logical sizes of the store's blobs (as the engine
// reports them) and the sizes of their files on disk (as the file system
// does).
func storeSizes(t *testing.T, e *engine.Engine, dir string) (logical, stored int64) {
	t.Helper()
	s, err := e.StoreStats(context.Background())
	require.NoError(t, err)
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		stored += fi.Size()
		return nil
	}))
	return s.Bytes, stored
}
