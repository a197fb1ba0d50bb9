//go:build linux

package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/miniotest"
	"github.com/berthstore/berth/internal/pgtest"
)

// BenchmarkMetadataCost measures what the requests of a pull and a push
// cost on a store whose metadata is in PostgreSQL and blobs in MinIO
// (both on 127.0.0.1, started by the benchmark), per request, through
// the engine calls the OCI API makes for them:
//
//   - manifest-HEAD: StatManifest by tag;
//   - blob-GET: OpenBlob and a read of a 64 KiB blob;
//   - push-small-image: for a config and one 64 KiB layer, a blob HEAD
//     (StatBlob, unknown), an upload session begun (POST), appended and
//     checkpointed (PATCH) and committed (PUT), then the manifest PUT
//     with a new tag.
//
// Reported per op: db-rtt/op and db-stmt/op (the index's MetadataStats),
// cpu-us/op (this process: the engine, its PostgreSQL and S3 clients)
// and pg-cpu-us/op (the PostgreSQL server's processes, from /proc).
//
//	go test -run '^$' -bench BenchmarkMetadataCost -benchtime 2000x ./engine
func BenchmarkMetadataCost(b *testing.B) {
	pg, m := scaleOutServers(b)
	_, bucket := newTestBucket(b, m)
	o := &Options{CreateOnPush: true, Logger: quietOptions().Logger, Metadata: pg.NewDatabase(b),
		ObjectStore: &ObjectStoreOptions{Endpoint: m.Endpoint, Bucket: bucket, Prefix: "reg/", AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey}}
	e, err := Open(b.TempDir(), o)
	require.NoError(b, err)
	b.Cleanup(func() { e.Close() })
	ctx := context.Background()
	layer := rnd(64 << 10)
	_, payload := pushImage(b, e, "team/app", "v1", layer)
	ld := manifestBlobs(b, payload)[1]
	var pushes atomic.Int64 // tags and configs differ in every round b.Run makes
	postmaster := postmasterPID(b, pg)

	measure := func(b *testing.B, op func(i int)) {
		op(-1) // warm: prepared statements, connections, caches
		before, pgBefore := e.MetadataStats(), backendsCPU(postmaster)
		cpu := cpuMeter{start: processCPU()}
		b.ResetTimer()
		for i := range b.N {
			op(i)
		}
		b.StopTimer()
		after := e.MetadataStats()
		b.ReportMetric(float64(processCPU()-cpu.start)/float64(b.N)/1e3, "cpu-us/op")
		b.ReportMetric(float64(backendsCPU(postmaster)-pgBefore)/float64(b.N)/1e3, "pg-cpu-us/op")
		b.ReportMetric(float64(after.RoundTrips-before.RoundTrips)/float64(b.N), "db-rtt/op")
		b.ReportMetric(float64(after.Statements-before.Statements)/float64(b.N), "db-stmt/op")
		b.ReportMetric(float64(after.Commits-before.Commits)/float64(b.N), "db-commits/op")
	}
	b.Run("manifest-HEAD", func(b *testing.B) {
		measure(b, func(int) {
			if _, err := e.StatManifest(ctx, "team/app", "v1"); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("blob-GET", func(b *testing.B) {
		measure(b, func(int) {
			r, err := e.OpenBlob(ctx, "team/app", ld)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
			r.Close()
		})
	})
	b.Run("push-small-image", func(b *testing.B) {
		measure(b, func(int) { pushLikeOCI(b, e, "team/push", fmt.Sprintf("t%d", pushes.Add(1))) })
	})
}

// pushLikeOCI pushes a config and one new 64 KiB layer and a manifest
// tagged tag with the engine calls the OCI API makes for a client's
// HEAD, POST, PATCH and PUT of each blob and the manifest's PUT.
func pushLikeOCI(b *testing.B, e *Engine, repo, tag string) {
	ctx := context.Background()
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":%q}`, tag))
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	m.SchemaVersion = 2
	for i, content := range [][]byte{cfg, rnd(64 << 10)} {
		d := digest.FromBytes(content)
		if _, err := e.StatBlob(ctx, repo, d); err == nil {
			b.Fatal("a new blob is known")
		}
		up, err := e.BeginUpload(ctx, repo)
		if err != nil {
			b.Fatal(err)
		}
		id := up.ID()
		if err := up.Close(); err != nil {
			b.Fatal(err)
		}
		if up, err = e.ResumeUpload(ctx, repo, id); err != nil {
			b.Fatal(err)
		}
		if _, err := up.ReadFrom(bytes.NewReader(content)); err != nil {
			b.Fatal(err)
		}
		if err := up.Checkpoint(ctx); err != nil {
			b.Fatal(err)
		}
		if err := up.Close(); err != nil {
			b.Fatal(err)
		}
		if up, err = e.ResumeUpload(ctx, repo, id); err != nil {
			b.Fatal(err)
		}
		desc, err := up.Commit(ctx, d, int64(len(content)))
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: desc.Digest, Size: desc.Size}
		} else {
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: desc.Digest, Size: desc.Size})
		}
	}
	payload, _ := json.Marshal(m)
	if _, err := e.PutManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, payload); err != nil {
		b.Fatal(err)
	}
}

// postmasterPID is the process id of pg's server (the first line of its
// postmaster.pid, found by its port among the running postgres).
func postmasterPID(b *testing.B, pg *pgtest.Server) int {
	b.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(b, err)
	port := strconv.Itoa(pg.Port)
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmd), "\x00")
		if !strings.HasSuffix(args[0], "postgres") {
			continue
		}
		for i := range len(args) - 1 {
			if args[i] == "-p" && args[i+1] == port {
				return pid
			}
		}
	}
	b.Fatalf("no postgres server process listens on port %s", port)
	return 0
}

// backendsCPU is the CPU time (user + system) of the client backends
// of the PostgreSQL server pid now running (one per connection, living as
// long as the pool keeps it).
func backendsCPU(pid int) time.Duration {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var ticks int64
	for _, ent := range ents {
		if _, err := strconv.Atoi(ent.Name()); err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces), from field 3:
		// state ppid ... utime (14) stime (15).
		_, rest, ok := bytes.Cut(st, []byte(") "))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if ppid != pid {
			continue
		}
		// Client backends only ("postgres: berth DB 127.0.0.1(port) ..."):
		// the server's own processes (checkpointer, autovacuum, ...) work
		// on their own schedule.
		if cmd, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline")); err != nil || !bytes.HasPrefix(cmd, []byte("postgres: berth ")) {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		stt, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + stt
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ is 100 on Linux
}
