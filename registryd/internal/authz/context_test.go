package authz

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/request"
)

// TestRequestContext: a decision sees the caller's address and TLS from
// the server's request.Info, and the tags the request sets from the
// question (All with Access.RequestTags, or WithRequestTags).
func TestRequestContext(t *testing.T) {
	e, err := engine.Open(t.TempDir(), &engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	policy, err := engine.ParseIdentityPolicy("conditions", `{"Version":"2012-10-17","Statement":[
		{"Sid":"FromTheOfficeOverTLS","Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*",
		 "Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"},"Bool":{"aws:SecureTransport":"true"}}},
		{"Sid":"CreateTagged","Effect":"Allow","Action":["ecr:CreateRepository","ecr:TagResource"],"Resource":"*",
		 "Condition":{"StringEquals":{"aws:RequestTag/team":"a"},"ForAllValues:StringEquals":{"aws:TagKeys":["team","cost"]}}}]}`)
	require.NoError(t, err)
	alice, err := engine.NewPrincipal("000000000000", "", "alice", engine.NewIdentityPolicies(policy))
	require.NoError(t, err)
	az, err := NewIAM(e, IAMConfig{})
	require.NoError(t, err)

	ctxFrom := func(ip string, tls bool) context.Context {
		info := &request.Info{SecureTransport: tls}
		if ip != "" {
			info.SourceIP = netip.MustParseAddr(ip)
		}
		return request.WithInfo(context.Background(), info)
	}
	pull := Access{Action: BatchGetImage, Resource: Repository("r")}
	assert.NoError(t, All(ctxFrom("192.0.2.7", true), az, alice, pull))
	assert.ErrorIs(t, All(ctxFrom("198.51.100.7", true), az, alice, pull), engine.ErrAccessDenied, "another network")
	assert.ErrorIs(t, All(ctxFrom("192.0.2.7", false), az, alice, pull), engine.ErrAccessDenied, "no TLS")
	assert.ErrorIs(t, All(ctxFrom("", true), az, alice, pull), engine.ErrAccessDenied, "no address: the condition's key is absent")
	assert.ErrorIs(t, All(context.Background(), az, alice, pull), engine.ErrAccessDenied, "no request info")

	create := func(tags map[string]string) Access {
		return Access{Action: CreateRepository, Resource: Repository("new"), RequestTags: tags}
	}
	ctx := context.Background()
	assert.NoError(t, All(ctx, az, alice, create(map[string]string{"team": "a"})))
	assert.NoError(t, All(ctx, az, alice, create(map[string]string{"team": "a", "cost": "1"})))
	assert.ErrorIs(t, All(ctx, az, alice, create(map[string]string{"team": "b"})), engine.ErrAccessDenied, "another team")
	assert.ErrorIs(t, All(ctx, az, alice, create(map[string]string{"team": "a", "owner": "x"})), engine.ErrAccessDenied, "a tag key not allowed")
	assert.ErrorIs(t, All(ctx, az, alice, create(nil)), engine.ErrAccessDenied, "no tags")
	// The tags belong to their question, not to the next one.
	err = All(ctx, az, alice, create(map[string]string{"team": "a"}), Access{Action: TagResource, Resource: Repository("new")})
	assert.ErrorIs(t, err, engine.ErrAccessDenied)
	assert.NoError(t, az.Authorize(WithRequestTags(ctx, map[string]string{"team": "a"}), alice, TagResource, Repository("new")))
}

// TestSimulate: the decision and its deciding statement, and the
// simulations that name no request Berth could decide.
func TestSimulate(t *testing.T) {
	ctx := context.Background()
	e, err := engine.Open(t.TempDir(), &engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	_, err = e.CreateRepository(ctx, "team/app", engine.RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, e.SetRepositoryPolicy(ctx, "team/app",
		`{"Version":"2012-10-17","Statement":[{"Sid":"NoPushFromOutside","Effect":"Deny","Principal":"*","Action":"ecr:PutImage","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`))
	all, err := engine.ParseIdentityPolicy("all", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	require.NoError(t, err)
	alice, err := engine.NewPrincipal("000000000000", "", "alice", engine.NewIdentityPolicies(all))
	require.NoError(t, err)

	res, err := Simulate(ctx, e, alice, Simulation{User: "alice", Action: "ecr:PutImage", Repository: "team/app", SourceIP: "10.1.2.3"})
	require.NoError(t, err)
	assert.Equal(t, SimulationResult{Principal: "arn:aws:iam::000000000000:user/alice", Action: "ecr:PutImage",
		Resource: "arn:aws:ecr:us-east-1:000000000000:repository/team/app", Decision: "Allow",
		Reason: res.Reason}, res)
	assert.Contains(t, res.Reason, `identity policy "all"`)
	res, err = Simulate(ctx, e, alice, Simulation{User: "alice", Action: "ecr:PutImage", Repository: "team/app", SourceIP: "192.0.2.1"})
	require.NoError(t, err)
	assert.Equal(t, "ExplicitDeny", res.Decision)
	assert.Contains(t, res.Reason, `NoPushFromOutside`)
	res, err = Simulate(ctx, e, engine.Principal{Account: "000000000000"}, Simulation{Action: "ecr:BatchGetImage", Repository: "team/app"})
	require.NoError(t, err)
	assert.Equal(t, "ImplicitDeny", res.Decision)
	assert.Equal(t, "anonymous", res.Principal)

	for _, bad := range []Simulation{
		{User: "alice"},
		{User: "alice", Action: "ecr:*"},
		{User: "alice", Action: "ecr:PutImages"},
		{User: "alice", Action: "s3:GetObject"},
		{User: "alice", Action: "PutImage"},
		{User: "alice", Action: "ecr:PutImage", Repository: "r", Key: "k"},
		{User: "alice", Action: "ecr:PutImage", Key: "k"},
		{User: "alice", Action: "ecr:PutImage", SourceIP: "not-an-ip"},
	} {
		_, err := Simulate(ctx, e, alice, bad)
		require.ErrorIs(t, err, ErrSimulation, "%+v", bad)
		t.Log(err)
	}
	res, err = Simulate(ctx, e, alice, Simulation{User: "alice", Action: "kms:CreateGrant", Key: "team-key"})
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:kms:us-east-1:000000000000:key/team-key", res.Resource)
}
