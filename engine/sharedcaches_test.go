package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/engine/enginetest"
	"github.com/berthstore/berth/internal/miniotest"
	"github.com/berthstore/berth/internal/pgtest"
)

// sharedCacheTTL is the bound on staleness the replicas of these tests
// run with (engine.Options.SharedCacheTTL): short, so that the tests of
// a lost notification are quick.
const sharedCacheTTL = 2 * time.Second

// replicas are engines over one PostgreSQL database and one bucket, as
// several registryd are.
type replicas struct {
	url string
	es  []*engine.Engine
}

// servers are a PostgreSQL and a MinIO server started for a test.
type servers struct {
	pg      *pgtest.Server
	minio   *minio.Client
	s3      string
	buckets int
}

// startServers starts a PostgreSQL and a MinIO server for t.
func startServers(t *testing.T) *servers {
	t.Helper()
	pgBin := pgtest.Require(t)
	minioBin := miniotest.Require(t)
	srv := miniotest.Start(t, minioBin)
	c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, "")})
	require.NoError(t, err)
	return &servers{pg: pgtest.Start(t, pgBin), minio: c, s3: srv.Endpoint}
}

// openReplicas opens n engines on a new database and a new bucket of
// srv. They share the first one's keyring and store identity (copied,
// as an operator deploying replicas does).
func openReplicas(t *testing.T, srv *servers, n int) *replicas {
	t.Helper()
	srv.buckets++
	bucket := fmt.Sprintf("berth-%d", srv.buckets)
	require.NoError(t, srv.minio.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}))
	r := &replicas{url: srv.pg.NewDatabase(t)}
	first := t.TempDir()
	for i := range n {
		dir := first
		if i > 0 {
			dir = t.TempDir()
			for _, f := range []string{"keyring.json", "store-id"} {
				b, err := os.ReadFile(filepath.Join(first, f))
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o600))
			}
		}
		r.es = append(r.es, enginetest.OpenDir(t, dir, &engine.Options{
			CreateOnPush: true, Metadata: r.url, SharedCacheTTL: sharedCacheTTL,
			ObjectStore: &engine.ObjectStoreOptions{Endpoint: srv.s3, Bucket: bucket,
				AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey},
		}))
	}
	return r
}

// TestCachesAcrossReplicas runs the tests of caches over replicas on one
// pair of servers.
func TestCachesAcrossReplicas(t *testing.T) {
	srv := startServers(t)
	t.Run("changes seen at once", func(t *testing.T) { testChangesSeenAtOnce(t, openReplicas(t, srv, 2)) })
	t.Run("lost notifications", func(t *testing.T) { testLostNotifications(t, openReplicas(t, srv, 2)) })
}

// atOnce fails t unless cond holds now: right after a change on another
// replica returned (it waited for this replica's acknowledgement).
func atOnce(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.True(t, cond(), "%s: not seen at once", what)
}

// within polls cond until it holds, failing t when it does not within
// bound; it returns how long that took.
func within(t *testing.T, bound time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > bound {
			t.Fatalf("%s: not seen within %v", what, bound)
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("%s: seen after %v", what, took.Round(100*time.Microsecond))
	return took
}

// testChangesSeenAtOnce: what one replica changes, the other sees as
// soon as the change returned (the commit waited for the other's
// acknowledgement), with its caches warm; a new tag is seen at once.
func testChangesSeenAtOnce(t *testing.T, r *replicas) {
	ctx := context.Background()
	a, b := r.es[0], r.es[1]
	statDigest := func(e *engine.Engine, ref string) digest.Digest {
		d, err := e.StatManifest(ctx, "team/app", ref)
		if err != nil {
			return ""
		}
		return d.Digest
	}

	// Read-after-write of a new tag on the other replica: at once.
	img1 := enginetest.PushImage(t, a, "team/app", "v1", []byte("layer one"))
	require.Equal(t, img1.Digest, statDigest(b, "v1"), "a new tag is never a cached miss")
	m, err := b.GetManifest(ctx, "team/app", "v1")
	require.NoError(t, err)
	require.Equal(t, img1.Manifest, m.Payload)

	// Warm B's caches: the tag, the manifest, the repository, a decision.
	bob, err := engine.NewPrincipal(engine.DefaultAccount, "", "bob", nil)
	require.NoError(t, err)
	pull := engine.AccessRequest{Principal: bob, Action: "ecr:BatchGetImage", Repository: "team/app"}
	denied := func(e *engine.Engine) bool {
		d, err := e.Authorize(ctx, &pull)
		require.NoError(t, err)
		return d.Outcome != engine.Allow
	}
	require.NoError(t, a.SetRegistryPolicy(ctx, `{"Version":"2012-10-17","Statement":[{"Sid":"All","Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}]}`))
	atOnce(t, "registry policy allowing bob", func() bool { return !denied(b) })
	for range 3 {
		require.Equal(t, img1.Digest, statDigest(b, "v1"))
		require.False(t, denied(b))
	}

	// The tag moved on A.
	img2 := enginetest.PushImage(t, a, "team/app", "v1", []byte("layer two"))
	atOnce(t, "tag moved", func() bool { return statDigest(b, "v1") == img2.Digest })

	// Tag immutability turned on on A: B refuses to move the tag.
	require.NoError(t, a.SetTagMutability(ctx, "team/app", engine.TagImmutable, nil))
	atOnce(t, "tag immutability", func() bool {
		rep, err := b.Repository(ctx, "team/app")
		require.NoError(t, err)
		return rep.TagMutability == engine.TagImmutable
	})
	_, err = enginetest.TryPushImage(ctx, b, "team/app", "v1", []byte("layer three"))
	require.ErrorIs(t, err, engine.ErrTagImmutable)

	// A repository policy denying bob, set on A.
	require.NoError(t, a.SetRepositoryPolicy(ctx, "team/app", `{"Version":"2012-10-17","Statement":{"Sid":"NoBob","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:*"}}`))
	atOnce(t, "policy denying bob", func() bool { return denied(b) })

	// A lifecycle policy put on A.
	lp := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}`
	got, err := b.GetLifecyclePolicy(ctx, "team/app")
	require.Error(t, err, "none yet: %q", got)
	require.NoError(t, a.PutLifecyclePolicy(ctx, "team/app", lp))
	atOnce(t, "lifecycle policy", func() bool {
		got, err := b.GetLifecyclePolicy(ctx, "team/app")
		return err == nil && got != ""
	})

	// A tag deleted, then a manifest deleted on A, with B's cache warm
	// (the OCI conformance suite's "delete is atomic", across replicas).
	img3 := enginetest.PushImage(t, a, "team/other", "gone", []byte("layer four"))
	other := func(ref string) error { _, err := b.StatManifest(ctx, "team/other", ref); return err }
	require.NoError(t, other("gone"))
	require.NoError(t, other(img3.Digest.String()))
	require.NoError(t, a.DeleteTag(ctx, "team/other", "gone"))
	atOnce(t, "tag deleted", func() bool { return errors.Is(other("gone"), engine.ErrManifestUnknown) })
	require.NoError(t, other(img3.Digest.String()))
	require.NoError(t, a.DeleteManifest(ctx, "team/other", img3.Digest))
	atOnce(t, "manifest deleted", func() bool { return errors.Is(other(img3.Digest.String()), engine.ErrManifestUnknown) })

	// The repository deleted on A.
	require.NoError(t, a.DeleteRepository(ctx, "team/app", true))
	atOnce(t, "repository deleted", func() bool {
		_, err := b.StatManifest(ctx, "team/app", "v1")
		return errors.Is(err, engine.ErrNameUnknown)
	})
	_, err = b.Repository(ctx, "team/app")
	require.ErrorIs(t, err, engine.ErrNameUnknown)
}

// testLostNotifications: a change whose notification never comes
// (written behind the engines' backs) is seen within the TTL, and not
// before; and while the listener's connection is killed again and again,
// a tag moved on A is seen on B within the bound every time.
func testLostNotifications(t *testing.T, r *replicas) {
	ctx := context.Background()
	a, b := r.es[0], r.es[1]
	img1 := enginetest.PushImage(t, a, "team/app", "v1", []byte("layer one"))
	img2 := enginetest.PushImage(t, a, "team/app", "v2", []byte("layer two"))
	stat := func(ref string) digest.Digest {
		d, err := b.StatManifest(ctx, "team/app", ref)
		require.NoError(t, err)
		return d.Digest
	}
	conn, err := pgx.Connect(ctx, r.url)
	require.NoError(t, err)
	defer conn.Close(ctx)

	// No notification: v1 pointed at another tag's record directly in the
	// table. B answers from its cache (the notifications of the pushes
	// have arrived: a quiet moment first) until the TTL drops it. A drop
	// of the TTL's own can fall between the two reads: then again.
	tagKey := func(tag string) []byte { return []byte("t\x00team/app\x00" + tag) }
	var saved []byte
	require.NoError(t, conn.QueryRow(ctx, `SELECT v FROM berth_kv WHERE k = $1`, tagKey("v1")).Scan(&saved))
	from, to := img1.Digest, img2.Digest
	stale := false
	for attempt := 0; attempt < 3 && !stale; attempt++ {
		time.Sleep(300 * time.Millisecond)
		require.Equal(t, from, stat("v1"))
		src := map[digest.Digest]string{img1.Digest: "v1", img2.Digest: "v2"}[to]
		_, err = conn.Exec(ctx, `UPDATE berth_kv SET v = (SELECT v FROM berth_kv WHERE k = $1) WHERE k = $2`, tagKey(src), tagKey("v1"))
		require.NoError(t, err)
		stale = stat("v1") == from
		within(t, sharedCacheTTL+500*time.Millisecond, "a change without notification", func() bool { return stat("v1") == to })
		from, to = to, from
	}
	require.True(t, stale, "B answered from its cache before the TTL")
	_, err = conn.Exec(ctx, `UPDATE berth_kv SET v = $1 WHERE k = $2`, saved, tagKey("v1"))
	require.NoError(t, err)

	// The listener's connection killed every 20 ms while A moves v1 back
	// and forth every 100 ms: B sees each move within the bound (it
	// caches nothing while its listener is down).
	stop := make(chan struct{})
	var kills atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			tag, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE starts_with(application_name, 'berth-listen ')`)
			if err == nil {
				kills.Add(tag.RowsAffected())
			}
		}
	}()
	digests := []digest.Digest{img1.Digest, img2.Digest}
	var worst time.Duration
	for i := range 20 {
		time.Sleep(100 * time.Millisecond)
		want := digests[i%2]
		_, err := a.PutManifest(ctx, "team/app", "v1", "application/vnd.oci.image.manifest.v1+json", [][]byte{img1.Manifest, img2.Manifest}[i%2])
		require.NoError(t, err)
		worst = max(worst, within(t, sharedCacheTTL, fmt.Sprintf("move %d while the listener is killed", i), func() bool { return stat("v1") == want }))
	}
	close(stop)
	wg.Wait()
	require.Positive(t, kills.Load(), "the listeners were killed")
	t.Logf("worst: %v over %d kills", worst, kills.Load())
}
