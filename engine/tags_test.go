package engine

import (
	"context"
	"fmt"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTagImmutableSettings checks how each TagMutability setting maps to
// the immutability decision (engine/internal/tagfilter has the cases of
// the filters themselves).
func TestTagImmutableSettings(t *testing.T) {
	tests := []struct {
		mutability string
		filters    []string
		tag        string
		want       bool
	}{
		{"", nil, "latest", false},
		{TagMutable, nil, "v1", false},
		{TagImmutable, nil, "v1", true},
		{TagImmutableWithExclusion, []string{"latest"}, "latest", false},
		{TagImmutableWithExclusion, []string{"latest"}, "v1", true},
		{TagMutableWithExclusion, []string{"release-*"}, "release-1", true},
		{TagMutableWithExclusion, []string{"release-*"}, "latest", false},
		{"SOMETIMES", nil, "v1", true}, // an unknown setting fails closed
	}
	for _, tt := range tests {
		t.Run(tt.mutability+"|"+tt.tag, func(t *testing.T) {
			s := RepositorySettings{TagMutability: tt.mutability, TagMutabilityExclusions: wildcard(tt.filters...)}
			assert.Equal(t, tt.want, tagImmutable(s, tt.tag))
		})
	}
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
