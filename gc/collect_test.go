package gc

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/index"
)

// testStore is an in-memory index with an (empty) blob directory.
type testStore struct {
	db    *index.DB
	blobs *blob.Store
	locks [64]sync.Mutex
}

func newTestStore(t *testing.T) *testStore {
	db, err := index.Open("", &index.Options{InMemory: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	bs, err := blob.Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { bs.Close() })
	return &testStore{db: db, blobs: bs}
}

func (s *testStore) lock(d digest.Digest) func() {
	m := &s.locks[keyOf(d)[0]%64]
	m.Lock()
	return m.Unlock
}

func (s *testStore) config(now time.Time) Config {
	return Config{DB: s.db, Blobs: s.blobs, LockDigest: s.lock,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
}

func dg(name string) digest.Digest { return digest.FromString(name) }

func TestPlan(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	old, young := now.Add(-2*time.Hour), now.Add(-time.Minute)
	s := newTestStore(t)
	b := s.db.NewBatch()
	put := func(name string, created time.Time, links map[string]time.Time) {
		require.NoError(t, b.PutBlob(&index.Blob{Digest: dg(name), Size: 10, StoredSize: 20, CreatedAt: created}))
		for repo, at := range links {
			require.NoError(t, b.PutLink(repo, dg(name), at))
		}
	}
	put("referenced", old, map[string]time.Time{"r": old})
	put("garbage", old, map[string]time.Time{"r": old, "s": old})
	put("unlinked-garbage", old, nil)
	put("young-record", young, nil)
	put("young-link", old, map[string]time.Time{"r": old, "s": young})
	put("derived-of-referenced", old, nil)
	put("garbage-layer", old, nil)
	put("derived-of-garbage", old, nil)
	require.NoError(t, b.PutLayerDerived(dg("referenced"), dg("derived-of-referenced")))
	require.NoError(t, b.PutLayerDerived(dg("garbage-layer"), dg("derived-of-garbage")))
	require.NoError(t, b.PutLayerTOC(dg("garbage-layer"), [][]byte{[]byte("toc")}))
	require.NoError(t, b.PutManifest(&index.Manifest{Repo: "r", Digest: dg("m"), PushedAt: old, Blobs: []digest.Digest{dg("referenced"), dg("absent")}, Payload: []byte("{}")}))
	require.NoError(t, b.Commit(true))

	tests := []struct {
		name  string
		grace time.Duration
		want  []string
	}{
		{"default grace (1h)", 0, []string{"garbage", "unlinked-garbage", "garbage-layer", "derived-of-garbage"}},
		{"short grace", 30 * time.Second, []string{"garbage", "unlinked-garbage", "young-record", "young-link", "garbage-layer", "derived-of-garbage"}},
		{"long grace", 3 * time.Hour, nil},
		{"no grace", -1, []string{"garbage", "unlinked-garbage", "young-record", "young-link", "garbage-layer", "derived-of-garbage"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewCollector(s.config(now), Options{Grace: tc.grace}).Plan(context.Background())
			require.NoError(t, err)
			var want []digest.Digest
			for _, n := range tc.want {
				want = append(want, dg(n))
			}
			assert.ElementsMatch(t, want, p.SortedDigests())
			assert.Equal(t, 1, p.Manifests)
			assert.Equal(t, 8, p.BlobRecords)
			assert.Equal(t, 3, p.Marked, "referenced, absent and derived-of-referenced")
			for _, c := range p.Blobs {
				if c.Digest == dg("garbage") {
					assert.ElementsMatch(t, []string{"r", "s"}, c.Repos)
				}
			}
		})
	}

	r, err := NewCollector(s.config(now), Options{}).Run(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 4, r.BlobsSwept)
	assert.Equal(t, int64(80), r.BytesFreed)
	_, err = s.db.LayerTOC(dg("garbage-layer"))
	require.ErrorIs(t, err, index.ErrNotFound, "the table of contents goes with its layer")
	_, err = s.db.LayerDerived(dg("garbage-layer"))
	require.ErrorIs(t, err, index.ErrNotFound)
	got, err := s.db.LayerDerived(dg("referenced"))
	require.NoError(t, err)
	require.Equal(t, dg("derived-of-referenced"), got)
	for _, n := range []string{"garbage", "unlinked-garbage", "garbage-layer", "derived-of-garbage"} {
		_, err := s.db.Blob(dg(n))
		require.ErrorIs(t, err, index.ErrNotFound)
	}
	for _, repo := range []string{"r", "s"} {
		ok, err := s.db.Linked(repo, dg("garbage"))
		require.NoError(t, err)
		assert.False(t, ok, "links go with the blob")
	}
	require.NoError(t, s.db.LinkedRepositories(dg("garbage"), func(repo string) error {
		t.Errorf("the reverse link index entry of %s went with the blob, yet it lists it", repo)
		return nil
	}))
	ok, err := s.db.Linked("r", dg("referenced"))
	require.NoError(t, err)
	assert.True(t, ok)
}

// TestShadeBarrier checks the write barrier's promise: when Shade(d)
// returns and d's record exists, the collection does not remove it.
func TestShadeBarrier(t *testing.T) {
	for _, batched := range []bool{false, true} {
		t.Run(map[bool]string{false: "one at a time", true: "batched"}[batched], func(t *testing.T) {
			now := time.Now()
			s := newTestStore(t)
			const n = 400
			b := s.db.NewBatch()
			ds := make([]digest.Digest, n)
			for i := range ds {
				ds[i] = dg(strconv.Itoa(i))
				require.NoError(t, b.PutBlob(&index.Blob{Digest: ds[i], CreatedAt: now.Add(-time.Hour)}))
			}
			require.NoError(t, b.Commit(false))
			cfg := s.config(now)
			if batched {
				cfg.LockDigests = func(ds []digest.Digest) func() {
					idx := map[byte]bool{}
					for _, d := range ds {
						idx[keyOf(d)[0]%64] = true
					}
					var held []*sync.Mutex
					for i := range byte(64) {
						if idx[i] {
							s.locks[i].Lock()
							held = append(held, &s.locks[i])
						}
					}
					return func() {
						for _, m := range held {
							m.Unlock()
						}
					}
				}
			}
			c := NewCollector(cfg, Options{Grace: -1})
			p, err := c.Plan(context.Background())
			require.NoError(t, err)
			require.Len(t, p.Blobs, n)

			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				claimed []digest.Digest
			)
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(w), 3))
					for range n / 8 {
						d := ds[r.IntN(n)]
						c.Shade(d)
						if _, err := s.db.Blob(d); err == nil {
							mu.Lock()
							claimed = append(claimed, d)
							mu.Unlock()
						}
					}
				}()
			}
			r, err := c.Execute(context.Background(), p)
			require.NoError(t, err)
			wg.Wait()
			for _, d := range claimed {
				_, err := s.db.Blob(d)
				require.NoError(t, err, "%s was shaded while it existed, yet swept", d)
			}
			assert.Equal(t, n, r.BlobsSwept+r.BlobsSpared)
			t.Logf("%d swept, %d spared, %d shaded while present", r.BlobsSwept, r.BlobsSpared, len(claimed))
		})
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	now := time.Now()
	s := newTestStore(t)
	b := s.db.NewBatch()
	require.NoError(t, b.PutBlob(&index.Blob{Digest: dg("x"), CreatedAt: now.Add(-2 * time.Hour), StoredSize: 7}))
	require.NoError(t, b.Commit(false))
	r, err := NewCollector(s.config(now), Options{DryRun: true}).Run(context.Background())
	require.NoError(t, err)
	assert.True(t, r.DryRun)
	assert.Equal(t, int64(7), r.Plan.Bytes())
	assert.Zero(t, r.BlobsSwept)
	_, err = s.db.Blob(dg("x"))
	require.NoError(t, err)
}
