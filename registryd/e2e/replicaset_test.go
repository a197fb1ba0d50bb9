package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/internal/miniotest"
	"github.com/berthstore/berth/internal/pgtest"
)

// replicaSet is a registry of several replicas as it runs past one
// machine: one MinIO, one PostgreSQL, n `registryd serve` processes (the
// built binary), each with its own data directory and a copy of the
// store's keyring (the store's identity each adopts from the database),
// behind a round-robin proxy (rrProxy).
type replicaSet struct {
	// Addr is the proxy's host:port: where clients go.
	Addr string
	// Replicas are the registryd processes, by index.
	Replicas []*replica
	// Proxy spreads the requests over the replicas.
	Proxy *rrProxy
	// MinIO and PG are the object store and the database.
	MinIO *miniotest.Server
	PG    *pgtest.Server
	// Bin is the registryd binary; DBURL the store's database; BlobStore
	// its --blob-store URL.
	Bin, DBURL, BlobStore string
}

// replica is one registryd of a replicaSet.
type replica struct {
	// Data is its data directory; Args the flags it runs with.
	Data string
	Args []string
	d    *daemon
}

// Addr is the replica's own host:port (not the proxy's).
func (r *replica) Addr() string { return r.d.addr }

// replicaSetOptions shape a replicaSet.
type replicaSetOptions struct {
	// N is the number of replicas; 0 means 3.
	N int
	// Args are flags every replica gets.
	Args []string
	// ReplicaArgs adds flags to one replica, by index.
	ReplicaArgs map[int][]string
	// MinIO and PG share servers between sets (nil: the set starts its
	// own); Bin a built registryd.
	MinIO *miniotest.Server
	PG    *pgtest.Server
	Bin   string
	// Prefix is the store's key prefix in the bucket; "" means "berth".
	Prefix string
}

// needReplicaPrereqs stops tb (testenv.Missing) without MinIO or
// PostgreSQL and returns their binaries.
func needReplicaPrereqs(tb testing.TB) (minioBin, pgBin string) {
	tb.Helper()
	return miniotest.Require(tb), pgtest.Require(tb)
}

// bucket is the bucket every replica set's store lives in.
const replicaBucket = "registry"

// startReplicaSet starts MinIO and PostgreSQL (unless given), makes the
// store's bucket and database, and starts the replicas and the proxy.
// The first replica makes the store (its identity, recorded in the
// database, and its keyring); the others get a copy of the keyring
// before they start.
func startReplicaSet(tb testing.TB, o replicaSetOptions) *replicaSet {
	tb.Helper()
	if o.N == 0 {
		o.N = 3
	}
	if o.Prefix == "" {
		o.Prefix = "berth"
	}
	minioBin, pgBin := needReplicaPrereqs(tb)
	s := &replicaSet{MinIO: o.MinIO, PG: o.PG, Bin: o.Bin}
	if s.MinIO == nil {
		s.MinIO = miniotest.Start(tb, minioBin)
	}
	if s.PG == nil {
		s.PG = pgtest.Start(tb, pgBin)
	}
	if s.Bin == "" {
		s.Bin = buildRegistryd(tb)
	}
	mc := s.minioClient(tb)
	ctx := context.Background()
	if ok, err := mc.BucketExists(ctx, replicaBucket); err != nil || !ok {
		require.NoError(tb, mc.MakeBucket(ctx, replicaBucket, minio.MakeBucketOptions{}))
	}
	s.DBURL = s.PG.NewDatabase(tb)
	s.BlobStore = "s3://" + s.MinIO.Endpoint + "/" + replicaBucket + "/" + o.Prefix + "?tls=false"
	// The replicas inherit the test's environment: the object store's
	// credentials go there, never on a command line.
	tb.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	tb.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)

	dir := tb.TempDir()
	for i := range o.N {
		r := &replica{Data: filepath.Join(dir, fmt.Sprintf("replica%d", i))}
		r.Args = append([]string{"--blob-store", s.BlobStore, "--metadata", s.DBURL}, o.Args...)
		r.Args = append(r.Args, o.ReplicaArgs[i]...)
		if i > 0 {
			shareStore(tb, s.Replicas[0].Data, r.Data)
		}
		r.d = startDaemon(tb, s.Bin, r.Data, r.Args...)
		s.Replicas = append(s.Replicas, r)
	}
	addrs := make([]string, o.N)
	for i, r := range s.Replicas {
		addrs[i] = r.Addr()
	}
	s.Proxy = startRRProxy(tb, addrs)
	s.Addr = s.Proxy.Addr
	return s
}

// shareStore gives the data directory to the store of from: copies of
// its keyring (every replica needs the store's keys) and of the key of
// the ECR API's login tokens (so that a token one replica minted is good
// on all). The identity that owns the bucket prefix each replica adopts
// from the database.
func shareStore(tb testing.TB, from, to string) {
	tb.Helper()
	require.NoError(tb, os.MkdirAll(to, 0o700))
	for _, f := range []string{"keyring.json", "ecr-login-token.key"} {
		b, err := os.ReadFile(filepath.Join(from, f))
		require.NoError(tb, err, "the first replica's %s", f)
		require.NoError(tb, os.WriteFile(filepath.Join(to, f), b, 0o600))
	}
}

// minioClient is a client of the set's MinIO.
func (s *replicaSet) minioClient(tb testing.TB) *minio.Client {
	tb.Helper()
	mc, err := minio.New(s.MinIO.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, "")})
	require.NoError(tb, err)
	return mc
}

// kill SIGKILLs replica i.
func (s *replicaSet) kill(i int) { s.Replicas[i].d.kill() }

// restart starts replica i again (after kill) over its data directory,
// and points the proxy at its new address.
func (s *replicaSet) restart(tb testing.TB, i int) {
	tb.Helper()
	r := s.Replicas[i]
	r.d.kill()
	r.d = startDaemon(tb, s.Bin, r.Data, r.Args...)
	s.Proxy.setAddr(i, r.Addr())
}

// fsck runs `registryd fsck --json` against replica i (through its admin
// socket: the daemon checks the shared store) and returns the report.
func (s *replicaSet) fsck(tb testing.TB, i int) engine.FsckReport {
	tb.Helper()
	cmd := exec.Command(s.Bin, "fsck", "--data", s.Replicas[i].Data, "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var r engine.FsckReport
	require.NoError(tb, json.Unmarshal(out, &r), "fsck: %v\n%s%s", err, out, stderr.Bytes())
	return r
}
