package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// eachFixture is a store whose repositories carry every kind of policy
// and tag a listing's decisions depend on, and the callers that ask.
type eachFixture struct {
	e     *Engine
	repos []string
	who   map[string]Principal
}

// newEachFixture fills a store: repositories with and without tags,
// repository policies that allow and deny, one stored policy that can
// no longer be enforced, and names that are no repository.
func newEachFixture(t testing.TB) *eachFixture {
	t.Helper()
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	type repo struct {
		name, policy string
		tags         []ResourceTag
	}
	denyBob := `{"Version":"2012-10-17","Statement":{"Sid":"NoBob","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:*"}}`
	allowAnyone := `{"Version":"2012-10-17","Statement":{"Sid":"Public","Effect":"Allow","Principal":"*","Action":["ecr:DescribeRepositories","ecr:BatchGetImage"]}}`
	allowCarol := `{"Version":"2012-10-17","Statement":{"Sid":"Carol","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/carol"},"Action":"ecr:DescribeRepositories"}}`
	denyUnlessTLS := `{"Version":"2012-10-17","Statement":{"Sid":"TLS","Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}}`
	otherAccount := `{"Version":"2012-10-17","Statement":{"Sid":"Other","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"ecr:DescribeRepositories"}}`
	repos := []repo{
		{name: "team-a/app", tags: []ResourceTag{{Key: "team", Value: "a"}}},
		{name: "team-a/secret", tags: []ResourceTag{{Key: "team", Value: "a"}, {Key: "Secret", Value: "yes"}}, policy: denyBob},
		{name: "team-b/app", tags: []ResourceTag{{Key: "team", Value: "b"}}},
		{name: "public/base", policy: allowAnyone},
		{name: "carol/only", policy: allowCarol},
		{name: "tls/only", policy: denyUnlessTLS, tags: []ResourceTag{{Key: "TEAM", Value: "a"}}},
		{name: "shared/other", policy: otherAccount},
		{name: "plain"},
	}
	for _, r := range repos {
		_, err := e.CreateRepository(ctx, r.name, RepositorySettings{ResourceTags: r.tags})
		require.NoError(t, err)
		if r.policy != "" {
			require.NoError(t, e.SetRepositoryPolicy(ctx, r.name, r.policy))
		}
	}
	// A stored policy a later Berth cannot enforce.
	_, err := e.CreateRepository(ctx, "old", RepositorySettings{})
	require.NoError(t, err)
	r, err := e.loadRepo("old")
	require.NoError(t, err)
	r.RepositoryPolicy = `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"NoSuchOperator":{"aws:SecureTransport":"false"}}}}`
	b := e.db.NewBatch()
	require.NoError(t, e.putRepo(b, &r.Repository))
	require.NoError(t, e.commitRepoChange(b, "old"))
	b.Close()
	e.policies.Delete("old")

	f := &eachFixture{e: e, who: map[string]Principal{}}
	for _, r := range repos {
		f.repos = append(f.repos, r.name)
	}
	f.repos = append(f.repos, "old", "no/such/repository", "Not_A_Valid_Name")

	tagA := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"ecr:ResourceTag/team":"a"}}}}`
	prefixB := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["ecr:Describe*","ecr:CreateRepository"],"Resource":"arn:aws:ecr:us-east-1:000000000000:repository/team-b/*"}}`
	denySecret := `{"Version":"2012-10-17","Statement":{"Sid":"NoSecrets","Effect":"Deny","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/Secret":"yes"}}}}`
	denyPublic := `{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotAction":"ecr:BatchGetImage","Resource":"arn:aws:ecr:*:*:repository/public/*"}}`
	fromLoopback := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecr:DescribeRepositories","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}}`
	f.who["admin"] = principal(t, "admin", allowAll)
	f.who["alice"] = principal(t, "alice", tagA, denySecret)
	f.who["bob"] = principal(t, "bob", allowAll, denyPublic)
	f.who["carol"] = principal(t, "carol")
	f.who["dave"] = principal(t, "dave", prefixB, tagA)
	f.who["erin"] = principal(t, "erin", fromLoopback)
	f.who["anonymous"] = Principal{}
	other, err := NewPrincipal("111122223333", "", "olga", NewIdentityPolicies(mustIdentity(t, allowAll)))
	require.NoError(t, err)
	f.who["other-account"] = other
	f.who["local-root"] = LocalPrincipal("root", 0)
	f.who["local-stranger"] = LocalPrincipal("", 4242)
	f.who["unparsable"] = Principal{Account: "not-an-account", User: "x y"}
	return f
}

// mustIdentity parses an identity policy.
func mustIdentity(t testing.TB, text string) *IdentityPolicy {
	t.Helper()
	p, err := ParseIdentityPolicy("p", text)
	require.NoError(t, err)
	return p
}

// TestAuthorizeEachAsAuthorize: the batch decides every repository as
// Authorize decides it alone (outcome, resource, reason, and the
// refusal's error), for every caller, action and request context, with
// and without a registry policy, at either registry policy scope.
func TestAuthorizeEachAsAuthorize(t *testing.T) {
	ctx := context.Background()
	f := newEachFixture(t)
	registryPolicies := map[string]string{
		"none": "",
		"deny": `{"Version":"2012-10-17","Statement":[{"Sid":"NoCreate","Effect":"Deny","Principal":"*","Action":"ecr:CreateRepository","Resource":"arn:aws:ecr:us-east-1:000000000000:repository/team-a/*"},` +
			`{"Sid":"Olga","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/olga"},"Action":"ecr:CreateRepository","Resource":"*"}]}`,
	}
	actions := []string{"ecr:DescribeRepositories", "ecr:BatchGetImage", "ecr:CreateRepository", "ecr:SetRepositoryPolicy", "ecr:NoSuchAction", "s3:GetObject"}
	contexts := map[string]AccessRequest{
		"plain":         {},
		"tls, loopback": {SecureTransport: true, SourceIP: netip.MustParseAddr("127.0.0.1")},
		"request tags":  {RequestTags: map[string]string{"team": "a"}},
	}
	seen := map[Outcome]int{}
	for _, scope := range []string{RegistryPolicyScopeV2, RegistryPolicyScopeV1} {
		require.NoError(t, f.e.PutAccountSetting(ctx, AccountSettingRegistryPolicyScope, scope))
		for rpName, rp := range registryPolicies {
			if rp == "" {
				_, _ = f.e.DeleteRegistryPolicy(ctx)
			} else {
				require.NoError(t, f.e.SetRegistryPolicy(ctx, rp))
			}
			for whoName, who := range f.who {
				for _, action := range actions {
					for ctxName, base := range contexts {
						name := fmt.Sprintf("%s/%s/%s/%s/%s", scope, rpName, whoName, action, ctxName)
						req := base
						req.Principal, req.Action = who, action
						got, err := f.e.AuthorizeEach(ctx, &req, f.repos)
						require.NoError(t, err, name)
						require.Len(t, got, len(f.repos), name)
						for i, repo := range f.repos {
							one := req
							one.Repository = repo
							want, err := f.e.Authorize(ctx, &one)
							require.NoError(t, err, name)
							requireSameDecision(t, want, got[i], &one, name+" "+repo)
							seen[got[i].Outcome]++
						}
					}
				}
			}
		}
	}
	t.Logf("decisions compared: %v", seen)
	for _, o := range []Outcome{Allow, ExplicitDeny, ImplicitDeny} {
		require.NotZero(t, seen[o], "the table reaches %s", o)
	}
}

// requireSameDecision fails unless a and b say the same.
func requireSameDecision(t testing.TB, want, got Decision, req *AccessRequest, name string) {
	t.Helper()
	require.Equal(t, want.Outcome, got.Outcome, name)
	require.Equal(t, want.Resource, got.Resource, name)
	require.Equal(t, want.Reason(), got.Reason(), name)
	if want.Allowed() {
		return
	}
	require.Equal(t, want.Err(req).Error(), got.Err(req).Error(), name)
	require.Equal(t, want.Err(req).(*AccessDeniedError).DeniedBy, got.Err(req).(*AccessDeniedError).DeniedBy, name)
}

func TestAuthorizeEachRefusesAResourceOfItsOwn(t *testing.T) {
	e := openTestEngine(t, quietOptions())
	empty := ""
	for _, req := range []AccessRequest{
		{Action: "ecr:DescribeRepositories", Repository: "r"},
		{Action: "kms:DescribeKey", Key: "k"},
		{Action: "secretsmanager:GetSecretValue", Secret: "s"},
		{Action: "ecr:DescribeRepositories", RepositoryPolicy: &empty},
	} {
		_, err := e.AuthorizeEach(context.Background(), &req, []string{"a"})
		require.ErrorIs(t, err, ErrInvalidArgument)
	}
	_, err := e.AuthorizeEach(context.Background(), &AccessRequest{Action: "ecr:DescribeRepositories"}, []string{"a", ""})
	require.ErrorIs(t, err, ErrInvalidArgument, "a listing names repositories")
}

// BenchmarkListingDecisions decides one listing's question about 10,000
// repositories (ecr:DescribeRepositories by a user whose identity
// policy allows on a resource pattern with a tag condition, half the
// repositories tagged, a tenth with a repository policy) one by one with
// Authorize and together with AuthorizeEach.
func BenchmarkListingDecisions(b *testing.B) {
	const repos = 10000
	ctx := context.Background()
	e := openTestEngine(b, quietOptions())
	names := make([]string, repos)
	policy := `{"Version":"2012-10-17","Statement":{"Sid":"NoBob","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:*"}}`
	for i := range names {
		names[i] = fmt.Sprintf("team/r%05d", i)
		var tags []ResourceTag
		if i%2 == 0 {
			tags = []ResourceTag{{Key: "team", Value: "a"}}
		}
		_, err := e.CreateRepository(ctx, names[i], RepositorySettings{ResourceTags: tags})
		require.NoError(b, err)
		if i%10 == 0 {
			require.NoError(b, e.SetRepositoryPolicy(ctx, names[i], policy))
		}
	}
	who := principal(b, "alice", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:Describe*","Resource":"arn:aws:ecr:*:*:repository/team/*","Condition":{"StringEquals":{"ecr:ResourceTag/team":"a"}}}]}`)
	req := AccessRequest{Principal: who, Action: "ecr:DescribeRepositories"}
	b.Run("Authorize", func(b *testing.B) {
		for range b.N {
			one := req
			for _, name := range names {
				one.Repository = name
				if _, err := e.Authorize(ctx, &one); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*repos), "ns/repository")
	})
	b.Run("AuthorizeEach", func(b *testing.B) {
		for range b.N {
			if _, err := e.AuthorizeEach(ctx, &req, names); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*repos), "ns/repository")
	})
}

// FuzzAuthorizeEach: for an identity policy built from the fuzzer's
// effect, action, resource pattern and resource tag condition, and a
// request context, AuthorizeEach decides every repository of the
// fixture as Authorize does.
func FuzzAuthorizeEach(f *testing.F) {
	f.Add(false, "ecr:Describe*", "arn:aws:ecr:*:*:repository/team-a/*", "team", "a", uint8(0), true)
	f.Add(true, "ecr:*", "*", "Secret", "yes", uint8(1), false)
	f.Add(false, "ecr:DescribeRepositories", "arn:aws:ecr:us-east-1:000000000000:repository/*", "", "", uint8(2), false)
	fx := newEachFixture(f)
	actions := []string{"ecr:DescribeRepositories", "ecr:BatchGetImage", "ecr:SetRepositoryPolicy"}
	f.Fuzz(func(t *testing.T, deny bool, action, resource, tagKey, tagValue string, act uint8, secure bool) {
		effect := "Allow"
		if deny {
			effect = "Deny"
		}
		stmt := map[string]any{"Effect": effect, "Action": action, "Resource": resource}
		if tagKey != "" {
			stmt["Condition"] = map[string]any{"StringEquals": map[string]string{"ecr:ResourceTag/" + tagKey: tagValue}}
		}
		text, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{stmt}})
		require.NoError(t, err)
		p, err := ParseIdentityPolicy("fuzz", string(text))
		if err != nil {
			return // a policy Berth refuses to enforce
		}
		second, err := ParseIdentityPolicy("all", allowAll)
		require.NoError(t, err)
		for _, ps := range [][]*IdentityPolicy{{p}, {p, second}} {
			who, err := NewPrincipal(DefaultAccount, "", "fuzzer", NewIdentityPolicies(ps...))
			require.NoError(t, err)
			req := AccessRequest{Principal: who, Action: actions[int(act)%len(actions)], SecureTransport: secure}
			got, err := fx.e.AuthorizeEach(context.Background(), &req, fx.repos)
			require.NoError(t, err)
			for i, repo := range fx.repos {
				one := req
				one.Repository = repo
				want, err := fx.e.Authorize(context.Background(), &one)
				require.NoError(t, err)
				requireSameDecision(t, want, got[i], &one, repo)
			}
		}
	})
}
