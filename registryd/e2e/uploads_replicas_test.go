package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestChunkedUploadAcrossReplicas: two registryd over one PostgreSQL and
// one bucket (startReplicaSet; each is asked directly, not through the
// set's proxy). A chunked upload started on A, continued on B and finished
// on A pulls bit-exact from B; on the way, a chunk at a forged offset, a
// forged session id and the session under another repository's name get
// their OCI errors and change nothing; DELETE of a session on B leaves
// nothing of A's parts in the bucket.
func TestChunkedUploadAcrossReplicas(t *testing.T) {
	set := startReplicaSet(t, replicaSetOptions{N: 2})
	mc := set.minioClient(t)
	ctx := context.Background()
	a, b := set.Replicas[0].d, set.Replicas[1].d
	on := func(d *daemon, loc string) string { return "http://" + d.addr + loc }
	patch := func(d *daemon, loc string, from int, chunk []byte) *http.Response {
		req, err := http.NewRequest(http.MethodPatch, on(d, loc), bytes.NewReader(chunk))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", from, from+len(chunk)-1))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	begin := func(d *daemon, repo string) string {
		resp, err := http.Post(on(d, "/v2/"+repo+"/blobs/uploads/"), "", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		return resp.Header.Get("Location")
	}

	data := make([]byte, 40<<20+77)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	loc := begin(a, "app/web")
	resp := patch(a, loc, 0, data[:18<<20])
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, fmt.Sprintf("0-%d", 18<<20-1), resp.Header.Get("Range"))
	loc = resp.Header.Get("Location")

	// Hostile: a chunk at a forged offset, on the other replica.
	resp = patch(b, loc, 1<<20, data[1<<20:2<<20])
	assert.Equal(t, http.StatusRequestedRangeNotSatisfiable, resp.StatusCode)
	assert.Equal(t, fmt.Sprintf("0-%d", 18<<20-1), resp.Header.Get("Range"), "B knows where the session is")
	// A forged session id, and this session's id under another repository.
	resp = patch(b, "/v2/app/web/blobs/uploads/00000000-0000-4000-8000-000000000000", 0, data[:10])
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp = patch(b, "/v2/app/other/blobs/uploads/"+filepath.Base(stripQuery(loc)), 18<<20, data[18<<20:19<<20])
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	resp = patch(b, loc, 18<<20, data[18<<20:35<<20])
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, fmt.Sprintf("0-%d", 35<<20-1), resp.Header.Get("Range"))
	loc = resp.Header.Get("Location")

	d := digest.FromBytes(data)
	sep := "?"
	if bytes.ContainsRune([]byte(loc), '?') {
		sep = "&"
	}
	req, err := http.NewRequest(http.MethodPut, on(a, loc+sep+"digest="+d.String()), bytes.NewReader(data[35<<20:]))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)

	resp, err = http.Get(on(b, "/v2/app/web/blobs/"+d.String()))
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, bytes.Equal(data, got), "bit-exact from the other replica")

	// A session with parts sent from A, cancelled on B.
	loc = begin(a, "app/web")
	resp = patch(a, loc, 0, data[:34<<20])
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	loc = resp.Header.Get("Location")
	req, err = http.NewRequest(http.MethodDelete, on(b, loc), nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	var left []string
	for oi := range mc.ListObjects(ctx, replicaBucket, minio.ListObjectsOptions{Prefix: "berth/uploads/", Recursive: true}) {
		require.NoError(t, oi.Err)
		left = append(left, oi.Key)
	}
	assert.Empty(t, left, "no upload object left in the bucket")
	resp = patch(a, loc, 34<<20, data[:10])
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "A knows the session is gone")
}

// stripQuery is loc without its query.
func stripQuery(loc string) string {
	if i := bytes.IndexByte([]byte(loc), '?'); i >= 0 {
		return loc[:i]
	}
	return loc
}
