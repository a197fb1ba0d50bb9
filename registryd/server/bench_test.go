package server

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// BenchmarkHeadManifest measures the HEAD path in process (no network):
// routing, logging, metrics, authorization and its audit record, the tag
// lookup and the manifest record; with the audit log on (the default)
// and off, and the access log on and off.
func BenchmarkHeadManifest(b *testing.B) {
	for _, audit := range []bool{false, true} {
		for _, accessLog := range []bool{false, true} {
			name := map[bool]string{false: "audit-off", true: "audit-on"}[audit] + "/" +
				map[bool]string{false: "access-log-off", true: "access-log-on"}[accessLog]
			b.Run(name, func(b *testing.B) {
				h := headManifestHandler(b, audit, accessLog)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						headManifest(b, h)
					}
				})
			})
		}
	}
}

// BenchmarkHeadManifestAudit measures what the audit log costs a manifest
// HEAD, as a ratio in one run: one server whose store keeps an audit log
// and one whose store keeps none, served in alternating phases of 1,000
// HEADs each (the first phase of each pair alternating too), every phase
// by GOMAXPROCS goroutines (-cpu 1,8 runs it with 1 and 8), so that the
// load of a shared machine falls on both alike. It reports, with the log
// and without, the wall time per HEAD (a phase's wall time over its
// HEADs: the inverse of throughput) and the process's CPU time per HEAD
// (user and system, getrusage: what other processes on the machine do
// not change), and the ratios. Each HEAD with the log writes one record,
// an allowed read: one write(2), no sync.
func BenchmarkHeadManifestAudit(b *testing.B) {
	const phase = 1000
	off := headManifestHandler(b, false, false)
	on := headManifestHandler(b, true, false)
	workers := runtime.GOMAXPROCS(0)
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var wall, used [2]time.Duration // [off, on]
	run := func(side int, h http.Handler, n int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		start, cpu0 := time.Now(), cpu()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					headManifest(b, h)
				}
			}()
		}
		wg.Wait()
		wall[side] += time.Since(start)
		used[side] += cpu() - cpu0
	}
	heads := 0
	b.ResetTimer()
	for k := 0; heads < b.N; k++ {
		n := min(phase, b.N-heads)
		if k%2 == 0 {
			run(0, off, n)
			run(1, on, n)
		} else {
			run(1, on, n)
			run(0, off, n)
		}
		heads += n
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(heads) }
	b.ReportMetric(per(wall[0]), "off-ns/head")
	b.ReportMetric(per(wall[1]), "on-ns/head")
	b.ReportMetric(float64(wall[1])/float64(wall[0]), "on/off")
	b.ReportMetric(per(used[0]), "off-cpu-ns/head")
	b.ReportMetric(per(used[1]), "on-cpu-ns/head")
	b.ReportMetric(float64(used[1])/float64(used[0]), "cpu-on/off")
}

// headManifestMediaType is the media type of the benchmarks' manifest.
const headManifestMediaType = "application/vnd.oci.image.manifest.v1+json"

// headManifestHandler is a server over a fresh store (with an audit log
// or not) holding bench/app:v1.
func headManifestHandler(b *testing.B, audit, accessLog bool) http.Handler {
	b.Helper()
	e, err := engine.Open(b.TempDir(), &engine.Options{CreateOnPush: true, FrameSize: 64 << 10, DisableAudit: !audit,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(b, err)
	b.Cleanup(func() { e.Close() })
	s, err := New(e, Config{DisableAccessLog: !accessLog, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(b, err)
	h := s.Handler()
	cfg := pushBlob(b, h, "bench/app", []byte(`{"os":"linux"}`))
	l := pushBlob(b, h, "bench/app", []byte("layer"))
	m := imageManifest(cfg, l, 14, 5, nil, "")
	require.Equal(b, 201, do(h, http.MethodPut, "/v2/bench/app/manifests/v1", m, map[string]string{"Content-Type": headManifestMediaType}).Code)
	return h
}

// headManifest sends one HEAD of bench/app:v1.
func headManifest(b *testing.B, h http.Handler) {
	req := httptest.NewRequest(http.MethodHead, "/v2/bench/app/manifests/v1", nil)
	req.Header.Set("Accept", headManifestMediaType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("HEAD: %d", rec.Code)
	}
}

// BenchmarkEncryptionOverhead pushes and pulls incompressible blobs over
// real HTTP on 127.0.0.1 to two live servers in this process, one with
// envelope encryption (the default) and one without, alternating rounds
// so that the machine's load hits both alike. It reports the median MB/s
// of each and the overhead of encryption (the target: at most 10% on
// incompressible data). BERTH_BENCH_MIB sets the blob size (default 128).
func BenchmarkEncryptionOverhead(b *testing.B) {
	size := 128 << 20
	if v := os.Getenv("BERTH_BENCH_MIB"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err)
		size = n << 20
	}
	data := make([]byte, size)
	rand.Read(data)
	type side struct {
		name       string
		url        string
		push, pull []float64
	}
	sides := []*side{{name: "encrypted"}, {name: "plain"}}
	for _, sd := range sides {
		e, err := engine.Open(b.TempDir(), &engine.Options{CreateOnPush: true, DisableEncryption: sd.name == "plain",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		require.NoError(b, err)
		b.Cleanup(func() { e.Close() })
		s, err := New(e, Config{DisableAccessLog: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		require.NoError(b, err)
		ts := httptest.NewServer(s.Handler())
		b.Cleanup(ts.Close)
		sd.url = ts.URL
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, WriteBufferSize: 1 << 20, ReadBufferSize: 1 << 20}}
	mbps := func(d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }
	round := 0
	for b.Loop() {
		for _, sd := range sides {
			round++
			binary.BigEndian.PutUint64(data, uint64(round)) // a new blob each time: no dedupe
			dg := digest.FromBytes(data)
			t0 := time.Now()
			resp, err := client.Post(sd.url+"/v2/bench/enc/blobs/uploads/", "", nil)
			require.NoError(b, err)
			resp.Body.Close()
			loc := resp.Header.Get("Location")
			if !strings.HasPrefix(loc, "http") {
				loc = sd.url + loc
			}
			sep := "?"
			if strings.Contains(loc, "?") {
				sep = "&"
			}
			req, err := http.NewRequest(http.MethodPut, loc+sep+"digest="+dg.String(), bytes.NewReader(data))
			require.NoError(b, err)
			req.ContentLength = int64(size)
			resp, err = client.Do(req)
			require.NoError(b, err)
			resp.Body.Close()
			require.Equal(b, http.StatusCreated, resp.StatusCode)
			sd.push = append(sd.push, mbps(time.Since(t0)))

			t0 = time.Now()
			resp, err = client.Get(sd.url + "/v2/bench/enc/blobs/" + dg.String())
			require.NoError(b, err)
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			require.NoError(b, err)
			require.Equal(b, int64(size), n)
			sd.pull = append(sd.pull, mbps(time.Since(t0)))
		}
	}
	median := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	enc, plain := sides[0], sides[1]
	b.ReportMetric(median(enc.push), "enc-push-MB/s")
	b.ReportMetric(median(plain.push), "plain-push-MB/s")
	b.ReportMetric(100*(1-median(enc.push)/median(plain.push)), "push-overhead-%")
	b.ReportMetric(median(enc.pull), "enc-pull-MB/s")
	b.ReportMetric(median(plain.pull), "plain-pull-MB/s")
	b.ReportMetric(100*(1-median(enc.pull)/median(plain.pull)), "pull-overhead-%")
}
