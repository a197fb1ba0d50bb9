package engine

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/internal/miniotest"
	"github.com/berthstore/berth/internal/pgtest"
	"github.com/berthstore/berth/internal/testenv"
)

// The engine's tests run over pebble and local blob files. With
// BERTH_ENGINE_BACKEND the tests that open their engine through
// openTestEngine run over the scale-out backends instead, on servers
// TestMain starts on 127.0.0.1:
//
//	BERTH_ENGINE_BACKEND=postgres    go test ./engine   # metadata in PostgreSQL, blobs in files
//	BERTH_ENGINE_BACKEND=postgres-s3 go test ./engine   # metadata in PostgreSQL, blobs in MinIO
//
// A test that holds only on pebble or on blob files calls
// requireLocalMetadata or requireLocalBlobs with its reason.
const engineBackendEnv = "BERTH_ENGINE_BACKEND"

// testBackend is the backend of this run: the servers TestMain started
// for BERTH_ENGINE_BACKEND (both nil on pebble and files).
var testBackend struct {
	name  string
	pg    *pgtest.Server
	minio *miniotest.Server
}

// startTestBackend starts the servers BERTH_ENGINE_BACKEND asks for; the
// returned function stops them.
func startTestBackend() (stop func(), err error) {
	name := os.Getenv(engineBackendEnv)
	testBackend.name = name
	switch name {
	case "", "pebble":
		return func() {}, nil
	case "postgres", "postgres-s3":
	default:
		return nil, fmt.Errorf("%s=%q: want postgres or postgres-s3", engineBackendEnv, name)
	}
	bin, ok := pgtest.Find()
	if !ok {
		return nil, fmt.Errorf("%s=%s: PostgreSQL is not installed (%s)", engineBackendEnv, name, pgtest.InstallCommand)
	}
	pg, err := pgtest.New(bin)
	if err != nil {
		return nil, fmt.Errorf("%s=%s: %w", engineBackendEnv, name, err)
	}
	testBackend.pg = pg
	if name == "postgres-s3" {
		mbin, ok := testenv.LookTool("minio")
		if !ok {
			pg.Close()
			return nil, fmt.Errorf("%s=%s: the MinIO server is not installed (%s)", engineBackendEnv, name, miniotest.InstallCommand)
		}
		m, err := miniotest.New(mbin)
		if err != nil {
			pg.Close()
			return nil, fmt.Errorf("%s=%s: %w", engineBackendEnv, name, err)
		}
		testBackend.minio = m
		if err := makeTestBucket(m); err != nil {
			m.Close()
			pg.Close()
			return nil, err
		}
	}
	return func() {
		if testBackend.minio != nil {
			testBackend.minio.Close()
		}
		pg.Close()
	}, nil
}

// testBucket is the bucket of a postgres-s3 run; each engine gets a
// prefix of its own.
const testBucket = "berth-engine"

var testPrefixes atomic.Int64

func makeTestBucket(m *miniotest.Server) error {
	c, err := minio.New(m.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, "")})
	if err != nil {
		return err
	}
	return c.MakeBucket(context.Background(), testBucket, minio.MakeBucketOptions{})
}

// onTestBackend returns a copy of o that opens a new store on this run's
// backend: a fresh database, and a fresh prefix of the bucket. On pebble
// it returns o.
func onTestBackend(t testing.TB, o *Options) *Options {
	t.Helper()
	if testBackend.pg == nil {
		return o
	}
	c := *o
	c.Metadata = testBackend.pg.NewDatabase(t)
	if m := testBackend.minio; m != nil {
		c.ObjectStore = &ObjectStoreOptions{
			Endpoint: m.Endpoint, Bucket: testBucket, Prefix: fmt.Sprintf("t%d/", testPrefixes.Add(1)),
			AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey,
		}
	}
	return &c
}

// requireLocalMetadata skips t when this run keeps metadata elsewhere than
// pebble: why says what the test holds only on pebble.
func requireLocalMetadata(t testing.TB, why string) {
	t.Helper()
	if testBackend.pg != nil {
		t.Skipf("pebble only (%s=%s): %s", engineBackendEnv, testBackend.name, why)
	}
}

// requireLocalBlobs skips t when this run keeps blobs elsewhere than in
// files: why says what the test holds only on the file store.
func requireLocalBlobs(t testing.TB, why string) {
	t.Helper()
	if testBackend.minio != nil {
		t.Skipf("blob files only (%s=%s): %s", engineBackendEnv, testBackend.name, why)
	}
}

func TestBackendSelected(t *testing.T) {
	e := openTestEngine(t, nil)
	switch testBackend.name {
	case "postgres", "postgres-s3":
		require.NotEmpty(t, e.opts.Metadata)
		require.Equal(t, testBackend.minio != nil, e.opts.ObjectStore != nil)
	default:
		require.Empty(t, e.opts.Metadata)
		require.Nil(t, e.opts.ObjectStore)
	}
}

// archiveFiles is the file store of e's archive tier (a store whose
// blobs are in files).
func archiveFiles(t testing.TB, e *Engine) *blob.Store {
	t.Helper()
	fb, ok := e.archive.(fileBackend)
	require.True(t, ok, "the archive tier is in files")
	return fb.Store
}

// scaleOutServers returns a PostgreSQL and a MinIO server for t: this
// run's when BERTH_ENGINE_BACKEND started them, else new ones (testenv: a
// missing one skips on a developer's machine, fails under CI).
func scaleOutServers(t testing.TB) (*pgtest.Server, *miniotest.Server) {
	t.Helper()
	pg, m := testBackend.pg, testBackend.minio
	if pg == nil {
		bin, ok := pgtest.Find()
		if !ok {
			testenv.Missing(t, "PostgreSQL (%s; .ci/install-tools.sh does it)", pgtest.InstallCommand)
		}
		pg = pgtest.Start(t, bin)
	}
	if m == nil {
		bin, ok := testenv.LookTool("minio")
		if !ok {
			testenv.Missing(t, "the MinIO server (%s; .ci/install-tools.sh does it)", miniotest.InstallCommand)
		}
		m = miniotest.Start(t, bin)
	}
	return pg, m
}

var testBuckets atomic.Int64

// newTestBucket makes an empty bucket on m and returns a client of m.
func newTestBucket(t testing.TB, m *miniotest.Server) (*minio.Client, string) {
	t.Helper()
	c, err := minio.New(m.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, "")})
	require.NoError(t, err)
	name := fmt.Sprintf("berth-t%d", testBuckets.Add(1))
	require.NoError(t, c.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}))
	return c, name
}

// objectKeys lists the keys under prefix in bucket.
func objectKeys(t testing.TB, c *minio.Client, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	for oi := range c.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		require.NoError(t, oi.Err)
		keys = append(keys, oi.Key)
	}
	return keys
}

// onBackendOf returns a copy of o on the metadata database and bucket of
// e, to open e's store again after closing it.
func onBackendOf(e *Engine, o *Options) *Options {
	c := *o
	c.Metadata, c.ObjectStore = e.opts.Metadata, e.opts.ObjectStore
	return &c
}

// testPostgres returns a PostgreSQL server for t: this run's when
// BERTH_ENGINE_BACKEND started one, else a new one (testenv: a missing
// server skips on a developer's machine, fails under CI).
func testPostgres(t testing.TB) *pgtest.Server {
	t.Helper()
	if testBackend.pg != nil {
		return testBackend.pg
	}
	bin := pgtest.Require(t)
	return pgtest.Start(t, bin)
}
