package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/miniotest"
)

// BenchmarkObjectStoreThroughput: push and pull MB/s of one large blob
// through registryd serve --blob-store s3://... (sealed, as by default)
// against minio-go's own PutObject and GetObject of the same bytes to the
// same MinIO, in one run. Pushes: monolithic (POST, PUT with the body),
// chunked (eight PATCHes of 32 MiB with Content-Range, PUT) and streamed
// (one PATCH with the whole body, PUT without one: what docker and podman
// send); the streamed push and the pull again on a second registryd that
// stores blobs unencrypted (--disable-encryption):
//
//	go test ./registryd/e2e -run '^$' -bench BenchmarkObjectStoreThroughput -benchtime 3x
//
// Every push is of new bytes (the first 8 changed per iteration), so no
// push is deduplicated. BERTH_BENCH_BLOB_MIB sets the size (default 256).
//
// The raw rows measure minio-go alone. Each registryd row also repeats
// its raw counterpart (PutObject of the same bytes before each push,
// GetObject before each pull; the order swapped every round, untimed)
// and reports x-raw: the raw time over registryd's, summed over the same
// rounds. A shared machine's speed drifts within a minute; a ratio of
// two figures measured side by side does not depend on when the raw row
// ran.
func BenchmarkObjectStoreThroughput(b *testing.B) {
	minioBin := miniotest.Require(b)
	size := 256 << 20
	if v := os.Getenv("BERTH_BENCH_BLOB_MIB"); v != "" {
		var mib int
		_, err := fmt.Sscanf(v, "%d", &mib)
		require.NoError(b, err)
		size = mib << 20
	}
	srv := miniotest.Start(b, minioBin)
	mc, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, "")})
	require.NoError(b, err)
	ctx := context.Background()
	require.NoError(b, mc.MakeBucket(ctx, "registry", minio.MakeBucketOptions{}))
	require.NoError(b, mc.MakeBucket(ctx, "raw", minio.MakeBucketOptions{}))
	b.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	b.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	bin := buildRegistryd(b)
	d := startDaemon(b, bin, filepath.Join(b.TempDir(), "data"), "--blob-store", "s3://"+srv.Endpoint+"/registry/berth?tls=false")
	base := "http://" + d.addr + "/v2/bench/blob/blobs/"
	dPlain := startDaemon(b, bin, filepath.Join(b.TempDir(), "plain"), "--blob-store", "s3://"+srv.Endpoint+"/registry/plain?tls=false", "--disable-encryption")
	plainBase := "http://" + dPlain.addr + "/v2/bench/blob/blobs/"

	data := make([]byte, size)
	for i := 0; i < size; i += 8 {
		binary.LittleEndian.PutUint64(data[i:], uint64(i)*0x9E3779B97F4A7C15^0xdeadbeef)
	}
	var n uint64
	fresh := func() digest.Digest {
		n++
		binary.BigEndian.PutUint64(data, n)
		return digest.NewDigestFromBytes(digest.SHA256, func() []byte { s := sha256.Sum256(data); return s[:] }())
	}
	var pushed []digest.Digest
	// putRaw and getRaw are minio-go's own PutObject and GetObject of
	// the bytes, as key of bucket raw.
	putRaw := func(b *testing.B, key string) {
		_, err := mc.PutObject(ctx, "raw", key, bytes.NewReader(data), int64(size), minio.PutObjectOptions{})
		require.NoError(b, err)
	}
	getRaw := func(b *testing.B, key string) {
		obj, err := mc.GetObject(ctx, "raw", key, minio.GetObjectOptions{})
		require.NoError(b, err)
		m, err := io.Copy(io.Discard, obj)
		require.NoError(b, err)
		require.Equal(b, int64(size), m)
		obj.Close()
	}
	rawPut := func(b *testing.B) { putRaw(b, "paired") }
	rawGet := func(b *testing.B) { getRaw(b, "paired") }
	// paired runs b.N rounds of berth (timed, after prepare) and raw
	// (untimed) in turn, the order swapped each round, and reports raw's
	// time over berth's as x-raw.
	paired := func(b *testing.B, prepare func(), raw, berth func(b *testing.B)) {
		b.SetBytes(int64(size))
		var rawT, berthT time.Duration
		timeRaw := func() {
			t0 := time.Now()
			raw(b)
			rawT += time.Since(t0)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			prepare()
			if i%2 == 0 {
				timeRaw()
			}
			b.StartTimer()
			t0 := time.Now()
			berth(b)
			berthT += time.Since(t0)
			b.StopTimer()
			if i%2 == 1 {
				timeRaw()
			}
			b.StartTimer()
		}
		b.ReportMetric(rawT.Seconds()/berthT.Seconds(), "x-raw")
	}

	b.Run("raw-put", func(b *testing.B) {
		b.SetBytes(int64(size))
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			fresh()
			b.StartTimer()
			putRaw(b, fmt.Sprintf("obj-%d", i))
		}
	})
	b.Run("raw-get", func(b *testing.B) {
		b.SetBytes(int64(size))
		for i := 0; i < b.N; i++ {
			getRaw(b, "obj-0")
		}
	})
	var dg digest.Digest
	next := func() { dg = fresh() }
	b.Run("push-monolithic", func(b *testing.B) {
		paired(b, next, rawPut, func(b *testing.B) {
			loc := startUpload(b, base)
			req, err := http.NewRequest(http.MethodPut, loc+"&digest="+dg.String(), bytes.NewReader(data))
			require.NoError(b, err)
			req.Header.Set("Content-Type", "application/octet-stream")
			expectStatus(b, req, http.StatusCreated)
			pushed = append(pushed, dg)
		})
	})
	b.Run("push-chunked-32MiB", func(b *testing.B) {
		const chunk = 32 << 20
		paired(b, next, rawPut, func(b *testing.B) {
			loc := startUpload(b, base)
			for off := 0; off < size; off += chunk {
				end := min(off+chunk, size)
				req, err := http.NewRequest(http.MethodPatch, loc, bytes.NewReader(data[off:end]))
				require.NoError(b, err)
				req.Header.Set("Content-Type", "application/octet-stream")
				req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, end-1))
				loc = expectStatus(b, req, http.StatusAccepted)
			}
			req, err := http.NewRequest(http.MethodPut, loc+"&digest="+dg.String(), nil)
			require.NoError(b, err)
			expectStatus(b, req, http.StatusCreated)
			pushed = append(pushed, dg)
		})
	})
	// streamed pushes as docker and podman do: one PATCH with the whole
	// body (no Content-Range), then a PUT without one.
	streamed := func(base string, pushed *[]digest.Digest) func(b *testing.B) {
		return func(b *testing.B) {
			loc := startUpload(b, base)
			req, err := http.NewRequest(http.MethodPatch, loc, bytes.NewReader(data))
			require.NoError(b, err)
			req.Header.Set("Content-Type", "application/octet-stream")
			loc = expectStatus(b, req, http.StatusAccepted)
			req, err = http.NewRequest(http.MethodPut, loc+"&digest="+dg.String(), nil)
			require.NoError(b, err)
			expectStatus(b, req, http.StatusCreated)
			*pushed = append(*pushed, dg)
		}
	}
	// pull GETs the blobs pushed in turn, the raw object being the last
	// raw push's (the same size).
	getAll := func(b *testing.B, url string) {
		resp, err := http.Get(url)
		require.NoError(b, err)
		require.Equal(b, http.StatusOK, resp.StatusCode)
		m, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.NoError(b, err)
		require.Equal(b, int64(size), m)
	}
	pull := func(base string, pushed []digest.Digest) func(b *testing.B) {
		return func(b *testing.B) {
			require.NotEmpty(b, pushed)
			i := -1
			paired(b, func() { i++ }, rawGet, func(b *testing.B) { getAll(b, base+pushed[i%len(pushed)].String()) })
		}
	}
	b.Run("push-streamed", func(b *testing.B) { paired(b, next, rawPut, streamed(base, &pushed)) })
	b.Run("pull", pull(base, pushed))
	// The same with blobs stored unencrypted (--disable-encryption): what
	// sealing and opening the frames cost, beside the rest.
	var plain []digest.Digest
	b.Run("push-streamed-unencrypted", func(b *testing.B) { paired(b, next, rawPut, streamed(plainBase, &plain)) })
	b.Run("pull-unencrypted", pull(plainBase, plain))
	// The most any registry that serves the bytes itself (rather than
	// redirecting to the object store) can reach here: a bare Go proxy
	// on 127.0.0.1 that GETs the raw object and copies it to its client,
	// nothing else, in the same rounds as raw's GET.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		obj, err := mc.GetObject(r.Context(), "raw", "paired", minio.GetObjectOptions{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer obj.Close()
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = io.Copy(w, obj)
	}))
	defer proxy.Close()
	b.Run("pull-bare-proxy", func(b *testing.B) {
		paired(b, func() {}, rawGet, func(b *testing.B) { getAll(b, proxy.URL) })
	})
}

// startUpload POSTs a new upload session and returns its location with
// a query ready for more parameters.
func startUpload(tb testing.TB, base string) string {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"uploads/", nil)
	require.NoError(tb, err)
	loc := expectStatus(tb, req, http.StatusAccepted)
	return loc
}

// expectStatus sends req, checks its status and returns its Location
// made absolute, with a '?' so that parameters can be added with '&'.
func expectStatus(tb testing.TB, req *http.Request, want int) string {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(tb, want, resp.StatusCode, "%s %s: %s", req.Method, req.URL, body)
	loc := resp.Header.Get("Location")
	if loc == "" {
		return ""
	}
	u, err := req.URL.Parse(loc)
	require.NoError(tb, err)
	s := u.String()
	if u.RawQuery == "" {
		s += "?"
	}
	return s
}
