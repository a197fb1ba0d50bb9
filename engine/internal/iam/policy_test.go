package iam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPolicyErrorNamesStatementAndField(t *testing.T) {
	_, err := Parse(IdentityPolicy, "user/alice/ci", `{"Version":"2012-10-17","Statement":[
		{"Sid":"Ok","Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*"},
		{"Sid":"Typo","Effect":"Deny","Action":"ecr:PutImages","Resource":"*"}]}`)
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorIs(t, err, ErrUnknownAction)
	require.False(t, errors.Is(err, ErrSyntax))
	var pe *PolicyError
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, "user/alice/ci", pe.Policy)
	assert.Equal(t, 1, pe.Statement)
	assert.Equal(t, "Typo", pe.Sid)
	assert.Equal(t, "Action", pe.Field)
	assert.Equal(t, `iam: unknown action: policy "user/alice/ci", Statement[1] (Sid "Typo"), Action: "ecr:PutImages" names no ecr action (see the service's actions in the AWS Service Authorization Reference)`, err.Error())

	_, err = Parse(RepositoryPolicy, "repository/x", `{`)
	require.ErrorIs(t, err, ErrSyntax)
	assert.Contains(t, err.Error(), `iam: malformed policy: policy "repository/x": not a JSON policy`)

	_, err = Parse(Kind(0), "x", `{}`)
	require.ErrorIs(t, err, ErrInvalid)
}

// ECR takes a repository policy whose statements repeat a Sid; an
// identity policy (IAM) does not.
func TestRepeatedSid(t *testing.T) {
	stmts := `"Statement":[
		{"Sid":"Pull","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"},
		{"Sid":"Pull","Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}]`
	p, err := Parse(RepositoryPolicy, "repository/app", `{"Version":"2012-10-17",`+stmts+`}`)
	require.NoError(t, err)
	d := Evaluate(&Request{Action: "ecr:PutImage", Resource: "arn:aws:ecr:us-east-1:000000000000:repository/app"}, nil, []*Policy{p})
	assert.Equal(t, ExplicitDeny, d.Outcome)
	assert.Equal(t, 1, d.Statement.Index, "the audit log names the statement by its index")

	_, err = Parse(IdentityPolicy, "user/alice/ci", `{"Version":"2012-10-17","Statement":[
		{"Sid":"Pull","Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*"},
		{"Sid":"Pull","Effect":"Allow","Action":"ecr:ListImages","Resource":"*"}]}`)
	require.ErrorIs(t, err, ErrSyntax)
	assert.Contains(t, err.Error(), "given to two statements")
}

func TestSizeLimits(t *testing.T) {
	// An identity policy of 6,144 characters without white space is
	// accepted however much white space it has; one more is refused.
	stmt := func(i int) string {
		return fmt.Sprintf(`{"Sid":"S%d","Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"arn:aws:ecr:*:*:repository/r%d"}`, i, i)
	}
	build := func(n int, pad string) string {
		var b strings.Builder
		b.WriteString(`{"Version":"2012-10-17","Statement":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(pad + stmt(i))
		}
		b.WriteString(`]}`)
		return b.String()
	}
	nonSpace := func(s string) int { return len(strings.Join(strings.Fields(s), "")) }
	n := 1
	for nonSpace(build(n+1, "")) <= MaxIdentityPolicySize {
		n++
	}
	padded := build(n, strings.Repeat(" \n\t", 40))
	require.Greater(t, len(padded), MaxIdentityPolicySize)
	p, err := Parse(IdentityPolicy, "big", padded)
	require.NoError(t, err)
	assert.Equal(t, n, p.Len())
	_, err = Parse(IdentityPolicy, "too big", build(n+1, ""))
	require.ErrorIs(t, err, ErrTooLarge)

	repo := `{"Version":"2012-10-17","Statement":{"Sid":"` + strings.Repeat("x", MaxRepositoryPolicySize) + `","Effect":"Allow","Principal":"*","Action":"ecr:*"}}`
	_, err = Parse(RepositoryPolicy, "r", repo)
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = Parse(KeyPolicy, "k", `{"Version":"2012-10-17","Statement":{"Sid":"`+strings.Repeat("x", MaxKeyPolicySize)+`","Effect":"Allow","Principal":"*","Action":"kms:*"}}`)
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = Parse(RepositoryPolicy, "r", "{\"Version\":\"2012-10-17\",\"Statement\":{\"Sid\":\"\xff\",\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"ecr:*\"}}")
	require.ErrorIs(t, err, ErrSyntax)
}

func TestPolicyAccessors(t *testing.T) {
	p, err := Parse(RepositoryPolicy, "repository/a", `{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}}`)
	require.NoError(t, err)
	assert.Equal(t, RepositoryPolicy, p.Kind())
	assert.Equal(t, "repository/a", p.Source())
	assert.Equal(t, Version2008, p.Version())
	assert.Equal(t, 1, p.Len())
	assert.Equal(t, `repository policy "repository/a" (1 statements)`, p.String())
	for k, s := range map[Kind]string{IdentityPolicy: "identity policy", RepositoryPolicy: "repository policy", RegistryPolicy: "registry policy", KeyPolicy: "key policy", Kind(9): "policy"} {
		assert.Equal(t, s, k.String())
	}
}

func TestNewUser(t *testing.T) {
	u, err := NewUser("123456789012", "", "alice", "AIDAALICE")
	require.NoError(t, err)
	assert.Equal(t, Principal{ARN: "arn:aws:iam::123456789012:user/alice", Account: "123456789012", UserName: "alice", UserID: "AIDAALICE"}, u)
	assert.False(t, u.IsAnonymous())
	u, err = NewUser("123456789012", "/division/team/", "bob@example.com", "AIDABOB")
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:iam::123456789012:user/division/team/bob@example.com", u.ARN)
	for _, bad := range [][4]string{
		{"1234", "/", "alice", "id"},
		{"123456789012", "/", "al ice", "id"},
		{"123456789012", "/", "", "id"},
		{"123456789012", "division/", "alice", "id"},
		{"123456789012", "/a*/", "alice", "id"},
		{"123456789012", "/", "alice", ""},
	} {
		_, err := NewUser(bad[0], bad[1], bad[2], bad[3])
		assert.Error(t, err, "%q", bad)
	}
	assert.True(t, Anonymous().IsAnonymous())

	// A user with a path matches a principal ARN with that path, and no
	// other.
	p, err := Parse(RepositoryPolicy, "r", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/division/team/bob@example.com"},"Action":"ecr:*"}}`)
	require.NoError(t, err)
	req := Request{Principal: u, Action: "ecr:PutImage", Resource: "arn:aws:ecr:us-east-1:123456789012:repository/x"}
	assert.True(t, Evaluate(&req, nil, []*Policy{p}).Allowed())
	req.Principal, _ = NewUser("123456789012", "/", "bob@example.com", "AIDABOB")
	assert.False(t, Evaluate(&req, nil, []*Policy{p}).Allowed())
}

func TestActionNames(t *testing.T) {
	ecr := ActionNames("ecr")
	assert.Len(t, ecr, 60)
	assert.Contains(t, ecr, "ecr:BatchGetImage")
	assert.Contains(t, ecr, "ecr:BatchImportUpstreamImage")
	assert.Contains(t, ecr, "ecr:CreatePullThroughCacheRule")
	assert.Len(t, ActionNames("KMS"), 56)
	assert.Contains(t, ActionNames("kms"), "kms:GenerateDataKey")
	assert.Nil(t, ActionNames("s3"))
	for _, name := range append(ecr, ActionNames("kms")...) {
		id, known := lookupAction(name)
		require.True(t, known)
		require.NotEqual(t, noAction, id, name)
	}
	// The actions the engine maps OCI requests to (docs/policies.md).
	for _, a := range []string{"ecr:BatchGetImage", "ecr:PutImage", "ecr:BatchDeleteImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:CompleteLayerUpload", "ecr:UploadLayerPart", "ecr:ListImages", "kms:Decrypt", "kms:GenerateDataKey"} {
		_, err := Parse(IdentityPolicy, "p", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"`+a+`","Resource":"*"}}`)
		require.NoError(t, err, a)
	}
}

func TestWildcards(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"ecr:*", "ecr:PutImage", true},
		{"ecr:batch*", "ecr:BatchGetImage", true},
		{"ecr:*layer*", "ecr:UploadLayerPart", true},
		{"ecr:get?", "ecr:getx", true},
		{"ecr:get?", "ecr:get", false},
		{"ecr:putimage", "ecr:putimagex", false},
		{"*image", "ecr:PutImage", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, globFold(tt.pattern, tt.s), "%q %q", tt.pattern, tt.s)
		p, err := compilePattern("f", tt.pattern, true, false)
		require.NoError(t, err)
		var e evaluation
		assert.Equal(t, tt.want, e.match(&p, tt.s, true), "%q %q", tt.pattern, tt.s)
	}
	// '?' is one character, not one byte; case folding is Unicode's.
	var e evaluation
	for _, tt := range []struct {
		pattern, s string
		fold, want bool
	}{
		{"caf?", "café", false, true},
		{"caf??", "café", false, false},
		{"*?", "é", false, true},
		{"straße", "STRASSE", true, false},
		{"ÉCOLE", "école", true, true},
		{"a*é*z", "aXéYéz", false, true},
	} {
		p, err := compilePattern("f", tt.pattern, true, false)
		require.NoError(t, err)
		assert.Equal(t, tt.want, e.match(&p, tt.s, tt.fold), "%q %q", tt.pattern, tt.s)
	}
}

func TestTagsContext(t *testing.T) {
	tags := Tags{Resource: map[string]string{"Team": "blue"}, Request: map[string]string{"env": "prod", "Owner": "x"}}
	v, ok := tags.ResourceTag("team")
	assert.True(t, ok)
	assert.Equal(t, "blue", v)
	_, ok = tags.ResourceTag("owner")
	assert.False(t, ok)
	v, ok = tags.RequestTag("ENV")
	assert.True(t, ok)
	assert.Equal(t, "prod", v)
	assert.ElementsMatch(t, []string{"env", "Owner"}, tags.RequestTagKeys())
	assert.Nil(t, Tags{}.RequestTagKeys())
}

// countingContext counts the Context calls, to show that tags are
// fetched only for statements that need them.
type countingContext struct {
	Tags
	calls int
}

func (c *countingContext) ResourceTag(k string) (string, bool) {
	c.calls++
	return c.Tags.ResourceTag(k)
}

func TestContextIsLazy(t *testing.T) {
	p, err := Parse(IdentityPolicy, "p", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*"},
		{"Effect":"Deny","Action":"ecr:PutImage","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/frozen":"true"}}},
		{"Effect":"Allow","Action":"ecr:ListImages","Resource":"arn:aws:ecr:*:*:repository/other","Condition":{"StringEquals":{"aws:ResourceTag/team":"blue"}}}]}`)
	require.NoError(t, err)
	ctx := &countingContext{Tags: Tags{Resource: map[string]string{"frozen": "true"}}}
	req := Request{Principal: user(t, "123456789012", "u"), Action: "ecr:BatchGetImage", Resource: "arn:aws:ecr:us-east-1:123456789012:repository/app", Context: ctx}
	assert.True(t, Evaluate(&req, []*Policy{p}, nil).Allowed())
	assert.Zero(t, ctx.calls, "no statement that matches the request has a tag condition")
	req.Action = "ecr:ListImages"
	assert.False(t, Evaluate(&req, []*Policy{p}, nil).Allowed())
	assert.Zero(t, ctx.calls, "the resource of the tag condition's statement does not match")
	req.Action = "ecr:PutImage"
	assert.Equal(t, ExplicitDeny, Evaluate(&req, []*Policy{p}, nil).Outcome)
	assert.Equal(t, 1, ctx.calls)
}

func TestRequestTimeDefaultsToNow(t *testing.T) {
	before := time.Now().Add(-time.Second)
	p, err := Parse(IdentityPolicy, "p", fmt.Sprintf(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":%q}}}}`, before.UTC().Format(time.RFC3339)))
	require.NoError(t, err)
	req := Request{Principal: user(t, "123456789012", "u"), Action: "ecr:PutImage", Resource: "*"}
	assert.True(t, Evaluate(&req, []*Policy{p}, nil).Allowed())
	req.Time = before.Add(-time.Hour)
	assert.False(t, Evaluate(&req, []*Policy{p}, nil).Allowed())
}

// countingClock is a fixed clock that counts its reads.
type countingClock struct {
	t     time.Time
	reads int
}

func (c *countingClock) Now() time.Time { c.reads++; return c.t }

func TestClockIsReadOnlyForATimeCondition(t *testing.T) {
	p, err := Parse(IdentityPolicy, "p", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*"},
		{"Effect":"Allow","Action":"ecr:PutImage","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2026-06-01T00:00:00Z"},"NumericLessThan":{"aws:EpochTime":"1780272000"}}}]}`)
	require.NoError(t, err)
	clock := &countingClock{t: time.Date(2026, 5, 31, 23, 59, 59, 0, time.UTC)}
	req := Request{Principal: user(t, "123456789012", "u"), Action: "ecr:BatchGetImage", Resource: "*", Clock: clock}
	assert.True(t, Evaluate(&req, []*Policy{p}, nil).Allowed())
	assert.Zero(t, clock.reads, "no statement that matches the request has a time condition")
	req.Action = "ecr:PutImage"
	assert.True(t, Evaluate(&req, []*Policy{p}, nil).Allowed())
	assert.Equal(t, 1, clock.reads, "both time keys read the clock once")
	clock.t = clock.t.Add(time.Second)
	assert.False(t, Evaluate(&req, []*Policy{p}, nil).Allowed(), "the clock's time decides")
	req.Time = clock.t.Add(-time.Hour)
	assert.True(t, Evaluate(&req, []*Policy{p}, nil).Allowed(), "a Time given wins over the clock")
	assert.Equal(t, 2, clock.reads)
}

func TestVariablesOfOtherTypes(t *testing.T) {
	p, err := Parse(IdentityPolicy, "p", `{"Version":"2012-10-17","Statement":[
		{"Sid":"Ip","Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/ip":"${aws:SourceIp}"}}},
		{"Sid":"Tls","Effect":"Allow","Action":"ecr:PutImage","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/tls":"${aws:SecureTransport}"}}},
		{"Sid":"Day","Effect":"Allow","Action":"ecr:ListImages","Resource":"*","Condition":{"StringLike":{"aws:ResourceTag/day":"${aws:CurrentTime}"}}},
		{"Sid":"Epoch","Effect":"Allow","Action":"ecr:DescribeImages","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/epoch":"${aws:EpochTime}"}}}]}`)
	require.NoError(t, err)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	req := Request{Principal: user(t, "123456789012", "u"), Resource: "*", Time: now, SecureTransport: true,
		SourceIP: netip.MustParseAddr("::ffff:192.0.2.1"),
		Context:  Tags{Resource: map[string]string{"ip": "192.0.2.1", "tls": "true", "day": "2026-06-01T12:00:00Z", "epoch": "1780315200"}}}
	for _, a := range []string{"ecr:BatchGetImage", "ecr:PutImage", "ecr:ListImages", "ecr:DescribeImages"} {
		req.Action = a
		assert.True(t, Evaluate(&req, []*Policy{p}, nil).Allowed(), a)
	}
	req.SourceIP = netip.Addr{}
	req.Action = "ecr:BatchGetImage"
	assert.False(t, Evaluate(&req, []*Policy{p}, nil).Allowed(), "a variable with no value matches nothing")
}

func TestNilPoliciesAreSkipped(t *testing.T) {
	req := Request{Principal: user(t, "123456789012", "u"), Action: "ecr:PutImage", Resource: "*"}
	d := Evaluate(&req, []*Policy{nil}, []*Policy{nil})
	assert.Equal(t, Decision{}, d)
	assert.Equal(t, ImplicitDeny, d.Outcome)
	assert.False(t, d.Allowed())
	assert.Equal(t, "implicitly denied: no statement allows", d.String())
	assert.Equal(t, "no statement", d.Statement.String())
	assert.Equal(t, "iam.Decision{implicitly denied: no statement allows}", fmt.Sprintf("%#v", d))
	for o, s := range map[Outcome]string{Allow: "allow", ExplicitDeny: "explicit deny", ImplicitDeny: "implicit deny"} {
		assert.Equal(t, s, o.String())
	}
}

// TestEvaluateDoesNotAllocate: the hot path (a manifest HEAD: identity
// policies, a repository policy with conditions, tags from a Context that
// does not allocate) allocates nothing.
func TestEvaluateDoesNotAllocate(t *testing.T) {
	identity, resource, req := benchmarkSetup(t)
	var d Decision
	allocs := testing.AllocsPerRun(100, func() { d = Evaluate(req, identity, resource) })
	assert.Zero(t, allocs)
	assert.True(t, d.Allowed(), d.String())
}

func user(t testing.TB, account, name string) Principal {
	p, err := NewUser(account, "/", name, "AIDA"+strings.ToUpper(name))
	require.NoError(t, err)
	return p
}

func TestARNHelpers(t *testing.T) {
	assert.Equal(t, "arn:aws:ecr:us-east-1:123456789012:repository/team/app", RepositoryARN("us-east-1", "123456789012", "team/app"))
	assert.Equal(t, "arn:aws:kms:us-east-1:123456789012:key/k1", KeyARN("us-east-1", "123456789012", "k1"))
	parts, ok := splitARN(RepositoryARN("us-east-1", "123456789012", "a:b"))
	require.True(t, ok)
	assert.Equal(t, [5]string{"aws", "ecr", "us-east-1", "123456789012", "repository/a:b"}, parts)
	_, ok = splitARN("arn:aws:ecr:us-east-1")
	assert.False(t, ok)
	_, ok = splitARN("*")
	assert.False(t, ok)
}

// TestEvaluateConcurrently: parsed policies are shared between requests
// without locks (run with -race).
func TestEvaluateConcurrently(t *testing.T) {
	identity, resource, req := benchmarkSetup(t)
	done := make(chan Decision)
	for i := 0; i < 4; i++ {
		go func() {
			r := *req
			var d Decision
			for j := 0; j < 200; j++ {
				d = Evaluate(&r, identity, resource)
			}
			done <- d
		}()
	}
	for i := 0; i < 4; i++ {
		assert.True(t, (<-done).Allowed())
	}
}
