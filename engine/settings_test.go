package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func wildcard(filters ...string) []TagFilter {
	out := make([]TagFilter, len(filters))
	for i, f := range filters {
		out[i] = TagFilter{Filter: f, FilterType: FilterTypeWildcard}
	}
	return out
}

func TestValidateSettings(t *testing.T) {
	manyTags := make([]ResourceTag, 51)
	for i := range manyTags {
		manyTags[i] = ResourceTag{Key: fmt.Sprintf("k%d", i), Value: "v"}
	}
	tests := []struct {
		name string
		s    RepositorySettings
		msg  string // "" means valid
	}{
		{name: "zero value"},
		{name: "mutable", s: RepositorySettings{TagMutability: TagMutable}},
		{name: "immutable", s: RepositorySettings{TagMutability: TagImmutable}},
		{name: "immutable with exclusion", s: RepositorySettings{TagMutability: TagImmutableWithExclusion, TagMutabilityExclusions: wildcard("latest", "dev-*")}},
		{name: "mutable with exclusion, 5 filters", s: RepositorySettings{TagMutability: TagMutableWithExclusion, TagMutabilityExclusions: wildcard("a", "b", "c", "d", "release-*")}},
		{name: "unknown mutability", s: RepositorySettings{TagMutability: "mutable"}, msg: "imageTagMutability"},
		{name: "exclusion without filters", s: RepositorySettings{TagMutability: TagImmutableWithExclusion}, msg: "needs 1 to 5"},
		{name: "six filters", s: RepositorySettings{TagMutability: TagMutableWithExclusion, TagMutabilityExclusions: wildcard("a", "b", "c", "d", "e", "f")}, msg: "needs 1 to 5"},
		{name: "filters with IMMUTABLE", s: RepositorySettings{TagMutability: TagImmutable, TagMutabilityExclusions: wildcard("a")}, msg: "allowed only"},
		{name: "filters with default", s: RepositorySettings{TagMutabilityExclusions: wildcard("a")}, msg: "allowed only"},
		{name: "filter type", s: RepositorySettings{TagMutability: TagImmutableWithExclusion, TagMutabilityExclusions: []TagFilter{{Filter: "a", FilterType: "PREFIX_MATCH"}}}, msg: "filterType"},
		{name: "filter empty", s: RepositorySettings{TagMutability: TagImmutableWithExclusion, TagMutabilityExclusions: wildcard("")}, msg: "[0].filter"},
		{name: "filter char", s: RepositorySettings{TagMutability: TagImmutableWithExclusion, TagMutabilityExclusions: wildcard("ok", "a/b")}, msg: "[1].filter"},
		{name: "filter too long", s: RepositorySettings{TagMutability: TagImmutableWithExclusion, TagMutabilityExclusions: wildcard(strings.Repeat("a", 129))}, msg: "filter"},
		{name: "filter 128", s: RepositorySettings{TagMutability: TagImmutableWithExclusion, TagMutabilityExclusions: wildcard(strings.Repeat("*", 128))}},
		{name: "aes256", s: RepositorySettings{Encryption: EncryptionConfig{EncryptionType: EncryptionAES256}}},
		{name: "kms with key", s: RepositorySettings{Encryption: EncryptionConfig{EncryptionType: EncryptionKMS, KMSKey: "team-a"}}},
		{name: "kms without key", s: RepositorySettings{Encryption: EncryptionConfig{EncryptionType: EncryptionKMS}}},
		{name: "kms dsse", s: RepositorySettings{Encryption: EncryptionConfig{EncryptionType: EncryptionKMSDSSE, KMSKey: "pkcs11:token=x;object=y"}}},
		{name: "aes256 with key", s: RepositorySettings{Encryption: EncryptionConfig{EncryptionType: EncryptionAES256, KMSKey: "k"}}, msg: "kmsKey"},
		{name: "default with key", s: RepositorySettings{Encryption: EncryptionConfig{KMSKey: "k"}}, msg: "kmsKey"},
		{name: "unknown encryption", s: RepositorySettings{Encryption: EncryptionConfig{EncryptionType: "DES"}}, msg: "encryptionType"},
		{name: "resource tags", s: RepositorySettings{ResourceTags: []ResourceTag{{Key: "team", Value: "a"}, {Key: "cost", Value: ""}}}},
		{name: "51 resource tags", s: RepositorySettings{ResourceTags: manyTags}, msg: "at most 50"},
		{name: "empty tag key", s: RepositorySettings{ResourceTags: []ResourceTag{{Key: "", Value: "a"}}}, msg: "resourceTags[0].Key"},
		{name: "long tag key", s: RepositorySettings{ResourceTags: []ResourceTag{{Key: strings.Repeat("k", 129)}}}, msg: "resourceTags[0].Key"},
		{name: "long tag value", s: RepositorySettings{ResourceTags: []ResourceTag{{Key: "k", Value: strings.Repeat("v", 257)}}}, msg: "resourceTags[0].Value"},
		{name: "aws prefix", s: RepositorySettings{ResourceTags: []ResourceTag{{Key: "aws:x"}}}, msg: "reserved"},
		{name: "duplicate tag key", s: RepositorySettings{ResourceTags: []ResourceTag{{Key: "k"}, {Key: "k"}}}, msg: "twice"},
		{name: "lifecycle policy", s: RepositorySettings{LifecyclePolicy: `{"rules":[]}`}},
		{name: "lifecycle policy not json", s: RepositorySettings{LifecyclePolicy: `{"rules":`}, msg: "lifecyclePolicy"},
		{name: "lifecycle policy too long", s: RepositorySettings{LifecyclePolicy: `"` + strings.Repeat("a", 30720) + `"`}, msg: "lifecyclePolicy"},
		{name: "repository policy not json", s: RepositorySettings{RepositoryPolicy: `x`}, msg: "repositoryPolicy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateSettings(tt.s)
			if tt.msg == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidArgument)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestRepositorySettingsAfterCreation(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{ResourceTags: []ResourceTag{{Key: "team", Value: "a"}}})
	require.NoError(t, err)

	_, err = e.GetRepositoryPolicy(ctx, "r")
	require.ErrorIs(t, err, ErrRepositoryPolicyNotFound)
	rp := `{"Version":"2008-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}`
	require.NoError(t, e.SetRepositoryPolicy(ctx, "r", rp))
	got, err := e.GetRepositoryPolicy(ctx, "r")
	require.NoError(t, err)
	assert.Equal(t, rp, got)
	require.ErrorIs(t, e.SetRepositoryPolicy(ctx, "r", "{not json"), ErrInvalidArgument)
	require.ErrorIs(t, e.SetRepositoryPolicy(ctx, "r", ""), ErrInvalidArgument)
	old, err := e.DeleteRepositoryPolicy(ctx, "r")
	require.NoError(t, err)
	assert.Equal(t, rp, old)
	_, err = e.DeleteRepositoryPolicy(ctx, "r")
	require.ErrorIs(t, err, ErrRepositoryPolicyNotFound)

	require.NoError(t, e.TagRepository(ctx, "r", []ResourceTag{{Key: "team", Value: "b"}, {Key: "env", Value: "prod"}}))
	r, err := e.Repository(ctx, "r")
	require.NoError(t, err)
	assert.Equal(t, []ResourceTag{{Key: "team", Value: "b"}, {Key: "env", Value: "prod"}}, r.ResourceTags)
	require.ErrorIs(t, e.TagRepository(ctx, "r", []ResourceTag{{Key: "aws:x", Value: "y"}}), ErrInvalidArgument)
	many := make([]ResourceTag, 49)
	for i := range many {
		many[i] = ResourceTag{Key: "k" + string(rune('A'+i)), Value: "v"}
	}
	require.ErrorIs(t, e.TagRepository(ctx, "r", many), ErrInvalidArgument, "51 tags")
	require.NoError(t, e.UntagRepository(ctx, "r", []string{"team", "absent"}))
	r, err = e.Repository(ctx, "r")
	require.NoError(t, err)
	assert.Equal(t, []ResourceTag{{Key: "env", Value: "prod"}}, r.ResourceTags)

	require.NoError(t, e.SetScanOnPush(ctx, "r", true))
	r, err = e.Repository(ctx, "r")
	require.NoError(t, err)
	assert.True(t, r.ScanOnPush)
	require.ErrorIs(t, e.SetScanOnPush(ctx, "absent", true), ErrNameUnknown)
}
