package index

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKVStats: the PostgreSQL kv counts what it sends: a point read is
// one round trip; a commit of three writes is BEGIN, the pipelined writes
// and COMMIT (three round trips, five statements); an iterator over 300
// keys is BEGIN, two pages and ROLLBACK. Pebble counts nothing.
func TestKVStats(t *testing.T) {
	db := openPostgres(t, startPostgres(t))
	ctx := context.Background()
	since := func(f func()) KVStats {
		before := db.KVStats()
		f()
		after := db.KVStats()
		return KVStats{
			Postgres:   after.Postgres,
			RoundTrips: after.RoundTrips - before.RoundTrips, Statements: after.Statements - before.Statements,
			Gets: after.Gets - before.Gets, Iterators: after.Iterators - before.Iterators, Pages: after.Pages - before.Pages,
			Commits: after.Commits - before.Commits, CommitRetries: after.CommitRetries - before.CommitRetries,
		}
	}
	assert.Equal(t, KVStats{Postgres: true, RoundTrips: 3, Statements: 5, Commits: 1}, since(func() {
		b := db.kv.newBatch()
		for i := range 3 {
			require.NoError(t, b.set([]byte{0x7f, byte(i)}, []byte("v")))
		}
		require.NoError(t, db.kv.apply(ctx, b, true))
	}))
	assert.Equal(t, KVStats{Postgres: true, RoundTrips: 1, Statements: 1, Gets: 1}, since(func() {
		_, _, err := db.kv.get(ctx, []byte{0x7f, 1})
		require.NoError(t, err)
	}))
	b := db.kv.newBatch()
	for i := range 300 {
		require.NoError(t, b.set([]byte(fmt.Sprintf("\x7e%04d", i)), []byte("v")))
	}
	require.NoError(t, db.kv.apply(ctx, b, true))
	assert.Equal(t, KVStats{Postgres: true, RoundTrips: 4, Statements: 4, Iterators: 1, Pages: 2}, since(func() {
		it, err := db.kv.newIter(ctx, []byte{0x7e}, []byte{0x7f})
		require.NoError(t, err)
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		require.NoError(t, it.Close())
		require.Equal(t, 300, n)
	}))

	mem, err := Open("", &Options{InMemory: true, Logger: testLogger(t)})
	require.NoError(t, err)
	defer mem.Close()
	assert.Equal(t, KVStats{}, mem.KVStats())
}

// TestPoolSizeFromURL: pool_max_conns in the URL sizes the pool (32
// without it).
func TestPoolSizeFromURL(t *testing.T) {
	srv := startPostgres(t)
	url := srv.NewDatabase(t)
	for _, tt := range []struct {
		url  string
		want int32
	}{{url, 32}, {url + "&pool_max_conns=3", 3}} {
		db, err := OpenPostgres(context.Background(), tt.url, &Options{Logger: testLogger(t)}, nil)
		require.NoError(t, err)
		assert.Equal(t, tt.want, db.kv.(*pgKV).pool.Stat().MaxConns(), tt.url)
		require.NoError(t, db.Close())
	}
}
