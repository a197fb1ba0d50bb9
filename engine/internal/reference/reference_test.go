package reference

import (
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/errdefs"
)

// The grammars the hand-written scanners implement, for cross-checking.
var (
	refNameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	refTagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

const (
	testSHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	testSHA512 = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)

func TestValidateRepositoryName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"library/alpine", true},
		{"prod/team/app", true},
		{"a.b", true},
		{"a_b", true},
		{"a__b", true},
		{"a-b", true},
		{"a---b", true},
		{"a.b-c_d__e/f0", true},
		{"0", true},
		{strings.Repeat("a", 256), true},
		{strings.Repeat("a", 257), false},
		{strings.Repeat("ab/", 85) + "a", true}, // 256 characters
		{"", false},
		{"A", false},
		{"Library/alpine", false},
		{"a..b", false},
		{"a___b", false},
		{"a._b", false},
		{"a-_b", false},
		{"a_-b", false},
		{"-a", false},
		{"a-", false},
		{".a", false},
		{"a.", false},
		{"_a", false},
		{"a/", false},
		{"/a", false},
		{"a//b", false},
		{"a/../b", false},
		{"a b", false},
		{"a:b", false},
		{"a@b", false},
		{"é", false},
		{"a\x00b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateRepositoryName(tt.name)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, errdefs.ErrNameInvalid)
		})
	}
}

func TestValidateTag(t *testing.T) {
	tests := []struct {
		tag string
		ok  bool
	}{
		{"latest", true},
		{"v1.2.3", true},
		{"_x", true},
		{"1", true},
		{"A-b_c.D", true},
		{"dev-2024.01.01", true},
		{strings.Repeat("t", 128), true},
		{strings.Repeat("t", 129), false},
		{"", false},
		{".x", false},
		{"-x", false},
		{"a:b", false},
		{"a/b", false},
		{"a+b", false},
		{"a b", false},
		{"ü", false},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			err := ValidateTag(tt.tag)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, errdefs.ErrTagInvalid)
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		ref     string
		tag     string
		dgst    digest.Digest
		wantErr error
	}{
		{ref: "latest", tag: "latest"},
		{ref: testSHA256, dgst: testSHA256},
		{ref: testSHA512, dgst: testSHA512},
		{ref: "sha256:abc", wantErr: errdefs.ErrDigestInvalid},
		{ref: "sha256:" + strings.ToUpper(testSHA256[7:]), wantErr: errdefs.ErrDigestInvalid},
		{ref: "md5:d41d8cd98f00b204e9800998ecf8427e", wantErr: errdefs.ErrDigestInvalid},
		{ref: "blake3:" + testSHA256[7:], wantErr: errdefs.ErrDigestInvalid},
		{ref: ":" + testSHA256[7:], wantErr: errdefs.ErrDigestInvalid},
		{ref: "sha256:", wantErr: errdefs.ErrDigestInvalid},
		{ref: "a:b", wantErr: errdefs.ErrDigestInvalid},
		{ref: "", wantErr: errdefs.ErrTagInvalid},
		{ref: ".bad", wantErr: errdefs.ErrTagInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			tag, d, err := Parse(tt.ref)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Empty(t, tag)
				assert.Empty(t, d)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.tag, tag)
			assert.Equal(t, tt.dgst, d)
		})
	}
}

func TestReferenceParseDigestAgreesWithGoDigest(t *testing.T) {
	inputs := []string{
		testSHA256, testSHA512,
		"sha256:" + testSHA256[8:], // 63 digits
		"sha256:" + testSHA256[7:] + "0",
		"sha384:" + strings.Repeat("a", 96),
		"sha256:" + strings.Repeat("g", 64),
		"sha256+b64:" + testSHA256[7:],
		"SHA256:" + testSHA256[7:],
	}
	for _, in := range inputs {
		t.Run(in, func(t *testing.T) {
			_, ours := ParseDigest(in)
			ref, theirs := digest.Parse(in)
			if theirs == nil && ref.Algorithm() != digest.SHA256 && ref.Algorithm() != digest.SHA512 {
				theirs = digest.ErrDigestUnsupported // we accept sha256 and sha512 only
			}
			assert.Equal(t, theirs == nil, ours == nil, "go-digest: %v, ours: %v", theirs, ours)
			if ours != nil {
				assert.ErrorIs(t, ours, errdefs.ErrDigestInvalid)
			}
		})
	}
}

// FuzzParse checks that Parse never panics, agrees
// with the tag grammar and go-digest, and returns exactly one of tag and
// digest.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"latest", testSHA256, testSHA512, "sha256:abc", "v1.0", "", ":", "a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		tag, d, err := Parse(ref)
		if err != nil {
			require.Empty(t, tag)
			require.Empty(t, d)
			return
		}
		require.True(t, (tag == "") != (d == ""))
		if tag != "" {
			require.True(t, refTagRE.MatchString(tag), "tag %q", tag)
			return
		}
		require.NoError(t, d.Validate())
		require.Contains(t, []digest.Algorithm{digest.SHA256, digest.SHA512}, d.Algorithm())
	})
}

// FuzzValidateRepositoryName cross-checks the scanner against the
// grammar's regular expression.
func FuzzValidateRepositoryName(f *testing.F) {
	for _, s := range []string{"library/alpine", "a__b", "a___b", "a-.b", "prod/team/app", "A", "a//b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateRepositoryName(name)
		want := len(name) <= MaxRepositoryNameLen && refNameRE.MatchString(name)
		require.Equal(t, want, err == nil, "name %q: %v", name, err)
	})
}

// FuzzParseDigest checks ParseDigest against go-digest: whatever it
// accepts is a valid sha256 or sha512 digest, and it accepts every such
// digest go-digest accepts.
func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{testSHA256, testSHA512, "sha256:", "sha256:ABC", "md5:abc", "sha256:" + strings.Repeat("0", 63), "sha512:" + strings.Repeat("f", 128), ":", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		gd, gerr := digest.Parse(s)
		ours := gerr == nil && (gd.Algorithm() == digest.SHA256 || gd.Algorithm() == digest.SHA512)
		if err != nil {
			require.ErrorIs(t, err, errdefs.ErrDigestInvalid)
			require.False(t, ours, "%q: refused but go-digest accepts it", s)
			return
		}
		require.True(t, ours, "%q: accepted but go-digest refuses it: %v", s, gerr)
		require.Equal(t, gd, d)
	})
}
