package index

import (
	"fmt"
	"path/filepath"
	"testing"

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
