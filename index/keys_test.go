package index

import (
	"bytes"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeyOrdering(t *testing.T) {
	tests := []struct {
		name string
		keys [][]byte // in the expected order
	}{
		{"repos", [][]byte{makeKey(prefixRepo, "a"), makeKey(prefixRepo, "a-b"), makeKey(prefixRepo, "a/b"), makeKey(prefixRepo, "ab")}},
		{"tags of a before tags of a-b", [][]byte{
			makeKey(prefixTag, "a", "zzz"), makeKey(prefixTag, "a-b", "0"), makeKey(prefixTag, "a/b", "0"),
		}},
		{"tags lexical", [][]byte{makeKey(prefixTag, "r", "v1"), makeKey(prefixTag, "r", "v1.0"), makeKey(prefixTag, "r", "v10"), makeKey(prefixTag, "r", "v2")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := append([][]byte(nil), tt.keys...)
			rand.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
			sort.Slice(got, func(i, j int) bool { return bytes.Compare(got[i], got[j]) < 0 })
			assert.Equal(t, tt.keys, got)
		})
	}
}

func TestSpanBounds(t *testing.T) {
	lo := spanPrefix(prefixTag, "a")
	hi := upperBound(lo)
	inside := [][]byte{makeKey(prefixTag, "a", "t"), makeKey(prefixTag, "a", "\xff\xff")}
	outside := [][]byte{makeKey(prefixTag, "a-b", "t"), makeKey(prefixTag, "a/b", "t"), makeKey(prefixTag, "a"), makeKey(prefixRepo, "a")}
	for _, k := range inside {
		assert.True(t, bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0, "%q", k)
	}
	for _, k := range outside {
		assert.False(t, bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0, "%q", k)
	}
	assert.Nil(t, upperBound([]byte{0xff, 0xff}))
}

func TestSplitKey(t *testing.T) {
	tests := []struct {
		name string
		key  []byte
		n    int
		want []string
		ok   bool
	}{
		{"manifest", makeKey(prefixManifest, "a/b", "sha256:00"), 2, []string{"a/b", "sha256:00"}, true},
		{"wrong count", makeKey(prefixManifest, "a"), 2, nil, false},
		{"wrong prefix", makeKey(prefixTag, "a", "b"), 2, nil, false},
		{"short", []byte{prefixManifest}, 1, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := splitKey(tt.key, prefixManifest, tt.n)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestTimeEncoding(t *testing.T) {
	tests := []time.Time{{}, time.Unix(0, 0), time.Unix(0, -1), time.Unix(-5, 0), t0, time.Unix(0, 1)}
	for _, tm := range tests {
		e := encoder{}
		e.time(tm)
		d := decoder{b: e.b}
		got := d.time()
		require.NoError(t, d.end(""))
		assert.Equal(t, tm.IsZero(), got.IsZero(), "%v", tm)
		assert.True(t, tm.Equal(got), "%v != %v", tm, got)
	}
}

// TestDecodeRandomNoPanic feeds random and truncated bytes to every decoder:
// they must return values or ErrCorrupt, never panic.
func TestDecodeRandomNoPanic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	valid := [][]byte{
		encodeManifest(&Manifest{MediaType: "m", Blobs: []digest.Digest{dg("a")}, Annotations: map[string]string{"k": "v"}, Payload: []byte("p")}),
		encodeBlob(&Blob{Size: 3, Wraps: []KeyWrap{{KeyID: "k", Wrapped: []byte("w")}}}),
		encodeReferrer(&Referrer{MediaType: "m", Annotations: map[string]string{"k": "v"}}),
		encodeUpload(&Upload{Repo: "r", State: []byte("s")}),
		encodeRepository(&Repository{Settings: []byte("{}")}),
	}
	decodeAll := func(v []byte) {
		_, _ = decodeManifest("r", dg("x"), v, true)
		_, _ = decodeBlob(dg("x"), v)
		_, _ = decodeReferrer(dg("x"), dg("y"), v)
		_, _ = decodeUpload("u", v)
		_, _ = decodeRepository("r", v)
		_, _ = decodeLink(v)
		_, _ = decodeTag(v)
		_, _ = decodeOpaque(prefixTemplate, v)
		_, _ = decodeMeta(v)
	}
	for _, v := range valid {
		for i := range len(v) {
			decodeAll(v[:i])
		}
	}
	for range 5000 {
		v := make([]byte, r.IntN(40))
		for i := range v {
			v[i] = byte(r.UintN(256))
		}
		if len(v) > 0 && r.IntN(2) == 0 {
			v[0] = valueV1
		}
		decodeAll(v)
	}
}
