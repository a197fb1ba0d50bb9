package pullthrough

import (
	"context"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/regtest"
)

// TestFill: a repository under no rule is left alone; one under a rule
// whose upstream cannot be reached, with nothing cached, fails with
// ErrUpstream (retryable). Fetches that succeed are tested end to end in
// registryd/e2e (TestPullThroughCache).
func TestFill(t *testing.T) {
	ctx := context.Background()
	e := regtest.Engine(t)
	c, err := New(e, Config{Logger: regtest.Quiet(), Refresh: -1})
	require.NoError(t, err)
	_, err = New(nil, Config{})
	require.Error(t, err)

	d := digest.FromString("x")
	require.NoError(t, c.FillManifest(ctx, "plain/app", "v1"))
	require.NoError(t, c.FillBlob(ctx, "plain/app", d))

	_, err = e.PutPullThroughCacheRule(ctx, engine.PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	require.ErrorIs(t, c.FillManifest(ctx, "hub/app", "v1"), ErrUpstream)
	require.ErrorIs(t, c.FillBlob(ctx, "hub/app", d), ErrUpstream)
}
