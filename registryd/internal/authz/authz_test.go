package authz

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// TestRepositoryPolicies: a repository's policy refuses what it denies,
// registry-level and admin actions are allowed, and an unknown action or
// no action at all is refused.
func TestRepositoryPolicies(t *testing.T) {
	ctx := context.Background()
	e, err := engine.Open(t.TempDir(), &engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	_, err = e.CreateRepository(ctx, "team/app", engine.RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, e.SetRepositoryPolicy(ctx, "team/app",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:PutImage"}]}`))
	az, err := NewRepositoryPolicies(e)
	require.NoError(t, err)
	_, err = NewRepositoryPolicies(nil)
	require.Error(t, err)

	alice := engine.Principal{Account: "000000000000", User: "alice"}
	bob := engine.Principal{Account: "000000000000", User: "bob"}
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
		{"unknown action", alice, Action("ecr:DescribeRegistry"), Registry, true},
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
	require.ErrorIs(t, All(ctx, az, alice), ErrNoAccess, "no question is a refusal")
	require.ErrorIs(t, All(ctx, az, alice), engine.ErrAccessDenied)
	require.NoError(t, All(ctx, az, bob, Access{BatchGetImage, Repository("team/app")}, Access{ListImages, Repository("team/app")}))
	require.ErrorIs(t, All(ctx, az, bob, Access{BatchGetImage, Repository("team/app")}, Access{PutImage, Repository("team/app")}), engine.ErrAccessDenied)
}
