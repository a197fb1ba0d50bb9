package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/gc"
	"github.com/berthstore/berth/index"
)

const (
	keepTwoUntagged  = `{"rules":[{"rulePriority":1,"description":"keep two untagged","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`
	keepThreeRelease = `{"rules":[{"rulePriority":1,"description":"keep three releases","selection":{"tagStatus":"tagged","tagPatternList":["release-*"],"countType":"imageCountMoreThan","countNumber":3},"action":{"type":"expire"}},
	{"rulePriority":2,"description":"keep five of the rest","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}`
)

func TestLifecyclePolicyCRUD(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	pushImage(t, e, "l/a", "v1", rnd(10))
	_, err := e.GetLifecyclePolicy(ctx, "l/a")
	require.ErrorIs(t, err, ErrLifecyclePolicyNotFound)
	_, err = e.LifecyclePreview(ctx, "l/a", "")
	require.ErrorIs(t, err, ErrLifecyclePolicyNotFound)
	err = e.PutLifecyclePolicy(ctx, "l/a", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	require.ErrorIs(t, err, ErrInvalidArgument)
	var pe *LifecyclePolicyError
	require.ErrorAs(t, err, &pe)
	require.NoError(t, e.PutLifecyclePolicy(ctx, "l/a", keepTwoUntagged))
	got, err := e.GetLifecyclePolicy(ctx, "l/a")
	require.NoError(t, err)
	require.Equal(t, keepTwoUntagged, got)
	old, err := e.DeleteLifecyclePolicy(ctx, "l/a")
	require.NoError(t, err)
	require.Equal(t, keepTwoUntagged, old)
	_, err = e.DeleteLifecyclePolicy(ctx, "l/a")
	require.ErrorIs(t, err, ErrLifecyclePolicyNotFound)
	require.ErrorIs(t, e.PutLifecyclePolicy(ctx, "l/none", keepTwoUntagged), ErrNameUnknown)
}

// TestLifecycleEvaluatedAt: an apply records when it evaluated the
// policy, even when it expires nothing; a restart keeps it; a preview
// does not count.
func TestLifecycleEvaluatedAt(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	dir := t.TempDir()
	o := quietOptions()
	o.Clock = clk
	e, err := Open(dir, o)
	require.NoError(t, err)
	defer func() { e.Close() }()
	pushImage(t, e, "l/a", "v1", rnd(10))
	require.NoError(t, e.PutLifecyclePolicy(ctx, "l/a", keepTwoUntagged))
	_, err = e.LifecyclePreview(ctx, "l/a", "")
	require.NoError(t, err)
	r, err := e.Repository(ctx, "l/a")
	require.NoError(t, err)
	assert.True(t, r.LifecycleEvaluatedAt.IsZero(), "a preview is no evaluation")
	clk.Advance(time.Hour)
	exp, err := e.LifecycleApply(ctx, "l/a", "")
	require.NoError(t, err)
	require.Empty(t, exp)
	r, err = e.Repository(ctx, "l/a")
	require.NoError(t, err)
	assert.True(t, clk.Now().Equal(r.LifecycleEvaluatedAt), "%v, want %v", r.LifecycleEvaluatedAt, clk.Now())
	assert.Equal(t, keepTwoUntagged, r.LifecyclePolicy, "the settings stay")
	require.NoError(t, e.Close())
	e, err = Open(dir, o)
	require.NoError(t, err)
	r, err = e.Repository(ctx, "l/a")
	require.NoError(t, err)
	assert.True(t, clk.Now().Equal(r.LifecycleEvaluatedAt))
}

// TestLifecyclePreviewEqualsApply shows that what preview lists is exactly
// what apply removes (with referrers and unshared children).
func TestLifecyclePreviewEqualsApply(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	o := quietOptions()
	o.Clock = clk
	e := openTestEngine(t, o)
	const repo = "l/b"
	tagged := map[string]digest.Digest{}
	for i := range 12 {
		tag := fmt.Sprintf("release-%d", i)
		if i%3 == 0 {
			tag = fmt.Sprintf("dev-%d", i)
		}
		d, p := pushImage(t, e, repo, tag, rnd(200))
		tagged[tag] = d
		if i%4 == 0 {
			pushReferrer(t, e, repo, d, len(p), tag)
		}
		clk.Advance(time.Minute) // distinct push times
	}
	for i := range 4 { // overwritten tag: untagged images
		pushImage(t, e, repo, "latest", rnd(100))
		_ = i
		clk.Advance(time.Minute)
	}
	require.NoError(t, e.PutLifecyclePolicy(ctx, repo, keepThreeRelease))

	before := manifestSet(t, e, repo)
	preview, err := e.LifecyclePreview(ctx, repo, "")
	require.NoError(t, err)
	require.NotEmpty(t, preview)
	require.Equal(t, before, manifestSet(t, e, repo), "preview changes nothing")
	g, err := gc.LoadGraph(e.db, repo)
	require.NoError(t, err)
	var ds []digest.Digest
	for _, x := range preview {
		ds = append(ds, x.Digest)
	}
	closure := g.Closure(ds)
	require.Greater(t, len(closure), len(preview), "referrers go with their subjects")

	applied, err := e.LifecycleApply(ctx, repo, "")
	require.NoError(t, err)
	require.Equal(t, preview, applied)
	var expired int64
	for _, n := range e.GCStats().ImagesExpired {
		expired += n
	}
	require.Equal(t, int64(len(applied)), expired)
	after := manifestSet(t, e, repo)
	for _, d := range closure {
		require.False(t, after[d], "%s should be gone", d)
		delete(before, d)
	}
	require.Equal(t, before, after, "nothing else removed")
	for _, x := range preview {
		for _, tag := range x.Tags {
			_, err := e.GetManifest(ctx, repo, tag)
			require.ErrorIs(t, err, ErrManifestUnknown)
		}
	}
	again, err := e.LifecyclePreview(ctx, repo, "")
	require.NoError(t, err)
	require.Empty(t, again, "a policy applied has nothing more to expire")
	_, err = e.CollectGarbage(ctx, noGrace)
	require.NoError(t, err)
	requireFsckClean(t, e, false)
}

func manifestSet(t testing.TB, e *Engine, repo string) map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	require.NoError(t, e.db.ListManifests(repo, func(m *index.Manifest) error { out[m.Digest] = true; return nil }))
	return out
}

// TestLifecycleMultiPlatformSafety shows that an untagged child of a
// tagged index is never expired or collected; expiring an index takes its
// children only when nothing else references them.
func TestLifecycleMultiPlatformSafety(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	o := quietOptions()
	o.Clock = clk
	e := openTestEngine(t, o)
	const repo = "mp/app"
	child := func(arch string) (digest.Digest, int) {
		d, p := pushImage(t, e, repo, "tmp-"+arch, rnd(300))
		require.NoError(t, e.DeleteTag(ctx, repo, "tmp-"+arch))
		return d, len(p)
	}
	amd, amdN := child("amd")
	arm, armN := child("arm")
	s390, s390N := child("s390")
	idx1 := pushIndex(t, e, repo, "v1", map[digest.Digest]int{amd: amdN, arm: armN})
	clk.Advance(time.Minute) // idx1 is the older push
	idx2 := pushIndex(t, e, repo, "v2", map[digest.Digest]int{amd: amdN, s390: s390N})
	sig := pushReferrer(t, e, repo, arm, armN, "arm")
	untagged, _ := pushImage(t, e, repo, "gone", rnd(100))
	require.NoError(t, e.DeleteTag(ctx, repo, "gone"))

	// Expire every untagged image: the children are not images.
	exp, err := e.LifecycleApply(ctx, repo, `{"rules":[{"rulePriority":1,"description":"all untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1}, "action":{"type":"expire"}},
	{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	require.ErrorIs(t, err, ErrInvalidArgument, "two untagged rules")
	require.Nil(t, exp)
	exp, err = e.LifecycleApply(ctx, repo, `{"rules":[{"rulePriority":1,"description":"keep no untagged","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	require.NoError(t, err)
	require.Empty(t, exp, "only one untagged image and the count keeps one")
	exp, err = e.LifecycleApply(ctx, repo, `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}, {"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	require.ErrorIs(t, err, ErrInvalidArgument, "'any' must be last and unique in priority")
	require.Nil(t, exp)
	exp, err = e.LifecycleApply(ctx, repo, `{"rules":[{"rulePriority":1,"description":"keep the newest two","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`)
	require.NoError(t, err)
	require.Len(t, exp, 1)
	require.Equal(t, idx1, exp[0].Digest, "the oldest of idx1, idx2, untagged")
	_, err = e.CollectGarbage(ctx, noGrace)
	require.NoError(t, err)
	now := manifestSet(t, e, repo)
	assert.False(t, now[idx1])
	assert.False(t, now[arm], "arm was idx1's alone")
	assert.False(t, now[sig], "and its signature went with it")
	assert.True(t, now[amd], "amd is shared with idx2")
	assert.True(t, now[s390])
	assert.True(t, now[idx2])
	assert.True(t, now[untagged])
	require.NoError(t, pullAll(ctx, e, repo, "v2"))
	requireFsckClean(t, e, false)
}
