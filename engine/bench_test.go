package engine

// Benchmarks of the engine facade: blob push and pull with encryption on
// and off, and the metadata paths a registry serves most (manifest HEAD
// and GET by tag, tag listing, tagging). bench/RESULTS.md records a run.
// Blob size: BERTH_BENCH_MIB MiB (default 256; CI smoke runs use 8).
//
//	go test -run '^$' -bench 'PutBlob|OpenBlob' -benchtime 3x ./engine
//	go test -run '^$' -bench 'Manifest|ListTags' ./engine

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
)

// benchMiBEnv overrides the size of benchmark blobs, in MiB.
const benchMiBEnv = "BERTH_BENCH_MIB"

// benchBlobSize is the size of benchmark blobs in bytes.
func benchBlobSize(tb testing.TB) int {
	mib := 256
	if v := os.Getenv(benchMiBEnv); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(tb, err, "%s=%q", benchMiBEnv, v)
		require.Positive(tb, n, "%s=%q", benchMiBEnv, v)
		mib = n
	}
	return mib << 20
}

// benchContent is one kind of blob content.
type benchContent struct {
	name string
	data []byte
}

var benchContents struct {
	once  sync.Once
	kinds []benchContent
}

// benchBlobContents returns, once per test binary, a compressible blob (a
// tar of the Go sources in GOROOT/src, repeated) and an incompressible one
// (crypto random), each benchBlobSize bytes.
func benchBlobContents(tb testing.TB) []benchContent {
	benchContents.once.Do(func() {
		size := benchBlobSize(tb)
		src := sourceTar(tb, min(size, 32<<20))
		comp := make([]byte, size)
		for n := 0; n < size; {
			n += copy(comp[n:], src)
		}
		incomp := make([]byte, size)
		_, err := rand.Read(incomp)
		require.NoError(tb, err)
		benchContents.kinds = []benchContent{{"compressible", comp}, {"incompressible", incomp}}
	})
	require.NotEmpty(tb, benchContents.kinds, "benchmark data generation failed earlier")
	return benchContents.kinds
}

// sourceTar is a tar of the .go files under GOROOT/src, about n bytes.
func sourceTar(tb testing.TB, n int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	root := filepath.Join(runtime.GOROOT(), "src")
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if err := tw.WriteHeader(&tar.Header{Name: p[len(root):], Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
		if buf.Len() >= n {
			return fs.SkipAll
		}
		return nil
	})
	require.NoError(tb, err)
	require.NoError(tb, tw.Close())
	require.NotZero(tb, buf.Len(), "no Go sources under %s", root)
	return buf.Bytes()
}

// encryptions are the two settings the blob benchmarks run with.
var encryptions = []struct {
	name      string
	encrypted bool
}{
	{"encrypted", true},
	{"plain", false},
}

func openBenchEngine(b *testing.B, encrypted bool) *Engine {
	b.Helper()
	e, err := Open(b.TempDir(), &Options{CreateOnPush: true, DisableEncryption: !encrypted, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	b.Cleanup(func() { e.Close() })
	return e
}

// uniqueReader yields an 8-byte counter then data[8:]: a new blob each
// time (no dedupe), with no copy of data.
func uniqueReader(i uint64, data []byte) io.Reader {
	var prefix [8]byte
	binary.BigEndian.PutUint64(prefix[:], i)
	return io.MultiReader(bytes.NewReader(prefix[:]), bytes.NewReader(data[min(8, len(data)):]))
}

// BenchmarkPutBlob pushes a new blob per op through the engine (upload
// session, hashing, framing, compression, sealing, fsync, data key wrap,
// index batch with Sync).
func BenchmarkPutBlob(b *testing.B) {
	ctx := context.Background()
	for _, c := range benchBlobContents(b) {
		for _, enc := range encryptions {
			b.Run(c.name+"/"+enc.name, func(b *testing.B) {
				e := openBenchEngine(b, enc.encrypted)
				b.SetBytes(int64(len(c.data)))
				var i uint64
				cpu := startCPU()
				for b.Loop() {
					i++
					if _, err := e.PutBlob(ctx, "bench/blobs", uniqueReader(i, c.data), ""); err != nil {
						b.Fatal(err)
					}
				}
				cpu.reportBytes(b, int64(len(c.data)))
			})
		}
	}
}

// BenchmarkOpenBlob pulls a whole blob per op through the engine
// (link check, data key unwrap, open, io.Copy to io.Discard). The file
// was just written, so it is read from the page cache.
func BenchmarkOpenBlob(b *testing.B) {
	ctx := context.Background()
	for _, c := range benchBlobContents(b) {
		for _, enc := range encryptions {
			b.Run(c.name+"/"+enc.name, func(b *testing.B) {
				e := openBenchEngine(b, enc.encrypted)
				desc, err := e.PutBlob(ctx, "bench/blobs", bytes.NewReader(c.data), "")
				require.NoError(b, err)
				b.SetBytes(int64(len(c.data)))
				cpu := startCPU()
				for b.Loop() {
					r, err := e.OpenBlob(ctx, "bench/blobs", desc.Digest)
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.Copy(io.Discard, r)
					r.Close()
					if err != nil || n != int64(len(c.data)) {
						b.Fatalf("read %d of %d bytes: %v", n, len(c.data), err)
					}
				}
				cpu.reportBytes(b, int64(len(c.data)))
			})
		}
	}
}

// benchRepositoryPolicy is a repository policy of three statements with
// conditions, 1.2 KB as the access-control workload's (bench/accesscontrol.go).
const benchRepositoryPolicy = `{"Version":"2012-10-17","Statement":[
{"Sid":"AccountUsersPull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},
 "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"],
 "Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::000000000000:user/*"},"IpAddress":{"aws:SourceIp":["127.0.0.0/8","10.0.0.0/8"]}}},
{"Sid":"DenyPlainHTTPFromAfar","Effect":"Deny","Principal":"*","Action":"ecr:*",
 "Condition":{"Bool":{"aws:SecureTransport":"false"},"NotIpAddress":{"aws:SourceIp":["127.0.0.0/8","::1/128","10.0.0.0/8"]}}},
{"Sid":"OnlyCIPushes","Effect":"Deny","Principal":"*","Action":["ecr:PutImage","ecr:CompleteLayerUpload","ecr:BatchDeleteImage"],
 "Condition":{"ArnNotLike":{"aws:PrincipalArn":["arn:aws:iam::000000000000:user/ci-*","arn:aws:iam::000000000000:user/admin"]}}}
]}`

// BenchmarkOpenSmallBlob pulls a 5.4 KiB blob per op (a small layer or
// an image config) from 8 goroutines a core, from a repository without
// and with a repository policy: the per-request cost of a blob GET apart
// from its bytes (link check, the repository's settings, data key
// unwrap, open).
func BenchmarkOpenSmallBlob(b *testing.B) {
	ctx := context.Background()
	data := make([]byte, 5400)
	_, _ = rand.Read(data)
	for _, policy := range []struct{ name, text string }{{"no-policy", ""}, {"policy", benchRepositoryPolicy}} {
		for _, enc := range encryptions {
			b.Run(policy.name+"/"+enc.name, func(b *testing.B) {
				e := openBenchEngine(b, enc.encrypted)
				desc, err := e.PutBlob(ctx, "bench/blobs", bytes.NewReader(data), "")
				require.NoError(b, err)
				if policy.text != "" {
					require.NoError(b, e.SetRepositoryPolicy(ctx, "bench/blobs", policy.text))
				}
				b.SetParallelism(8)
				cpu := startCPU()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						r, err := e.OpenBlob(ctx, "bench/blobs", desc.Digest)
						if err != nil {
							b.Error(err)
							return
						}
						n, err := io.Copy(io.Discard, r)
						r.Close()
						if err != nil || n != int64(len(data)) {
							b.Errorf("read %d of %d bytes: %v", n, len(data), err)
							return
						}
					}
				})
				cpu.reportOps(b)
			})
		}
	}
}

// Shape of the manifest fixtures: a repository with one tag, and one with
// manyTags tags spread over manyManifests image manifests.
const (
	oneRepo       = "bench/one"
	manyRepo      = "bench/many"
	manyManifests = 100
	manyTags      = 10000
)

// manifestFixture is an engine holding the two fixture repositories.
type manifestFixture struct {
	e *Engine
	// tags of each fixture repository, in push order.
	tags map[string][]string
	// payload is the manifest of oneRepo, for re-tagging.
	payload []byte
}

// benchLayers is the number of layers of fixture manifests (their
// payloads are about 1.5 KiB, as a small image's).
const benchLayers = 4

// newManifestFixture pushes the fixture repositories into a new engine
// (encryption on, the default).
func newManifestFixture(b *testing.B) *manifestFixture {
	b.Helper()
	ctx := context.Background()
	e := openBenchEngine(b, true)
	fx := &manifestFixture{e: e, tags: map[string][]string{}}
	fx.tags[oneRepo], fx.payload = pushFixtureRepo(b, e, oneRepo, 1, 1)
	fx.tags[manyRepo], _ = pushFixtureRepo(b, e, manyRepo, manyManifests, manyTags/manyManifests)
	got, err := e.ListTags(ctx, manyRepo, "", 0)
	require.NoError(b, err)
	require.Len(b, got, manyTags)
	return fx
}

// pushFixtureRepo pushes benchLayers+1 small blobs into repo, then
// manifests image manifests over them, each with tagsPer tags (one
// PutManifest each). It returns the tags and the last manifest's payload.
func pushFixtureRepo(b *testing.B, e *Engine, repo string, manifests, tagsPer int) ([]string, []byte) {
	b.Helper()
	ctx := context.Background()
	var layers []ocispec.Descriptor
	for i := range benchLayers + 1 {
		data := []byte(fmt.Sprintf("%s layer %d", repo, i))
		d, err := e.PutBlob(ctx, repo, bytes.NewReader(data), digest.FromBytes(data))
		require.NoError(b, err)
		layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d.Digest, Size: d.Size})
	}
	cfg := layers[0]
	cfg.MediaType = ocispec.MediaTypeImageConfig
	var all []string
	var payload []byte
	for m := range manifests {
		payload = benchManifest(cfg, layers[1:], m)
		tags := make([]string, tagsPer)
		for t := range tags {
			tags[t] = fmt.Sprintf("v%03d.%03d", m, t)
		}
		_, err := e.PutManifest(ctx, repo, tags[0], ocispec.MediaTypeImageManifest, payload, tags[1:]...)
		require.NoError(b, err)
		all = append(all, tags...)
	}
	return all, payload
}

// benchManifest is image manifest number i over cfg and layers.
func benchManifest(cfg ocispec.Descriptor, layers []ocispec.Descriptor, i int) []byte {
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers,
		Annotations: map[string]string{
			ocispec.AnnotationCreated:  "2026-11-23T00:00:00Z",
			ocispec.AnnotationRevision: fmt.Sprintf("%040d", i),
		},
	}
	m.SchemaVersion = 2
	payload, _ := json.Marshal(m)
	return payload
}

// benchManifestRead runs read by random tag of each fixture repository
// from GOMAXPROCS goroutines.
func benchManifestRead(b *testing.B, read func(e *Engine, repo, tag string) error) {
	fx := newManifestFixture(b)
	for _, tc := range []struct {
		name, repo string
	}{
		{"tags=1", oneRepo},
		{"tags=10000", manyRepo},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tags := fx.tags[tc.repo]
			var seed atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			b.RunParallel(func(pb *testing.PB) {
				rng := mrand.New(mrand.NewPCG(seed.Add(1), 7))
				for pb.Next() {
					if err := read(fx.e, tc.repo, tags[rng.IntN(len(tags))]); err != nil {
						b.Error(err)
						return
					}
				}
			})
			cpu.reportOps(b)
		})
	}
}

// BenchmarkStatManifest is a manifest HEAD by tag.
func BenchmarkStatManifest(b *testing.B) {
	ctx := context.Background()
	benchManifestRead(b, func(e *Engine, repo, tag string) error {
		_, err := e.StatManifest(ctx, repo, tag)
		return err
	})
}

// BenchmarkGetManifest is a manifest GET by tag, payload included.
func BenchmarkGetManifest(b *testing.B) {
	ctx := context.Background()
	benchManifestRead(b, func(e *Engine, repo, tag string) error {
		m, err := e.GetManifest(ctx, repo, tag)
		if err == nil && len(m.Payload) == 0 {
			err = fmt.Errorf("empty payload for %s:%s", repo, tag)
		}
		return err
	})
}

// BenchmarkPutManifestTag tags one existing manifest with a new tag per op
// (parse, blob link checks, one batch committed with Sync): one client at
// a time; 8 clients per core on one repository; and 8 per core spread
// over 16 repositories (concurrent synced commits may share an fsync).
func BenchmarkPutManifestTag(b *testing.B) {
	ctx := context.Background()
	fx := newManifestFixture(b)
	const spread = 16
	repos := make([]string, spread)
	payloads := make([][]byte, spread)
	for i := range repos {
		repos[i] = fmt.Sprintf("bench/par%02d", i)
		_, payloads[i] = pushFixtureRepo(b, fx.e, repos[i], 1, 1)
	}
	var next atomic.Int64
	tag := func() string { return fmt.Sprintf("t%08d", next.Add(1)) }
	b.Run("serial", func(b *testing.B) {
		cpu := startCPU()
		for b.Loop() {
			if _, err := fx.e.PutManifest(ctx, oneRepo, tag(), ocispec.MediaTypeImageManifest, fx.payload); err != nil {
				b.Fatal(err)
			}
		}
		cpu.reportOps(b)
	})
	for _, tc := range []struct {
		name  string
		repos int
	}{
		{"parallel-1repo", 1},
		{"parallel-16repos", spread},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var worker atomic.Int64
			b.SetParallelism(8)
			cpu := startCPU()
			b.RunParallel(func(pb *testing.PB) {
				i := int(worker.Add(1)) % tc.repos
				repo, payload := repos[i], payloads[i]
				if tc.repos == 1 {
					repo, payload = oneRepo, fx.payload
				}
				for pb.Next() {
					if _, err := fx.e.PutManifest(ctx, repo, tag(), ocispec.MediaTypeImageManifest, payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			cpu.reportOps(b)
		})
	}
}

// cpuMeter measures the CPU time (user and system, all threads) the
// process spends in a benchmark loop: on a shared machine the wall-clock
// figures depend on the other load, the CPU cost much less.
type cpuMeter struct{ start time.Duration }

func startCPU() cpuMeter { return cpuMeter{processCPU()} }

// reportBytes adds MB/cpu-s: the blob bytes handled per CPU second.
func (m cpuMeter) reportBytes(b *testing.B, bytesPerOp int64) {
	if used := processCPU() - m.start; used > 0 {
		b.ReportMetric(float64(b.N)*float64(bytesPerOp)/1e6/used.Seconds(), "MB/cpu-s")
	}
}

// reportOps adds cpu-ns/op: CPU time per op, all goroutines together.
func (m cpuMeter) reportOps(b *testing.B) {
	if used := processCPU() - m.start; used > 0 && b.N > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkListTags lists the tags of a repository of 10,000 tags: all of
// them, and the first page of 100 (the OCI tags list with n=100).
func BenchmarkListTags(b *testing.B) {
	ctx := context.Background()
	fx := newManifestFixture(b)
	for _, tc := range []struct {
		name string
		n    int
		want int
	}{
		{"all", 0, manyTags},
		{"n=100", 100, 100},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				tags, err := fx.e.ListTags(ctx, manyRepo, "", tc.n)
				if err != nil || len(tags) != tc.want {
					b.Fatalf("%d tags, want %d: %v", len(tags), tc.want, err)
				}
			}
			cpu.reportOps(b)
		})
	}
}
