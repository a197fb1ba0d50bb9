package templates

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/errdefs"
)

func TestLongest(t *testing.T) {
	prefixes := []string{Root, "prod", "prod/team", "cache", Root, "prod"}
	tests := []struct {
		name     string
		prefixes []string
		repo     string
		want     int
	}{
		{"under prod", prefixes, "prod/x", 1},
		{"deep under prod", prefixes, "prod/a/b/c", 1},
		{"prod itself is not under prod", prefixes, "prod", 0},
		{"component boundary", prefixes, "production/x", 0},
		{"longest wins", prefixes, "prod/team/x", 2},
		{"prod/team itself", prefixes, "prod/team", 1},
		{"first root", prefixes, "x", 0},
		{"first of equal prefixes", prefixes, "prod/y", 1},
		{"no root", prefixes[1:4], "x", -1},
		{"empty prefix never matches", []string{""}, "/x", -1},
		{"none", nil, "prod/x", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Longest(tt.prefixes, tt.repo))
		})
	}
}

func TestNormalizePrefix(t *testing.T) {
	assert.Equal(t, "prod", NormalizePrefix("prod/"))
	assert.Equal(t, "prod/", NormalizePrefix("prod//"))
	assert.Equal(t, "prod", NormalizePrefix("prod"))
	assert.Equal(t, Root, NormalizePrefix(Root))
}

func TestCheckPrefix(t *testing.T) {
	for _, p := range []string{Root, "prod", "prod/team/", "a"} {
		assert.NoError(t, CheckPrefix(p), p)
	}
	for _, p := range []string{"", "Prod", "prod//", "/prod", "/", "root/x/"} {
		err := CheckPrefix(p)
		if p == "root/x/" {
			require.NoError(t, err) // lower-case "root" is a name like any other
			continue
		}
		require.ErrorIs(t, err, errdefs.ErrInvalidArgument, p)
	}
}
