package e2e

// Manifest HEAD requests per second: one registryd on pebble and local
// files against one, two and three registryd on one PostgreSQL and one
// MinIO, all on this machine, 16 clients spreading their requests
// round-robin over the replicas. Besides the rate, the CPU each request
// costs (registryd, PostgreSQL, the clients) and, on PostgreSQL, the
// database transactions a HEAD, a GET and a push cost. Run once:
//
//	go test -run '^$' -bench ManifestHeadRate -benchtime 1x -timeout 15m ./registryd/e2e
//
// BERTH_HEAD_BENCH_SECONDS sets the measured window of each (default 10).

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/miniotest"
	"github.com/berthstore/berth/internal/pgtest"
)

// headClients is the number of concurrent HEAD clients.
const headClients = 16

func BenchmarkManifestHeadRate(b *testing.B) {
	minioBin := miniotest.Require(b)
	pgBin := pgtest.Require(b)
	window := 10 * time.Second
	if s, err := strconv.Atoi(os.Getenv("BERTH_HEAD_BENCH_SECONDS")); err == nil && s > 0 {
		window = time.Duration(s) * time.Second
	}
	bin := buildRegistryd(b)
	srv := miniotest.Start(b, minioBin)
	pg := pgtest.Start(b, pgBin)
	mc, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, "")})
	require.NoError(b, err)
	require.NoError(b, mc.MakeBucket(context.Background(), "registry", minio.MakeBucketOptions{}))
	b.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	b.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)

	b.Run("pebble", func(b *testing.B) {
		d := startDaemon(b, bin, filepath.Join(b.TempDir(), "data"))
		ref := pushHeadImage(b, d.addr)
		for range b.N {
			measureHeads(b, []*daemon{d}, ref, window, nil)
		}
	})
	for n := 1; n <= 3; n++ {
		b.Run(fmt.Sprintf("postgres-%d", n), func(b *testing.B) {
			dbURL := pg.NewDatabase(b)
			args := []string{"--blob-store", fmt.Sprintf("s3://%s/registry/r%d?tls=false", srv.Endpoint, n), "--metadata", dbURL}
			ds := startReplicas(b, bin, n, args)
			ref := pushHeadImage(b, ds[0].addr)
			conn, err := pgx.Connect(context.Background(), dbURL)
			require.NoError(b, err)
			defer conn.Close(context.Background())
			for range b.N {
				measureHeads(b, ds, ref, window, conn)
			}
			if n == 1 {
				measureDBCosts(b, ds[0], ref, conn)
			}
		})
	}
}

// startReplicas starts n registryd with args, sharing the first one's
// keyring and store identity (copied before the others start, as an
// operator deploying replicas does).
func startReplicas(b *testing.B, bin string, n int, args []string) []*daemon {
	first := filepath.Join(b.TempDir(), "data")
	ds := []*daemon{startDaemon(b, bin, first, args...)}
	for range n - 1 {
		ds = append(ds, startDaemon(b, bin, copyReplicaIdentity(b, first), args...))
	}
	return ds
}

// copyReplicaIdentity makes a data directory for another replica of the
// store in first: its keyring and store identity, copied.
func copyReplicaIdentity(tb testing.TB, first string) string {
	data := filepath.Join(tb.TempDir(), "data")
	require.NoError(tb, os.MkdirAll(data, 0o700))
	for _, f := range []string{"keyring.json", "store-id"} {
		c, err := os.ReadFile(filepath.Join(first, f))
		require.NoError(tb, err)
		require.NoError(tb, os.WriteFile(filepath.Join(data, f), c, 0o600))
	}
	return data
}

// pushHeadImage pushes a small image as app/web:v1 and returns the path
// of its manifest by tag.
func pushHeadImage(b *testing.B, addr string) string {
	img, err := random.Image(4096, 2)
	require.NoError(b, err)
	ref, err := name.ParseReference(addr+"/app/web:v1", name.Insecure)
	require.NoError(b, err)
	require.NoError(b, remote.Write(ref, img))
	return "/v2/app/web/manifests/v1"
}

// measureHeads runs headClients clients HEADing path round-robin over
// ds for window (after a second of warm-up) and reports the rate and the
// CPU per request.
func measureHeads(b *testing.B, ds []*daemon, path string, window time.Duration, db *pgx.Conn) {
	b.StopTimer()
	var (
		stop   atomic.Bool
		count  atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
		next   atomic.Uint64
	)
	for range headClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
			for !stop.Load() {
				d := ds[next.Add(1)%uint64(len(ds))]
				req, _ := http.NewRequest(http.MethodHead, "http://"+d.addr+path, nil)
				req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
				resp, err := c.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
					if resp != nil {
						resp.Body.Close()
					}
					continue
				}
				resp.Body.Close()
				count.Add(1)
			}
		}()
	}
	time.Sleep(time.Second) // warm-up: connections, caches
	srvCPU0, dbCPU0, cliCPU0 := daemonsCPU(ds), postgresCPU(b, db), selfCPU()
	n0, t0 := count.Load(), time.Now()
	b.StartTimer()
	time.Sleep(window)
	b.StopTimer()
	n, elapsed := count.Load()-n0, time.Since(t0)
	srvCPU, dbCPU, cliCPU := daemonsCPU(ds)-srvCPU0, postgresCPU(b, db)-dbCPU0, selfCPU()-cliCPU0
	stop.Store(true)
	wg.Wait()
	require.Zero(b, failed.Load(), "failed HEADs")
	require.Positive(b, n)
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	b.ReportMetric(float64(n)/elapsed.Seconds(), "HEAD/s")
	b.ReportMetric(per(srvCPU), "registryd-cpu-µs/HEAD")
	b.ReportMetric(per(dbCPU), "postgres-cpu-µs/HEAD")
	b.ReportMetric(per(cliCPU), "client-cpu-µs/HEAD")
	b.ReportMetric(0, "ns/op")
}

// measureDBCosts reports the database transactions (each a round trip
// or more: a batch is one pipelined round trip plus its commit) that a
// HEAD and a GET of a manifest and a push of a small image cost, read
// from pg_stat_database before and after 200 of each (PostgreSQL
// publishes a backend's counts when it goes idle, at most every
// second, and within 10 s of its last activity: hence the waits).
func measureDBCosts(b *testing.B, d *daemon, path string, db *pgx.Conn) {
	b.StopTimer()
	ctx := context.Background()
	xacts := func() int64 {
		time.Sleep(11 * time.Second)
		var n int64
		require.NoError(b, db.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n))
		return n - 1 // this query's own
	}
	const ops = 200
	c := &http.Client{}
	do := func(method string) {
		for range ops {
			req, _ := http.NewRequest(method, "http://"+d.addr+path, nil)
			req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
			resp, err := c.Do(req)
			require.NoError(b, err)
			resp.Body.Close()
			require.Equal(b, http.StatusOK, resp.StatusCode)
		}
	}
	x0 := xacts()
	idle := xacts() - x0
	x1 := x0 + idle
	do(http.MethodHead)
	x2 := xacts()
	do(http.MethodGet)
	x3 := xacts()
	const pushes = 20
	for i := range pushes {
		img, err := random.Image(4096, 2)
		require.NoError(b, err)
		ref, err := name.ParseReference(fmt.Sprintf("%s/app/push:t%d", d.addr, i), name.Insecure)
		require.NoError(b, err)
		require.NoError(b, remote.Write(ref, img))
	}
	x4 := xacts()
	sub := func(x int64) float64 { return float64(x - idle) }
	b.ReportMetric(float64(idle), "db-xact-idle/11s")
	b.ReportMetric(sub(x2-x1)/ops, "db-xact/HEAD")
	b.ReportMetric(sub(x3-x2)/ops, "db-xact/GET")
	b.ReportMetric(sub(x4-x3)/pushes, "db-xact/push")
}

// daemonsCPU is the CPU time the registryd processes used so far.
func daemonsCPU(ds []*daemon) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += procCPU(d.cmd.Process.Pid)
	}
	return t
}

// postgresCPU is the CPU time the database's server processes (its
// backends and the server's own) used so far; 0 without db.
func postgresCPU(b *testing.B, db *pgx.Conn) time.Duration {
	if db == nil {
		return 0
	}
	rows, err := db.Query(context.Background(), `SELECT pid FROM pg_stat_activity`)
	require.NoError(b, err)
	var t time.Duration
	for rows.Next() {
		var pid int
		require.NoError(b, rows.Scan(&pid))
		t += procCPU(pid)
	}
	require.NoError(b, rows.Err())
	return t
}

// selfCPU is this process's CPU time so far (the clients').
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is process pid's user and system time from /proc/<pid>/stat
// (clock ticks of 10 ms); 0 when it cannot be read.
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
