package engine

// BenchmarkGCScale measures mark and sweep over a
// synthetic store of 1,000,000 blob records and 100,000 manifests (written
// straight into the index; 10% of the blobs unreferenced and old), its
// duration and peak heap, and the p99 latency of manifest GET while it
// runs beside the p99 without it. Out of the normal test run:
//
//	go test -run '^$' -bench GCScale -benchtime 1x ./engine
//
// BERTH_GC_BENCH_BLOBS scales it down (the manifests are a tenth of it).

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/index"
)

func BenchmarkGCScale(b *testing.B) {
	nBlobs := 1_000_000
	if s := os.Getenv("BERTH_GC_BENCH_BLOBS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err)
		nBlobs = n
	}
	nManifests := nBlobs / 10
	const perManifest, repos = 9, 100
	e, err := Open(b.TempDir(), quietOptions())
	require.NoError(b, err)
	defer e.Close()
	ctx := context.Background()

	t0 := time.Now()
	old := time.Now().Add(-48 * time.Hour).UTC()
	blobDigest := func(i int) digest.Digest {
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], uint64(i))
		return digest.FromBytes(buf[:])
	}
	repoName := func(i int) string { return fmt.Sprintf("bench/r%02d", i%repos) }
	for i := range repos {
		_, err := e.CreateRepository(ctx, repoName(i), RepositorySettings{})
		require.NoError(b, err)
	}
	batch := e.db.NewBatch()
	flush := func(force bool) {
		if force || batch.Len() > 4<<20 {
			require.NoError(b, batch.Commit(false))
			batch = e.db.NewBatch()
		}
	}
	for i := range nBlobs {
		d := blobDigest(i)
		require.NoError(b, batch.PutBlob(&index.Blob{Digest: d, Size: 1000, StoredSize: 1100, CreatedAt: old}))
		require.NoError(b, batch.PutLink(repoName(i/perManifest), d, old))
		flush(false)
	}
	// Manifest m references blobs m*9 .. m*9+8: 900,000 of the 1,000,000.
	var sample []struct {
		repo string
		d    digest.Digest
	}
	for m := range nManifests {
		payload := fmt.Appendf(nil, `{"schemaVersion":2,"n":%d}`, m)
		rec := &index.Manifest{Repo: repoName(m), Digest: digest.FromBytes(payload), MediaType: "application/vnd.oci.image.manifest.v1+json",
			PushedAt: old, Payload: payload}
		for j := range perManifest {
			rec.Blobs = append(rec.Blobs, blobDigest(m*perManifest+j))
		}
		require.NoError(b, batch.PutManifest(rec))
		require.NoError(b, batch.PutTag(rec.Repo, fmt.Sprintf("t%d", m), rec.Digest, ""))
		if m%97 == 0 {
			sample = append(sample, struct {
				repo string
				d    digest.Digest
			}{rec.Repo, rec.Digest})
		}
		flush(false)
	}
	flush(true)
	b.Logf("synthetic store: %d blob records, %d manifests, built in %v", nBlobs, nManifests, time.Since(t0))

	// Latencies of manifest GET by digest, one reader in a closed loop, in a
	// histogram of 1 µs buckets (no allocation while measuring).
	type hist struct {
		n       int
		buckets [100_000]uint32 // the last one holds everything ≥ 100 ms
	}
	measure := func(stop <-chan struct{}, d time.Duration) *hist {
		h := &hist{}
		end := time.Now().Add(d)
		for i := 0; ; i++ {
			if stop != nil {
				select {
				case <-stop:
					return h
				default:
				}
			} else if time.Now().After(end) {
				return h
			}
			s := sample[i%len(sample)]
			t := time.Now()
			_, err := e.GetManifest(ctx, s.repo, string(s.d))
			us := int(time.Since(t) / time.Microsecond)
			h.buckets[min(us, len(h.buckets)-1)]++
			h.n++
			if err != nil {
				b.Error(err)
				return h
			}
		}
	}
	p := func(h *hist, q float64) time.Duration {
		want, seen := int(float64(h.n)*q), 0
		for us, c := range h.buckets {
			seen += int(c)
			if seen > want {
				return time.Duration(us) * time.Microsecond
			}
		}
		return 0
	}
	measure(nil, 3*time.Second) // warm the caches, let the bulk load's compactions settle
	idle := measure(nil, 2*time.Second)

	b.ResetTimer()
	for range b.N {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		busyCh := make(chan *hist, 1)
		go func() { // one manifest reader in a closed loop
			defer wg.Done()
			busyCh <- measure(stop, 0)
		}()
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak atomic.Uint64
		go func() { // heap sampler
			defer wg.Done()
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		r, err := e.CollectGarbage(ctx, GCOptions{Grace: time.Hour})
		close(stop)
		wg.Wait()
		require.NoError(b, err)
		busy := <-busyCh
		want := nBlobs - nManifests*perManifest
		require.Equal(b, want, r.BlobsSwept)
		extra := float64(peak.Load()) - float64(base.HeapInuse)
		b.ReportMetric(r.Duration.Seconds(), "gc-s")
		b.ReportMetric(r.MarkDuration.Seconds(), "mark-s")
		b.ReportMetric(r.SweepDuration.Seconds(), "sweep-s")
		b.ReportMetric(extra/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(p(idle, 0.99).Microseconds()), "p99-get-idle-µs")
		b.ReportMetric(float64(p(busy, 0.99).Microseconds()), "p99-get-during-gc-µs")
		b.Logf("gc over %d blob records / %d manifests: %v (mark %v, plan %v, sweep %v), %d swept; peak heap +%.0f MiB; manifest GET p50/p99 idle %v/%v, during gc %v/%v (%d GETs)",
			r.Plan.BlobRecords, r.Plan.Manifests, r.Duration, r.MarkDuration, r.PlanDuration, r.SweepDuration, r.BlobsSwept, extra/(1<<20),
			p(idle, 0.5), p(idle, 0.99), p(busy, 0.5), p(busy, 0.99), busy.n)
		if b.N > 1 {
			b.Fatal("run with -benchtime 1x: the second run has nothing to sweep")
		}
	}
}
