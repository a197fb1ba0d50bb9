package fuse

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/enginetest"
	"github.com/berthstore/berth/internal/testenv"
)

// TestConcurrentReadsUnderEviction reads several multi-megabyte files
// through the mount at once, sequentially and at random offsets, with a
// chunk cache of two chunks: chunks are evicted and their buffers
// recycled while replies still hold them, and every byte must still be
// right. The page cache is bypassed (O_DIRECT on the view is refused by
// FUSE without direct_io, so each round drops the kernel's cache of the
// files instead) so that the reads reach the view.
func TestConcurrentReadsUnderEviction(t *testing.T) {
	testenv.NeedFUSE(t)
	const files = 4
	var ents []tarEntry
	want := map[string][]byte{}
	for i := range files {
		body := []byte(semiRandomT(t, 3<<20+i*4099)) // misaligned sizes
		name := fmt.Sprintf("f%d.bin", i)
		ents = append(ents, file(name, 0o644, string(body)))
		want[name] = body
	}
	e := enginetest.Open(t, nil)
	push(t, e, "evict", "v1", imageOf(t, layerOf(t, makeTar(t, ents...), "gzip")))
	mnt := mountStore(t, e, &Options{ChunkCacheBytes: 2 << 20})
	root := filepath.Join(mnt, "evict", "@tags", "v1", "rootfs")

	for round := range 3 {
		dropPageCache(t)
		var wg sync.WaitGroup
		for name, body := range want {
			wg.Add(2)
			go func() { // sequential, 1 MiB reads
				defer wg.Done()
				got, err := os.ReadFile(filepath.Join(root, name))
				assert.NoError(t, err)
				assert.Equal(t, sha256.Sum256(body), sha256.Sum256(got), "round %d %s sequential", round, name)
			}()
			go func() { // random offsets and lengths
				defer wg.Done()
				f, err := os.Open(filepath.Join(root, name))
				if !assert.NoError(t, err) {
					return
				}
				defer f.Close()
				rng := rand.New(rand.NewPCG(uint64(round), uint64(len(body))))
				buf := make([]byte, 3<<20)
				for range 20 {
					off := rng.IntN(len(body))
					n := 1 + rng.IntN(min(len(buf), len(body)-off))
					m, err := f.ReadAt(buf[:n], int64(off))
					if err != nil && err != io.EOF {
						assert.NoError(t, err)
						return
					}
					assert.Equal(t, n, m)
					assert.True(t, string(body[off:off+m]) == string(buf[:m]), "round %d %s at %d+%d", round, name, off, n)
				}
			}()
		}
		wg.Wait()
	}
}

// semiRandomT returns n bytes that zstd compresses about 2:1.
func semiRandomT(t *testing.T, n int) string {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	out := make([]byte, n)
	for i := range out {
		if i%2 == 0 {
			out[i] = byte(rng.Uint32())
		} else {
			out[i] = byte(i)
		}
	}
	return string(out)
}

// dropPageCache asks the kernel to drop clean cached pages, so that
// reads of the view reach the daemon again.
func dropPageCache(t *testing.T) {
	t.Helper()
	require.NoError(t, os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0o200))
}
