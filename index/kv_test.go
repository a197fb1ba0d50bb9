package index

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKVConformance runs the key-value store contract that the typed
// records rely on over each backend: byte order of keys (0x00 and 0xff
// included), half-open ranges, seeks both ways, pages longer than one
// fetch, a batch's reads over its own writes (a set after a range
// deletion wins, a range deletion after a set wins), nothing of a batch
// visible before it commits, and concurrent batches on the same keys all
// committing.
func TestKVConformance(t *testing.T) {
	backends := map[string]func(t *testing.T) *DB{
		"pebble": func(t *testing.T) *DB {
			db, err := Open("", &Options{InMemory: true, Logger: testLogger(t)})
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			return db
		},
		"postgres": func(t *testing.T) *DB { return openPostgres(t, startPostgres(t)) },
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			ctx := context.Background()
			apply := func(fn func(b kvBatch)) {
				b := db.kv.newBatch()
				fn(b)
				require.NoError(t, db.kv.apply(ctx, b, true))
			}
			keys := func(lo, hi []byte) []string {
				it, err := db.kv.newIter(ctx, lo, hi)
				require.NoError(t, err)
				var out []string
				for ok := it.First(); ok; ok = it.Next() {
					out = append(out, string(it.Key()))
				}
				require.NoError(t, it.Close())
				return out
			}

			// Byte order and bounds.
			apply(func(b kvBatch) {
				for _, k := range []string{"k\x00", "k\x01", "k\x7f", "k\x80", "k\xff", "k\xff\xff", "j", "l"} {
					require.NoError(t, b.set([]byte(k), []byte("v"+k)))
				}
				require.NoError(t, b.set([]byte("knil"), nil))
			})
			assert.Equal(t, []string{"k\x00", "k\x01", "knil", "k\x7f", "k\x80", "k\xff", "k\xff\xff"}, keys([]byte("k"), []byte("l")))
			v, closer, err := db.kv.get(ctx, []byte("knil"))
			require.NoError(t, err)
			assert.Empty(t, v, "a nil value reads empty")
			require.NoError(t, closer.Close())
			_, _, err = db.kv.get(ctx, []byte("absent"))
			assert.ErrorIs(t, err, errKVNotFound)

			// Seeks.
			it, err := db.kv.newIter(ctx, []byte("k"), []byte("l"))
			require.NoError(t, err)
			require.True(t, it.Last())
			assert.Equal(t, "k\xff\xff", string(it.Key()))
			require.True(t, it.SeekLT([]byte("k\x80")))
			assert.Equal(t, "k\x7f", string(it.Key()))
			require.True(t, it.Next())
			assert.Equal(t, "k\x80", string(it.Key()), "Next after SeekLT")
			require.True(t, it.SeekGE([]byte("k\x70")))
			assert.Equal(t, "k\x7f", string(it.Key()))
			assert.Equal(t, "vk\x7f", string(it.Value()))
			assert.False(t, it.SeekLT([]byte("k")), "nothing below the lower bound")
			assert.False(t, it.SeekGE([]byte("l")), "nothing at the upper bound")
			require.NoError(t, it.Close())

			// More keys than one page.
			apply(func(b kvBatch) {
				for i := range 700 {
					require.NoError(t, b.set([]byte(fmt.Sprintf("p%04d", i)), []byte{byte(i)}))
				}
			})
			got := keys([]byte("p"), []byte("q"))
			require.Len(t, got, 700)
			assert.Equal(t, "p0000", got[0])
			assert.Equal(t, "p0699", got[699])

			// A batch reads its own writes, in order.
			b := db.kv.newBatch()
			require.NoError(t, b.set([]byte("p0005"), []byte("new")))
			require.NoError(t, b.delRange([]byte("p0000"), []byte("p0010")))
			require.NoError(t, b.set([]byte("p0003"), []byte("again")))
			require.NoError(t, b.del([]byte("p0011")))
			_, _, err = b.get([]byte("p0005"))
			assert.ErrorIs(t, err, errKVNotFound, "deleted by the later range deletion")
			v, _, err = b.get([]byte("p0003"))
			require.NoError(t, err)
			assert.Equal(t, "again", string(v), "set after the range deletion")
			bit, err := b.newIter([]byte("p0000"), []byte("p0013"))
			require.NoError(t, err)
			var bk []string
			for ok := bit.First(); ok; ok = bit.Next() {
				bk = append(bk, string(bit.Key()))
			}
			require.NoError(t, bit.Close())
			assert.Equal(t, []string{"p0003", "p0010", "p0012"}, bk)
			_, _, err = db.kv.get(ctx, []byte("p0003"))
			require.NoError(t, err)
			assert.Len(t, keys([]byte("p"), []byte("q")), 700, "nothing visible before the commit")
			require.NoError(t, db.kv.apply(ctx, b, true))
			assert.Len(t, keys([]byte("p"), []byte("q")), 700-11+1)
			v, _, err = db.kv.get(ctx, []byte("p0003"))
			require.NoError(t, err)
			assert.True(t, bytes.Equal([]byte("again"), v))

			// Concurrent batches on the same keys all commit.
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 10 {
						b := db.kv.newBatch()
						_ = b.set([]byte("hot"), []byte(fmt.Sprintf("%d-%d", g, i)))
						_ = b.delRange([]byte("p0100"), []byte("p0110"))
						_ = b.set([]byte(fmt.Sprintf("g%d", g)), []byte{byte(i)})
						assert.NoError(t, db.kv.apply(ctx, b, true))
					}
				}()
			}
			wg.Wait()
			assert.Len(t, keys([]byte("g"), []byte("h")), 8)
		})
	}
}
