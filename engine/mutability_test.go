package engine

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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

func TestMutabilityValidateSettings(t *testing.T) {
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

func TestTagImmutable(t *testing.T) {
	tests := []struct {
		name       string
		mutability string
		filters    []string
		tag        string
		want       bool
	}{
		{"default", "", nil, "latest", false},
		{"mutable", TagMutable, nil, "v1", false},
		{"immutable", TagImmutable, nil, "v1", true},
		{"immutable latest", TagImmutable, nil, "latest", true},
		{"immutable except latest: latest", TagImmutableWithExclusion, []string{"latest"}, "latest", false},
		{"immutable except latest: v1", TagImmutableWithExclusion, []string{"latest"}, "v1", true},
		{"immutable except latest: latest2", TagImmutableWithExclusion, []string{"latest"}, "latest2", true},
		{"immutable except dev-*: dev-abc", TagImmutableWithExclusion, []string{"latest", "dev-*"}, "dev-abc", false},
		{"immutable except dev-*: dev-", TagImmutableWithExclusion, []string{"dev-*"}, "dev-", false},
		{"immutable except dev-*: dev", TagImmutableWithExclusion, []string{"dev-*"}, "dev", true},
		{"immutable except dev-*: prod-dev-1", TagImmutableWithExclusion, []string{"dev-*"}, "prod-dev-1", true},
		{"mutable except release-*: release-1", TagMutableWithExclusion, []string{"release-*"}, "release-1", true},
		{"mutable except release-*: latest", TagMutableWithExclusion, []string{"release-*"}, "latest", false},
		{"mutable except latest: latest", TagMutableWithExclusion, []string{"latest"}, "latest", true},
		{"mutable except *-rc*: v1-rc2", TagMutableWithExclusion, []string{"*-rc*"}, "v1-rc2", true},
		{"mutable except v*.*.*: v1.2.3", TagMutableWithExclusion, []string{"v*.*.*"}, "v1.2.3", true},
		{"mutable except v*.*.*: v1.2", TagMutableWithExclusion, []string{"v*.*.*"}, "v1.2", false},
		{"unknown setting fails closed", "SOMETIMES", nil, "v1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := RepositorySettings{TagMutability: tt.mutability, TagMutabilityExclusions: wildcard(tt.filters...)}
			assert.Equal(t, tt.want, tagImmutable(s, tt.tag))
		})
	}
}

// wildcardRE is the reference semantics of a filter, for cross-checking.
func wildcardRE(pattern string) *regexp.Regexp {
	parts := strings.Split(pattern, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`(?s)^` + strings.Join(parts, `.*`) + `$`)
}

func TestMutabilityWildcardMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything", true},
		{"**", "x", true},
		{"a*", "a", true},
		{"a*", "ba", false},
		{"*a", "ba", true},
		{"*a", "ab", false},
		{"a*b", "ab", true},
		{"a*b", "axxb", true},
		{"a*b", "axxbc", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "abbbcc", true},
		{"a*b*c", "acb", false},
		{"ab*ba", "aba", false}, // prefix and suffix must not overlap
		{"*ab*ab*", "abab", true},
		{"*ab*ab*", "aab", false},
		{"x.y", "x.y", true},
		{"x.y", "xzy", false}, // '.' is literal
		{"dev-*", "dev-1", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"|"+tt.s, func(t *testing.T) {
			assert.Equal(t, tt.want, wildcardMatch(tt.pattern, tt.s))
			assert.Equal(t, tt.want, wildcardRE(tt.pattern).MatchString(tt.s), "reference semantics")
		})
	}
}

// TestWildcardMatchLinear guards against backtracking blow-ups: the
// classic worst case for a backtracking glob matcher runs instantly.
func TestMutabilityWildcardMatchLinear(t *testing.T) {
	pattern := strings.Repeat("a*", 64) + "b"
	s := strings.Repeat("a", 128)
	start := time.Now()
	for i := 0; i < 1000; i++ {
		require.False(t, wildcardMatch(pattern, s))
	}
	assert.Less(t, time.Since(start), 2*time.Second)
}

func FuzzMutabilityWildcardMatch(f *testing.F) {
	f.Add("a*b*c", "abbbcc")
	f.Add("*-rc*", "v1-rc2")
	f.Add("ab*ba", "aba")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		// Patterns are validated before use; tags may be anything here
		// (valid UTF-8, for the reference regexp).
		if !validTagFilter(pattern) || len(s) > 256 || !utf8.ValidString(s) {
			return
		}
		require.Equal(t, wildcardRE(pattern).MatchString(s), wildcardMatch(pattern, s), "pattern %q s %q", pattern, s)
	})
}

// TestConcurrentPushesOneTag: pushes of different manifests under one
// tag race in one repository. In an immutable repository exactly one
// wins and the others fail with ErrTagImmutable; in a mutable one every
// push succeeds and the tag ends on one of them. The repository's lock
// orders them although their fsyncs are shared.
func TestConcurrentPushesOneTag(t *testing.T) {
	ctx := context.Background()
	for _, mut := range []string{TagImmutable, TagMutable} {
		t.Run(mut, func(t *testing.T) {
			e := openTestEngine(t, quietOptions())
			_, err := e.CreateRepository(ctx, "race/app", RepositorySettings{TagMutability: mut})
			require.NoError(t, err)
			const n = 16
			payloads := make([][]byte, n)
			for i := range payloads {
				_, payloads[i] = pushImage(t, e, "race/app", fmt.Sprintf("base%d", i), rnd(64))
			}
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = e.PutManifest(ctx, "race/app", "release", ocispec.MediaTypeImageManifest, payloads[i])
				}()
			}
			wg.Wait()
			won := 0
			for _, err := range errs {
				if err == nil {
					won++
				} else {
					require.ErrorIs(t, err, ErrTagImmutable)
				}
			}
			if mut == TagImmutable {
				assert.Equal(t, 1, won)
			} else {
				assert.Equal(t, n, won)
			}
			m, err := e.GetManifest(ctx, "race/app", "release")
			require.NoError(t, err)
			assert.Contains(t, payloads, m.Payload)
		})
	}
}
