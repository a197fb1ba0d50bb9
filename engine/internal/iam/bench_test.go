package iam

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchIdentity is a 20-statement identity policy of the kind a team's
// group carries: pulls and pushes on its prefixes, Denies guarded by
// conditions, KMS use, a NotResource fence.
const benchIdentity = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Login", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
    {"Sid": "Describe", "Effect": "Allow", "Action": ["ecr:Describe*", "ecr:List*"], "Resource": "arn:aws:ecr:*:123456789012:repository/*"},
    {"Sid": "DenyOutsideOffice", "Effect": "Deny", "Action": "ecr:*", "Resource": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24", "198.51.100.0/24", "2001:db8::/32"]}}},
    {"Sid": "DenyPlainHTTP", "Effect": "Deny", "Action": "ecr:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    {"Sid": "PushTeamA", "Effect": "Allow", "Action": ["ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"], "Resource": "arn:aws:ecr:*:123456789012:repository/team-a/*"},
    {"Sid": "PushTeamB", "Effect": "Allow", "Action": ["ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"], "Resource": "arn:aws:ecr:*:123456789012:repository/team-b/*"},
    {"Sid": "DenyDeleteRepo", "Effect": "Deny", "Action": ["ecr:DeleteRepository", "ecr:DeleteRepositoryPolicy", "ecr:SetRepositoryPolicy"], "Resource": "*"},
    {"Sid": "DenyProdPush", "Effect": "Deny", "Action": "ecr:PutImage", "Resource": "arn:aws:ecr:*:*:repository/prod/*", "Condition": {"StringNotEquals": {"aws:username": "release-bot"}}},
    {"Sid": "Home", "Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:123456789012:repository/home/${aws:username}/*"},
    {"Sid": "DenyAfterEnd", "Effect": "Deny", "Action": "ecr:*", "Resource": "*", "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}},
    {"Sid": "Scan", "Effect": "Allow", "Action": ["ecr:StartImageScan", "ecr:DescribeImageScanFindings"], "Resource": "arn:aws:ecr:*:123456789012:repository/*"},
    {"Sid": "Lifecycle", "Effect": "Allow", "Action": ["ecr:GetLifecyclePolicy", "ecr:GetLifecyclePolicyPreview", "ecr:StartLifecyclePolicyPreview"], "Resource": "arn:aws:ecr:*:123456789012:repository/team-*"},
    {"Sid": "Keys", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "arn:aws:kms:*:123456789012:key/*"},
    {"Sid": "DenyOtherKeys", "Effect": "Deny", "Action": "kms:*", "NotResource": "arn:aws:kms:*:123456789012:key/*"},
    {"Sid": "Tags", "Effect": "Allow", "Action": ["ecr:TagResource", "ecr:UntagResource"], "Resource": "*", "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}}},
    {"Sid": "DenyUntaggedCreate", "Effect": "Deny", "Action": "ecr:CreateRepository", "Resource": "*", "Condition": {"Null": {"aws:RequestTag/team": "true"}}},
    {"Sid": "Create", "Effect": "Allow", "Action": "ecr:CreateRepository", "Resource": "arn:aws:ecr:*:123456789012:repository/team-*"},
    {"Sid": "Cache", "Effect": "Allow", "Action": ["ecr:BatchImportUpstreamImage"], "Resource": "arn:aws:ecr:*:123456789012:repository/docker-hub/*"},
    {"Sid": "DenyForeignAccounts", "Effect": "Deny", "Action": "ecr:*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "123456789012"}}},
    {"Sid": "Pull", "Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"], "Resource": "arn:aws:ecr:*:123456789012:repository/*"}
  ]
}`

// benchRepository is a repository policy with conditions.
const benchRepository = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "OrgPull", "Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "Condition": {"StringEquals": {"aws:PrincipalAccount": ["123456789012", "111122223333"]}}},
    {"Sid": "FrozenNoPush", "Effect": "Deny", "Principal": "*", "Action": ["ecr:PutImage", "ecr:BatchDeleteImage"], "Condition": {"StringEqualsIgnoreCase": {"ecr:ResourceTag/frozen": "true"}}},
    {"Sid": "OnlyBuilders", "Effect": "Deny", "Principal": "*", "Action": "ecr:PutImage", "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:user/ci/*"}}}
  ]
}`

// staticTags is a Context over a fixed list, as an engine's repository
// record would be: it allocates nothing.
type staticTags struct{ keys, values []string }

func (s *staticTags) ResourceTag(k string) (string, bool) {
	for i, key := range s.keys {
		if strings.EqualFold(key, k) {
			return s.values[i], true
		}
	}
	return "", false
}
func (s *staticTags) RequestTag(string) (string, bool) { return "", false }
func (s *staticTags) RequestTagKeys() []string         { return nil }

func benchmarkSetup(t testing.TB) (identity, resource []*Policy, req *Request) {
	id, err := Parse(IdentityPolicy, "group/team-a/developers", benchIdentity)
	require.NoError(t, err)
	require.Equal(t, 20, id.Len())
	repo, err := Parse(RepositoryPolicy, "repository/team-a/app", benchRepository)
	require.NoError(t, err)
	u, err := NewUser("123456789012", "/", "alice", "AIDAALICE")
	require.NoError(t, err)
	req = &Request{
		Principal:       u,
		Action:          "ecr:BatchGetImage",
		Resource:        "arn:aws:ecr:us-east-1:123456789012:repository/team-a/app",
		SourceIP:        netip.MustParseAddr("203.0.113.7"),
		SecureTransport: true,
		Time:            time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC),
		Context:         &staticTags{keys: []string{"team", "frozen"}, values: []string{"a", "false"}},
	}
	return []*Policy{id}, []*Policy{repo}, req
}

// BenchmarkEvaluate decides requests against a 20-statement identity
// policy and a repository policy with conditions: a manifest HEAD
// (ecr:BatchGetImage, allowed), a push that a condition denies, and a
// request no statement allows.
func BenchmarkEvaluate(b *testing.B) {
	identity, resource, req := benchmarkSetup(b)
	for _, bc := range []struct {
		name, action, resource string
		want                   Outcome
	}{
		{"manifest-head", "ecr:BatchGetImage", req.Resource, Allow},
		{"push-denied", "ecr:PutImage", req.Resource, ExplicitDeny},
		{"implicit-deny", "ecr:PutLifecyclePolicy", req.Resource, ImplicitDeny},
	} {
		r := *req
		r.Action, r.Resource = bc.action, bc.resource
		if d := Evaluate(&r, identity, resource); d.Outcome != bc.want {
			b.Fatalf("%s: %v", bc.name, d)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Evaluate(&r, identity, resource)
			}
		})
	}
}

// BenchmarkParse parses the benchmark's identity policy: the cost paid
// once per policy change.
func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(IdentityPolicy, "p", benchIdentity); err != nil {
			b.Fatal(err)
		}
	}
}
