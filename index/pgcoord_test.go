package index

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCoordinator: two processes' coordinators on one database (two
// DBs): a lock excludes the other's holder, LockMany in any order does
// not deadlock, a lease is held by one until released or until its
// session dies (the holder is told), and sequence numbers are unique
// across both and above the floor. A pebble index has no coordinator.
func TestCoordinator(t *testing.T) {
	srv := startPostgres(t)
	url := srv.NewDatabase(t)
	ctx := context.Background()
	open := func() *Coordinator {
		db, err := OpenPostgres(ctx, url, &Options{Logger: testLogger(t)}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		c, err := db.Coordinator()
		require.NoError(t, err)
		require.NotNil(t, c)
		return c
	}
	a, b := open(), open()
	n, err := a.Peers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "peers")

	t.Run("lock", func(t *testing.T) {
		var mu sync.Mutex
		in, maxIn := 0, 0
		var wg sync.WaitGroup
		for i := range 8 {
			c := a
			if i%2 == 1 {
				c = b
			}
			// One goroutine per coordinator at a time: the caller's own
			// exclusion (the engine's stripes) comes first.
			wg.Go(func() {
				for range 5 {
					unlock := c.Lock("repo\x00team/app")
					mu.Lock()
					in++
					maxIn = max(maxIn, in)
					mu.Unlock()
					time.Sleep(time.Millisecond)
					mu.Lock()
					in--
					mu.Unlock()
					unlock()
				}
			})
			if i%2 == 1 {
				wg.Wait() // a and b pairwise
			}
		}
		wg.Wait()
		assert.Equal(t, 1, maxIn)
	})

	t.Run("lock many", func(t *testing.T) {
		keys := []string{"k1", "k2", "k3", "k4"}
		rev := []string{"k4", "k3", "k2", "k1"}
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 20 {
				a.LockMany(keys)()
			}
		})
		wg.Go(func() {
			for range 20 {
				b.LockMany(rev)()
			}
		})
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("LockMany deadlocked")
		}
	})

	t.Run("lease", func(t *testing.T) {
		l, err := a.TryLease(ctx, "gc")
		require.NoError(t, err)
		_, err = b.TryLease(ctx, "gc")
		require.ErrorIs(t, err, ErrLeaseHeld)
		_, err = a.TryLease(ctx, "gc")
		require.ErrorIs(t, err, ErrLeaseHeld, "held by this process already")
		l.Release()
		l2, err := b.TryLease(ctx, "gc")
		require.NoError(t, err)

		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `SELECT pg_terminate_backend($1)`, int32(b.SessionPID()))
		require.NoError(t, err)
		select {
		case <-l2.Lost():
		case <-time.After(10 * time.Second):
			t.Fatal("the holder was not told")
		}
		l3, err := a.TryLease(ctx, "gc")
		require.NoError(t, err, "the dead session's lease is free")
		l3.Release()
		l2.Release() // lost already: a no-op
	})

	t.Run("sequence", func(t *testing.T) {
		seen := map[uint64]bool{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 4 {
			c := a
			if i%2 == 1 {
				c = b
			}
			wg.Go(func() {
				for range 25 {
					n, err := c.NextSeq(ctx, "events", 1000)
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					assert.False(t, seen[n], "number %d given twice", n)
					assert.Greater(t, n, uint64(1000), fmt.Sprint(n))
					seen[n] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		assert.Len(t, seen, 100)
	})

	db, err := Open(t.TempDir(), &Options{Logger: testLogger(t)})
	require.NoError(t, err)
	defer db.Close()
	c, err := db.Coordinator()
	require.NoError(t, err)
	assert.Nil(t, c, "pebble: one process owns the index")
}
