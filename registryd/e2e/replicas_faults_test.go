package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// pushLoad is clients pushing images until their context ends, each
// keeping the images whose push was acknowledged.
type pushLoad struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	acked  []*pushedImage
	failed []string
}

// startPushLoad runs clients goroutines, each calling push(ctx, client, n)
// for n = 0, 1, ... until ctx ends; push returns the image it pushed and
// whether the registry acknowledged it.
func startPushLoad(ctx context.Context, clients int, push func(ctx context.Context, client, n int) (*pushedImage, error)) *pushLoad {
	l := &pushLoad{}
	for c := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				img, err := push(ctx, c, n)
				l.mu.Lock()
				switch {
				case err == nil:
					l.acked = append(l.acked, img)
				case ctx.Err() == nil:
					l.failed = append(l.failed, fmt.Sprintf("client %d push %d: %v", c, n, err))
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// wait waits for the clients and returns the acknowledged images and the
// pushes that failed (not counting those the end of the run cut short).
func (l *pushLoad) wait() ([]*pushedImage, []string) {
	l.wg.Wait()
	return l.acked, l.failed
}

// checkAfterFaults is what must hold after every fault: every
// acknowledged push pulls back bit-exact through the proxy (no live blob
// lost) and fsck finds the store clean.
func checkAfterFaults(t *testing.T, s *replicaSet, acked []*pushedImage) {
	t.Helper()
	require.NotEmpty(t, acked, "no push was acknowledged")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	problems, blobs := verifyPulls(ctx, s.Addr, acked)
	assert.Empty(t, problems, "acknowledged pushes that do not pull back bit-exact")
	r := s.fsck(t, 0)
	assert.True(t, r.Clean(), "fsck: %+v", r.Corrupt)
	t.Logf("%d acknowledged images (%d blobs) pull bit-exact: %d problems; fsck: %d manifests, %d blob records (%d verified), %d corrupt, %d orphans",
		len(acked), blobs, len(problems), r.Manifests, r.BlobRecords, r.Verified, len(r.Corrupt), len(r.Orphans))
}

// ggcrPush pushes img to repo:tag through addr with go-containerregistry
// (its retries on) and returns what was pushed.
func ggcrPush(ctx context.Context, addr, repo, tag string, img v1.Image) (*pushedImage, error) {
	ref, err := name.ParseReference(addr+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return nil, err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return nil, err
	}
	return pushedOf(repo, tag, img)
}

// pushedOf is img as bytes: its manifest, config and layers.
func pushedOf(repo, tag string, img v1.Image) (*pushedImage, error) {
	p := &pushedImage{repo: repo, tag: tag, blobs: map[digest.Digest][]byte{}}
	var err error
	if p.manifest, err = img.RawManifest(); err != nil {
		return nil, err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	p.blobs[digest.FromBytes(cfg)] = cfg
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		p.blobs[digest.FromBytes(b)] = b
	}
	return p, nil
}

// TestReplicaKilledDuringChunkedPushes: four clients push images (two
// layers of 0.5-2 MiB each, sent in 256 KiB chunks) through the proxy to
// three replicas, and every 3 s one replica is SIGKILLed and started
// again 1.5 s later. A chunk that fails is followed by a status request
// and continued where the registry has the upload, or the upload starts
// again; every push finishes, and every acknowledged one pulls back
// bit-exact.
func TestReplicaKilledDuringChunkedPushes(t *testing.T) {
	skipIfShort(t)
	s := startReplicaSet(t, replicaSetOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pushers := make([]*chunkedPusher, 4)
	for i := range pushers {
		pushers[i] = newChunkedPusher(s.Addr, 256<<10)
	}
	load := startPushLoad(ctx, len(pushers), func(ctx context.Context, c, n int) (*pushedImage, error) {
		rng := rand.New(rand.NewPCG(uint64(c), uint64(n)))
		img := newTestImage(rng, fmt.Sprintf("kill/c%d", c), fmt.Sprintf("v%d", n), 512<<10+rng.IntN(3<<19), 512<<10+rng.IntN(3<<19))
		return img, pushers[c].push(context.WithoutCancel(ctx), img)
	})
	kills := 0
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
			i := kills % len(s.Replicas)
			s.kill(i)
			kills++
			time.Sleep(1500 * time.Millisecond)
			s.restart(t, i)
		}
	}
	acked, failed := load.wait()
	var resumed, restarted, retried int64
	for _, p := range pushers {
		resumed, restarted, retried = resumed+p.resumed.Load(), restarted+p.restarted.Load(), retried+p.retried.Load()
	}
	t.Logf("%d kills; %d pushes acknowledged, %d failed; %d uploads continued after a failed chunk, %d started again, %d requests retried; requests per replica %v",
		kills, len(acked), len(failed), resumed, restarted, retried, s.Proxy.counts())
	assert.Empty(t, failed, "every push finishes")
	assert.GreaterOrEqual(t, kills, 4)
	checkAfterFaults(t, s, acked)
}

// TestPostgresRestartedUnderTraffic: four clients push images with
// go-containerregistry through the proxy to three replicas, and
// PostgreSQL is stopped at once (no checkpoint, as a crash) and started
// again (pg_ctl) twice while they do. Requests during the restart fail
// with a retryable error, the clients retry, and every acknowledged push
// pulls back bit-exact.
func TestPostgresRestartedUnderTraffic(t *testing.T) {
	skipIfShort(t)
	s := startReplicaSet(t, replicaSetOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	load := startPushLoad(ctx, 4, func(ctx context.Context, c, n int) (*pushedImage, error) {
		img, err := random.Image(256<<10, 2)
		if err != nil {
			return nil, err
		}
		return ggcrPush(context.WithoutCancel(ctx), s.Addr, fmt.Sprintf("pg/c%d", c), fmt.Sprintf("v%d", n), img)
	})
	restarts := 0
	for range 2 {
		time.Sleep(5 * time.Second)
		start := time.Now()
		s.PG.Restart(t)
		restarts++
		t.Logf("PostgreSQL restarted in %v", time.Since(start).Round(time.Millisecond))
	}
	acked, failed := load.wait()
	t.Logf("%d restarts; %d pushes acknowledged, %d failed after go-containerregistry's retries; requests per replica %v",
		restarts, len(acked), len(failed), s.Proxy.counts())
	assert.Empty(t, failed, "every push finishes (go-containerregistry retries 5xx)")
	checkAfterFaults(t, s, acked)
}

// TestObjectStoreRestartedMidUpload: four clients push images of 4 MiB
// layers through the proxy to three replicas (two with
// go-containerregistry, two in 1 MiB chunks), and MinIO is killed and
// started again (same data, same port) twice while uploads are under way.
// Requests that reach the object store while it is down answer 503 with
// Retry-After; the clients retry, and every acknowledged push pulls back
// bit-exact.
func TestObjectStoreRestartedMidUpload(t *testing.T) {
	skipIfShort(t)
	s := startReplicaSet(t, replicaSetOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	chunked := []*chunkedPusher{newChunkedPusher(s.Addr, 1<<20), newChunkedPusher(s.Addr, 1<<20)}
	load := startPushLoad(ctx, 4, func(ctx context.Context, c, n int) (*pushedImage, error) {
		repo, tag := fmt.Sprintf("s3/c%d", c), fmt.Sprintf("v%d", n)
		if c < 2 {
			img, err := random.Image(4<<20, 2)
			if err != nil {
				return nil, err
			}
			return ggcrPush(context.WithoutCancel(ctx), s.Addr, repo, tag, img)
		}
		rng := rand.New(rand.NewPCG(uint64(c), uint64(n)))
		img := newTestImage(rng, repo, tag, 4<<20, 4<<20)
		return img, chunked[c-2].push(context.WithoutCancel(ctx), img)
	})
	for range 2 {
		time.Sleep(4 * time.Second)
		s.MinIO.Stop()
		time.Sleep(2 * time.Second)
		s.MinIO.Restart(t)
	}
	acked, failed := load.wait()
	t.Logf("2 MinIO restarts; %d pushes acknowledged, %d failed; requests per replica %v", len(acked), len(failed), s.Proxy.counts())
	assert.Empty(t, failed, "every push finishes")
	checkAfterFaults(t, s, acked)
}

// TestGCOnOneReplicaWhilePushingThroughOthers: replica 0 collects
// garbage over and over (grace 1 s) while eight clients push through
// replicas 1 and 2 for 60 s with go-containerregistry. Each image has a
// layer shared from a small pool and a layer of its own that the client
// uploads first, alone, and references only 1-2 s later (older than the
// grace, unreferenced: a collection's candidate), so the manifest PUT
// races the collections' sweep; clients also delete some of their
// earlier images so that layers fall unreferenced, and push a blob no
// manifest references (garbage to collect). A manifest refused
// because its layer was collected first (MANIFEST_BLOB_UNKNOWN) is
// pushed again (go-containerregistry sends the layer again). Every
// acknowledged push that the test did not delete pulls back bit-exact
// and fsck is clean: no collection on one replica removed a blob that a
// push on another had made live.
func TestGCOnOneReplicaWhilePushingThroughOthers(t *testing.T) {
	skipIfShort(t)
	s := startReplicaSet(t, replicaSetOptions{})
	s.Proxy.setOut(0, true)
	pool := make([]v1.Layer, 6)
	for i := range pool {
		l, err := random.Layer(256<<10, types.OCILayer)
		require.NoError(t, err)
		pool[i] = l
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	deleted := map[string]bool{} // repo:tag the clients deleted
	refused := 0                 // manifests refused: a layer collected first
	load := startPushLoad(ctx, 8, func(ctx context.Context, c, n int) (*pushedImage, error) {
		rng := rand.New(rand.NewPCG(uint64(c), uint64(n)))
		repo := fmt.Sprintf("gc/c%d", c)
		own, err := random.Layer(64<<10, types.OCILayer)
		if err != nil {
			return nil, err
		}
		wctx := context.WithoutCancel(ctx)
		// Garbage from the start: a blob no manifest will reference,
		// pushed in one request (POST ?digest=), for the collections to
		// sweep.
		junk := make([]byte, 16<<10)
		for i := range junk {
			junk[i] = byte(rng.Uint32())
		}
		if status, _, body, err := newChunkedPusher(s.Addr, 0).do(wctx, http.MethodPost,
			"/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(junk).String(), junk, nil); err != nil || status != http.StatusCreated {
			return nil, fmt.Errorf("garbage blob: %d %s %v", status, body, err)
		}
		repoRef, err := name.NewRepository(s.Addr+"/"+repo, name.Insecure)
		if err != nil {
			return nil, err
		}
		if err := remote.WriteLayer(repoRef, own, remote.WithContext(wctx)); err != nil {
			return nil, fmt.Errorf("layer alone: %w", err)
		}
		// Older than the grace: a candidate of the next collection.
		time.Sleep(time.Duration(1200+rng.IntN(800)) * time.Millisecond)
		img, err := mutate.AppendLayers(empty.Image, pool[rng.IntN(len(pool))], own)
		if err != nil {
			return nil, err
		}
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		tag := fmt.Sprintf("v%d", n)
		p, err := ggcrPush(wctx, s.Addr, repo, tag, img)
		for try := 0; err != nil && strings.Contains(err.Error(), "MANIFEST_BLOB_UNKNOWN") && try < 3; try++ {
			mu.Lock()
			refused++
			mu.Unlock()
			p, err = ggcrPush(wctx, s.Addr, repo, tag, img)
		}
		if err != nil || n < 2 || rng.IntN(2) == 0 {
			return p, err
		}
		// Delete an earlier image of this client's (its manifest):
		// its layers may fall unreferenced.
		old := fmt.Sprintf("v%d", n-2)
		if del := deleteManifest(wctx, s.Addr, repo, old); del == nil {
			mu.Lock()
			deleted[repo+":"+old] = true
			mu.Unlock()
		}
		return p, nil
	})
	runs, swept, candidates, spared, gcErrors := 0, 0, 0, 0, 0
	for ctx.Err() == nil {
		r, err := s.gc(t, 0, time.Second)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("gc: %v", err)
			}
			break
		}
		runs++
		swept, spared, gcErrors = swept+r.BlobsSwept, spared+r.BlobsSpared, gcErrors+r.Errors
		if r.Plan != nil {
			candidates += len(r.Plan.Blobs)
		}
	}
	acked, failed := load.wait()
	var live []*pushedImage
	for _, p := range acked {
		if !deleted[p.repo+":"+p.tag] {
			live = append(live, p)
		}
	}
	t.Logf("%d collections on replica 0: %d candidates, %d swept, %d spared, %d errors", runs, candidates, swept, spared, gcErrors)
	t.Logf("%d collections on replica 0 swept %d blobs; %d pushes acknowledged (%d deleted since), %d refused once for a layer collected first and pushed again, %d failed; requests per replica %v",
		runs, swept, len(acked), len(acked)-len(live), refused, len(failed), s.Proxy.counts())
	assert.Empty(t, failed, "every push finishes")
	assert.Positive(t, swept, "the collections collected something")
	checkAfterFaults(t, s, live)
}

// deleteManifest deletes repo:tag's manifest (by its digest).
func deleteManifest(ctx context.Context, addr, repo, tag string) error {
	p := newChunkedPusher(addr, 0)
	status, h, _, err := p.do(ctx, http.MethodHead, "/v2/"+repo+"/manifests/"+tag, nil,
		map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"})
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("HEAD %s:%s: %d %v", repo, tag, status, err)
	}
	status, _, body, err := p.do(ctx, http.MethodDelete, "/v2/"+repo+"/manifests/"+h.Get("Docker-Content-Digest"), nil, nil)
	if err != nil || status != http.StatusAccepted {
		return fmt.Errorf("DELETE %s:%s: %d %s %v", repo, tag, status, body, err)
	}
	return nil
}

// gc runs `registryd gc --grace grace --json` against replica i
// (through its admin socket) and returns the report.
func (s *replicaSet) gc(tb testing.TB, i int, grace time.Duration) (engine.GCReport, error) {
	tb.Helper()
	cmd := exec.Command(s.Bin, "gc", "--data", s.Replicas[i].Data, "--grace", grace.String(), "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var r engine.GCReport
	if err != nil {
		return r, fmt.Errorf("%v: %s", err, stderr.Bytes())
	}
	return r, json.Unmarshal(out, &r)
}

// skipIfShort skips a fault test of several replicas (20-60 s of
// traffic) under -short; make test never runs with -short.
func skipIfShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("a fault test of several replicas: long (make test runs it)")
	}
}
