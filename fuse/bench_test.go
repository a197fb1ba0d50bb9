package fuse

// Benchmarks for bench/RESULTS.md (acceptance 4). Each reports the view
// against the same work on local disk, measured in one run:
//
//	go test ./fuse -run '^$' -bench . -benchtime 1x
//
// BERTH_BENCH_MB sets the size of the large file (default 256) and of the
// many-files image (default 200). Dropping caches needs root.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/stretchr/testify/require"
)

func benchMB() int {
	if n, err := strconv.Atoi(os.Getenv("BERTH_BENCH_MB")); err == nil && n > 0 {
		return n
	}
	return 256
}

func dropCaches(b *testing.B) {
	exec.Command("sync").Run()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200); err != nil {
		b.Logf("drop caches: %v", err)
	}
}

// readAll reads a file sequentially and returns MB/s.
func readAll(b *testing.B, p string) float64 {
	f, err := os.Open(p)
	require.NoError(b, err)
	defer f.Close()
	buf := make([]byte, 1<<20)
	t0 := time.Now()
	n, err := io.CopyBuffer(io.Discard, f, buf)
	require.NoError(b, err)
	return float64(n) / 1e6 / time.Since(t0).Seconds()
}

// semiRandom returns n bytes that zstd compresses about 2:1.
func semiRandom(b *testing.B, n int) string {
	r := []byte(randomBytes(b, n/2))
	out := make([]byte, 0, n)
	for i := 0; len(out) < n; i++ {
		out = append(out, r[i%len(r)], byte(i))
	}
	return string(out[:n])
}

// BenchmarkSequentialRead: a large file through the mount versus the
// same file on local disk, first read (caches dropped) and second read.
func BenchmarkSequentialRead(b *testing.B) {
	needFUSE(b)
	size := benchMB() << 20
	data := semiRandom(b, size)
	e := openStore(b)
	img := imageOf(b, layerOf(b, makeTar(b, file("big.bin", 0o644, data)), "gzip"))
	push(b, e, "bench", "seq", img)
	require.NoError(b, e.PrepareImage(context.Background(), "bench", "seq", nil))
	mnt := mountStore(b, e, nil)
	local := filepath.Join(b.TempDir(), "big.bin")
	require.NoError(b, os.WriteFile(local, []byte(data), 0o644))
	viewPath := filepath.Join(mnt, "bench", "@tags", "seq", "rootfs", "big.bin")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dropCaches(b)
		diskCold := readAll(b, local)
		diskWarm := readAll(b, local)
		dropCaches(b)
		viewCold := readAll(b, viewPath)
		viewWarm := readAll(b, viewPath)
		b.ReportMetric(diskCold, "disk-first-MB/s")
		b.ReportMetric(viewCold, "view-first-MB/s")
		b.ReportMetric(viewCold/diskCold, "ratio-first")
		b.ReportMetric(diskWarm, "disk-second-MB/s")
		b.ReportMetric(viewWarm, "view-second-MB/s")
		b.ReportMetric(viewWarm/diskWarm, "ratio-second")
	}
}

// manyFilesImage builds an image of about mb MiB in files of 4 KiB to
// 1 MiB over three layers.
func manyFilesImage(b *testing.B, mb int) []tarEntry {
	var out []tarEntry
	total := 0
	sizes := []int{4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}
	for i := 0; total < mb<<20; i++ {
		n := sizes[i%len(sizes)]
		d := fmt.Sprintf("d%02d", i%50)
		if i < 50 {
			out = append(out, dir(d, 0o755))
		}
		out = append(out, file(fmt.Sprintf("%s/f%05d", d, i), 0o644, semiRandom(b, n)))
		total += n
	}
	return out
}

func timeCmd(b *testing.B, name string, args ...string) time.Duration {
	t0 := time.Now()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(b, err, string(out))
	return time.Since(t0)
}

// BenchmarkFindSha256: find + sha256sum over a whole image through the
// mount versus over its unpacked copy; and the time to the first ls of a
// freshly pushed image versus unpacking it (mutate.Extract | tar -x, that
// is crane export | tar -x).
func BenchmarkFindSha256(b *testing.B) {
	needFUSE(b)
	ents := manyFilesImage(b, benchMB())
	third := len(ents) / 3
	img := imageOf(b,
		layerOf(b, makeTar(b, ents[:third]...), "gzip"),
		layerOf(b, makeTar(b, ents[third:2*third]...), "gzip"),
		layerOf(b, makeTar(b, ents[2*third:]...), "gzip"))
	e := openStore(b)
	push(b, e, "bench", "cold", img)
	push(b, e, "bench2", "prepared", img)
	t0 := time.Now()
	require.NoError(b, e.PrepareImage(context.Background(), "bench2", "prepared", nil))
	prepare := time.Since(t0)
	mnt := mountStore(b, e, nil)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ref := b.TempDir()
		t0 := time.Now()
		cmd := exec.Command("tar", "-x", "-p", "-f", "-", "-C", ref)
		rc := mutate.Extract(img)
		cmd.Stdin = rc
		out, err := cmd.CombinedOutput()
		rc.Close()
		require.NoError(b, err, string(out))
		extract := time.Since(t0)

		lsPrepared := timeCmd(b, "ls", filepath.Join(mnt, "bench2", "@tags", "prepared", "rootfs"))
		lsCold := timeCmd(b, "ls", filepath.Join(mnt, "bench", "@tags", "cold", "rootfs"))

		script := "find %s -type f -print0 | xargs -0 sha256sum > /dev/null"
		dropCaches(b)
		diskSum := timeCmd(b, "sh", "-c", fmt.Sprintf(script, ref))
		dropCaches(b)
		viewSum := timeCmd(b, "sh", "-c", fmt.Sprintf(script, filepath.Join(mnt, "bench", "@tags", "cold", "rootfs")))
		diskSum2 := timeCmd(b, "sh", "-c", fmt.Sprintf(script, ref))
		viewSum2 := timeCmd(b, "sh", "-c", fmt.Sprintf(script, filepath.Join(mnt, "bench", "@tags", "cold", "rootfs")))

		b.ReportMetric(float64(len(ents)), "files")
		b.ReportMetric(extract.Seconds(), "extract-s")
		b.ReportMetric(prepare.Seconds(), "prepare-after-push-s")
		b.ReportMetric(lsPrepared.Seconds()*1e3, "first-ls-prepared-ms")
		b.ReportMetric(lsCold.Seconds(), "first-ls-cold-s")
		b.ReportMetric(extract.Seconds()/lsPrepared.Seconds(), "ls-speedup-prepared")
		b.ReportMetric(extract.Seconds()/lsCold.Seconds(), "ls-speedup-cold")
		b.ReportMetric(diskSum.Seconds(), "sha-disk-first-s")
		b.ReportMetric(viewSum.Seconds(), "sha-view-first-s")
		b.ReportMetric(diskSum2.Seconds(), "sha-disk-second-s")
		b.ReportMetric(viewSum2.Seconds(), "sha-view-second-s")
	}
}
