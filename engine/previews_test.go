package engine

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/record"
	"github.com/berthstore/berth/index"
)

// previewDigests reads repo's preview and the digests it lists.
func previewDigests(t testing.TB, e *Engine, repo string) (LifecyclePolicyPreview, []digest.Digest) {
	t.Helper()
	var ds []digest.Digest
	p, err := e.LifecyclePolicyPreview(context.Background(), repo, "", func(r LifecyclePreviewResult) error {
		ds = append(ds, r.Digest)
		return nil
	})
	require.NoError(t, err)
	return p, ds
}

// TestLifecyclePolicyPreviewStored: a preview is kept in the store: it
// lists what LifecyclePreview computes, pages in digest order, survives a
// restart, is replaced by the next, and goes with its repository.
func TestLifecyclePolicyPreviewStored(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := manualClock()
	o := quietOptions()
	o.Clock = clk
	e, err := Open(dir, o)
	require.NoError(t, err)
	defer func() { e.Close() }()
	s := seedScheduleRepo(t, e, clk, "p/app")

	_, err = e.LifecyclePolicyPreview(ctx, "p/app", "", nil)
	require.ErrorIs(t, err, ErrLifecyclePreviewNotFound)
	_, err = e.StartLifecyclePolicyPreview(ctx, "p/app", "")
	require.ErrorIs(t, err, ErrLifecyclePolicyNotFound, "no policy and none given")
	_, err = e.StartLifecyclePolicyPreview(ctx, "p/app", `{"rules":[]}`)
	require.ErrorIs(t, err, ErrInvalidPolicy)
	_, err = e.StartLifecyclePolicyPreview(ctx, "p/none", awsKeepOneUntagged)
	require.ErrorIs(t, err, ErrNameUnknown)

	p, err := e.StartLifecyclePolicyPreview(ctx, "p/app", awsKeepOneUntagged)
	require.NoError(t, err)
	assert.Equal(t, PreviewComplete, p.Status)
	assert.Equal(t, 2, p.ExpiringImages)
	assert.Equal(t, awsKeepOneUntagged, p.Policy)
	assert.Equal(t, clk.Now().UTC(), p.StartedAt)
	want, err := e.LifecyclePreview(ctx, "p/app", awsKeepOneUntagged)
	require.NoError(t, err)
	_, got := previewDigests(t, e, "p/app")
	require.Len(t, got, 2)
	assert.ElementsMatch(t, []digest.Digest{want[0].Digest, want[1].Digest}, got)
	assert.ElementsMatch(t, s.untagged[:2], got)
	assert.Less(t, got[0], got[1], "digest order")

	// A page after the first digest; an early stop.
	var rest []digest.Digest
	_, err = e.LifecyclePolicyPreview(ctx, "p/app", got[0], func(r LifecyclePreviewResult) error {
		rest = append(rest, r.Digest)
		assert.Equal(t, "Keep only one untagged image, expire all others", r.Description)
		assert.False(t, r.PushedAt.IsZero())
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, got[1:], rest)
	n := 0
	_, err = e.LifecyclePolicyPreview(ctx, "p/app", "", func(LifecyclePreviewResult) error { n++; return io.EOF })
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	// A restart keeps it.
	require.NoError(t, e.Close())
	e, err = Open(dir, o)
	require.NoError(t, err)
	p2, again := previewDigests(t, e, "p/app")
	assert.Equal(t, p, p2)
	assert.Equal(t, got, again)

	// The next preview replaces it: its results too.
	keepAll := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":100},"action":{"type":"expire"}}]}`
	require.NoError(t, e.PutLifecyclePolicy(ctx, "p/app", keepAll))
	p, err = e.StartLifecyclePolicyPreview(ctx, "p/app", "")
	require.NoError(t, err)
	assert.Equal(t, PreviewComplete, p.Status)
	assert.Equal(t, keepAll, p.Policy)
	p, got = previewDigests(t, e, "p/app")
	assert.Zero(t, p.ExpiringImages)
	assert.Empty(t, got)

	require.NoError(t, e.DeleteRepository(ctx, "p/app", true))
	_, err = e.CreateRepository(ctx, "p/app", RepositorySettings{})
	require.NoError(t, err)
	_, err = e.LifecyclePolicyPreview(ctx, "p/app", "", nil)
	require.ErrorIs(t, err, ErrLifecyclePreviewNotFound, "a repository's preview goes with it")
}

// TestLifecyclePolicyPreviewInProgress: a preview still being evaluated
// reads IN_PROGRESS without results, a second one is refused meanwhile,
// and it reads COMPLETE once evaluated. A preview that a restart cut short
// is evaluated again when it is read.
func TestLifecyclePolicyPreviewInProgress(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(dir, quietOptions())
	require.NoError(t, err)
	defer func() { e.Close() }()
	seedScheduleRepo(t, e, nil, "p/big")
	require.NoError(t, e.PutLifecyclePolicy(ctx, "p/big", awsKeepOneUntagged))

	release := make(chan struct{})
	testHookPreview = func(string) { <-release }
	t.Cleanup(func() { testHookPreview = nil })
	gone, cancel := context.WithCancel(ctx)
	cancel() // answer at once: the evaluation goes on without the caller
	p, err := e.StartLifecyclePolicyPreview(gone, "p/big", "")
	require.NoError(t, err)
	assert.Equal(t, PreviewInProgress, p.Status)
	assert.True(t, p.FinishedAt.IsZero())
	_, err = e.StartLifecyclePolicyPreview(ctx, "p/big", "")
	require.ErrorIs(t, err, ErrLifecyclePreviewInProgress)
	p, ds := previewDigests(t, e, "p/big")
	assert.Equal(t, PreviewInProgress, p.Status)
	assert.Empty(t, ds, "no results while in progress")
	close(release)
	require.Eventually(t, func() bool {
		p, _ := previewDigests(t, e, "p/big")
		return p.Status == PreviewComplete
	}, 10*time.Second, 5*time.Millisecond)
	p, ds = previewDigests(t, e, "p/big")
	assert.Len(t, ds, 2)
	assert.Equal(t, 2, p.ExpiringImages)
	testHookPreview = nil

	// As a restart in the middle of an evaluation leaves it.
	e.gcs.previews.mu.Lock()
	require.NoError(t, e.writePreview("p/big", record.Preview{Policy: awsKeepOneUntagged, Status: PreviewInProgress, StartedAt: e.now()}, nil, true))
	e.gcs.previews.mu.Unlock()
	require.NoError(t, e.Close())
	e, err = Open(dir, quietOptions())
	require.NoError(t, err)
	p, ds = previewDigests(t, e, "p/big")
	assert.Equal(t, PreviewInProgress, p.Status)
	assert.Empty(t, ds)
	require.Eventually(t, func() bool {
		p, _ := previewDigests(t, e, "p/big")
		return p.Status == PreviewComplete
	}, 10*time.Second, 5*time.Millisecond, "read, it is evaluated again")
	_, ds = previewDigests(t, e, "p/big")
	assert.Len(t, ds, 2)
}

// TestLifecyclePolicyPreviewRetention: a finished preview reads EXPIRED
// after PreviewRetention (its results deleted by the sweep) and is
// forgotten after PreviewForget.
func TestLifecyclePolicyPreviewRetention(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	o := quietOptions()
	o.Clock = clk
	e := openTestEngine(t, o)
	seedScheduleRepo(t, e, nil, "p/old")
	p, err := e.StartLifecyclePolicyPreview(ctx, "p/old", awsKeepOneUntagged)
	require.NoError(t, err)
	require.Equal(t, PreviewComplete, p.Status)

	clk.Advance(PreviewRetention)
	p, ds := previewDigests(t, e, "p/old")
	assert.Equal(t, PreviewComplete, p.Status, "kept for the whole retention")
	assert.Len(t, ds, 2)
	clk.Advance(time.Second)
	p, ds = previewDigests(t, e, "p/old")
	assert.Equal(t, PreviewExpired, p.Status)
	assert.Zero(t, p.ExpiringImages)
	assert.Empty(t, ds, "an expired preview has no results")

	e.sweepPreviews()
	n := 0
	require.NoError(t, e.db.PreviewResults("p/old", "", func(digest.Digest, []byte) error { n++; return nil }))
	assert.Zero(t, n, "the sweep deleted its results")
	p, _ = previewDigests(t, e, "p/old")
	assert.Equal(t, PreviewExpired, p.Status)

	clk.Advance(PreviewForget - PreviewRetention)
	e.sweepPreviews()
	_, err = e.db.Preview("p/old")
	require.ErrorIs(t, err, index.ErrNotFound)
	_, err = e.LifecyclePolicyPreview(ctx, "p/old", "", nil)
	require.ErrorIs(t, err, ErrLifecyclePreviewNotFound)
}
