package e2e

import (
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"
)

// TestReplicaCachesOverHTTP: two registryd on one PostgreSQL and one
// MinIO, B's caches warm; a tag moved, a tag deleted and a manifest
// deleted through A are seen by the very next request to B (the OCI
// conformance suite's "delete is atomic", with its requests spread over
// replicas).
func TestReplicaCachesOverHTTP(t *testing.T) {
	set := startReplicaSet(t, replicaSetOptions{N: 2})
	a, b := set.Replicas[0].d, set.Replicas[1].d

	push := func(tag string) string {
		img, err := random.Image(1024, 1)
		require.NoError(t, err)
		ref, err := name.ParseReference(a.addr+"/app/web:"+tag, name.Insecure)
		require.NoError(t, err)
		require.NoError(t, remote.Write(ref, img))
		d, err := img.Digest()
		require.NoError(t, err)
		return d.String()
	}
	head := func(d *daemon, ref string) (int, string) {
		req, _ := http.NewRequest(http.MethodHead, "http://"+d.addr+"/v2/app/web/manifests/"+ref, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Docker-Content-Digest")
	}
	del := func(ref string) {
		req, _ := http.NewRequest(http.MethodDelete, "http://"+a.addr+"/v2/app/web/manifests/"+ref, nil)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}

	d1 := push("v1")
	code, got := head(b, "v1")
	require.Equal(t, http.StatusOK, code, "a new tag, on the other replica at once")
	require.Equal(t, d1, got)
	head(b, d1)

	d2 := push("v1")
	_, got = head(b, "v1")
	require.Equal(t, d2, got, "a moved tag, on the other replica at once")

	del("v1")
	code, _ = head(b, "v1")
	require.Equal(t, http.StatusNotFound, code, "a deleted tag")
	code, _ = head(b, d1)
	require.Equal(t, http.StatusOK, code)
	del(d1)
	code, _ = head(b, d1)
	require.Equal(t, http.StatusNotFound, code, "a deleted manifest")
}
