package iam_test

import (
	"fmt"
	"net/netip"

	"github.com/berthstore/berth/engine/internal/iam"
)

// repoTags is how an engine would hand a repository's tags to Evaluate:
// looked up only when a condition asks.
type repoTags struct{ tags map[string]string }

func (r repoTags) ResourceTag(k string) (string, bool) { v, ok := r.tags[k]; return v, ok }
func (r repoTags) RequestTag(string) (string, bool)    { return "", false }
func (r repoTags) RequestTagKeys() []string            { return nil }

// Parse policies when they are set (and refuse what cannot be enforced),
// build the principal when the caller authenticates, then decide each
// request.
func Example() {
	group, err := iam.Parse(iam.IdentityPolicy, "group/developers/pull-push", `{
		"Version": "2012-10-17",
		"Statement": [
			{"Sid": "Pull", "Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "Resource": "arn:aws:ecr:*:123456789012:repository/*"},
			{"Sid": "PushHome", "Effect": "Allow", "Action": "ecr:PutImage", "Resource": "arn:aws:ecr:*:123456789012:repository/home/${aws:username}/*"}
		]}`)
	if err != nil {
		panic(err)
	}
	repo, err := iam.Parse(iam.RepositoryPolicy, "repository/home/alice/app", `{
		"Version": "2012-10-17",
		"Statement": [
			{"Sid": "Frozen", "Effect": "Deny", "Principal": "*", "Action": "ecr:PutImage", "Condition": {"StringEquals": {"ecr:ResourceTag/frozen": "true"}}}
		]}`)
	if err != nil {
		panic(err)
	}
	alice, err := iam.NewUser("123456789012", "/", "alice", "AIDAALICE")
	if err != nil {
		panic(err)
	}
	req := iam.Request{
		Principal:       alice,
		Action:          "ecr:BatchGetImage", // a manifest HEAD
		Resource:        iam.RepositoryARN("us-east-1", "123456789012", "home/alice/app"),
		SourceIP:        netip.MustParseAddr("192.0.2.10"),
		SecureTransport: true,
		Context:         repoTags{tags: map[string]string{"frozen": "true"}},
	}
	identity, resource := []*iam.Policy{group}, []*iam.Policy{repo}
	fmt.Println(iam.Evaluate(&req, identity, resource))
	req.Action = "ecr:PutImage"
	d := iam.Evaluate(&req, identity, resource)
	fmt.Println(d.Allowed(), d.Outcome, d.Statement.Sid)
	fmt.Println(d)

	_, err = iam.Parse(iam.RepositoryPolicy, "repository/x", `{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/ci"}, "Action": "ecr:*"}}`)
	fmt.Println(err)
	// Output:
	// allowed by identity policy "group/developers/pull-push" statement 0 (Sid "Pull")
	// false explicit deny Frozen
	// explicitly denied by repository policy "repository/home/alice/app" statement 0 (Sid "Frozen")
	// iam: not enforceable by Berth: policy "repository/x", Statement[0], Principal.AWS: "arn:aws:iam::123456789012:role/ci": Berth has users and accounts, no roles or other principal types
}
