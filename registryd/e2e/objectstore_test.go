package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/miniotest"
	"github.com/berthstore/berth/internal/pgtest"
)

// TestBlobsInObjectStore: registryd serve --blob-store s3://... over a
// real MinIO: an image pushed by go-containerregistry pulls back
// bit-exact, its blobs are objects in the bucket (none stays under the
// data directory), a blob GET while the object store is down answers 503
// with Retry-After, and pulls work again once it is back.
func TestBlobsInObjectStore(t *testing.T) {
	minioBin := miniotest.Require(t)
	srv := miniotest.Start(t, minioBin)
	mc, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, "")})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, mc.MakeBucket(ctx, "registry", minio.MakeBucketOptions{}))

	dir := t.TempDir()
	bin := buildRegistryd(t)
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	data := filepath.Join(dir, "data")
	d := startDaemon(t, bin, data, "--blob-store", "s3://"+srv.Endpoint+"/registry/berth?tls=false")

	img, err := random.Image(3<<20, 3)
	require.NoError(t, err)
	ref, err := name.ParseReference(d.addr+"/app/web:v1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img))

	pulled, err := remote.Image(ref)
	require.NoError(t, err)
	want, err := img.Digest()
	require.NoError(t, err)
	got, err := pulled.Digest()
	require.NoError(t, err)
	require.Equal(t, want, got)
	requireSameLayers(t, img, pulled)

	// The blobs are objects; the data directory keeps none.
	keys := objectKeys(t, mc, "registry", "berth/blobs/")
	assert.Len(t, keys, 4, "three layers and the config (the manifest is in the index): %v", keys)
	var files []string
	_ = filepath.Walk(filepath.Join(data, "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	assert.Empty(t, files, "no blob stays in the spool")

	// Object store down: a blob GET is 503 with Retry-After, not a 500
	// or a 404.
	layers, err := img.Layers()
	require.NoError(t, err)
	ld, err := layers[0].Digest()
	require.NoError(t, err)
	blobURL := fmt.Sprintf("http://%s/v2/app/web/blobs/%s", d.addr, ld)
	srv.Stop()
	resp, err := http.Get(blobURL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", body)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.True(t, strings.Contains(string(body), "UNAVAILABLE"), "%s", body)

	srv.Restart(t)
	resp, err = http.Get(blobURL)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	rc, err := layers[0].Compressed()
	require.NoError(t, err)
	wantBytes, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.True(t, bytes.Equal(wantBytes, b), "bit-exact after the object store's restart")
}

// requireSameLayers checks that every layer of want is in got with the
// same compressed bytes.
func requireSameLayers(t *testing.T, want, got v1.Image) {
	t.Helper()
	layers, err := want.Layers()
	require.NoError(t, err)
	for _, l := range layers {
		ld, err := l.Digest()
		require.NoError(t, err)
		pl, err := got.LayerByDigest(ld)
		require.NoError(t, err)
		requireSameLayer(t, l, pl)
	}
}

// objectKeys lists the keys under prefix in bucket.
func objectKeys(t *testing.T, mc *minio.Client, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	for oi := range mc.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		require.NoError(t, oi.Err)
		keys = append(keys, oi.Key)
	}
	return keys
}

// requireSameLayer checks that two layers hold the same compressed bytes.
func requireSameLayer(t *testing.T, want, got v1.Layer) {
	t.Helper()
	read := func(l v1.Layer) []byte {
		rc, err := l.Compressed()
		require.NoError(t, err)
		defer rc.Close()
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		return b
	}
	require.True(t, bytes.Equal(read(want), read(got)), "layer content differs")
}

// TestObjectStoreAndPostgres: registryd with its blobs in MinIO and its
// metadata in PostgreSQL (--blob-store, --metadata): an image pushed by
// go-containerregistry pulls back bit-exact, also from a registryd
// started again after a SIGKILL, the tags list is served from the
// database, and /metrics exports the database's round trips, statements
// and operations.
func TestObjectStoreAndPostgres(t *testing.T) {
	minioBin := miniotest.Require(t)
	pgBin := pgtest.Require(t)
	srv := miniotest.Start(t, minioBin)
	pg := pgtest.Start(t, pgBin)
	dbURL := pg.NewDatabase(t)
	mc, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, "")})
	require.NoError(t, err)
	require.NoError(t, mc.MakeBucket(context.Background(), "registry", minio.MakeBucketOptions{}))

	dir := t.TempDir()
	bin := buildRegistryd(t)
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	data := filepath.Join(dir, "data")
	args := []string{"--blob-store", "s3://" + srv.Endpoint + "/registry/one?tls=false", "--metadata", dbURL}
	d := startDaemon(t, bin, data, args...)

	img, err := random.Image(2<<20, 2)
	require.NoError(t, err)
	ref, err := name.ParseReference(d.addr+"/app/api:v1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img))
	want, err := img.Digest()
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(data, "index"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no pebble index under the data directory")

	d.kill()
	d = startDaemon(t, bin, data, args...)
	ref, err = name.ParseReference(d.addr+"/app/api:v1", name.Insecure)
	require.NoError(t, err)
	pulled, err := remote.Image(ref)
	require.NoError(t, err)
	got, err := pulled.Digest()
	require.NoError(t, err)
	require.Equal(t, want, got)
	requireSameLayers(t, img, pulled)
	tags, err := remote.List(ref.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{"v1"}, tags)

	// The database's work is counted and exported.
	text := metricsText(t, d.addr)
	for _, re := range []string{
		`(?m)^berth_metadata_db_round_trips_total [1-9]`,
		`(?m)^berth_metadata_db_statements_total [1-9]`,
		`(?m)^berth_metadata_db_operations_total\{op="get"\} [1-9]`,
		`(?m)^berth_metadata_db_operations_total\{op="commit_retry"\} `,
	} {
		assert.Regexp(t, re, text)
	}
}

// TestObjectStoreOverTLSWithPrivateCA: registryd serve --blob-store
// s3://... (https, the default) on a MinIO whose certificate a private CA
// signed, trusted through SSL_CERT_FILE as the docs say: an image pushed
// and pulled bit-exact, its blobs in the bucket. Without the CA, serve
// refuses to start and names the certificate.
func TestObjectStoreOverTLSWithPrivateCA(t *testing.T) {
	srv := miniotest.StartTLS(t, miniotest.Require(t))
	mc, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, ""),
		Secure: true, Transport: srv.Transport()})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, mc.MakeBucket(ctx, "registry", minio.MakeBucketOptions{}))
	bin := buildRegistryd(t)
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	store := "s3://" + srv.Endpoint + "/registry/berth"

	// No CA: the system's roots do not hold it.
	out, err := exec.Command(bin, "serve", "--addr", freePort(t), "--data", filepath.Join(t.TempDir(), "data"), "--blob-store", store).CombinedOutput()
	require.Error(t, err, "serve must refuse an endpoint it cannot verify")
	assert.Contains(t, string(out), "certificate", "%s", out)

	t.Setenv("SSL_CERT_FILE", srv.CAFile)
	d := startDaemon(t, bin, filepath.Join(t.TempDir(), "data"), "--blob-store", store)
	img, err := random.Image(18<<20, 2) // layers of more than two 8 MiB parts: multipart uploads over https
	require.NoError(t, err)
	ref, err := name.ParseReference(d.addr+"/app/tls:v1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img))
	pulled, err := remote.Image(ref)
	require.NoError(t, err)
	requireSameLayers(t, img, pulled)
	keys := objectKeys(t, mc, "registry", "berth/blobs/")
	assert.Len(t, keys, 3, "two layers and the config: %v", keys)
}
