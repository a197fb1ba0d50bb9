package blob_test

// Tests of Store beyond the conformance suite (suite_test.go): what the
// file format and the read path of this implementation promise.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/blobtest"
	"github.com/berthstore/berth/crypt"
)

// TestCompressionPays: source text stores in at most a third of its size;
// gzip content never goes through zstd.
func TestCompressionPays(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, config{compress: true}, "")
	src := blobtest.SourceTar(t, 2<<20)
	d := blobtest.Put(t, s, "src", nil, src)
	info, err := s.Stat(ctx, d)
	require.NoError(t, err)
	assert.Less(t, info.StoredSize, int64(len(src)/3), "source tar stores at most a third")

	d = blobtest.Put(t, s, "gz", nil, blobtest.Gzip(blobtest.RandomBytes(1<<20)))
	r, err := s.Open(ctx, d, nil)
	require.NoError(t, err)
	defer r.Close()
	assert.Zero(t, blob.ZstdFrames(r), "gzip frames went through zstd")
}

// TestTamper flips every byte of small blob files, and swaps frames of a
// larger one: every read fails with ErrCorrupt and never returns wrong bytes.
func TestTamper(t *testing.T) {
	ctx := context.Background()
	for _, c := range configs {
		c.frameSize = blob.MinFrameSize
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, c, "")
			key := keyFor(t, c)
			data := append(blobtest.RandomBytes(2*blob.MinFrameSize), blobtest.SourceTar(t, 2*blob.MinFrameSize)...)
			d := blobtest.Put(t, s, "t", key, data)
			p, err := s.Path(d)
			require.NoError(t, err)
			orig, err := os.ReadFile(p)
			require.NoError(t, err)

			check := func(what string) {
				r, err := s.Open(ctx, d, key)
				if err != nil {
					require.ErrorIs(t, err, blob.ErrCorrupt, what)
					return
				}
				defer r.Close()
				got, err := io.ReadAll(struct{ io.Reader }{r})
				require.ErrorIs(t, err, blob.ErrCorrupt, what)
				require.True(t, bytes.HasPrefix(data, got), "%s: wrong bytes returned", what)
			}
			step := max(1, len(orig)/3000)
			for i := 0; i < len(orig); i += step {
				bad := bytes.Clone(orig)
				bad[i] ^= 1 << (i % 8)
				require.NoError(t, os.WriteFile(p, bad, 0o600))
				check(fmt.Sprintf("flip at %d", i))
			}
			// Swap frames 0 and 1 (of equal stored length).
			require.NoError(t, os.WriteFile(p, orig, 0o600))
			r, err := s.Open(ctx, d, key)
			require.NoError(t, err)
			offs, lens := blob.FrameOffsets(r), blob.FrameStoredLengths(r)
			r.Close()
			require.Equal(t, lens[0], lens[1])
			bad := bytes.Clone(orig)
			f0 := orig[offs[0]:offs[1]]
			f1 := orig[offs[1] : offs[1]+int64(len(f0))]
			copy(bad[offs[0]:], f1)
			copy(bad[offs[1]:], f0)
			require.NoError(t, os.WriteFile(p, bad, 0o600))
			check("swap")
			// Truncation.
			require.NoError(t, os.WriteFile(p, orig[:len(orig)-9], 0o600))
			check("truncate")
			require.NoError(t, os.WriteFile(p, orig, 0o600))
			// A wrong key.
			if c.sealed {
				_, err := s.Open(ctx, d, keyFor(t, c))
				require.ErrorIs(t, err, blob.ErrCorrupt)
			}
		})
	}
}

// TestWriteToStopsAtCorruptFrame: a flipped byte in frame 4 stops a copy
// after frames 0-3, which arrive intact.
func TestWriteToStopsAtCorruptFrame(t *testing.T) {
	ctx := context.Background()
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, c, "")
			key := keyFor(t, c)
			data := append(blobtest.SourceTar(t, 5*testFrame), blobtest.RandomBytes(3*testFrame+17)...)
			d := blobtest.Put(t, s, "w", key, data)
			p, err := s.Path(d)
			require.NoError(t, err)
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			r, err := s.Open(ctx, d, key)
			require.NoError(t, err)
			b[blob.FrameOffsets(r)[4]+blob.FrameHeadSize+20] ^= 0xff
			r.Close()
			require.NoError(t, os.WriteFile(p, b, 0o600))
			r, err = s.Open(ctx, d, key)
			require.NoError(t, err)
			defer r.Close()
			var out bytes.Buffer
			n, err := io.Copy(&out, r)
			require.ErrorIs(t, err, blob.ErrCorrupt)
			require.Equal(t, int64(4*testFrame), n)
			require.True(t, bytes.Equal(data[:n], out.Bytes()))
		})
	}
}

// TestSharedFrames: concurrent sequential readers of one blob decode each
// frame once and all get the right bytes.
func TestSharedFrames(t *testing.T) {
	ctx := context.Background()
	c := configs[3]
	s := openStore(t, c, "")
	key := keyFor(t, c)
	data := append(blobtest.SourceTar(t, 4*testFrame), blobtest.RandomBytes(4*testFrame+3)...)
	d := blobtest.Put(t, s, "w", key, data)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			r, err := s.Open(ctx, d, key)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			var out bytes.Buffer
			if _, err := io.Copy(&out, r); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(data, out.Bytes()) {
				errs <- fmt.Errorf("wrong bytes")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, (len(data)+testFrame-1)/testFrame, blob.SharedFrameCount(s), "each frame decoded and kept once")
}

// TestWriteToWithoutSlots: with every read-ahead slot of the process
// taken, WriteTo decodes frame by frame and still copies everything.
func TestWriteToWithoutSlots(t *testing.T) {
	ctx := context.Background()
	c := configs[3]
	s := openStore(t, c, "")
	key := keyFor(t, c)
	data := append(blobtest.SourceTar(t, 3*testFrame), blobtest.RandomBytes(2*testFrame+5)...)
	d := blobtest.Put(t, s, "w", key, data)
	release := blob.HoldAheadSlots()
	defer release()
	r, err := s.Open(ctx, d, key)
	require.NoError(t, err)
	defer r.Close()
	var out bytes.Buffer
	_, err = io.Copy(&out, r)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, out.Bytes()))
}

// TestLevels: every compression level reads back bit-exact through the
// same reader, a higher level stores compressible content in fewer bytes,
// and a level out of range is refused at Open.
func TestLevels(t *testing.T) {
	data := textLike(3<<20, 1)
	d := digest.FromBytes(data)
	sizes := map[blob.Level]int64{}
	for _, l := range []blob.Level{blob.LevelFastest, blob.LevelDefault, blob.LevelBetter, blob.LevelBest} {
		s, err := blob.Open(t.TempDir(), &blob.Options{Level: l})
		require.NoError(t, err)
		key, err := crypt.NewDataKey()
		require.NoError(t, err)
		w, err := s.NewWriter(context.Background(), "up", blob.WriterOptions{DataKey: key})
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
		info, err := w.Commit(context.Background(), d, int64(len(data)))
		require.NoError(t, err)
		sizes[l] = info.StoredSize
		r, err := s.Open(context.Background(), d, key)
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		require.NoError(t, r.Close())
		require.True(t, bytes.Equal(data, got), "level %d reads back bit-exact", l)
		require.NoError(t, s.Close())
	}
	t.Logf("stored bytes of %d logical: fastest %d, default %d, better %d, best %d",
		len(data), sizes[blob.LevelFastest], sizes[blob.LevelDefault], sizes[blob.LevelBetter], sizes[blob.LevelBest])
	assert.Less(t, sizes[blob.LevelBest], sizes[blob.LevelFastest])
	_, err := blob.Open(t.TempDir(), &blob.Options{Level: blob.LevelBest + 1})
	require.Error(t, err)
}

// textLike is n bytes of text-like content (words of a small vocabulary
// in lines of varying length, as source files and logs are), the same for
// the same seed.
func textLike(n int, seed uint64) []byte {
	words := strings.Fields("the of and to in is for on that with as by at from this be are or an it not which have has was " +
		"func return if else struct type package import var const range map string int error nil true false")
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var b bytes.Buffer
	for b.Len() < n {
		line := 3 + rng.IntN(12)
		for i := 0; i < line; i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(9) == 0 {
				fmt.Fprintf(&b, "%d", rng.IntN(100000))
			}
		}
		b.WriteByte('\n')
	}
	return b.Bytes()[:n]
}
