package authz

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// TestIAM: the engine decides (identity policies and a repository's
// policy); an open registry refuses only what a policy explicitly denies;
// anonymous pulls when they are on; and an unknown action, no action or
// no resource is refused.
func TestIAM(t *testing.T) {
	ctx := context.Background()
	e, err := engine.Open(t.TempDir(), &engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	_, err = e.CreateRepository(ctx, "team/app", engine.RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, e.SetRepositoryPolicy(ctx, "team/app",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:PutImage"}]}`))
	az, err := NewIAM(e, IAMConfig{})
	require.NoError(t, err)
	_, err = NewIAM(nil, IAMConfig{})
	require.Error(t, err)
	open, err := NewIAM(e, IAMConfig{Open: true})
	require.NoError(t, err)
	anonPull, err := NewIAM(e, IAMConfig{AnonymousPull: true})
	require.NoError(t, err)

	all, err := engine.ParseIdentityPolicy("all", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	require.NoError(t, err)
	alice, err := engine.NewPrincipal("000000000000", "", "alice", engine.NewIdentityPolicies(all))
	require.NoError(t, err)
	bob, err := engine.NewPrincipal("000000000000", "", "bob", engine.NewIdentityPolicies(all))
	require.NoError(t, err)
	carol, err := engine.NewPrincipal("000000000000", "", "carol", nil)
	require.NoError(t, err)
	anon := engine.Principal{Account: "000000000000"}
	tests := []struct {
		name     string
		who      engine.Principal
		action   Action
		resource Resource
		denied   bool
	}{
		{"allowed by the policy", alice, PutImage, Repository("team/app"), false},
		{"denied by the policy", bob, PutImage, Repository("team/app"), true},
		{"another action", bob, BatchGetImage, Repository("team/app"), false},
		{"a repository without a policy", bob, PutImage, Repository("other"), false},
		{"registry level", bob, CreateRepositoryCreationTemplate, Registry, false},
		{"admin", bob, AdminCollectGarbage, Registry, false},
		{"admin on a repository", bob, AdminApplyLifecycle, Repository("team/app"), false},
		{"no identity policy", carol, BatchGetImage, Repository("team/app"), true},
		{"anonymous", anon, BatchGetImage, Repository("team/app"), true},
		{"unknown action", alice, Action("ecr:GetImageCopyStatus"), Registry, true},
		{"key", alice, KMSDescribeKey, Key("team-key"), false},
		{"key without a name", alice, KMSDescribeKey, Key(""), true},
		{"no action", alice, "", Repository("team/app"), true},
		{"no resource", alice, CreateRepositoryCreationTemplate, Resource{}, true},
		{"a repository without a name", alice, PutImage, Repository(""), true},
		{"admin without a resource", alice, AdminFsck, Resource{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := az.Authorize(ctx, tt.who, tt.action, tt.resource)
			if tt.denied {
				require.ErrorIs(t, err, engine.ErrAccessDenied)
			} else {
				require.NoError(t, err)
			}
		})
	}
	require.NoError(t, open.Authorize(ctx, anon, PutImage, Repository("other")), "an open registry")
	require.ErrorIs(t, open.Authorize(ctx, anon, Action("ecr:Nope"), Repository("other")), engine.ErrAccessDenied)
	require.NoError(t, anonPull.Authorize(ctx, anon, BatchGetImage, Repository("team/app")), "anonymous pulls")
	require.ErrorIs(t, anonPull.Authorize(ctx, anon, PutImage, Repository("team/app")), engine.ErrAccessDenied, "anonymous pulls, not pushes")
	require.NoError(t, e.SetRepositoryPolicy(ctx, "team/app",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*"}]}`))
	require.ErrorIs(t, open.Authorize(ctx, anon, BatchGetImage, Repository("team/app")), engine.ErrAccessDenied, "an explicit deny refuses on an open registry")
	require.ErrorIs(t, anonPull.Authorize(ctx, anon, BatchGetImage, Repository("team/app")), engine.ErrAccessDenied)
	require.NoError(t, e.SetRepositoryPolicy(ctx, "team/app",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:PutImage"}]}`))
	require.ErrorIs(t, All(ctx, az, alice), ErrNoAccess, "no question is a refusal")
	require.ErrorIs(t, All(ctx, az, alice), engine.ErrAccessDenied)
	require.NoError(t, All(ctx, az, bob, Access{Action: BatchGetImage, Resource: Repository("team/app")}, Access{Action: ListImages, Resource: Repository("team/app")}))
	require.ErrorIs(t, All(ctx, az, bob, Access{Action: BatchGetImage, Resource: Repository("team/app")}, Access{Action: PutImage, Resource: Repository("team/app")}), engine.ErrAccessDenied)
}
