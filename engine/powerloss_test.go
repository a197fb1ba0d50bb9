package engine

// Power loss: the index (pebble), the blob files and the audit log on
// internal/crashfs, an in-memory file system that can lose power. While
// pushers push images, the test cuts the power several times: each cut
// is a copy of the file system holding only what was synced (and, in
// some cuts, a random part of what was not, as a disk may have written
// some dirty pages before the cut). A store opened again on each copy
// must hold every image whose push was acknowledged before the cut, bit
// for bit, and the audit record of its change; fsck must find nothing
// damaged; and the store must take pushes again. See docs/crash-safety.md.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/crashfs"
	"github.com/berthstore/berth/internal/vfsutil"
)

// pushForCrash pushes an image of layers to repo:tag (the first layer
// in chunks with a checkpoint after each, as a chunked OCI upload does;
// the others in one request), then records the change in the audit log
// as the server does: durable, before the push is acknowledged.
func pushForCrash(ctx context.Context, e *Engine, repo, tag string, layers [][]byte) (diskFullImage, error) {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":%q}`, tag))
	cd, err := e.PutBlob(ctx, repo, bytes.NewReader(cfg), digest.FromBytes(cfg))
	if err != nil {
		return diskFullImage{}, err
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd.Digest, Size: cd.Size}}
	m.SchemaVersion = 2
	for i, l := range layers {
		var ld Descriptor
		if i == 0 {
			ld, err = pushChunked(ctx, e, repo, l)
		} else {
			ld, err = e.PutBlob(ctx, repo, bytes.NewReader(l), "")
		}
		if err != nil {
			return diskFullImage{}, err
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: ld.Digest, Size: ld.Size})
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return diskFullImage{}, err
	}
	res, err := e.PutManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, payload)
	if err != nil {
		return diskFullImage{}, err
	}
	rec := auditSample(e, "pusher", AuditAllow)
	rec.Repository, rec.Resource = repo, e.RepositoryARN(repo)
	rec.Parameters = map[string]string{"imageTag": tag, "imageDigest": string(res.Digest)}
	if err := e.RecordAudit(ctx, rec, true); err != nil {
		return diskFullImage{}, err
	}
	return diskFullImage{repo: repo, tag: tag, digest: res.Digest, payload: payload, layers: layers}, nil
}

// powerCut is a copy of the file system as a power cut left it, and the
// pushes acknowledged before it.
type powerCut struct {
	name  string
	fs    *crashfs.MemFS
	acked []diskFullImage
}

func TestPowerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes for several seconds")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	mem := crashfs.New()
	// The store's directory exists, durably, before the store is made
	// (as a data directory on a disk does): its ancestors' entries synced.
	require.NoError(t, mem.MkdirAll(dir, 0o700))
	for d := dir; ; d = filepath.Dir(d) {
		f, err := mem.OpenDir(filepath.Dir(d))
		require.NoError(t, err)
		require.NoError(t, f.Sync())
		require.NoError(t, f.Close())
		if filepath.Dir(d) == d {
			break
		}
	}
	opts := func(fs vfs.FS) *Options {
		o := quietOptions()
		o.CreateOnPush, o.FrameSize, o.FS = true, 64<<10, fs
		return o
	}
	e, err := Open(dir, opts(mem))
	require.NoError(t, err)

	var (
		mu    sync.Mutex
		acked []diskFullImage
		errs  []error
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for p := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				repo := fmt.Sprintf("team/app%d", p)
				layers := [][]byte{rnd(64<<10 + rand.IntN(400<<10)), rnd(1 + rand.IntN(200<<10))}
				a, err := pushForCrash(ctx, e, repo, fmt.Sprintf("v%d", i), layers)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					acked = append(acked, a)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}

	// Cut the power now and then while they push: exactly what was
	// synced, or that and some of what was not.
	rng := rand.New(rand.NewPCG(1, 2))
	var cuts []powerCut
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for i := range 6 {
		// A few more pushes acknowledged since the last cut (however
		// slow the machine), then a cut at a random moment of the next.
		last := 0
		if i > 0 {
			last = len(cuts[i-1].acked)
		}
		require.Eventually(t, func() bool { return count() >= last+1+2*i }, time.Minute, 5*time.Millisecond, "pushes go on")
		time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
		mu.Lock()
		before := append([]diskFullImage(nil), acked...)
		mu.Unlock()
		cfg := vfs.CrashCloneCfg{}
		if i%2 == 1 {
			cfg = vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(uint64(i), 7))}
		}
		cuts = append(cuts, powerCut{name: fmt.Sprintf("cut %d (unsynced kept: %d%%)", i, cfg.UnsyncedDataPercent),
			fs: mem.CrashClone(cfg), acked: before})
	}
	close(stop)
	wg.Wait()
	require.Empty(t, errs, "pushes before the cuts")
	require.NoError(t, e.Close())

	for _, c := range cuts {
		t.Run(c.name, func(t *testing.T) {
			e, err := Open(dir, opts(c.fs))
			require.NoError(t, err, "the store opens after the cut")
			defer func() { require.NoError(t, e.Close()) }()
			checkImages(t, e, c.acked)
			recorded := map[string]bool{}
			require.NoError(t, e.AuditRecords(ctx, AuditQuery{Action: "ecr:PutImage"}, func(r AuditRecord) error {
				recorded[r.Parameters["imageDigest"]] = true
				return nil
			}))
			for _, a := range c.acked {
				require.True(t, recorded[string(a.digest)], "the audit record of %s:%s", a.repo, a.tag)
			}
			rep, err := e.Fsck(ctx, FsckOptions{Verify: true})
			require.NoError(t, err)
			require.True(t, rep.Clean(), "fsck after the cut: %+v", rep.Corrupt)
			t.Logf("%d acknowledged images; fsck: %d manifests, %d blob records, %d orphans, %d uploads",
				len(c.acked), rep.Manifests, rep.BlobRecords, len(rep.Orphans), rep.Uploads)

			// The store takes pushes again, and gc keeps what it must.
			a, err := pushForCrash(ctx, e, "team/after", "v1", [][]byte{rnd(300 << 10)})
			require.NoError(t, err)
			_, err = e.CollectGarbage(ctx, GCOptions{})
			require.NoError(t, err)
			for _, l := range a.layers {
				checkBlob(t, e, a.repo, l)
			}
			r, err := e.OpenBlob(ctx, c.acked[0].repo, digest.FromBytes(c.acked[0].layers[0]))
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, r)
			require.NoError(t, err)
			require.NoError(t, r.Close())
		})
	}
}

// TestMkdirAllSyncsParents: the directories vfsutil.MkdirAll makes
// (the engine's stores make theirs with it) survive a power cut, down to the last, without a sync by the caller;
// those pebble's MkdirAll makes do not.
func TestMkdirAllSyncsParents(t *testing.T) {
	fs := crashfs.New()
	require.NoError(t, vfsutil.MkdirAll(fs, "/a/b/c", 0o700))
	require.NoError(t, fs.MkdirAll("/x/y", 0o700))
	after := fs.CrashClone(crashfs.CrashCloneCfg{})
	st, err := after.Stat("/a/b/c")
	require.NoError(t, err)
	require.True(t, st.IsDir())
	_, err = after.Stat("/x")
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, vfsutil.MkdirAll(fs, "/a/b/c", 0o700), "an existing directory")
}
