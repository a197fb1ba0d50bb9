package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/engine/enginetest"
)

var (
	replDestA = engine.ReplicationDestination{Region: "us-west-2", RegistryID: "000000000000"}
	replDestB = engine.ReplicationDestination{Region: "eu-west-1", RegistryID: "111122223333"}
)

func replOptions() *engine.Options {
	return &engine.Options{CreateOnPush: true, ReplicationDestinations: []engine.ReplicationDestination{replDestA, replDestB},
		ReplicationInitialBackoff: time.Millisecond, ReplicationMaxBackoff: 2 * time.Millisecond}
}

func rule(prefix string, dests ...engine.ReplicationDestination) engine.ReplicationRule {
	r := engine.ReplicationRule{Destinations: dests}
	if prefix != "" {
		r.RepositoryFilters = []engine.ReplicationRepositoryFilter{{Filter: prefix, FilterType: engine.ReplicationFilterPrefixMatch}}
	}
	return r
}

// TestReplicationConfigurationValidate: ECR's limits and shapes, and the
// engine's own refusals (no endpoint, the registry itself).
func TestReplicationConfigurationValidate(t *testing.T) {
	e := enginetest.Open(t, replOptions())
	ctx := context.Background()
	many := func(n int) []engine.ReplicationRule {
		rs := make([]engine.ReplicationRule, n)
		for i := range rs {
			rs[i] = rule("", replDestA)
		}
		return rs
	}
	dests := func(n int) []engine.ReplicationDestination {
		var out []engine.ReplicationDestination
		for i := range n {
			out = append(out, engine.ReplicationDestination{Region: "us-east-2", RegistryID: strings.Repeat("0", 10) + string(rune('0'+i/10)) + string(rune('0'+i%10))})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		c    engine.ReplicationConfiguration
		err  string
	}{
		{"empty", engine.ReplicationConfiguration{}, ""},
		{"ten rules", engine.ReplicationConfiguration{Rules: many(10)}, ""},
		{"eleven rules", engine.ReplicationConfiguration{Rules: many(11)}, "at most 10"},
		{"no destination", engine.ReplicationConfiguration{Rules: []engine.ReplicationRule{{}}}, "at least one destination"},
		{"26 destinations", engine.ReplicationConfiguration{Rules: []engine.ReplicationRule{rule("", dests(26)...)}}, "at most 25"},
		{"a destination twice", engine.ReplicationConfiguration{Rules: []engine.ReplicationRule{rule("", replDestA, replDestA)}}, "twice"},
		{"bad region", engine.ReplicationConfiguration{Rules: []engine.ReplicationRule{rule("", engine.ReplicationDestination{Region: "US", RegistryID: "000000000000"})}}, "region"},
		{"bad registry", engine.ReplicationConfiguration{Rules: []engine.ReplicationRule{rule("", engine.ReplicationDestination{Region: "us-west-2", RegistryID: "12"})}}, "registryId"},
		{"bad filter type", engine.ReplicationConfiguration{Rules: []engine.ReplicationRule{{Destinations: []engine.ReplicationDestination{replDestA},
			RepositoryFilters: []engine.ReplicationRepositoryFilter{{Filter: "prod", FilterType: "WILDCARD"}}}}}, "PREFIX_MATCH"},
		{"short filter", engine.ReplicationConfiguration{Rules: []engine.ReplicationRule{rule("p", replDestA)}}, "2 to 256"},
		{"bad filter", engine.ReplicationConfiguration{Rules: []engine.ReplicationRule{rule("Prod", replDestA)}}, "2 to 256"},
		{"no endpoint", engine.ReplicationConfiguration{Rules: []engine.ReplicationRule{rule("", engine.ReplicationDestination{Region: "ap-south-1", RegistryID: "999999999999"})}}, "no endpoint configured"},
		{"itself", engine.ReplicationConfiguration{Rules: []engine.ReplicationRule{rule("", engine.ReplicationDestination{Region: engine.DefaultRegion, RegistryID: engine.DefaultAccount})}}, "this registry itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.PutReplicationConfiguration(ctx, tc.c)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, engine.ErrInvalidArgument)
			require.ErrorContains(t, err, tc.err)
		})
	}
}

// claim claims a job of dest within a second.
func claim(t *testing.T, e *engine.Engine, dest engine.ReplicationDestination) *engine.ReplicationJob {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	j, err := e.ClaimReplication(ctx, dest)
	require.NoError(t, err)
	return j
}

// noClaim checks that no job of dest is due within d.
func noClaim(t *testing.T, e *engine.Engine, dest engine.ReplicationDestination, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	j, err := e.ClaimReplication(ctx, dest)
	require.ErrorIs(t, err, context.DeadlineExceeded, "%+v", j)
}

func statusOf(t *testing.T, e *engine.Engine, repo, ref string) map[engine.ReplicationDestination]engine.ImageReplicationStatus {
	t.Helper()
	_, st, err := e.ImageReplicationStatuses(context.Background(), repo, ref)
	require.NoError(t, err)
	out := map[engine.ReplicationDestination]engine.ImageReplicationStatus{}
	for _, s := range st {
		out[s.Destination] = s
	}
	return out
}

// TestReplicationQueue: a push queues one job per destination its
// rules select, in its own batch; a claimed reference is not claimed
// again until finished; a push of the same tag while claimed runs after
// it, with the new digest; the image it replaced is queued by digest;
// failures back off and are retried, permanent ones give up (FAILED)
// until a retry; the queue survives a reopen.
func TestReplicationQueue(t *testing.T) {
	dir := t.TempDir()
	e := enginetest.OpenDir(t, dir, replOptions())
	ctx := context.Background()
	_, err := e.PutReplicationConfiguration(ctx, engine.ReplicationConfiguration{Rules: []engine.ReplicationRule{
		rule("prod/", replDestA, replDestB), rule("dev/", replDestA)}})
	require.NoError(t, err)

	enginetest.PushImage(t, e, "other/x", "v1", []byte("not replicated"))
	img1 := enginetest.PushImage(t, e, "prod/app", "v1", []byte("one"))
	require.Equal(t, map[engine.ReplicationDestination]engine.ImageReplicationStatus{}, statusOf(t, e, "other/x", "v1"))
	st := statusOf(t, e, "prod/app", "v1")
	require.Len(t, st, 2)
	require.Equal(t, engine.ReplicationInProgress, st[replDestA].Status)

	j := claim(t, e, replDestA)
	require.Equal(t, "prod/app", j.Repository)
	require.Equal(t, "v1", j.Tag)
	require.Equal(t, img1.Digest, j.Digest)
	// Claimed: not claimed again; a push of the tag meanwhile waits.
	img2 := enginetest.PushImage(t, e, "prod/app", "v1", []byte("two"))
	// The first image is queued by digest (it was pushed, it replicates).
	jd := claim(t, e, replDestA)
	require.Equal(t, "", jd.Tag)
	require.Equal(t, img1.Digest, jd.Digest)
	noClaim(t, e, replDestA, 50*time.Millisecond)
	require.NoError(t, e.FinishReplication(ctx, jd, engine.ReplicationResult{}))
	require.NoError(t, e.FinishReplication(ctx, j, engine.ReplicationResult{}))
	j2 := claim(t, e, replDestA)
	require.Equal(t, "v1", j2.Tag)
	require.Equal(t, img2.Digest, j2.Digest, "the tag's job runs again for its last push")
	require.Equal(t, engine.ReplicationComplete, statusOf(t, e, "prod/app", img1.Digest.String())[replDestA].Status)

	// A transient failure: retried after a backoff, the status stays.
	require.NoError(t, e.FinishReplication(ctx, j2, engine.ReplicationResult{Err: errors.New("503"), FailureCode: engine.ReplicationDestinationUnavailable}))
	require.Equal(t, engine.ReplicationInProgress, statusOf(t, e, "prod/app", "v1")[replDestA].Status)
	j3 := claim(t, e, replDestA)
	require.Equal(t, 1, j3.Attempts)
	// A permanent one: FAILED with its code, kept until a retry.
	require.NoError(t, e.FinishReplication(ctx, j3, engine.ReplicationResult{Err: errors.New("denied"), Permanent: true, FailureCode: engine.ReplicationAccessDenied}))
	s := statusOf(t, e, "prod/app", "v1")[replDestA]
	require.Equal(t, engine.ReplicationFailed, s.Status)
	require.Equal(t, engine.ReplicationAccessDenied, s.FailureCode)
	noClaim(t, e, replDestA, 50*time.Millisecond)
	figs := e.ReplicationFigures()
	require.Len(t, figs, 2)

	// Reopen: destination B's jobs (never claimed) and A's given-up job
	// are where they were.
	require.NoError(t, e.Close())
	e = enginetest.OpenDir(t, dir, replOptions())
	var failed []engine.ReplicationJobListing
	require.NoError(t, e.ListReplicationJobs(ctx, "", true, 0, func(l engine.ReplicationJobListing) error {
		failed = append(failed, l)
		return nil
	}))
	require.Len(t, failed, 1)
	require.Equal(t, engine.ReplicationAccessDenied, failed[0].FailureCode)
	seen := map[string]bool{}
	for range 2 {
		jb := claim(t, e, replDestB)
		seen[jb.Tag+"@"+jb.Digest.String()] = true
		require.NoError(t, e.FinishReplication(ctx, jb, engine.ReplicationResult{}))
	}
	require.Equal(t, map[string]bool{"v1@" + img2.Digest.String(): true, "@" + img1.Digest.String(): true}, seen)
	noClaim(t, e, replDestB, 50*time.Millisecond)
	// Retry: the given-up job is due again.
	n, err := e.RetryReplication(ctx, &replDestA)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, engine.ReplicationInProgress, statusOf(t, e, "prod/app", "v1")[replDestA].Status)
	j4 := claim(t, e, replDestA)
	require.Equal(t, 0, j4.Attempts)
	require.NoError(t, e.FinishReplication(ctx, j4, engine.ReplicationResult{}))
	require.Equal(t, engine.ReplicationComplete, statusOf(t, e, "prod/app", "v1")[replDestA].Status)
}

// TestReplicationTemplateAtDestination: a push carrying a replication
// source creates its repository from the REPLICATION template, even
// where create on push is off, and emits no PUSH.
func TestReplicationTemplateAtDestination(t *testing.T) {
	e := enginetest.Open(t, &engine.Options{})
	ctx := context.Background()
	require.NoError(t, e.PutCreationTemplate(ctx, engine.CreationTemplate{Prefix: "prod", AppliedFor: []string{engine.AppliedForReplication},
		RepositorySettings: engine.RepositorySettings{TagMutability: engine.TagImmutable}}))
	_, err := enginetest.TryPushImage(ctx, e, "prod/app", "v1", []byte("x"))
	require.ErrorIs(t, err, engine.ErrNameUnknown, "an ordinary push: no CREATE_ON_PUSH template")
	rctx := engine.WithReplicationSource(ctx, engine.ReplicationSource{Account: "111122223333", Region: "eu-west-1"})
	_, err = enginetest.TryPushImage(rctx, e, "prod/app", "v1", []byte("x"))
	require.NoError(t, err)
	r, err := e.Repository(ctx, "prod/app")
	require.NoError(t, err)
	require.Equal(t, engine.TagImmutable, r.TagMutability)
	_, err = enginetest.TryPushImage(rctx, e, "other/app", "v1", []byte("x"))
	require.NoError(t, err, "ECR's defaults without a REPLICATION template")
}

// FuzzParseReplicationSource: the replication header of any request.
func FuzzParseReplicationSource(f *testing.F) {
	for _, s := range []string{"111122223333/eu-west-1", "", "/", "111122223333/", "x/y/z", "111122223333/EU"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src, err := engine.ParseReplicationSource(s)
		if err != nil {
			require.ErrorIs(t, err, engine.ErrInvalidArgument)
			return
		}
		require.Equal(t, s, src.String())
	})
}
