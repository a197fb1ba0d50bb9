package pullthrough

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/regtest"
)

// TestFill: a repository under no rule is left alone; one under a rule
// whose upstream cannot be reached, with nothing cached, fails with
// ErrUpstream (retryable). Fetches that succeed are tested end to end in
// registryd/e2e (TestPullThroughCache).
func TestFill(t *testing.T) {
	ctx := context.Background()
	e := regtest.Engine(t)
	az, err := authz.NewIAM(e, authz.IAMConfig{Open: true})
	require.NoError(t, err)
	c, err := New(e, az, Config{Logger: regtest.Quiet(), Refresh: -1})
	require.NoError(t, err)
	_, err = New(nil, az, Config{})
	require.Error(t, err)
	_, err = New(e, nil, Config{})
	require.Error(t, err)
	anyone := engine.Principal{Account: "000000000000"}

	d := digest.FromString("x")
	m, err := c.FillManifest(ctx, anyone, "plain/app", "v1")
	require.NoError(t, err)
	require.Nil(t, m)
	require.NoError(t, c.FillBlob(ctx, anyone, "plain/app", d))

	_, err = e.PutPullThroughCacheRule(ctx, engine.PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	_, err = c.FillManifest(ctx, anyone, "hub/app", "v1")
	require.ErrorIs(t, err, ErrUpstream)
	require.ErrorIs(t, c.FillBlob(ctx, anyone, "hub/app", d), ErrUpstream)
	_, _, err = c.StreamBlob(ctx, anyone, "hub/app", d)
	require.ErrorIs(t, err, ErrUpstream)

	// A repository that was pushed to is never the cache's, whatever
	// rule its name falls under: nothing is fetched (no ErrUpstream).
	_, err = e.PutBlob(ctx, "hub/pushed", bytes.NewReader([]byte("mine")), "")
	require.NoError(t, err)
	m, err = c.FillManifest(ctx, anyone, "hub/pushed", "v1")
	require.NoError(t, err)
	require.Nil(t, m)
	require.NoError(t, c.FillBlob(ctx, anyone, "hub/pushed", d))
}

// TestFillRefusesALyingUpstream: an upstream that answers a blob with
// bytes other than its digest's fails the fill with ErrUpstream (503 at
// the wire, retryable), not an internal error, and nothing is stored:
// not the blob, nor the cache repository the fill created for it.
func TestFillRefusesALyingUpstream(t *testing.T) {
	ctx := context.Background()
	e := regtest.Engine(t)
	az, err := authz.NewIAM(e, authz.IAMConfig{Open: true})
	require.NoError(t, err)
	c, err := New(e, az, Config{Logger: regtest.Quiet(), Refresh: -1})
	require.NoError(t, err)
	anyone := engine.Principal{Account: "000000000000"}

	real, lie := []byte("the bytes the digest names"), []byte("other bytes, same length!!")
	require.Len(t, lie, len(real))
	d := digest.FromBytes(real)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/", "/v2":
			w.WriteHeader(http.StatusOK)
		case "/v2/app/blobs/" + d.String():
			w.Header().Set("Content-Length", strconv.Itoa(len(lie)))
			w.Header().Set("Docker-Content-Digest", d.String())
			if r.Method == http.MethodGet {
				_, _ = w.Write(lie)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(upstream.Close)
	_, err = e.PutPullThroughCacheRule(ctx, engine.PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: upstream.URL})
	require.NoError(t, err)

	require.ErrorIs(t, c.FillBlob(ctx, anyone, "hub/app", d), ErrUpstream)
	_, err = e.Repository(ctx, "hub/app")
	require.ErrorIs(t, err, engine.ErrNameUnknown, "the lie is not stored, and the repository the failed fill created is gone")
}
