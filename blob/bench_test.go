package blob_test

// Benchmarks of the blob store against the machine's own reference: the
// MB/s of hashing data with sha256 while writing it to a file and
// fsyncing it (BenchmarkBaselineSHA256Write). bench/RESULTS.md records a
// run. Blob size: BERTH_BENCH_MIB MiB (default 256; CI smoke runs use 8).
//
//	go test -run '^$' -bench . -benchtime 3x ./blob

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/blobtest"
	"github.com/berthstore/berth/crypt"
)

// benchMiBEnv overrides the size of benchmark blobs, in MiB.
const benchMiBEnv = "BERTH_BENCH_MIB"

// benchSize is the logical size of benchmark blobs in bytes.
func benchSize(tb testing.TB) int {
	mib := 256
	if v := os.Getenv(benchMiBEnv); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(tb, err, "%s=%q", benchMiBEnv, v)
		require.Positive(tb, n, "%s=%q", benchMiBEnv, v)
		mib = n
	}
	return mib << 20
}

// benchKind is one kind of content the benchmarks push.
type benchKind struct {
	name string
	data []byte
	dgst digest.Digest
}

// benchData is generated once per test binary: the same bytes serve every
// benchmark of the run.
var benchData struct {
	once  sync.Once
	kinds []benchKind
}

// benchKinds returns the benchmark contents, each benchSize bytes:
//   - compressible: a tar of the Go sources in GOROOT/src, repeated;
//   - incompressible: crypto random bytes;
//   - gzip: gzip (BestSpeed) of alternating random and source-text runs,
//     as a compressed layer looks (it starts with the gzip magic).
func benchKinds(tb testing.TB) []benchKind {
	benchData.once.Do(func() {
		size := benchSize(tb)
		src := blobtest.SourceTar(tb, min(size, 32<<20))
		comp := make([]byte, size)
		for n := 0; n < size; {
			n += copy(comp[n:], src)
		}
		incomp := make([]byte, size)
		_, err := rand.Read(incomp)
		require.NoError(tb, err)
		gz := gzipMix(tb, size, incomp, src)
		for _, k := range []benchKind{
			{name: "compressible", data: comp},
			{name: "incompressible", data: incomp},
			{name: "gzip", data: gz},
		} {
			k.dgst = digest.FromBytes(k.data)
			benchData.kinds = append(benchData.kinds, k)
		}
	})
	require.NotEmpty(tb, benchData.kinds, "benchmark data generation failed earlier")
	return benchData.kinds
}

// gzipMix returns size bytes of a gzip stream of 64 KiB runs taken in turn
// from random and text (truncated: the blob is opaque bytes to the store).
func gzipMix(tb testing.TB, size int, random, text []byte) []byte {
	const run = 64 << 10
	var buf bytes.Buffer
	buf.Grow(size + run)
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	require.NoError(tb, err)
	ro, to := 0, 0
	for i := 0; buf.Len() < size; i++ {
		var chunk []byte
		if i%2 == 0 {
			chunk = random[ro%(len(random)-run+1):][:min(run, len(random))]
			ro += run
		} else {
			chunk = text[to%(len(text)-run+1):][:min(run, len(text))]
			to += run
		}
		_, err := zw.Write(chunk)
		require.NoError(tb, err)
	}
	require.NoError(tb, zw.Close())
	return buf.Bytes()[:size]
}

// sealings are the two encryption settings every benchmark runs with.
var sealings = []struct {
	name   string
	sealed bool
}{
	{"sealed", true},
	{"plain", false},
}

// benchStore opens a store in a fresh directory with the default options
// (1 MiB frames, zstd on, one encoder per core).
func benchStore(b *testing.B) *blob.Store {
	b.Helper()
	var o blob.Options
	if os.Getenv("BERTH_BENCH_NO_SHARED_FRAMES") != "" {
		o.SharedFrames = -1
	}
	s, err := blob.Open(b.TempDir(), &o)
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	return s
}

func benchKey(b *testing.B, sealed bool) []byte {
	b.Helper()
	if !sealed {
		return nil
	}
	k, err := crypt.NewDataKey()
	require.NoError(b, err)
	return k
}

// writeBlob streams data into s the way an upload does (ReadFrom, 256 KiB
// reads) and commits it: hash, encode, write, fsync, rename.
func writeBlob(ctx context.Context, s *blob.Store, id string, key []byte, data []byte, d digest.Digest) (blob.Info, error) {
	w, err := s.NewWriter(ctx, id, blob.WriterOptions{DataKey: key})
	if err != nil {
		return blob.Info{}, err
	}
	if _, err := w.ReadFrom(bytes.NewReader(data)); err != nil {
		w.Cancel()
		return blob.Info{}, err
	}
	info, err := w.Commit(ctx, d, int64(len(data)))
	if err != nil {
		w.Cancel()
		return blob.Info{}, err
	}
	return info, nil
}

// zstdFrames counts the frames of blob d that are stored zstd-compressed.
func zstdFrames(b *testing.B, s *blob.Store, d digest.Digest, key []byte) int {
	b.Helper()
	r, err := s.Open(context.Background(), d, key)
	require.NoError(b, err)
	defer r.Close()
	return blob.ZstdFrames(r)
}

// BenchmarkBaselineSHA256Write is the reference every write figure is
// compared with: sha256 of the data and a write of it to a file (1 MiB
// writes, one goroutine, as a plain program does it), then fsync.
func BenchmarkBaselineSHA256Write(b *testing.B) {
	data := benchKinds(b)[1].data // incompressible: the bytes do not matter here
	dir := b.TempDir()
	b.SetBytes(int64(len(data)))
	i := 0
	cpu := startCPU()
	for b.Loop() {
		i++
		if _, err := hashWriteSync(filepath.Join(dir, fmt.Sprintf("f%d", i%2)), data, true, true); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, int64(len(data)))
}

// pairedBaseline runs the baseline once over data and returns its MB/s:
// measured next to each write benchmark, it gives a ratio (x-baseline)
// that slow changes in the load of a shared machine do not skew.
func pairedBaseline(b *testing.B, data []byte) float64 {
	b.Helper()
	p := filepath.Join(b.TempDir(), "baseline")
	start := time.Now()
	_, err := hashWriteSync(p, data, true, true)
	require.NoError(b, err)
	mbps := float64(len(data)) / 1e6 / time.Since(start).Seconds()
	require.NoError(b, os.Remove(p))
	return mbps
}

// cpuMeter measures the CPU time (user and system, all threads) the
// process spends in a benchmark loop. On a shared machine wall-clock MB/s
// depends on the other load; CPU cost per byte much less so.
type cpuMeter struct{ start time.Duration }

func startCPU() cpuMeter { return cpuMeter{processCPU()} }

// report adds MB/cpu-s: the logical bytes processed per CPU second.
func (m cpuMeter) report(b *testing.B, bytesPerOp int64) {
	used := processCPU() - m.start
	if used <= 0 {
		return
	}
	b.ReportMetric(float64(b.N)*float64(bytesPerOp)/1e6/used.Seconds(), "MB/cpu-s")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBaselineParts splits the baseline into its stages, to set them
// beside the machine limits of design.md: sha256 alone, and file write
// plus fsync alone.
func BenchmarkBaselineParts(b *testing.B) {
	data := benchKinds(b)[1].data
	for _, tc := range []struct {
		name        string
		hash, write bool
	}{
		{"sha256", true, false},
		{"write-fsync", false, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(int64(len(data)))
			i := 0
			cpu := startCPU()
			for b.Loop() {
				i++
				if _, err := hashWriteSync(filepath.Join(dir, fmt.Sprintf("f%d", i%2)), data, tc.hash, tc.write); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b, int64(len(data)))
		})
	}
}

// hashWriteSync hashes data with sha256 and/or writes it to a new file at
// p in 1 MiB writes and fsyncs it.
func hashWriteSync(p string, data []byte, hash, write bool) ([]byte, error) {
	const chunk = 1 << 20
	h := sha256.New()
	var f *os.File
	if write {
		var err error
		if f, err = os.Create(p); err != nil {
			return nil, err
		}
		defer f.Close()
	}
	for off := 0; off < len(data); off += chunk {
		c := data[off:min(off+chunk, len(data))]
		if hash {
			h.Write(c)
		}
		if write {
			if _, err := f.Write(c); err != nil {
				return nil, err
			}
		}
	}
	if write {
		if err := f.Sync(); err != nil {
			return nil, err
		}
	}
	return h.Sum(nil), nil
}

// BenchmarkWrite measures a whole upload: streaming the bytes in (hashing,
// framing, compressing, sealing, writing) and Commit (digest check, fsync,
// rename). stored/logical is the file's size over the blob's; zstd-frames
// counts the frames that went through zstd in the stored file.
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	for _, k := range benchKinds(b) {
		for _, sl := range sealings {
			b.Run(k.name+"/"+sl.name, func(b *testing.B) {
				s := benchStore(b)
				key := benchKey(b, sl.sealed)
				base := pairedBaseline(b, k.data)
				b.SetBytes(int64(len(k.data)))
				var info blob.Info
				i := 0
				cpu := startCPU()
				for b.Loop() {
					i++
					var err error
					if info, err = writeBlob(ctx, s, fmt.Sprintf("w%d", i), key, k.data, k.dgst); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				cpu.report(b, int64(len(k.data)))
				mbps := float64(b.N) * float64(len(k.data)) / 1e6 / b.Elapsed().Seconds()
				base = (base + pairedBaseline(b, k.data)) / 2
				b.ReportMetric(mbps/base, "x-baseline")
				b.ReportMetric(float64(info.StoredSize)/float64(len(k.data)), "stored/logical")
				b.ReportMetric(float64(zstdFrames(b, s, k.dgst, key)), "zstd-frames")
			})
		}
	}
}

// BenchmarkRead measures a sequential read of a whole stored blob
// (io.Copy to io.Discard, which reads 8 KiB at a time), opening included.
// The file was just written, so it is read from the page cache.
func BenchmarkRead(b *testing.B) {
	ctx := context.Background()
	for _, k := range benchKinds(b) {
		for _, sl := range sealings {
			b.Run(k.name+"/"+sl.name, func(b *testing.B) {
				s := benchStore(b)
				key := benchKey(b, sl.sealed)
				_, err := writeBlob(ctx, s, "r", key, k.data, k.dgst)
				require.NoError(b, err)
				b.SetBytes(int64(len(k.data)))
				cpu := startCPU()
				for b.Loop() {
					r, err := s.Open(ctx, k.dgst, key)
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.Copy(io.Discard, r)
					r.Close()
					if err != nil || n != int64(len(k.data)) {
						b.Fatalf("read %d of %d bytes: %v", n, len(k.data), err)
					}
				}
				cpu.report(b, int64(len(k.data)))
			})
		}
	}
}

// BenchmarkReadConcurrent8 is eight readers copying one blob at once (a
// rollout pulling one layer to many nodes); b.SetBytes counts all eight.
// With the store's shared frames each frame is decoded once;
// BERTH_BENCH_NO_SHARED_FRAMES=1 measures the same without sharing.
func BenchmarkReadConcurrent8(b *testing.B) {
	ctx := context.Background()
	for _, k := range benchKinds(b) {
		b.Run(k.name+"/sealed", func(b *testing.B) {
			s := benchStore(b)
			key := benchKey(b, true)
			_, err := writeBlob(ctx, s, "r", key, k.data, k.dgst)
			require.NoError(b, err)
			b.SetBytes(8 * int64(len(k.data)))
			cpu := startCPU()
			for b.Loop() {
				var wg sync.WaitGroup
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r, err := s.Open(ctx, k.dgst, key)
						if err != nil {
							b.Error(err)
							return
						}
						defer r.Close()
						if n, err := io.Copy(io.Discard, r); err != nil || n != int64(len(k.data)) {
							b.Errorf("read %d of %d bytes: %v", n, len(k.data), err)
						}
					}()
				}
				wg.Wait()
			}
			cpu.report(b, 8*int64(len(k.data)))
		})
	}
}

// readAtBatch is the number of random 4 KiB ReadAts per benchmark op, so
// that -benchtime 3x still times enough of them.
const readAtBatch = 512

// BenchmarkReadAt4K measures random 4 KiB ReadAts (unaligned offsets) on
// one open Reader, readAtBatch of them per op. It reports ReadAt/s and,
// counted at the system-call boundary (/proc/self/io), the file reads
// and the file bytes read per ReadAt: one read of one stored frame each
// means a ReadAt decodes one frame.
func BenchmarkReadAt4K(b *testing.B) {
	benchReadAt(b, 1)
}

// BenchmarkReadAt4KParallel is BenchmarkReadAt4K with the ReadAts of each
// op shared among GOMAXPROCS goroutines on the same Reader (as FUSE reads
// of one open file arrive).
func BenchmarkReadAt4KParallel(b *testing.B) {
	benchReadAt(b, runtime.GOMAXPROCS(0))
}

func benchReadAt(b *testing.B, workers int) {
	ctx := context.Background()
	for _, k := range benchKinds(b) {
		for _, sl := range sealings {
			b.Run(k.name+"/"+sl.name, func(b *testing.B) {
				s := benchStore(b)
				key := benchKey(b, sl.sealed)
				info, err := writeBlob(ctx, s, "ra", key, k.data, k.dgst)
				require.NoError(b, err)
				r, err := s.Open(ctx, k.dgst, key)
				require.NoError(b, err)
				defer r.Close()
				rng := mrand.New(mrand.NewPCG(1, 2))
				offs := make([]int64, readAtBatch)
				for i := range offs {
					offs[i] = rng.Int64N(int64(len(k.data)) - 4096 + 1)
				}
				storedFrame := float64(info.StoredSize-blob.HeaderSize-int64(r.Frames())*blob.TableEntrySize) / float64(r.Frames())
				before, ioOK := readIOCounters()
				cpu := processCPU()
				b.SetBytes(readAtBatch * 4096)
				for b.Loop() {
					if err := readAtAll(r, offs, workers, k.data); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				ops := float64(b.N) * readAtBatch
				b.ReportMetric(ops/b.Elapsed().Seconds(), "ReadAt/s")
				b.ReportMetric(0, "ns/op") // an op is a batch: report per ReadAt instead
				b.ReportMetric(b.Elapsed().Seconds()*1e9/ops, "ns/ReadAt")
				b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/ops, "cpu-ns/ReadAt")
				if after, ok := readIOCounters(); ok && ioOK {
					reads := float64(after.syscr - before.syscr)
					bytesRead := float64(after.rchar - before.rchar)
					b.ReportMetric(reads/ops, "file-reads/ReadAt")
					b.ReportMetric(bytesRead/ops/storedFrame, "frames/ReadAt")
				}
			})
		}
	}
}

// readAtAll reads 4 KiB at every offset, split among workers goroutines,
// and checks the bytes (cheaply: the first and last 8) against want.
func readAtAll(r *blob.Reader, offs []int64, workers int, want []byte) error {
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for i := w; i < len(offs); i += workers {
				off := offs[i]
				n, err := r.ReadAt(buf, off)
				if err != nil || n != len(buf) {
					errs[w] = fmt.Errorf("ReadAt %d: %d bytes, %v", off, n, err)
					return
				}
				if !bytes.Equal(buf[:8], want[off:off+8]) || !bytes.Equal(buf[4088:], want[off+4088:off+4096]) {
					errs[w] = fmt.Errorf("ReadAt %d: wrong bytes", off)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ioCounters are the read counters of /proc/self/io: read system calls
// and bytes they returned, over all threads of the process.
type ioCounters struct{ syscr, rchar int64 }

// readIOCounters reads /proc/self/io; ok is false where it does not exist.
func readIOCounters() (ioCounters, bool) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return ioCounters{}, false
	}
	defer f.Close()
	var c ioCounters
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "syscr":
			c.syscr, found = n, found+1
		case "rchar":
			c.rchar, found = n, found+1
		}
	}
	return c, found == 2
}
