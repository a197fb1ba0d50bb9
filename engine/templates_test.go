package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/templates"
)

func TestMatchTemplate(t *testing.T) {
	push := []string{AppliedForCreateOnPush}
	templates := []CreationTemplate{
		{Prefix: RootPrefix, AppliedFor: []string{AppliedForCreateOnPush, AppliedForReplication}, Description: "root"},
		{Prefix: "prod", AppliedFor: push, Description: "prod"},
		{Prefix: "prod/team/", AppliedFor: push, Description: "prod/team"},
		{Prefix: "prod/team/app", AppliedFor: []string{AppliedForPullThroughCache}, Description: "prod/team/app ptc"},
		{Prefix: "cache", AppliedFor: []string{AppliedForPullThroughCache}, Description: "cache"},
	}
	tests := []struct {
		name       string
		templates  []CreationTemplate
		repo       string
		appliedFor string
		want       string // Description of the match, "" for none
	}{
		{"under prod", templates, "prod/x", AppliedForCreateOnPush, "prod"},
		{"deep under prod", templates, "prod/a/b/c", AppliedForCreateOnPush, "prod"},
		{"prod itself is not under prod", templates, "prod", AppliedForCreateOnPush, "root"},
		{"component boundary", templates, "production/x", AppliedForCreateOnPush, "root"},
		{"longest prefix wins", templates, "prod/team/x", AppliedForCreateOnPush, "prod/team"},
		{"longest prefix, trailing slash normalized", templates, "prod/team/app/y", AppliedForCreateOnPush, "prod/team"},
		{"prod/team itself", templates, "prod/team", AppliedForCreateOnPush, "prod"},
		{"appliedFor filters", templates, "prod/team/app/y", AppliedForPullThroughCache, "prod/team/app ptc"},
		{"no root for pull through cache", templates, "other/x", AppliedForPullThroughCache, ""},
		{"cache prefix", templates, "cache/library/alpine", AppliedForPullThroughCache, "cache"},
		{"replication falls to root", templates, "prod/x", AppliedForReplication, "root"},
		{"unrelated name falls to root", templates, "x", AppliedForCreateOnPush, "root"},
		{"no templates", nil, "prod/x", AppliedForCreateOnPush, ""},
		{"no root", templates[1:], "x", AppliedForCreateOnPush, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := matchTemplate(tt.templates, tt.repo, tt.appliedFor)
			if tt.want == "" {
				assert.False(t, ok)
				assert.Nil(t, got)
				return
			}
			require.True(t, ok)
			assert.Equal(t, tt.want, got.Description)
		})
	}
}

func TestMatchTemplateReturnsCopy(t *testing.T) {
	templates := []CreationTemplate{{Prefix: "a", AppliedFor: []string{AppliedForCreateOnPush}, Description: "a"}}
	got, ok := matchTemplate(templates, "a/b", AppliedForCreateOnPush)
	require.True(t, ok)
	got.Description = "changed"
	assert.Equal(t, "a", templates[0].Description)
}

func TestValidateTemplate(t *testing.T) {
	ok := func(prefix string) CreationTemplate {
		return CreationTemplate{Prefix: prefix, AppliedFor: []string{AppliedForCreateOnPush}}
	}
	with := func(f func(*CreationTemplate)) CreationTemplate {
		t := ok("prod")
		f(&t)
		return t
	}
	tests := []struct {
		name string
		t    CreationTemplate
		msg  string // "" means valid
	}{
		{name: "root", t: ok(RootPrefix)},
		{name: "prefix", t: ok("prod")},
		{name: "prefix with slash", t: ok("prod/team/")},
		{name: "both appliedFor", t: with(func(t *CreationTemplate) {
			t.AppliedFor = []string{AppliedForCreateOnPush, AppliedForPullThroughCache}
		})},
		{name: "replication", t: with(func(t *CreationTemplate) {
			t.AppliedFor = []string{AppliedForCreateOnPush, AppliedForReplication}
		})},
		{name: "a role to assume", t: with(func(t *CreationTemplate) { t.CustomRoleARN = "arn:aws:iam::000000000000:role/x" }), msg: "customRoleArn"},
		{name: "description 256", t: with(func(t *CreationTemplate) { t.Description = strings.Repeat("d", 256) })},
		{name: "settings", t: with(func(t *CreationTemplate) {
			t.TagMutability = TagImmutableWithExclusion
			t.TagMutabilityExclusions = wildcard("latest")
			t.Encryption = EncryptionConfig{EncryptionType: EncryptionKMS, KMSKey: "k"}
		})},
		{name: "empty prefix", t: ok(""), msg: "prefix missing"},
		{name: "root lower case", t: ok("root/"), msg: ""},
		{name: "bad prefix", t: ok("Prod"), msg: "prefix"},
		{name: "prefix double slash", t: ok("prod//"), msg: "prefix"},
		{name: "prefix leading slash", t: ok("/prod"), msg: "prefix"},
		{name: "just a slash", t: ok("/"), msg: "prefix"},
		{name: "description 257", t: with(func(t *CreationTemplate) { t.Description = strings.Repeat("d", 257) }), msg: "description"},
		{name: "no appliedFor", t: with(func(t *CreationTemplate) { t.AppliedFor = nil }), msg: "appliedFor"},
		{name: "unknown appliedFor", t: with(func(t *CreationTemplate) { t.AppliedFor = []string{"ON_PULL"} }), msg: "appliedFor[0]"},
		{name: "duplicate appliedFor", t: with(func(t *CreationTemplate) {
			t.AppliedFor = []string{AppliedForPullThroughCache, AppliedForPullThroughCache}
		}), msg: "twice"},
		{name: "bad settings", t: with(func(t *CreationTemplate) { t.TagMutability = "x" }), msg: "imageTagMutability"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateTemplate(tt.t)
			if tt.msg == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidArgument)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestCreateAndUpdateCreationTemplate(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	tpl := CreationTemplate{Prefix: "ci/", AppliedFor: []string{AppliedForCreateOnPush}, Description: "one"}
	require.ErrorIs(t, e.UpdateCreationTemplate(ctx, tpl), ErrTemplateNotFound)
	require.NoError(t, e.CreateCreationTemplate(ctx, tpl))
	require.ErrorIs(t, e.CreateCreationTemplate(ctx, tpl), ErrTemplateExists)
	tpl.Description = "two"
	require.NoError(t, e.UpdateCreationTemplate(ctx, tpl))
	ts, err := e.CreationTemplates(ctx)
	require.NoError(t, err)
	require.Len(t, ts, 1)
	assert.Equal(t, "ci", ts[0].Prefix)
	assert.Equal(t, "two", ts[0].Description)
	assert.True(t, ts[0].UpdatedAt.After(ts[0].CreatedAt) || ts[0].UpdatedAt.Equal(ts[0].CreatedAt))
	require.NoError(t, e.DeleteCreationTemplate(ctx, "ci"))
	require.ErrorIs(t, e.DeleteCreationTemplate(ctx, "ci"), ErrTemplateNotFound)
	require.ErrorIs(t, e.DeleteCreationTemplate(ctx, "\x00"), ErrTemplateNotFound, "a prefix no key can hold names no template")
}

// TestRootPrefixMatchesInternal: the exported RootPrefix is the prefix
// the matching code treats as the fallback.
func TestRootPrefixMatchesInternal(t *testing.T) {
	require.Equal(t, RootPrefix, templates.Root)
}
