package engine

import (
	"bytes"
	"context"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAccountSettings: defaults, values refused, and what each value
// does: the registry policy's scope in Authorize, blob mounting in
// MountBlob; a setting survives a restart.
func TestAccountSettings(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(dir, quietOptions())
	require.NoError(t, err)
	defer func() { e.Close() }()

	for name, want := range map[string]string{
		AccountSettingRegistryPolicyScope: RegistryPolicyScopeV2,
		AccountSettingBlobMounting:        BlobMountingEnabled,
	} {
		got, err := e.AccountSetting(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, want, got, name)
	}
	for _, tc := range []struct{ name, value, msg string }{
		{AccountSettingBasicScanTypeVersion, "AWS_NATIVE", "neither AWS_NATIVE nor CLAIR"},
		{"NO_SUCH_SETTING", "V2", "is not an account setting"},
		{AccountSettingRegistryPolicyScope, "V3", `value "V3" of REGISTRY_POLICY_SCOPE (want V1 or V2)`},
		{AccountSettingBlobMounting, "enabled", "(want DISABLED or ENABLED)"},
	} {
		err := e.PutAccountSetting(ctx, tc.name, tc.value)
		require.ErrorIs(t, err, ErrInvalidArgument, tc.name)
		assert.Contains(t, err.Error(), tc.msg)
	}
	_, err = e.AccountSetting(ctx, AccountSettingBasicScanTypeVersion)
	require.ErrorIs(t, err, ErrInvalidArgument)

	// Scope: a registry policy that denies every ecr action to bob refuses
	// his pulls at V2 and only the three registry-level actions at V1.
	bob := principal(t, "bob", allowAll)
	require.NoError(t, e.SetRegistryPolicy(ctx, `{"Version":"2012-10-17","Statement":[{"Sid":"NoBob","Effect":"Deny",
		"Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:*","Resource":"*"}]}`))
	pull := AccessRequest{Principal: bob, Action: "ecr:BatchGetImage", Repository: "r"}
	create := AccessRequest{Principal: bob, Action: "ecr:CreateRepository", Repository: "r"}
	require.ErrorIs(t, authorize(t, e, pull), ErrAccessDenied, "V2: every request")
	require.ErrorIs(t, authorize(t, e, create), ErrAccessDenied)
	require.NoError(t, e.PutAccountSetting(ctx, AccountSettingRegistryPolicyScope, RegistryPolicyScopeV1))
	require.NoError(t, authorize(t, e, pull), "V1: not a pull")
	require.ErrorIs(t, authorize(t, e, create), ErrAccessDenied, "V1: CreateRepository still")

	// Blob mounting: disabled, a mount from another repository gives
	// nothing (the client uploads); the repository's own blob still
	// "mounts".
	layer := []byte("a layer to mount")
	d := digest.FromBytes(layer)
	_, err = e.PutBlob(ctx, "src", bytes.NewReader(layer), d)
	require.NoError(t, err)
	require.NoError(t, e.PutAccountSetting(ctx, AccountSettingBlobMounting, BlobMountingDisabled))
	_, err = e.MountBlob(ctx, "dst", "src", d)
	require.ErrorIs(t, err, ErrBlobUnknown)
	assert.Contains(t, err.Error(), "blob mounting is DISABLED")
	_, err = e.MountBlob(ctx, "src", "src", d)
	require.NoError(t, err)

	// Both survive a restart.
	require.NoError(t, e.Close())
	e, err = Open(dir, quietOptions())
	require.NoError(t, err)
	got, err := e.AccountSetting(ctx, AccountSettingRegistryPolicyScope)
	require.NoError(t, err)
	assert.Equal(t, RegistryPolicyScopeV1, got)
	require.NoError(t, authorize(t, e, pull))
	_, err = e.MountBlob(ctx, "dst", "src", d)
	require.ErrorIs(t, err, ErrBlobUnknown)
	require.NoError(t, e.PutAccountSetting(ctx, AccountSettingBlobMounting, BlobMountingEnabled))
	desc, err := e.MountBlob(ctx, "dst", "src", d)
	require.NoError(t, err)
	assert.Equal(t, d, desc.Digest)
}

// TestAuthorizeWithRepositoryPolicy: a decision under a policy about to
// be set (SetRepositoryPolicy's lockout check) uses it, not the stored
// one; a policy that does not parse is an error.
func TestAuthorizeWithRepositoryPolicy(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	alice := principal(t, "alice", allowAll)
	lockout := `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:SetRepositoryPolicy"}}`
	req := AccessRequest{Principal: alice, Action: "ecr:SetRepositoryPolicy", Repository: "r", RepositoryPolicy: &lockout}
	err = authorize(t, e, req)
	require.ErrorIs(t, err, ErrAccessDenied)
	var ad *AccessDeniedError
	require.ErrorAs(t, err, &ad)
	assert.Equal(t, DeniedByResourcePolicy, ad.DeniedBy)
	assert.Equal(t, "arn:aws:iam::000000000000:user/alice", ad.Principal)
	req.RepositoryPolicy = nil
	require.NoError(t, authorize(t, e, req), "the stored policy (none) allows")
	bad := `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:Nope"}}`
	req.RepositoryPolicy = &bad
	_, err = e.Authorize(ctx, &req)
	require.ErrorIs(t, err, ErrInvalidArgument)

	// An implicit deny names no policy kind.
	nobody := principal(t, "nobody")
	err = authorize(t, e, AccessRequest{Principal: nobody, Action: "ecr:PutImage", Repository: "r"})
	require.ErrorAs(t, err, &ad)
	assert.Equal(t, ImplicitDeny, ad.Outcome)
	assert.Empty(t, ad.DeniedBy)
}
