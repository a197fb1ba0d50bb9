package engine

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// principal returns user name of the test account holding the identity
// policies texts (none: no identity policy).
func principal(t testing.TB, name string, texts ...string) Principal {
	t.Helper()
	var ps []*IdentityPolicy
	for i, text := range texts {
		p, err := ParseIdentityPolicy(name+"/"+string(rune('a'+i)), text)
		require.NoError(t, err)
		ps = append(ps, p)
	}
	p, err := NewPrincipal(DefaultAccount, "", name, NewIdentityPolicies(ps...))
	require.NoError(t, err)
	return p
}

// allowAll is an identity policy that allows everything.
const allowAll = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`

// authorize asks e and returns the decision's error (nil: allowed).
func authorize(t testing.TB, e *Engine, req AccessRequest) error {
	t.Helper()
	d, err := e.Authorize(context.Background(), &req)
	require.NoError(t, err)
	return d.Err(&req)
}

func TestAuthorizeFollowsRepositoryPolicyChanges(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	alice, bob := principal(t, "alice", allowAll), principal(t, "bob", allowAll)
	push := func(who Principal) AccessRequest {
		return AccessRequest{Principal: who, Action: "ecr:PutImage", Repository: "r"}
	}
	require.NoError(t, authorize(t, e, push(bob)), "no repository, no policy")
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, authorize(t, e, push(bob)))
	deny := `{"Version":"2012-10-17","Statement":{"Sid":"NoBob","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:PutImage"}}`
	require.NoError(t, e.SetRepositoryPolicy(ctx, "r", deny))
	err = authorize(t, e, push(bob))
	require.ErrorIs(t, err, ErrAccessDenied, "the cache follows the change")
	assert.Contains(t, err.Error(), "arn:aws:iam::000000000000:user/bob may not ecr:PutImage on arn:aws:ecr:us-east-1:000000000000:repository/r")
	assert.Contains(t, err.Error(), `Sid "NoBob"`, "the deciding statement is named")
	require.NoError(t, authorize(t, e, push(alice)))
	require.NoError(t, authorize(t, e, AccessRequest{Principal: bob, Action: "ecr:BatchGetImage", Repository: "r"}))
	require.ErrorIs(t, e.SetRepositoryPolicy(ctx, "r", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:NoSuchAction"}}`),
		ErrInvalidArgument, "a policy Berth cannot enforce is refused")
	_, err = e.DeleteRepositoryPolicy(ctx, "r")
	require.NoError(t, err)
	require.NoError(t, authorize(t, e, push(bob)))
	require.NoError(t, e.SetRepositoryPolicy(ctx, "r", deny))
	require.ErrorIs(t, authorize(t, e, push(bob)), ErrAccessDenied)
	require.NoError(t, e.DeleteRepository(ctx, "r", true))
	_, err = e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, authorize(t, e, push(bob)), "a repository created again starts without its predecessor's policy")
}

// TestAuthorizeEvaluation: identity policies and the repository's policy
// together, as AWS evaluates them; nothing is allowed by default.
func TestAuthorizeEvaluation(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	_, err := e.CreateRepository(ctx, "team-a/app", RepositorySettings{ResourceTags: []ResourceTag{{Key: "team", Value: "a"}}})
	require.NoError(t, err)
	_, err = e.CreateRepository(ctx, "shared/base", RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, e.SetRepositoryPolicy(ctx, "shared/base", `{"Version":"2012-10-17","Statement":[
		{"Sid":"Everyone","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]},
		{"Sid":"NotFromOutside","Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}`))
	teamA := principal(t, "alice", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:*:*:repository/team-a/*"}]}`)
	byTag := principal(t, "tagged", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*","Condition":{"StringEquals":{"ecr:ResourceTag/team":"a"}}}]}`)
	nobody := principal(t, "carol")
	anon := Principal{Account: DefaultAccount}
	local := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name    string
		req     AccessRequest
		outcome Outcome
	}{
		{"identity allow on its prefix", AccessRequest{Principal: teamA, Action: "ecr:PutImage", Repository: "team-a/app"}, Allow},
		{"nothing outside its prefix", AccessRequest{Principal: teamA, Action: "ecr:PutImage", Repository: "team-b/app"}, ImplicitDeny},
		{"no identity policy: nothing", AccessRequest{Principal: nobody, Action: "ecr:BatchGetImage", Repository: "team-a/app"}, ImplicitDeny},
		{"registry-level needs Resource *", AccessRequest{Principal: teamA, Action: "ecr:CreatePullThroughCacheRule"}, ImplicitDeny},
		{"a resource tag condition", AccessRequest{Principal: byTag, Action: "ecr:BatchGetImage", Repository: "team-a/app"}, Allow},
		{"a tag condition unmet, the repository policy grants everyone", AccessRequest{Principal: byTag, Action: "ecr:BatchGetImage", Repository: "shared/base", SourceIP: local}, Allow},
		{"the repository policy grants everyone", AccessRequest{Principal: nobody, Action: "ecr:BatchGetImage", Repository: "shared/base", SourceIP: local}, Allow},
		{"anonymous by Principal *", AccessRequest{Principal: anon, Action: "ecr:GetDownloadUrlForLayer", Repository: "shared/base", SourceIP: local}, Allow},
		{"anonymous push", AccessRequest{Principal: anon, Action: "ecr:PutImage", Repository: "shared/base", SourceIP: local}, ImplicitDeny},
		{"an explicit deny wins", AccessRequest{Principal: teamA, Action: "ecr:BatchGetImage", Repository: "shared/base", SourceIP: netip.MustParseAddr("192.0.2.7")}, ExplicitDeny},
		{"unknown action", AccessRequest{Principal: teamA, Action: "ecr:Nope", Repository: "team-a/app"}, ImplicitDeny},
		{"key use under the default key policy", AccessRequest{Principal: principal(t, "admin", allowAll), Action: "kms:CreateGrant", Key: "team-a"}, Allow},
		{"key use without an identity grant", AccessRequest{Principal: teamA, Action: "kms:CreateGrant", Key: "team-a"}, ImplicitDeny},
		{"berth actions", AccessRequest{Principal: principal(t, "admin", allowAll), Action: "berth:CollectGarbage"}, Allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Authorize(ctx, &tt.req)
			require.NoError(t, err)
			require.Equal(t, tt.outcome, d.Outcome, "%s", d.Reason())
			if tt.outcome == Allow {
				require.NoError(t, d.Err(&tt.req))
			} else {
				require.ErrorIs(t, d.Err(&tt.req), ErrAccessDenied)
			}
		})
	}
}

// A policy stored before Berth enforced policies, which it cannot
// enforce, denies everything but replacing it.
func TestAuthorizeStoredUnenforceablePolicy(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	alice := principal(t, "alice", allowAll)
	_, err := e.CreateRepository(ctx, "old", RepositorySettings{})
	require.NoError(t, err)
	r, err := e.loadRepo("old")
	require.NoError(t, err)
	r.RepositoryPolicy = `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"NoSuchOperator":{"aws:SecureTransport":"false"}}}}`
	b := e.db.NewBatch()
	require.NoError(t, e.putRepo(b, &r.Repository))
	require.NoError(t, e.commitRepoChange(b, "old"))
	b.Close()
	err = authorize(t, e, AccessRequest{Principal: alice, Action: "ecr:BatchGetImage", Repository: "old"})
	require.ErrorIs(t, err, ErrAccessDenied)
	assert.Contains(t, err.Error(), "cannot be enforced")
	require.NoError(t, authorize(t, e, AccessRequest{Principal: alice, Action: "ecr:DeleteRepositoryPolicy", Repository: "old"}))
	_, err = e.DeleteRepositoryPolicy(ctx, "old")
	require.NoError(t, err, "it can be removed")
	require.NoError(t, authorize(t, e, AccessRequest{Principal: alice, Action: "ecr:BatchGetImage", Repository: "old"}))
}

// TestRegistryPolicy: set, read, enforced, deleted; what Berth cannot
// enforce is refused.
func TestRegistryPolicy(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	_, err := e.RegistryPolicy(ctx)
	require.ErrorIs(t, err, ErrRegistryPolicyNotFound)
	_, err = e.DeleteRegistryPolicy(ctx)
	require.ErrorIs(t, err, ErrRegistryPolicyNotFound)
	require.ErrorIs(t, e.SetRegistryPolicy(ctx, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:PutImage","Resource":"*"}]}`),
		ErrInvalidArgument, "a registry policy holds only the registry-level actions ECR enforces there")
	other := `{"Version":"2012-10-17","Statement":[{"Sid":"Replication","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":"arn:aws:ecr:us-east-1:000000000000:repository/*"},` +
		`{"Sid":"NoCacheFills","Effect":"Deny","Principal":"*","Action":"ecr:BatchImportUpstreamImage","Resource":"*"}]}`
	require.NoError(t, e.SetRegistryPolicy(ctx, other))
	got, err := e.RegistryPolicy(ctx)
	require.NoError(t, err)
	require.Equal(t, other, got)
	admin := principal(t, "admin", allowAll)
	err = authorize(t, e, AccessRequest{Principal: admin, Action: "ecr:BatchImportUpstreamImage", Repository: "cache/x"})
	require.ErrorIs(t, err, ErrAccessDenied, "the registry policy's Deny applies to every principal")
	assert.Contains(t, err.Error(), `registry policy "registry"`)
	require.NoError(t, authorize(t, e, AccessRequest{Principal: admin, Action: "ecr:CreateRepository", Repository: "cache/x"}))

	// The policy survives a restart.
	dir, reopen := e.Dir(), onBackendOf(e, quietOptions())
	require.NoError(t, e.Close())
	e, err = Open(dir, reopen)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	got, err = e.RegistryPolicy(ctx)
	require.NoError(t, err)
	require.Equal(t, other, got)
	require.ErrorIs(t, authorize(t, e, AccessRequest{Principal: admin, Action: "ecr:BatchImportUpstreamImage", Repository: "cache/x"}), ErrAccessDenied)
	old, err := e.DeleteRegistryPolicy(ctx)
	require.NoError(t, err)
	require.Equal(t, other, old)
	require.NoError(t, authorize(t, e, AccessRequest{Principal: admin, Action: "ecr:BatchImportUpstreamImage", Repository: "cache/x"}))
}

// Decisions racing with policy changes never keep a stale policy: once
// the changes stop, the decision follows the last one committed.
func TestAuthorizeRacingPolicyChanges(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	bob := principal(t, "bob", allowAll)
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	deny := `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}}`
	allow := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:PutImage"}}`
	req := AccessRequest{Principal: bob, Action: "ecr:PutImage", Repository: "r"}
	for round := range 20 {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						r := req
						_, _ = e.Authorize(ctx, &r)
					}
				}
			}()
		}
		for i := range 5 {
			text := allow
			if (i+round)%2 == 0 {
				text = deny
			}
			require.NoError(t, e.SetRepositoryPolicy(ctx, "r", text))
		}
		last := allow
		if (4+round)%2 == 0 {
			last = deny
		}
		close(stop)
		wg.Wait()
		err := authorize(t, e, req)
		if last == deny {
			require.ErrorIs(t, err, ErrAccessDenied, "round %d", round)
		} else {
			require.NoError(t, err, "round %d", round)
		}
	}
}

func TestUserID(t *testing.T) {
	a, b := UserID(DefaultAccount, "alice"), UserID(DefaultAccount, "bob")
	require.Len(t, a, 21)
	require.Equal(t, "AIDA", a[:4])
	require.NotEqual(t, a, b)
	require.Equal(t, a, UserID(DefaultAccount, "alice"), "stable")
	require.NotEqual(t, a, UserID("111122223333", "alice"), "per account")
}

// TestAuthorizeLocalPrincipal: a local user (a peer of the daemon's admin
// socket) is decided by its uid, not by policies: the daemon's own user
// and root may do everything, even what a policy denies every principal;
// any other user nothing. Its audit record names it as Local.
func TestAuthorizeLocalPrincipal(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, e.SetRepositoryPolicy(ctx, "r", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:*"}}`))
	self := uint32(os.Getuid())
	other := uint32(65534)
	if self == other {
		other = 65533
	}
	for _, tc := range []struct {
		who     Principal
		allowed bool
	}{
		{LocalPrincipal("me", self), true},
		{LocalPrincipal("root", 0), true},
		{LocalPrincipal("", other), false},
	} {
		for _, req := range []AccessRequest{
			{Principal: tc.who, Action: "ecr:DeleteRepository", Repository: "r"},
			{Principal: tc.who, Action: "kms:ScheduleKeyDeletion", Key: "k"},
			{Principal: tc.who, Action: "berth:CollectGarbage"},
		} {
			d, err := e.Authorize(ctx, &req)
			require.NoError(t, err)
			assert.Equal(t, tc.allowed, d.Allowed(), "%s %s: %s", tc.who.User, req.Action, d.Reason())
			if !tc.allowed {
				assert.Equal(t, ImplicitDeny, d.Outcome)
				assert.Contains(t, d.Err(&req).Error(), "local user uid:"+strconv.Itoa(int(other))+" (uid "+strconv.Itoa(int(other))+") may not "+req.Action)
				assert.Contains(t, d.Reason(), "is neither the user the daemon runs as")
			}
		}
	}
	d, err := e.Authorize(ctx, &AccessRequest{Principal: LocalPrincipal("root", 0), Action: "ecr:DeleteRepository", Repository: "r"})
	require.NoError(t, err)
	assert.Equal(t, e.RepositoryARN("r"), d.Resource)

	who := LocalPrincipal("", 42)
	_, local := who.Local()
	assert.True(t, local)
	assert.False(t, who.Anonymous())
	assert.Empty(t, who.ARN())
	var rec AuditRecord
	rec.SetPrincipal(who)
	assert.Equal(t, AuditLocal, rec.PrincipalType)
	assert.Equal(t, "uid:42", rec.UserName)
	assert.Equal(t, "uid:42", rec.UserID)
	assert.Empty(t, rec.PrincipalARN)
}
