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
	"errors"
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
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":%q}`, repo+":"+tag))
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

// powerCut is a copy of the file system as a power cut left it, the
// pushes acknowledged before it, and the chunked upload under way then.
type powerCut struct {
	name    string
	fs      *crashfs.MemFS
	acked   []diskFullImage
	session *sessionAck
}

// flipStorageClasses moves the images of crash/arch between the tiers,
// as runArchiveChild does, until stop.
func flipStorageClasses(ctx context.Context, e *Engine, stop <-chan struct{}) error {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		tag := fmt.Sprint("v", rand.IntN(archiveImages))
		im, err := e.Image(ctx, "crash/arch", tag)
		if err != nil {
			return err
		}
		to := StorageArchive
		if im.Status != ImageActive {
			to = StorageStandard
		}
		if _, err := e.UpdateImageStorageClass(ctx, "crash/arch", tag, to); err != nil && !errors.Is(err, ErrStorageClassUpdate) {
			return err
		}
		if i%3 == 0 {
			if err := e.WaitTierJobs(ctx); err != nil {
				return err
			}
		}
	}
}

// sessionAck is a chunked upload's last acknowledged checkpoint: acked
// bytes of data are durable, and the session continues from there.
type sessionAck struct {
	repo, id string
	data     []byte
	acked    int64
}

// pushSessions pushes blobs in chunked sessions, a checkpoint after each
// 256 KiB chunk, as a client's PATCHes are, reporting each acknowledged
// checkpoint (nil once the blob is committed), until stop.
func pushSessions(ctx context.Context, e *Engine, stop <-chan struct{}, report func(*sessionAck)) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		data := rnd(1<<20 + rand.IntN(2<<20))
		u, err := e.BeginUpload(ctx, "team/chunks")
		if err != nil {
			return err
		}
		for off := 0; off < len(data); off += 256 << 10 {
			end := min(off+256<<10, len(data))
			if _, err := u.Write(data[off:end]); err != nil {
				return err
			}
			if err := u.Checkpoint(ctx); err != nil {
				return err
			}
			report(&sessionAck{repo: "team/chunks", id: u.ID(), data: data, acked: int64(end)})
		}
		if _, err := u.Commit(ctx, digest.FromBytes(data), int64(len(data))); err != nil {
			return err
		}
		report(nil)
	}
}

func TestPowerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes for several seconds")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	mem := crashfs.New()
	// The store's directory exists, durably, before the store is made
	// (as a data directory on a disk does).
	require.NoError(t, vfsutil.MkdirAll(mem, dir, 0o700))
	opts := func(fs vfs.FS) *Options {
		o := quietOptions()
		o.CreateOnPush, o.FrameSize, o.FS = true, 64<<10, fs
		return o
	}
	e, err := Open(dir, opts(mem))
	require.NoError(t, err)
	archived := map[string][]byte{}
	for i := range archiveImages {
		_, p := pushImage(t, e, "crash/arch", fmt.Sprint("v", i), archiveLayer(i))
		archived[fmt.Sprint("v", i)] = p
	}

	var (
		mu      sync.Mutex
		acked   []diskFullImage
		session *sessionAck
		errs    []error
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := flipStorageClasses(ctx, e, stop); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		err := pushSessions(ctx, e, stop, func(s *sessionAck) {
			mu.Lock()
			session = s
			mu.Unlock()
		})
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}()
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
		open := session
		mu.Unlock()
		cfg := vfs.CrashCloneCfg{}
		if i%2 == 1 {
			cfg = vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(uint64(i), 7))}
		}
		cuts = append(cuts, powerCut{name: fmt.Sprintf("cut %d (unsynced kept: %d%%)", i, cfg.UnsyncedDataPercent),
			fs: mem.CrashClone(cfg), acked: before, session: open})
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
			if s := c.session; s != nil {
				// The session goes on from a checkpoint at or after the
				// one acknowledged (a later one may have been synced
				// before its answer), or, if the cut came after its
				// commit was synced, its blob is there.
				u, err := e.ResumeUpload(ctx, s.repo, s.id)
				if errors.Is(err, ErrBlobUploadUnknown) {
					t.Logf("session %s: committed before the cut", s.id)
					checkBlob(t, e, s.repo, s.data)
				} else {
					t.Logf("session %s: acknowledged %d bytes, goes on from %d", s.id, s.acked, u.Size())
					require.NoError(t, err, "the session of a checkpoint acknowledged before the cut")
					require.GreaterOrEqual(t, u.Size(), s.acked, "acknowledged bytes of the session")
					require.LessOrEqual(t, u.Size(), int64(len(s.data)))
					_, err = u.Write(s.data[u.Size():])
					require.NoError(t, err)
					_, err = u.Commit(ctx, digest.FromBytes(s.data), int64(len(s.data)))
					require.NoError(t, err, "the session continued after the cut commits")
					checkBlob(t, e, s.repo, s.data)
				}
			}
			// Every image moved between the tiers is whole in one of them
			// once the tier jobs left pending finish (the checks of the
			// archive's SIGKILL test).
			pending := checkArchiveStore(t, e, archived)
			t.Logf("%d tier jobs pending after the cut", pending)
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
