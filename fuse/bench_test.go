package fuse

// Benchmarks for bench/RESULTS.md. Each reports the view against the
// same work on local disk, measured in one run:
//
//	go test ./fuse -run '^$' -bench . -benchtime 1x
//
// BERTH_BENCH_MB sets the size of the large file (default 256),
// BERTH_BENCH_IMAGE_MB the size of the many-files image (default 500: a
// typical large image). Dropping caches needs root.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/engine/enginetest"
	"github.com/berthstore/berth/internal/testenv"
)

// benchImageMB is the size of the many-files image, in MiB.
func benchImageMB() int {
	if n, err := strconv.Atoi(os.Getenv("BERTH_BENCH_IMAGE_MB")); err == nil && n > 0 {
		return n
	}
	return 500
}

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

// readAll reads a file sequentially with reads of bs bytes (as dd bs=1M
// or cat do; io.Copy to io.Discard would read 8 KiB at a time) and
// returns MB/s.
func readAll(b *testing.B, p string, bs int) float64 {
	f, err := os.Open(p)
	require.NoError(b, err)
	defer f.Close()
	buf := make([]byte, bs)
	for i := range buf { // fault the buffer in before the clock starts
		buf[i] = 0
	}
	var n int64
	t0 := time.Now()
	for {
		m, err := f.Read(buf)
		n += int64(m)
		if err == io.EOF {
			break
		}
		require.NoError(b, err)
	}
	return float64(n) / 1e6 / time.Since(t0).Seconds()
}

// median returns the median of v.
func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// benchRounds is how many rounds a read benchmark takes its medians over
// (BERTH_BENCH_ROUNDS, default 5): single reads of a few hundred MB last
// tens of milliseconds, which the noise of a shared machine swamps.
func benchRounds() int {
	if n, err := strconv.Atoi(os.Getenv("BERTH_BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 5
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

// bigFilePath is where bigFileStore's file shows in the view.
const bigFilePath = "bench/@tags/seq/rootfs/big.bin"

// bigFileStore returns a store holding data as the file big.bin of an
// image of one gzip layer (bench:seq), prepared for the view as after a
// push (its layer indexed and its seekable copy stored).
func bigFileStore(b *testing.B, data string) *engine.Engine {
	e := enginetest.Open(b, nil)
	img := imageOf(b, layerOf(b, makeTar(b, file("big.bin", 0o644, data)), "gzip"))
	push(b, e, "bench", "seq", img)
	require.NoError(b, e.PrepareImage(context.Background(), "bench", "seq", nil))
	return e
}

// BenchmarkSequentialRead: a large file through the mount versus the
// same file on local disk, first read (caches dropped before each) and
// second read (from the page cache), with 1 MiB reads and with 128 KiB
// reads (cat's size). Each figure is the median of benchRounds rounds,
// the two sides alternating within a round. It also reports how much of
// each file's page cache is in large folios after the reads (see
// largeFolioShare): the kernel's copy out of the page cache, which is all
// a second read is, runs at about half speed over 4 KiB folios.
func BenchmarkSequentialRead(b *testing.B) {
	testenv.NeedFUSE(b)
	size := benchMB() << 20
	data := semiRandom(b, size)
	e := bigFileStore(b, data)
	viewPath := filepath.Join(mountStore(b, e, nil), bigFilePath)
	local := filepath.Join(b.TempDir(), "big.bin")
	require.NoError(b, os.WriteFile(local, []byte(data), 0o644))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var diskCold, viewCold, diskWarm, viewWarm, diskWarm128, viewWarm128 []float64
		for r := 0; r < benchRounds(); r++ {
			dropCaches(b)
			diskCold = append(diskCold, readAll(b, local, 1<<20))
			diskWarm = append(diskWarm, readAll(b, local, 1<<20))
			diskWarm128 = append(diskWarm128, readAll(b, local, 128<<10))
			dropCaches(b)
			viewCold = append(viewCold, readAll(b, viewPath, 1<<20))
			viewWarm = append(viewWarm, readAll(b, viewPath, 1<<20))
			viewWarm128 = append(viewWarm128, readAll(b, viewPath, 128<<10))
			b.Logf("round %d: cold %.0f/%.0f warm %.0f/%.0f 128k %.0f/%.0f", r, diskCold[r], viewCold[r], diskWarm[r], viewWarm[r], diskWarm128[r], viewWarm128[r])
		}
		b.ReportMetric(median(diskCold), "disk-first-MB/s")
		b.ReportMetric(median(viewCold), "view-first-MB/s")
		b.ReportMetric(median(viewCold)/median(diskCold), "ratio-first")
		// The local disk's cold reads are bimodal on a virtual disk: the
		// host either has the file in its own cache or not. The ratio of
		// each round shows which rounds met which.
		var perRound []float64
		for r := range diskCold {
			perRound = append(perRound, viewCold[r]/diskCold[r])
		}
		sort.Float64s(perRound)
		b.ReportMetric(perRound[0], "ratio-first-min")
		b.ReportMetric(perRound[len(perRound)-1], "ratio-first-max")
		b.ReportMetric(median(diskWarm), "disk-second-MB/s")
		b.ReportMetric(median(viewWarm), "view-second-MB/s")
		b.ReportMetric(median(viewWarm)/median(diskWarm), "ratio-second")
		b.ReportMetric(median(viewWarm128)/median(diskWarm128), "ratio-second-128k")
		if d, v := largeFolioShare(local), largeFolioShare(viewPath); d >= 0 && v >= 0 {
			b.ReportMetric(100*d, "disk-large-folio-%")
			b.ReportMetric(100*v, "view-large-folio-%")
		}
	}
}

// BenchmarkViewColdRead reads the large file of BenchmarkSequentialRead
// through the view only, its pages dropped before each read: one op is one
// first read of the whole file, 1 MiB at a time. Beside MB/s it reports
// the process's CPU time per MiB read (reader and view server alike) and
// the share of the two cores busy, and the same for a cold read of the
// blob file the view decodes (the layer's seekable copy, as stored), so
// that the cost of the FUSE path shows apart from the disk's. It is the
// benchmark to profile the first read with (-cpuprofile, or perf record -a
// with a -benchtime large enough for the reads to outweigh the set-up).
//
// BERTH_BENCH_WARM_BLOB=1 keeps the blob file in the page cache and drops
// only the view's pages (posix_fadvise DONTNEED) before each read, which
// leaves the disk out; BERTH_BENCH_READAHEAD_KB sets Options.ReadAheadKB.
func BenchmarkViewColdRead(b *testing.B) {
	testenv.NeedFUSE(b)
	size := benchMB() << 20
	e := bigFileStore(b, semiRandom(b, size))
	runtime.GC()
	o := &Options{}
	if kb, err := strconv.Atoi(os.Getenv("BERTH_BENCH_READAHEAD_KB")); err == nil {
		o.ReadAheadKB = kb
	}
	viewPath := filepath.Join(mountStore(b, e, o), bigFilePath)
	// The largest file of the store is the layer's seekable copy.
	var blobFile string
	var blobSize int64
	require.NoError(b, filepath.Walk(e.Dir(), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > blobSize {
			blobFile, blobSize = p, fi.Size()
		}
		return err
	}))
	warmBlob := os.Getenv("BERTH_BENCH_WARM_BLOB") != ""
	var view, blob coldReads
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if !warmBlob || i == 0 {
			dropCaches(b)
			blob.read(b, blobFile)
		}
		if warmBlob {
			f, err := os.Open(viewPath)
			require.NoError(b, err)
			require.NoError(b, unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED))
			require.NoError(b, f.Close())
		} else {
			dropCaches(b)
		}
		b.StartTimer()
		view.read(b, viewPath)
	}
	b.StopTimer()
	b.SetBytes(int64(size))
	view.report(b, "view")
	blob.report(b, "blob-file")
}

// coldReads accumulates reads of whole files: their MB/s and the CPU
// time they cost the process.
type coldReads struct {
	rates     []float64
	cpu, wall time.Duration
	mib       float64
}

func (c *coldReads) read(b *testing.B, p string) {
	fi, err := os.Stat(p)
	require.NoError(b, err)
	c0, t0 := cpuTime(), time.Now()
	c.rates = append(c.rates, readAll(b, p, 1<<20))
	c.cpu += cpuTime() - c0
	c.wall += time.Since(t0)
	c.mib += float64(fi.Size()) / (1 << 20)
}

func (c *coldReads) report(b *testing.B, name string) {
	if len(c.rates) == 0 {
		return
	}
	b.ReportMetric(median(c.rates), name+"-first-MB/s")
	b.ReportMetric(float64(c.cpu.Microseconds())/c.mib, name+"-cpu-us/MiB")
	b.ReportMetric(float64(c.cpu)/float64(c.wall), name+"-cpus-busy")
}

// pageSink keeps the page loads of largeFolioShare from being optimised away.
var pageSink byte

// largeFolioShare maps p, touches every page, and returns the share of
// its resident pages that the kernel holds in large (compound) folios,
// read from /proc/self/pagemap and /proc/kpageflags (root only; -1 when
// they cannot be read).
func largeFolioShare(p string) float64 {
	f, err := os.Open(p)
	if err != nil {
		return -1
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return -1
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return -1
	}
	defer syscall.Munmap(m)
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return -1
	}
	defer pm.Close()
	kf, err := os.Open("/proc/kpageflags")
	if err != nil {
		return -1
	}
	defer kf.Close()
	const page = 4096
	const compoundHead, compoundTail = 1 << 15, 1 << 16
	base := uintptr(unsafe.Pointer(&m[0])) / page
	var large, all int
	e := make([]byte, 8)
	for i := 0; i < len(m)/page; i++ {
		pageSink += m[i*page] // fault the page in
		if _, err := pm.ReadAt(e, int64(base+uintptr(i))*8); err != nil {
			return -1
		}
		v := binary.LittleEndian.Uint64(e)
		if v>>63 == 0 { // not present
			continue
		}
		if _, err := kf.ReadAt(e, int64(v&(1<<55-1))*8); err != nil {
			return -1
		}
		all++
		if binary.LittleEndian.Uint64(e)&(compoundHead|compoundTail) != 0 {
			large++
		}
	}
	if all == 0 {
		return -1
	}
	return float64(large) / float64(all)
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
	testenv.NeedFUSE(b)
	for _, tool := range []string{"tar", "find", "xargs", "sha256sum", "ls"} {
		testenv.NeedTool(b, tool)
	}
	ents := manyFilesImage(b, benchImageMB())
	third := len(ents) / 3
	parts := [][]tarEntry{ents[:third], ents[third : 2*third], ents[2*third:]}
	// Two images of the same files in different layers (a marker file
	// each): tables of contents are kept per layer digest, so the cold
	// image's first ls must index its layers itself.
	build := func(marker string) v1.Image {
		var layers []v1.Layer
		for i, p := range parts {
			es := append(append([]tarEntry(nil), p...), file(fmt.Sprintf("%s-%d", marker, i), 0o644, marker))
			layers = append(layers, layerOf(b, makeTar(b, es...), "gzip"))
		}
		return imageOf(b, layers...)
	}
	prepared, img := build("prepared"), build("cold")
	e := enginetest.Open(b, nil)
	push(b, e, "bench", "cold", img)
	push(b, e, "bench2", "prepared", prepared)
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

// cpuTime is the process's user and system CPU time so far (all threads:
// the reader and the view's server alike).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
