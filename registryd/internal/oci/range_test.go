package oci

import (
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		header string
		size   int64
		want   []byteRange
		err    error
	}{
		{"", 100, nil, nil},
		{"bytes=0-9", 100, []byteRange{{0, 10}}, nil},
		{"bytes=90-", 100, []byteRange{{90, 10}}, nil},
		{"bytes=-10", 100, []byteRange{{90, 10}}, nil},
		{"bytes=-1000", 100, []byteRange{{0, 100}}, nil},
		{"bytes=50-1000", 100, []byteRange{{50, 50}}, nil},
		{"bytes=0-0,-1", 100, []byteRange{{0, 1}, {99, 1}}, nil},
		{"bytes= 0-1 , 5-6", 100, []byteRange{{0, 2}, {5, 2}}, nil},
		{"bytes=100-", 100, nil, errRangeUnsatisfiable},
		{"bytes=500-0", 1000, nil, errRangeUnsatisfiable},
		{"bytes=5000-10000", 1000, nil, errRangeUnsatisfiable},
		{"bytes=0-", 0, nil, errRangeUnsatisfiable},
		{"bytes=-0", 100, nil, errRangeUnsatisfiable},
		{"bytes=200-300,0-1", 100, []byteRange{{0, 2}}, nil},
		{"items=0-1", 100, nil, errRangeSyntax},
		{"bytes=", 100, nil, errRangeSyntax},
		{"bytes=a-b", 100, nil, errRangeSyntax},
		{"bytes=-", 100, nil, errRangeSyntax},
		{"bytes=1", 100, nil, errRangeSyntax},
		{"bytes=+1-2", 100, nil, errRangeSyntax},
		{"bytes=1--2", 100, nil, errRangeSyntax},
		{"bytes=99999999999999999999-", 100, nil, errRangeSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			got, err := parseRange(tt.header, tt.size)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		v             string
		start, length int64
		ok            bool
	}{
		{"0-99", 0, 100, true},
		{"100-100", 100, 1, true},
		{"bytes 0-9/100", 0, 10, true},
		{"bytes 0-9/*", 0, 10, true},
		{"9-0", 0, 0, false},
		{"-5", 0, 0, false},
		{"a-b", 0, 0, false},
		{"", 0, 0, false},
		{"5", 0, 0, false},
	}
	for _, tt := range tests {
		start, length, err := parseContentRange(tt.v)
		if !tt.ok {
			assert.Error(t, err, tt.v)
			continue
		}
		require.NoError(t, err, tt.v)
		assert.Equal(t, tt.start, start, tt.v)
		assert.Equal(t, tt.length, length, tt.v)
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=5-", "bytes=0-0,2-3,-1", "bytes=500-0", "bytes=", "x"} {
		f.Add(s, int64(1000))
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		rs, err := parseRange(header, size)
		if err != nil {
			if !errors.Is(err, errRangeSyntax) && !errors.Is(err, errRangeUnsatisfiable) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(rs) > maxRanges {
			t.Fatalf("%d ranges", len(rs))
		}
		for _, r := range rs {
			if r.start < 0 || r.length <= 0 || r.start+r.length > size || r.start+r.length < r.start {
				t.Fatalf("range %+v outside blob of %d", r, size)
			}
		}
	})
}

func TestCoalesce(t *testing.T) {
	r := func(start, length int64) byteRange { return byteRange{start: start, length: length} }
	tests := []struct {
		name  string
		in    []byteRange
		out   []byteRange
		whole bool
	}{
		{"none", nil, nil, false},
		{"one", []byteRange{r(5, 10)}, []byteRange{r(5, 10)}, false},
		{"the whole blob once", []byteRange{r(0, 100)}, []byteRange{r(0, 100)}, false},
		{"overlapping", []byteRange{r(0, 10), r(5, 10)}, []byteRange{r(0, 15)}, false},
		{"adjacent", []byteRange{r(0, 10), r(10, 10)}, []byteRange{r(0, 20)}, false},
		{"contained", []byteRange{r(0, 50), r(10, 5)}, []byteRange{r(0, 50)}, false},
		{"disjoint, sorted", []byteRange{r(50, 10), r(0, 10)}, []byteRange{r(0, 10), r(50, 10)}, false},
		{"a gap of one byte stays", []byteRange{r(0, 10), r(11, 10)}, []byteRange{r(0, 10), r(11, 10)}, false},
		{"more than the blob", []byteRange{r(0, 100), r(0, 100)}, nil, true},
		{"just more than the blob", []byteRange{r(0, 60), r(50, 41)}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			out, whole := coalesce(in, 100)
			assert.Equal(t, tt.whole, whole)
			assert.Equal(t, tt.out, out)
			assert.Equal(t, tt.in, in, "the input is left as it was")
		})
	}
}
