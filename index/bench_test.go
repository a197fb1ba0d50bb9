package index

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

func openBench(b *testing.B) *DB {
	b.Helper()
	db, err := Open(filepath.Join(b.TempDir(), "idx"), &Options{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = db.Close() })
	return db
}

// BenchmarkTagManifestMeta measures a manifest HEAD by tag: Tag then
// ManifestMeta, over 10,000 tagged manifests with 4 KiB payloads.
func BenchmarkTagManifestMeta(b *testing.B) {
	db := openBench(b)
	const n = 10000
	payload := make([]byte, 4<<10)
	tags := make([]string, n)
	batch := db.NewBatch()
	for i := range n {
		tags[i] = fmt.Sprintf("v%05d", i)
		d := digest.FromString(tags[i])
		require.NoError(b, batch.PutManifest(&Manifest{Repo: "bench/app", Digest: d,
			MediaType: "application/vnd.oci.image.manifest.v1+json",
			Blobs:     []digest.Digest{d, d, d}, Payload: payload}))
		require.NoError(b, batch.PutTag("bench/app", tags[i], d, ""))
	}
	require.NoError(b, batch.Commit(true))
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		tag := tags[i%n]
		i++
		d, err := db.Tag("bench/app", tag)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.ManifestMeta("bench/app", d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkManifestGet measures a manifest GET by digest with its payload.
func BenchmarkManifestGet(b *testing.B) {
	db := openBench(b)
	payload := make([]byte, 4<<10)
	d := digest.FromBytes(payload)
	batch := db.NewBatch()
	require.NoError(b, batch.PutManifest(&Manifest{Repo: "bench/app", Digest: d, Payload: payload}))
	require.NoError(b, batch.Commit(true))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.Manifest("bench/app", d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListTags10k lists all 10,000 tags of a repository.
func BenchmarkListTags10k(b *testing.B) {
	db := openBench(b)
	batch := db.NewBatch()
	for i := range 10000 {
		tag := fmt.Sprintf("v%05d", i)
		require.NoError(b, batch.PutTag("bench/app", tag, digest.FromString(tag), ""))
	}
	require.NoError(b, batch.Commit(true))
	b.ReportAllocs()
	for b.Loop() {
		tags, err := db.ListTags("bench/app", "", 0)
		if err != nil || len(tags) != 10000 {
			b.Fatal(err, len(tags))
		}
	}
}

// BenchmarkPushCommit is the index side of a blob push: one batch with the
// blob record, its link (and, since schema version 3, the link's reverse
// index entry) and the upload record's deletion, committed without and
// with Sync. A new digest per op.
func BenchmarkPushCommit(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			db := openBench(b)
			b.ReportAllocs()
			i := 0
			cpu0 := processCPU()
			for b.Loop() {
				i++
				d := digest.FromString(fmt.Sprint(i))
				batch := db.NewBatch()
				if err := batch.PutBlob(&Blob{Digest: d, Size: 1 << 20, StoredSize: 1 << 20,
					Wraps: []KeyWrap{{KeyID: "berth-default", Version: 1, Wrapped: make([]byte, 60)}}, FileID: make([]byte, 16)}); err != nil {
					b.Fatal(err)
				}
				if err := batch.PutLink("bench/app", d, time.Now()); err != nil {
					b.Fatal(err)
				}
				if err := batch.DeleteUpload(fmt.Sprintf("upload-%08d", i)); err != nil {
					b.Fatal(err)
				}
				if err := batch.Commit(sync); err != nil {
					b.Fatal(err)
				}
			}
			if used := processCPU() - cpu0; used > 0 {
				b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// processCPU is the CPU time (user and system, all threads) the process
// used so far: on a shared machine wall-clock figures depend on the other
// load, the CPU cost much less.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
