package pullthrough_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/engine/enginetest"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/pullthrough"
	"github.com/berthstore/berth/registryd/internal/regtest"
	"github.com/berthstore/berth/registryd/server"
)

var anyone = engine.Principal{Account: "000000000000"}

// upstream is a real registryd (the OCI API over an engine) on
// 127.0.0.1, whose blob answers can be held after their first bytes and
// whose requests are counted.
type upstream struct {
	url   string
	store *engine.Engine
	// hold, when set, is where a blob answer stops (after holdAt bytes)
	// until it is closed.
	mu     sync.Mutex
	hold   chan struct{}
	holdAt int
	blobs  atomic.Int32 // blob GETs
	mans   atomic.Int32 // manifest GETs
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	return startUpstreamWith(t, nil)
}

// startUpstreamWith is startUpstream with the registry's handler wrapped
// by wrap (nil: not wrapped).
func startUpstreamWith(t *testing.T, wrap func(http.Handler) http.Handler) *upstream {
	t.Helper()
	u := &upstream{store: regtest.Engine(t)}
	srv, err := server.New(u.store, server.Config{Logger: regtest.Quiet(), DisableAccessLog: true})
	require.NoError(t, err)
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			u.blobs.Add(1)
			u.mu.Lock()
			hold, at := u.hold, u.holdAt
			u.mu.Unlock()
			if hold != nil {
				w = &holdingWriter{ResponseWriter: w, hold: hold, at: at}
			}
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
			u.mans.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	u.url = ts.URL
	return u
}

// holdingWriter lets the first at bytes through, flushed, then waits
// for hold to close.
type holdingWriter struct {
	http.ResponseWriter
	hold chan struct{}
	at   int
	n    int
}

func (w *holdingWriter) Write(p []byte) (int, error) {
	if w.n < w.at && w.n+len(p) > w.at {
		k, err := w.Write(p[:w.at-w.n])
		if err != nil {
			return k, err
		}
		m, err := w.Write(p[k:])
		return k + m, err
	}
	if w.n >= w.at {
		<-w.hold
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += n
	if w.n == w.at {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
	return n, err
}

func newCache(t *testing.T, e *engine.Engine, refresh time.Duration) *pullthrough.Cache {
	t.Helper()
	az, err := authz.NewIAM(e, authz.IAMConfig{Open: true})
	require.NoError(t, err)
	c, err := pullthrough.New(e, az, pullthrough.Config{Logger: regtest.Quiet(), Refresh: refresh, SpoolDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// TestStreamBlobSharesOneFetch: four pulls of a blob the cache lacks
// read its first bytes while the upstream still holds the rest (the
// answer streams, it does not wait for the copy), all get the whole blob
// from one upstream fetch, and the store holds it afterwards.
func TestStreamBlobSharesOneFetch(t *testing.T) {
	ctx := context.Background()
	up := startUpstream(t)
	blob := randomBytes(t, 3<<20)
	d, err := up.store.PutBlob(ctx, "library/app", bytes.NewReader(blob), "")
	require.NoError(t, err)
	hold := make(chan struct{})
	up.mu.Lock()
	up.hold, up.holdAt = hold, 1<<20
	up.mu.Unlock()

	e := regtest.Engine(t)
	_, err = e.PutPullThroughCacheRule(ctx, engine.PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: up.url})
	require.NoError(t, err)
	c := newCache(t, e, -1)

	const pulls = 4
	readers := make([]io.ReadCloser, pulls)
	for i := range readers {
		rc, size, err := c.StreamBlob(ctx, anyone, "hub/library/app", d.Digest)
		require.NoError(t, err)
		require.NotNil(t, rc)
		assert.Equal(t, int64(len(blob)), size, "the upstream's size, announced before the bytes")
		readers[i] = rc
	}
	for i, rc := range readers {
		head := make([]byte, 1<<20)
		_, err := io.ReadFull(rc, head)
		require.NoError(t, err, "pull %d reads the first MiB while the upstream holds the rest", i)
		require.Equal(t, blob[:1<<20], head)
	}
	_, err = e.StatBlob(ctx, "hub/library/app", d.Digest)
	require.ErrorIs(t, err, engine.ErrBlobUnknown, "not stored before it is whole")
	close(hold)
	var wg sync.WaitGroup
	for i, rc := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rc.Close()
			rest, err := io.ReadAll(rc)
			assert.NoError(t, err, "pull %d", i)
			assert.Equal(t, blob[1<<20:], rest, "pull %d", i)
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), up.blobs.Load(), "one upstream fetch for every pull")
	require.Eventually(t, func() bool {
		_, err := e.StatBlob(ctx, "hub/library/app", d.Digest)
		return err == nil
	}, 10*time.Second, 5*time.Millisecond, "stored")
	br, err := e.OpenBlob(ctx, "hub/library/app", d.Digest)
	require.NoError(t, err)
	got, err := io.ReadAll(br)
	require.NoError(t, err)
	require.NoError(t, br.Close())
	assert.Equal(t, blob, got)

	rc, _, err := c.StreamBlob(ctx, anyone, "hub/library/app", d.Digest)
	require.NoError(t, err)
	assert.Nil(t, rc, "held: the store answers")
	assert.Equal(t, int32(1), up.blobs.Load())
}

// lyingUpstream answers blob d with other bytes of the same length
// (with or without a Content-Length), its second half once release is
// closed.
func lyingUpstream(t *testing.T, d digest.Digest, lie []byte, length bool, release chan struct{}) string {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/", "/v2":
			w.WriteHeader(http.StatusOK)
		case "/v2/app/blobs/" + d.String():
			if length {
				w.Header().Set("Content-Length", strconv.Itoa(len(lie)))
			}
			w.Header().Set("Docker-Content-Digest", d.String())
			_, _ = w.Write(lie[:len(lie)/2])
			_ = http.NewResponseController(w).Flush()
			<-release
			_, _ = w.Write(lie[len(lie)/2:])
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestStreamBlobCutOnMismatch: bytes that do not match their digest
// reach the pull all but the last, whose read fails instead (the answer
// is cut: the client never sees a blob that looks whole); nothing is
// stored, and the repository the fill created is gone. With or without
// a Content-Length.
func TestStreamBlobCutOnMismatch(t *testing.T) {
	for _, length := range []bool{true, false} {
		t.Run("length="+strconv.FormatBool(length), func(t *testing.T) {
			ctx := context.Background()
			real := randomBytes(t, 3<<20) // over verifyFirstSize: it streams
			lie := bytes.Clone(real)
			lie[len(lie)-1] ^= 0xff
			d := digest.FromBytes(real)
			e := regtest.Engine(t)
			release := make(chan struct{})
			_, err := e.PutPullThroughCacheRule(ctx, engine.PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: lyingUpstream(t, d, lie, length, release)})
			require.NoError(t, err)
			c := newCache(t, e, -1)
			rc, size, err := c.StreamBlob(ctx, anyone, "hub/app", d)
			require.NoError(t, err)
			require.NotNil(t, rc)
			if length {
				assert.Equal(t, int64(len(lie)), size)
			} else {
				assert.Equal(t, int64(-1), size)
			}
			// (Without a length, the last byte the upstream sent so far waits
			// for the next: it may be the blob's last.)
			head := make([]byte, len(lie)/2-1)
			_, err = io.ReadFull(rc, head)
			require.NoError(t, err, "the first half streams")
			close(release)
			rest, err := io.ReadAll(rc)
			require.ErrorIs(t, err, pullthrough.ErrUpstream, "the stream is cut")
			got := append(head, rest...)
			assert.Less(t, len(got), len(lie), "never the whole blob")
			assert.Equal(t, lie[:len(got)], got)
			require.NoError(t, rc.Close())
			require.Eventually(t, func() bool {
				_, err := e.Repository(ctx, "hub/app")
				return err != nil
			}, 10*time.Second, 5*time.Millisecond, "the repository the fill created goes")
			_, err = e.StatBlob(ctx, "hub/app", d)
			require.Error(t, err, "nothing stored")
		})
	}
}

// TestStreamBlobVerifiesSmallBlobsFirst: a blob of at most a MiB is
// checked whole before it is answered, so that one that does not match
// its digest is refused with ErrUpstream (an error status), never
// answered; nothing is stored.
func TestStreamBlobVerifiesSmallBlobsFirst(t *testing.T) {
	ctx := context.Background()
	real := randomBytes(t, 64<<10)
	lie := bytes.Clone(real)
	lie[len(lie)/2] ^= 0xff
	d := digest.FromBytes(real)
	e := regtest.Engine(t)
	release := make(chan struct{})
	close(release)
	_, err := e.PutPullThroughCacheRule(ctx, engine.PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: lyingUpstream(t, d, lie, true, release)})
	require.NoError(t, err)
	c := newCache(t, e, -1)
	rc, _, err := c.StreamBlob(ctx, anyone, "hub/app", d)
	require.ErrorIs(t, err, pullthrough.ErrUpstream)
	require.Nil(t, rc)
	_, err = e.StatBlob(ctx, "hub/app", d)
	require.Error(t, err, "nothing stored")
}

// TestFirstPullAnswersTheManifestAtOnce: a manifest the cache lacks is
// answered from upstream while its blobs are held upstream (the pull
// does not wait for the copy, and the copy has asked for them already);
// the image lands in the store once they
// come; when the tag was last checked is kept by the store, so that a
// cache over the store reopened does not ask the upstream again within
// the refresh interval, and asks once it is past.
func TestFirstPullAnswersTheManifestAtOnce(t *testing.T) {
	ctx := context.Background()
	up := startUpstream(t)
	layer := randomBytes(t, 1<<20)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd, err := up.store.PutBlob(ctx, "library/app", bytes.NewReader(cfg), "")
	require.NoError(t, err)
	ld, err := up.store.PutBlob(ctx, "library/app", bytes.NewReader(layer), "")
	require.NoError(t, err)
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cd.Digest.String() + `","size":` + strconv.Itoa(len(cfg)) + `},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + ld.Digest.String() + `","size":` + strconv.Itoa(len(layer)) + `}]}`)
	res, err := up.store.PutManifest(ctx, "library/app", "v1", "application/vnd.oci.image.manifest.v1+json", manifest)
	require.NoError(t, err)
	hold := make(chan struct{})
	up.mu.Lock()
	up.hold, up.holdAt = hold, 0
	up.mu.Unlock()

	dir := t.TempDir()
	clk := enginetest.NewClock()
	open := func() *engine.Engine {
		e, err := engine.Open(dir, &engine.Options{Logger: regtest.Quiet(), Clock: clk})
		require.NoError(t, err)
		return e
	}
	e := open()
	_, err = e.PutPullThroughCacheRule(ctx, engine.PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: up.url})
	require.NoError(t, err)
	c := newCache(t, e, time.Hour)
	m, err := c.FillManifest(ctx, anyone, "hub/library/app", "v1")
	require.NoError(t, err)
	require.NotNil(t, m, "answered from upstream")
	assert.Equal(t, res.Digest, m.Digest)
	assert.Equal(t, manifest, m.Payload)
	_, err = e.StatManifest(ctx, "hub/library/app", "v1")
	require.ErrorIs(t, err, engine.ErrManifestUnknown, "not stored while its blobs are held upstream")
	require.Eventually(t, func() bool { return up.blobs.Load() == 2 }, 10*time.Second, time.Millisecond,
		"the upstream is asked for the config and the layer before the pull asks the cache for either")
	close(hold)
	require.Eventually(t, func() bool {
		_, err := e.StatManifest(ctx, "hub/library/app", "v1")
		return err == nil
	}, 10*time.Second, 5*time.Millisecond, "the image lands in the store")
	require.NoError(t, c.Close(ctx)) // the fill has ended
	_, ok, err := e.UpstreamCheckedAt(ctx, "hub/library/app", "v1")
	require.NoError(t, err)
	require.True(t, ok, "the check is recorded once the image is stored")
	require.NoError(t, e.Close())

	fetched := up.mans.Load()
	e = open()
	defer e.Close()
	c = newCache(t, e, time.Hour)
	m, err = c.FillManifest(ctx, anyone, "hub/library/app", "v1")
	require.NoError(t, err)
	assert.Nil(t, m, "served from the store")
	assert.Equal(t, fetched, up.mans.Load(), "checked within the hour before the restart: not asked again")
	clk.Advance(2 * time.Hour)
	m, err = c.FillManifest(ctx, anyone, "hub/library/app", "v1")
	require.NoError(t, err)
	assert.Nil(t, m, "the same digest upstream: served from the store")
	assert.Equal(t, fetched+1, up.mans.Load(), "past the refresh interval: asked")
}
