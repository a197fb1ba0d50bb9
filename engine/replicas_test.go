package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/internal/miniotest"
	"github.com/berthstore/berth/internal/pgtest"
)

// sharedStore is one store's shared parts for several replicas (engines
// with data directories of their own): a PostgreSQL database, a bucket in
// a MinIO server, a keyring file.
type sharedStore struct {
	pg      *pgtest.Server
	db      string
	objects ObjectStoreOptions
	keyring string
}

// newSharedStore starts PostgreSQL and MinIO on 127.0.0.1 for t.
func newSharedStore(t *testing.T) *sharedStore {
	t.Helper()
	pgBin := pgtest.Require(t)
	minioBin := miniotest.Require(t)
	pg := pgtest.Start(t, pgBin)
	srv := miniotest.Start(t, minioBin)
	mc, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, "")})
	require.NoError(t, err)
	require.NoError(t, mc.MakeBucket(context.Background(), "registry", minio.MakeBucketOptions{}))
	return &sharedStore{
		pg: pg, db: pg.NewDatabase(t),
		objects: ObjectStoreOptions{Endpoint: srv.Endpoint, Bucket: "registry", Prefix: "berth/",
			AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey},
		keyring: filepath.Join(t.TempDir(), "keyring.json"),
	}
}

// options are a replica's options; mod, if set, changes them.
func (s *sharedStore) options(mod func(*Options)) *Options {
	o := quietOptions()
	o.Metadata, o.KeyringPath = s.db, s.keyring
	objects := s.objects
	o.ObjectStore = &objects
	if mod != nil {
		mod(o)
	}
	return o
}

// open opens a replica on a new data directory of its own.
func (s *sharedStore) open(t *testing.T, mod func(*Options)) *Engine {
	t.Helper()
	e, err := Open(t.TempDir(), s.options(mod))
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

// replicas opens n replicas.
func (s *sharedStore) replicas(t *testing.T, n int, mod func(*Options)) []*Engine {
	es := make([]*Engine, n)
	for i := range es {
		es[i] = s.open(t, mod)
	}
	return es
}

// imageManifest is an image manifest over config and layers (pushed).
func imageManifest(config Descriptor, layers ...Descriptor) []byte {
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: config.Digest, Size: config.Size}}
	m.SchemaVersion = 2
	for _, l := range layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: l.Digest, Size: l.Size})
	}
	payload, _ := json.Marshal(m)
	return payload
}

// putLayer pushes a small layer unique to name.
func putLayer(t *testing.T, e *Engine, repo, name string) Descriptor {
	t.Helper()
	l := []byte("layer " + name)
	d, err := e.PutBlob(context.Background(), repo, bytes.NewReader(l), digest.FromBytes(l))
	require.NoError(t, err)
	return d
}

// putConfig pushes an image config unique to name.
func putConfig(t *testing.T, e *Engine, repo, name string) Descriptor {
	t.Helper()
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":%q}`, name))
	d, err := e.PutBlob(context.Background(), repo, bytes.NewReader(cfg), digest.FromBytes(cfg))
	require.NoError(t, err)
	return d
}

// TestReplicasShareIdentity: replicas on new data directories adopt the
// store identity the database records (the bucket's owner), and a data
// directory of another store is refused.
func TestReplicasShareIdentity(t *testing.T) {
	s := newSharedStore(t)
	es := s.replicas(t, 3, nil)
	ids := map[string]bool{}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(e.Dir(), storeIDFile))
		require.NoError(t, err)
		ids[string(b)] = true
	}
	assert.Len(t, ids, 1, "one identity")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, storeIDFile), []byte("0123456789abcdef\n"), 0o600))
	_, err := Open(dir, s.options(nil))
	require.ErrorIs(t, err, ErrStoreMismatch)
}

// TestReplicasTagImmutability: pushes of different images under one tag
// of an immutable repository, spread over three replicas at once: one
// wins each tag, every other is refused with ErrTagImmutable.
func TestReplicasTagImmutability(t *testing.T) {
	s := newSharedStore(t)
	es := s.replicas(t, 3, nil)
	ctx := context.Background()
	_, err := es[0].CreateRepository(ctx, "team/app", RepositorySettings{TagMutability: TagImmutable})
	require.NoError(t, err)
	const perReplica = 3
	payloads := make([][]byte, len(es)*perReplica)
	for i := range payloads {
		e := es[i%len(es)]
		payloads[i] = imageManifest(putConfig(t, e, "team/app", fmt.Sprint("image ", i)), putLayer(t, e, "team/app", fmt.Sprint(i)))
	}
	for round := range 5 {
		tag := fmt.Sprint("v", round)
		var wins, refused atomic.Int32
		var wg sync.WaitGroup
		for i, p := range payloads {
			wg.Go(func() {
				_, err := es[i%len(es)].PutManifest(ctx, "team/app", tag, ocispec.MediaTypeImageManifest, p)
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, ErrTagImmutable):
					refused.Add(1)
				default:
					t.Errorf("push %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		assert.EqualValues(t, 1, wins.Load(), "tag %s: one push wins", tag)
		assert.EqualValues(t, len(payloads)-1, refused.Load(), "tag %s: the others are refused", tag)
	}
}

// TestReplicasGCLease: a collection on one replica holds the lease; the
// others are refused (ErrGCRunning) meanwhile; when the holder's
// database session dies, its lease goes with it (the holder is told) and
// another replica collects.
func TestReplicasGCLease(t *testing.T) {
	s := newSharedStore(t)
	es := s.replicas(t, 3, nil)
	ctx := context.Background()
	lctx, release, err := es[0].tryLease(ctx, leaseGC)
	require.NoError(t, err)
	defer release()
	for _, e := range es[1:] {
		_, err := e.CollectGarbage(ctx, noGrace)
		require.ErrorIs(t, err, ErrGCRunning)
	}
	_, err = es[0].CollectGarbage(ctx, noGrace)
	require.ErrorIs(t, err, ErrGCRunning, "the holder's own second collection too")
	r, err := es[1].CollectGarbage(ctx, GCOptions{DryRun: true})
	require.NoError(t, err, "a dry run changes nothing: no lease")
	assert.True(t, r.DryRun)

	// The holder's session dies (its process would, with it).
	conn, err := pgx.Connect(ctx, s.db)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT pg_terminate_backend($1)`, int32(es[0].coord.SessionPID()))
	require.NoError(t, err)
	select {
	case <-lctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the holder was not told that its lease is lost")
	}
	require.Eventually(t, func() bool {
		_, err := es[1].CollectGarbage(ctx, noGrace)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "another replica takes the lease over")
	// The first replica's coordinator reconnects: it collects again too.
	_, err = es[0].CollectGarbage(ctx, noGrace)
	require.NoError(t, err)

	// A replica that closes (drains) releases its leases at once.
	_, release2, err := es[2].tryLease(ctx, leaseGC)
	require.NoError(t, err)
	defer release2()
	_, err = es[1].CollectGarbage(ctx, noGrace)
	require.ErrorIs(t, err, ErrGCRunning)
	require.NoError(t, es[2].Close())
	_, err = es[1].CollectGarbage(ctx, noGrace)
	require.NoError(t, err, "the closed replica's lease is free")
}

// TestReplicasGCBarrier: replica A collects (no grace) while replica B
// pushes manifests that reference blobs no manifest referenced before,
// old enough to be swept (pushed before the collection began), in rounds.
// Every push B acknowledges keeps its blobs: they read back, bit-exact,
// on both replicas, after one more collection; a push whose blob A swept
// first is refused (the client pushes the blob again).
func TestReplicasGCBarrier(t *testing.T) {
	s := newSharedStore(t)
	es := s.replicas(t, 2, nil)
	a, b := es[0], es[1]
	ctx := context.Background()
	type image struct {
		config, layer Descriptor
		layerBytes    []byte
	}
	var acked []image
	var swept, refused int
	for round := range 5 {
		olds := make([]image, 24)
		for i := range olds {
			olds[i].config = putConfig(t, b, "team/app", fmt.Sprint("old ", round, i))
			olds[i].layerBytes = rnd(4 << 10)
			d, err := b.PutBlob(ctx, "team/app", bytes.NewReader(olds[i].layerBytes), "")
			require.NoError(t, err)
			olds[i].layer = d
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		wg.Go(func() {
			r, err := a.CollectGarbage(ctx, noGrace)
			assert.NoError(t, err)
			mu.Lock()
			swept += r.BlobsSwept
			mu.Unlock()
		})
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < len(olds); i += 4 {
					p := imageManifest(olds[i].config, olds[i].layer)
					_, err := b.PutManifest(ctx, "team/app", fmt.Sprint("t", round, "-", i), ocispec.MediaTypeImageManifest, p)
					var unknown *UnknownReferenceError
					mu.Lock()
					switch {
					case err == nil:
						acked = append(acked, olds[i])
					case errors.As(err, &unknown):
						refused++
					default:
						t.Errorf("push %d: %v", i, err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	// One more collection after the pushes: nothing acknowledged goes.
	_, err := a.CollectGarbage(ctx, noGrace)
	require.NoError(t, err)
	t.Logf("collections swept %d blobs; %d pushes acknowledged, %d refused (a blob swept first)", swept, len(acked), refused)
	require.NotEmpty(t, acked)
	require.Positive(t, swept, "the collections swept old blobs while pushes referenced others")
	for _, img := range acked {
		for _, e := range es {
			r, err := e.OpenBlob(ctx, "team/app", img.layer.Digest)
			require.NoError(t, err, "layer of an acknowledged push")
			got, err := io.ReadAll(r)
			r.Close()
			require.NoError(t, err)
			require.Equal(t, img.layerBytes, got)
			_, err = e.StatBlob(ctx, "team/app", img.config.Digest)
			require.NoError(t, err, "config of an acknowledged push")
		}
	}
}

// TestReplicasEventsOnce: three replicas deliver to one webhook; pushes
// spread over them produce one delivery per event, none twice, none
// lost: the router runs on one replica at a time and the event numbers
// come from the database.
func TestReplicasEventsOnce(t *testing.T) {
	s := newSharedStore(t)
	rcv := newReceiver(t, time.Now)
	es := s.replicas(t, 3, func(o *Options) {
		o.Webhooks = []Webhook{{Name: "ci", URL: rcv.srv.URL, Secret: rcv.key, Concurrency: 2,
			InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}}
	})
	ctx := context.Background()
	cfg := putConfig(t, es[0], "team/app", "events")
	p := imageManifest(cfg, putLayer(t, es[0], "team/app", "events"))
	const pushes = 30
	var wg sync.WaitGroup
	for i := range pushes {
		wg.Go(func() {
			_, err := es[i%len(es)].PutManifest(ctx, "team/app", fmt.Sprint("t", i), ocispec.MediaTypeImageManifest, p)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return len(rcv.events()) >= pushes }, 30*time.Second, 20*time.Millisecond)
	time.Sleep(3 * sharedPollInterval / 2) // a poll on every replica: nothing more comes
	ids := map[string]int{}
	tags := map[string]int{}
	for _, r := range rcv.events() {
		ids[r.ev.ID]++
		var ia struct {
			Tag string `json:"image-tag"`
		}
		require.NoError(t, json.Unmarshal(r.ev.Detail, &ia))
		tags[ia.Tag]++
	}
	assert.Len(t, rcv.events(), pushes, "one delivery per push")
	for id, c := range ids {
		assert.Equal(t, 1, c, "event %s delivered once", id)
	}
	assert.Len(t, tags, pushes, "every push's event")
}

// TestReplicasKeyring: every replica needs the store's keyring. A replica
// given another keyring, or a copy older than a key change, is refused
// at Open (ErrKeyringStale); a key change while other replicas run is
// refused (each holds its own copy of the keyring); with one replica
// running it is made and recorded.
func TestReplicasKeyring(t *testing.T) {
	s := newSharedStore(t)
	ctx := context.Background()
	a := s.open(t, nil)
	b := s.open(t, nil)

	other := filepath.Join(t.TempDir(), "other", "keyring.json")
	require.NoError(t, os.MkdirAll(filepath.Dir(other), 0o700))
	e, err := Open(filepath.Dir(other), quietOptions())
	require.NoError(t, err)
	require.NoError(t, e.Close())
	_, err = Open(t.TempDir(), s.options(func(o *Options) { o.KeyringPath = other }))
	require.ErrorIs(t, err, ErrKeyringStale, "another store's keyring")
	require.Contains(t, err.Error(), "same keyring")

	_, err = a.CreateKey(ctx, "team-key")
	require.ErrorIs(t, err, ErrUnsupported, "two replicas run")
	require.Contains(t, err.Error(), "2 replicas share this store")
	_, err = a.RotateKey(ctx, crypt.DefaultKeyName)
	require.ErrorIs(t, err, ErrUnsupported)

	old := filepath.Join(t.TempDir(), "keyring.json")
	saved, err := os.ReadFile(s.keyring)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(old, saved, 0o600))
	require.NoError(t, b.Close())
	_, err = a.CreateKey(ctx, "team-key")
	require.NoError(t, err, "one replica runs")
	_, err = Open(t.TempDir(), s.options(func(o *Options) { o.KeyringPath = old }))
	require.ErrorIs(t, err, ErrKeyringStale, "a copy from before the change")
	require.Contains(t, err.Error(), `"team-key"`)
	c := s.open(t, nil) // the changed keyring
	_, err = c.CreateRepository(ctx, "team/app", RepositorySettings{})
	require.NoError(t, err)
}

// TestReplicasReplicationOnce: images pushed through three replicas
// queue replication jobs; claimers on every replica take them, each
// working longer than a poll (so every replica finds every job queued in
// the index while it runs): each job is claimed once.
func TestReplicasReplicationOnce(t *testing.T) {
	s := newSharedStore(t)
	dest := ReplicationDestination{Region: "us-west-2", RegistryID: "000000000000"}
	mod := func(o *Options) { o.ReplicationDestinations = []ReplicationDestination{dest} }
	ctx := context.Background()
	first := s.open(t, mod)
	_, err := first.PutReplicationConfiguration(ctx, ReplicationConfiguration{Rules: []ReplicationRule{{Destinations: []ReplicationDestination{dest}}}})
	require.NoError(t, err)
	es := append([]*Engine{first}, s.replicas(t, 2, mod)...)
	const perReplica = 2
	for i, e := range es {
		for j := range perReplica {
			pushImage(t, e, "prod/app", fmt.Sprintf("r%d-%d", i, j), []byte(fmt.Sprintf("layer %d %d", i, j)))
		}
	}
	want := len(es) * perReplica
	var mu sync.Mutex
	claims := map[string]int{}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, e := range es {
		wg.Go(func() {
			for {
				j, err := e.ClaimReplication(cctx, dest)
				if err != nil {
					return
				}
				mu.Lock()
				claims[j.Tag]++
				mu.Unlock()
				// The replication's work, longer than a poll: the other
				// replicas' rescans find the job queued meanwhile.
				time.Sleep(sharedPollInterval + 500*time.Millisecond)
				assert.NoError(t, e.FinishReplication(ctx, j, ReplicationResult{}))
			}
		})
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(claims) == want
	}, 30*time.Second, 20*time.Millisecond)
	time.Sleep(2 * sharedPollInterval) // every replica rescans the queue: nothing is claimed again
	cancel()
	wg.Wait()
	for tag, n := range claims {
		assert.Equal(t, 1, n, "job of %s claimed once", tag)
	}
	assert.Len(t, claims, want)
}

// TestReplicasScheduledRunsOnce: the gc and lifecycle schedules fall due
// on every replica at the same time (their state is shared): one replica
// makes the run, the others skip it, at once or later in the interval.
func TestReplicasScheduledRunsOnce(t *testing.T) {
	s := newSharedStore(t)
	es := s.replicas(t, 3, func(o *Options) { o.GCInterval, o.LifecycleInterval = time.Hour, time.Hour })
	ctx := context.Background()
	for _, sched := range []struct {
		name string
		run  func(e *Engine) RunResult
	}{
		{ScheduleGC, func(e *Engine) RunResult { return e.scheduledGC(ctx, TriggerSchedule) }},
		{ScheduleLifecycle, func(e *Engine) RunResult { return e.scheduledLifecycle(ctx, TriggerSchedule) }},
	} {
		results := make([]RunResult, len(es))
		var wg sync.WaitGroup
		for i, e := range es {
			wg.Go(func() { results[i] = sched.run(e) })
		}
		wg.Wait()
		ok := 0
		for _, r := range results {
			if r == RunOK {
				ok++
			} else {
				assert.Equal(t, RunSkipped, r, sched.name)
			}
		}
		assert.Equal(t, 1, ok, "%s: one replica runs: %v", sched.name, results)
		for _, e := range es {
			assert.Equal(t, RunSkipped, sched.run(e), "%s: run already made this interval", sched.name)
		}
	}
}
