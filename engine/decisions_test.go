package engine

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/berthstore/berth/engine/internal/clock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDecisionsFollowEveryChange: a decision served from the cache of
// decisions changes with the next decision after each change of what it
// depends on (the repository's policy and tags, the registry policy and
// its scope, the repository's deletion, the caller's identity policies),
// and is decided anew for another source address or transport.
func TestDecisionsFollowEveryChange(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	bob := principal(t, "bob", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"},`+
		`{"Effect":"Deny","Action":"ecr:BatchGetImage","Resource":"*","Condition":{"StringEquals":{"ecr:ResourceTag/locked":"yes"}}}]}`)
	pull := AccessRequest{Principal: bob, Action: "ecr:BatchGetImage", Repository: "r", SourceIP: netip.MustParseAddr("192.0.2.1")}
	allowed := func(req AccessRequest) bool {
		t.Helper()
		return authorize(t, e, req) == nil
	}
	cached := func(req AccessRequest) bool {
		t.Helper()
		return cachedFor(t, e, req)
	}

	require.True(t, allowed(pull), "the first decision reads the registry policy and settings")
	require.True(t, allowed(pull))
	require.True(t, cached(pull), "a decision on a repository is cached")
	require.True(t, allowed(pull), "and served from the cache")

	// The repository's policy.
	deny := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:BatchGetImage","Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}}]}`
	require.NoError(t, e.SetRepositoryPolicy(ctx, "r", deny))
	require.False(t, allowed(pull), "a new repository policy decides the next request")
	require.True(t, cached(pull))
	other := pull
	other.SourceIP = netip.MustParseAddr("198.51.100.7")
	require.True(t, allowed(other), "another address is decided on its own")
	require.False(t, allowed(pull), "and the first one's decision stays its own")
	secure := other
	secure.SecureTransport = true
	require.True(t, allowed(secure))
	_, err = e.DeleteRepositoryPolicy(ctx, "r")
	require.NoError(t, err)
	require.True(t, allowed(pull), "the policy's removal decides the next request")

	// The repository's tags.
	require.NoError(t, e.TagRepository(ctx, "r", []ResourceTag{{Key: "locked", Value: "yes"}}))
	require.False(t, allowed(pull), "a tag a condition reads decides the next request")
	require.NoError(t, e.UntagRepository(ctx, "r", []string{"locked"}))
	require.True(t, allowed(pull))

	// The registry policy and its scope.
	admin := principal(t, "admin", allowAll)
	fill := AccessRequest{Principal: admin, Action: "ecr:BatchImportUpstreamImage", Repository: "r"}
	require.True(t, allowed(fill))
	require.True(t, cached(fill))
	require.NoError(t, e.SetRegistryPolicy(ctx, `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:BatchImportUpstreamImage","Resource":"*"}]}`))
	require.False(t, allowed(fill), "a new registry policy decides the next request")
	require.True(t, cached(fill))
	// The registry policy's scope (V1: only the registry-level actions,
	// this one among them, are decided with it).
	require.NoError(t, e.PutAccountSetting(ctx, AccountSettingRegistryPolicyScope, RegistryPolicyScopeV1))
	require.False(t, cached(fill), "a change of the account settings leaves no decision served")
	require.False(t, allowed(fill))
	require.True(t, cached(fill))
	_, err = e.DeleteRegistryPolicy(ctx)
	require.NoError(t, err)
	require.True(t, allowed(fill))

	// The caller's identity policies: a reload gives the user a new set.
	bobAgain := principal(t, "bob", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:PutImage","Resource":"*"}]}`)
	again := pull
	again.Principal = bobAgain
	require.False(t, allowed(again), "the user's new identity policies decide")
	require.True(t, allowed(pull))

	// The repository deleted and created again with a policy of its own.
	require.NoError(t, e.DeleteRepository(ctx, "r", true))
	require.True(t, allowed(pull), "no repository, no policy")
	require.False(t, cached(pull), "a repository that does not exist is not cached")
	_, err = e.CreateRepository(ctx, "r", RepositorySettings{RepositoryPolicy: deny})
	require.NoError(t, err)
	require.False(t, allowed(pull), "the repository created again decides with its own policy")
}

// cachedFor reports whether a decision on req is served from e's cache
// of decisions now.
func cachedFor(t *testing.T, e *Engine, req AccessRequest) bool {
	t.Helper()
	ra, err := e.repositoryAccess(req.Repository)
	require.NoError(t, err)
	k := decisionKeyOf(&req, ra)
	_, ok := e.decisions.load(&k, e.registryPolicy.Load(), e.accountSettings.Load(), e.opts.Clock)
	return ok
}

// TestDecisionsStandWhileTheirTimeDoes: a decision that read the time is
// served only while every comparison it made with the time would come out
// the same: until the date a condition names, one second for the time as
// a policy variable.
func TestDecisionsStandWhileTheirTimeDoes(t *testing.T) {
	ctx := context.Background()
	opts := quietOptions()
	clk := clock.NewManual(time.Date(2026, 12, 1, 23, 59, 0, 0, time.UTC))
	opts.Clock = clk
	e := openTestEngine(t, opts)
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	until := principal(t, "carol", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*",`+
		`"Condition":{"DateLessThan":{"aws:CurrentTime":"2026-12-02T00:00:00Z"}}}]}`)
	pull := AccessRequest{Principal: until, Action: "ecr:BatchGetImage", Repository: "r"}
	require.NoError(t, authorize(t, e, pull))
	require.NoError(t, authorize(t, e, pull))
	require.True(t, cachedFor(t, e, pull))
	clk.Advance(59*time.Second + 999*time.Millisecond)
	require.True(t, cachedFor(t, e, pull), "the last second before the date")
	require.NoError(t, authorize(t, e, pull))
	clk.Advance(time.Millisecond)
	require.False(t, cachedFor(t, e, pull), "the date reached")
	require.ErrorIs(t, authorize(t, e, pull), ErrAccessDenied, "a decision past its time is decided again")
	require.True(t, cachedFor(t, e, pull), "and the new one cached")

	epoch := principal(t, "dan", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:*:*:repository/${aws:EpochTime}"}]}`)
	pull.Principal = epoch
	require.ErrorIs(t, authorize(t, e, pull), ErrAccessDenied)
	require.True(t, cachedFor(t, e, pull), "within the second")
	clk.Advance(time.Second)
	require.False(t, cachedFor(t, e, pull), "the time as a variable stands for one second")
}

// TestDecisionsNotCached: decisions that depend on more than the key
// (the tags the request sets, a policy given with the request) are
// decided every time.
func TestDecisionsNotCached(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	notProd := principal(t, "frank", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*",`+
		`"Condition":{"StringNotEqualsIfExists":{"aws:RequestTag/env":"prod"}}}]}`)
	tag := AccessRequest{Principal: notProd, Action: "ecr:TagResource", Repository: "r", RequestTags: map[string]string{"env": "dev"}}
	require.NoError(t, authorize(t, e, tag))
	require.NoError(t, authorize(t, e, tag))
	tag.RequestTags = map[string]string{"env": "prod"}
	require.ErrorIs(t, authorize(t, e, tag), ErrAccessDenied, "the tags a request sets are the request's")

	anyone := principal(t, "dave", allowAll)
	denyAll := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*"}]}`
	set := AccessRequest{Principal: anyone, Action: "ecr:SetRepositoryPolicy", Repository: "r", RepositoryPolicy: &denyAll}
	require.ErrorIs(t, authorize(t, e, set), ErrAccessDenied)
	require.ErrorIs(t, authorize(t, e, set), ErrAccessDenied)
	require.Zero(t, e.decisions.len())
	set.RepositoryPolicy = nil
	require.NoError(t, authorize(t, e, set), "a policy given with the request is not the stored one")
	require.Equal(t, 1, e.decisions.len(), "only the last decision was cached")
}

// TestDecisionsBounded: the cache starts over past maxDecisions.
func TestDecisionsBounded(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	who := principal(t, "erin", allowAll)
	for i := range maxDecisions + 10 {
		req := AccessRequest{Principal: who, Action: "ecr:BatchGetImage", Repository: "r",
			SourceIP: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})}
		require.NoError(t, authorize(t, e, req), strconv.Itoa(i))
	}
	assert.LessOrEqual(t, e.decisions.len(), maxDecisions)
	assert.Positive(t, e.decisions.len())
}

// BenchmarkAuthorizeRepeated decides the same pull again and again (a
// client's manifests and blobs) for a user whose identity policy has 20
// statements (the allowing one last, a Deny on aws:CurrentTime before
// it) on a repository with a policy of conditions: served from the
// cache of decisions; and with another source address each time, so
// that every decision is evaluated and cached anew (the cache's worst
// case: a miss, its store, and the start-over past maxDecisions).
func BenchmarkAuthorizeRepeated(b *testing.B) {
	ctx := context.Background()
	e := openTestEngine(b, quietOptions())
	repoPolicy := `{"Version":"2012-10-17","Statement":[
{"Sid":"AccountUsersPull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],
 "Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::000000000000:user/*"},"IpAddress":{"aws:SourceIp":["127.0.0.0/8","10.0.0.0/8"]}}},
{"Sid":"DenyPlainHTTPFromAfar","Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"Bool":{"aws:SecureTransport":"false"},"NotIpAddress":{"aws:SourceIp":["127.0.0.0/8","10.0.0.0/8"]}}}]}`
	_, err := e.CreateRepository(ctx, "team-c/web", RepositorySettings{RepositoryPolicy: repoPolicy})
	require.NoError(b, err)
	stmts := ""
	for i := range 18 {
		stmts += `{"Effect":"Allow","Action":["ecr:BatchGetImage","ecr:PutImage"],"Resource":"arn:aws:ecr:*:000000000000:repository/team-` + strconv.Itoa(i) + `/*","Condition":{"StringLike":{"aws:username":"dev*"}}},`
	}
	stmts += `{"Effect":"Deny","Action":"ecr:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2099-01-01T00:00:00Z"}}},`
	stmts += `{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"arn:aws:ecr:*:000000000000:repository/team-c/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}`
	dev := principal(b, "dev", `{"Version":"2012-10-17","Statement":[`+stmts+`]}`)
	pull := AccessRequest{Principal: dev, Action: "ecr:BatchGetImage", Repository: "team-c/web", SourceIP: netip.MustParseAddr("10.1.2.3")}
	require.NoError(b, authorize(b, e, pull))
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req := pull
			if d, err := e.Authorize(ctx, &req); err != nil || !d.Allowed() {
				b.Fatal(d, err)
			}
		}
	})
	b.Run("evaluated", func(b *testing.B) {
		b.ReportAllocs()
		var n uint32
		for b.Loop() {
			n++
			req := pull
			req.SourceIP = netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
			if d, err := e.Authorize(ctx, &req); err != nil || !d.Allowed() {
				b.Fatal(d, err)
			}
		}
	})
}
