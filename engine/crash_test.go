//go:build unix

package engine

// Crash safety: a child process (this test binary run again with
// BERTH_CRASH_CHILD set, which TestMain dispatches) pushes blobs, chunked
// uploads and tagged manifests into a store and records each acknowledged
// operation in an "acks" file; the parent SIGKILLs it at a random moment, reopens the store
// and checks that every acknowledged commit reads back verified and that no
// index entry names a missing or partial blob. See docs/crash-safety.md.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/index"
)

const (
	// crashChildEnv names the store directory of a child process.
	crashChildEnv = "BERTH_CRASH_CHILD"
	// crashSeedEnv is the child's random seed.
	crashSeedEnv = "BERTH_CRASH_SEED"
	// crashKillsEnv overrides the number of kills (default 100).
	crashKillsEnv = "BERTH_CRASH_KILLS"
	// crashFrame is the frame size of the crash stores: blobs of 0..3
	// frames cover the empty, partial, exact and multi-frame cases.
	crashFrame = 64 << 10
)

var crashRepos = []string{"crash/a", "crash/b", "crash/c"}

// crashOptions are the options of both the child and the parent.
func crashOptions() *Options {
	return &Options{CreateOnPush: true, FrameSize: crashFrame,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// crashData returns the n bytes of blob seed: random, or (one seed in
// three) compressible text, so that both raw and zstd frames occur.
func crashData(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	src := rand.NewChaCha8(key)
	b := make([]byte, n)
	if seed%3 == 0 {
		r := rand.New(src)
		words := []string{"layer ", "berth ", "frame ", "seal ", "digest\n"}
		for i := 0; i < n; {
			i += copy(b[i:], words[r.IntN(len(words))])
		}
		return b
	}
	_, _ = src.Read(b)
	return b
}

// crashSize draws a blob size of 0..3 frames, weighted to small blobs so
// that re-verifying everything after each kill stays cheap.
func crashSize(r *rand.Rand) int {
	switch k := r.IntN(10); {
	case k == 0:
		return 0
	case k < 5:
		return 1 + r.IntN(4096)
	case k < 8:
		return crashFrame - 1 + r.IntN(3) // around one frame boundary
	default:
		return 1 + r.IntN(3*crashFrame)
	}
}

// crashShared are the seeds of blobs that every child pushes into
// several repositories (dedupe across repositories and across runs).
var crashShared = []uint64{1 << 40, 1<<40 + 1, 1<<40 + 2, 1<<40 + 3, 1<<40 + 4}

// ackLog appends one line per acknowledged operation, fsynced.
type ackLog struct{ f *os.File }

func (a *ackLog) add(format string, args ...any) error {
	if _, err := fmt.Fprintf(a.f, format+"\n", args...); err != nil {
		return err
	}
	return a.f.Sync()
}

func init() { testChildren[crashChildEnv] = runCrashChild }

// runCrashChild is the child process of TestCrash (started by
// startCrashChild; TestMain runs it): it pushes into the store under dir
// until it is killed.
func runCrashChild(dir string) int {
	seed, err := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	if err != nil {
		return childFailed(fmt.Errorf("%s: %w", crashSeedEnv, err))
	}
	if err := crashChild(dir, seed); err != nil {
		return childFailed(err)
	}
	return 0
}

// crashChild opens the store in dir, says "ready" and pushes until it is
// killed (or, as a guard against orphans, for 20 seconds).
func crashChild(dir string, seed uint64) error {
	ctx := context.Background()
	e, err := Open(filepath.Join(dir, "store"), crashOptions())
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, "acks"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	acks := &ackLog{f: f}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	nextSeed := seed << 20 // distinct per child; the parent uses seeds < 1<<20
	pushed := map[string][]Descriptor{}
	fmt.Println("ready")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		repo := crashRepos[r.IntN(len(crashRepos))]
		switch k := r.IntN(100); {
		case k < 60: // a new blob, or a shared one
			s := crashShared[r.IntN(len(crashShared))]
			if k < 45 {
				nextSeed++
				s = nextSeed
			}
			data := crashData(s, crashSize(r))
			d, err := e.PutBlob(ctx, repo, bytes.NewReader(data), digest.FromBytes(data))
			if err != nil {
				return fmt.Errorf("put blob: %w", err)
			}
			pushed[repo] = append(pushed[repo], d)
			if err := acks.add("blob %s %s", repo, d.Digest); err != nil {
				return err
			}
		case k < 68: // mount a blob of another repository
			from := crashRepos[r.IntN(len(crashRepos))]
			if from == repo || len(pushed[from]) == 0 {
				continue
			}
			src := pushed[from][r.IntN(len(pushed[from]))]
			d, err := e.MountBlob(ctx, repo, from, src.Digest)
			if err != nil {
				return fmt.Errorf("mount blob: %w", err)
			}
			pushed[repo] = append(pushed[repo], d)
			if err := acks.add("blob %s %s", repo, d.Digest); err != nil {
				return err
			}
		case k < 85: // a chunked upload with checkpoints
			nextSeed++
			d, err := crashChunked(ctx, e, r, acks, repo, nextSeed)
			if err != nil {
				return fmt.Errorf("chunked upload: %w", err)
			}
			pushed[repo] = append(pushed[repo], d)
		default: // a config blob and a manifest with tags
			nextSeed++
			if err := crashManifest(ctx, e, r, acks, repo, nextSeed, pushed[repo]); err != nil {
				return fmt.Errorf("manifest: %w", err)
			}
		}
	}
	return e.Close()
}

// crashChunked pushes blob seed in chunks, checkpointing after each one
// (ack "upload <repo> <id> <seed> <total> <size>") and sometimes parking
// the session and resuming it, then commits it (ack "blob" and "done").
func crashChunked(ctx context.Context, e *Engine, r *rand.Rand, acks *ackLog, repo string, seed uint64) (Descriptor, error) {
	total := crashFrame/2 + r.IntN(5*crashFrame/2)
	data := crashData(seed, total)
	u, err := e.BeginUpload(ctx, repo)
	if err != nil {
		return Descriptor{}, err
	}
	id := u.ID()
	for off := 0; off < total; {
		n := min(total-off, 1+r.IntN(3*crashFrame/4))
		if _, err := u.Write(data[off : off+n]); err != nil {
			return Descriptor{}, err
		}
		off += n
		if err := u.Checkpoint(ctx); err != nil {
			return Descriptor{}, err
		}
		if err := acks.add("upload %s %s %d %d %d", repo, id, seed, total, off); err != nil {
			return Descriptor{}, err
		}
		if r.IntN(3) == 0 {
			if err := u.Close(); err != nil {
				return Descriptor{}, err
			}
			if u, err = e.ResumeUpload(ctx, repo, id); err != nil {
				return Descriptor{}, err
			}
		}
	}
	if err := acks.add("commit %s", id); err != nil { // intent
		return Descriptor{}, err
	}
	d, err := u.Commit(ctx, digest.FromBytes(data), int64(total))
	if err != nil {
		return Descriptor{}, err
	}
	if err := acks.add("blob %s %s", repo, d.Digest); err != nil {
		return Descriptor{}, err
	}
	return d, acks.add("done %s", id)
}

// crashManifest pushes a config blob and an image manifest over up to two
// of the repository's blobs, tagged with one to three tags. An intent line
// ("try") precedes PutManifest, so that the parent knows which digest a
// tag may point to when the kill fell between the commit and its ack.
func crashManifest(ctx context.Context, e *Engine, r *rand.Rand, acks *ackLog, repo string, seed uint64, layers []Descriptor) error {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"seed":%d}`, seed))
	cd, err := e.PutBlob(ctx, repo, bytes.NewReader(cfg), digest.FromBytes(cfg))
	if err != nil {
		return err
	}
	if err := acks.add("blob %s %s", repo, cd.Digest); err != nil {
		return err
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd.Digest, Size: cd.Size}}
	m.SchemaVersion = 2
	m.Layers = []ocispec.Descriptor{} // "layers" must be present, even empty
	for range min(len(layers), r.IntN(3)) {
		l := layers[r.IntN(len(layers))]
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: l.Digest, Size: l.Size})
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return err
	}
	d := digest.FromBytes(payload)
	tags := []string{"latest", "v1", "v2", "v3", "v4"}
	r.Shuffle(len(tags), func(i, j int) { tags[i], tags[j] = tags[j], tags[i] })
	tags = tags[:1+r.IntN(3)]
	line := fmt.Sprintf("%s %s %s", repo, d, strings.Join(tags, " "))
	if err := acks.add("try %s", line); err != nil {
		return err
	}
	if _, err := e.PutManifest(ctx, repo, tags[0], ocispec.MediaTypeImageManifest, payload, tags[1:]...); err != nil {
		return err
	}
	return acks.add("tag %s", line)
}

// crashUpload is an acknowledged checkpoint of a chunked upload.
type crashUpload struct {
	repo        string
	seed        uint64
	total, size int
	committing  bool // Commit was called
}

// crashAcks is what the acks file says must hold.
type crashAcks struct {
	blobs   map[[2]string]bool     // (repo, digest) acknowledged
	tags    map[[2]string][]string // (repo, tag) -> acceptable digests ("": absent)
	uploads map[string]crashUpload // id -> last acknowledged checkpoint, not yet done
	// pending are the (repo, tag) pairs of an unanswered last intent: the
	// parent records where they resolved, since its own lines follow.
	pending [][2]string
}

// readAcks truncates a torn last line (the kill fell inside the ack's
// write) and parses the file.
func readAcks(t *testing.T, path string) crashAcks {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b = nil
	} else {
		require.NoError(t, err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i+1 != len(b) {
		b = b[:i+1]
		require.NoError(t, os.Truncate(path, int64(len(b))))
	}
	a := crashAcks{blobs: map[[2]string]bool{}, tags: map[[2]string][]string{}, uploads: map[string]crashUpload{}}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "blob":
			a.blobs[[2]string{f[1], f[2]}] = true
		case "tag":
			for _, tag := range f[3:] {
				a.tags[[2]string{f[1], tag}] = []string{f[2]}
			}
		case "try":
			// Only an unanswered last intent may have landed unacknowledged.
			if i == len(lines)-1 {
				for _, tag := range f[3:] {
					k := [2]string{f[1], tag}
					if len(a.tags[k]) == 0 {
						a.tags[k] = []string{""} // the tag may still be absent
					}
					a.tags[k] = append(a.tags[k], f[2])
					a.pending = append(a.pending, k)
				}
			}
		case "upload":
			seed, _ := strconv.ParseUint(f[3], 10, 64)
			total, _ := strconv.Atoi(f[4])
			size, _ := strconv.Atoi(f[5])
			a.uploads[f[2]] = crashUpload{repo: f[1], seed: seed, total: total, size: size}
		case "commit":
			if cu, ok := a.uploads[f[1]]; ok {
				cu.committing = true
				a.uploads[f[1]] = cu
			}
		case "done":
			delete(a.uploads, f[1])
		default:
			t.Fatalf("acks line %d: %q", i+1, l)
		}
	}
	return a
}

// readAllDigest reads r to its end and returns the digest of its bytes.
func readAllDigest(r io.Reader, alg digest.Algorithm) (digest.Digest, int64, error) {
	dg := alg.Digester()
	n, err := io.Copy(dg.Hash(), r)
	return dg.Digest(), n, err
}

// crashStats counts what the parent verified.
type crashStats struct {
	acks, blobs, tags, uploadsResumed, uploadsUnknown, uploadsCommitted int
}

// verifyCrashStore opens the store after a kill and checks it; it
// finishes (commits or cancels) every upload session it finds, appending
// acks for the blobs it commits, and closes the store.
func verifyCrashStore(t *testing.T, dir string, st *crashStats) {
	t.Helper()
	ctx := context.Background()
	ackPath := filepath.Join(dir, "acks")
	a := readAcks(t, ackPath)
	e, err := Open(filepath.Join(dir, "store"), crashOptions())
	require.NoError(t, err, "reopen after kill")
	defer func() { require.NoError(t, e.Close()) }()
	parentAcks, err := os.OpenFile(ackPath, os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	defer parentAcks.Close()
	acks := &ackLog{f: parentAcks}

	// 1. Sessions: each record resumes or is cleanly unknown; acknowledged
	// checkpoints resume at or after their size and complete correctly.
	var recs []*index.Upload
	require.NoError(t, e.db.ListUploads(func(u *index.Upload) error { recs = append(recs, u); return nil }))
	for _, rec := range recs {
		u, err := e.ResumeUpload(ctx, rec.Repo, rec.ID)
		if errors.Is(err, ErrBlobUploadUnknown) {
			// Only a session killed inside Commit may lose its checkpoints.
			cu, acked := a.uploads[rec.ID]
			require.True(t, !acked || cu.committing, "acknowledged upload %s became unknown: %v", rec.ID, err)
			if acked {
				require.NoError(t, acks.add("done %s", rec.ID))
				delete(a.uploads, rec.ID)
			}
			st.uploadsUnknown++
			continue
		}
		require.NoError(t, err, "resume upload %s", rec.ID)
		st.uploadsResumed++
		cu, acked := a.uploads[rec.ID]
		if !acked {
			require.NoError(t, u.Cancel(ctx), "cancel unacknowledged upload %s", rec.ID)
			continue
		}
		require.GreaterOrEqual(t, u.Size(), int64(cu.size), "upload %s lost acknowledged bytes", rec.ID)
		require.LessOrEqual(t, u.Size(), int64(cu.total))
		data := crashData(cu.seed, cu.total)
		_, err = u.Write(data[u.Size():])
		require.NoError(t, err)
		d, err := u.Commit(ctx, digest.FromBytes(data), int64(cu.total))
		require.NoError(t, err, "commit resumed upload %s", rec.ID)
		require.NoError(t, acks.add("blob %s %s", cu.repo, d.Digest))
		require.NoError(t, acks.add("done %s", rec.ID))
		a.blobs[[2]string{cu.repo, string(d.Digest)}] = true
		delete(a.uploads, rec.ID)
		st.uploadsCommitted++
	}
	// An acknowledged session without a record was committed just before
	// the kill: its blob must be there.
	for id, cu := range a.uploads {
		d := digest.FromBytes(crashData(cu.seed, cu.total))
		_, err := e.StatBlob(ctx, cu.repo, d)
		require.NoError(t, err, "upload %s (checkpointed at %d) vanished without its blob", id, cu.size)
		require.NoError(t, acks.add("blob %s %s", cu.repo, d))
		require.NoError(t, acks.add("done %s", id))
		a.blobs[[2]string{cu.repo, string(d)}] = true
	}

	// 2. Every acknowledged blob reads back whole with its digest.
	verified := map[digest.Digest]bool{}
	for k := range a.blobs {
		d := digest.Digest(k[1])
		r, err := e.OpenBlob(ctx, k[0], d)
		require.NoError(t, err, "acknowledged blob %s in %s", d, k[0])
		got, n, err := readAllDigest(r, d.Algorithm())
		require.NoError(t, r.Close())
		require.NoError(t, err, "reading acknowledged blob %s", d)
		require.Equal(t, d, got)
		require.Equal(t, r.Size(), n)
		verified[d] = true
		st.acks++
	}

	// 3. Every acknowledged tag resolves to its last acknowledged digest
	// (or to the manifest of an unanswered last intent).
	for k, want := range a.tags {
		m, err := e.GetManifest(ctx, k[0], k[1])
		if errors.Is(err, ErrManifestUnknown) && want[0] == "" {
			continue // an unacknowledged first push of the tag that did not land
		}
		require.NoError(t, err, "acknowledged tag %s:%s", k[0], k[1])
		require.Contains(t, want, string(m.Digest), "tag %s:%s", k[0], k[1])
		require.Equal(t, m.Digest, digest.FromBytes(m.Payload))
		if slices.Contains(a.pending, k) {
			require.NoError(t, acks.add("tag %s %s %s", k[0], m.Digest, k[1]))
		}
		st.acks++
	}

	// 4. No index entry names a missing or partial blob: every blob record
	// has a complete file with its digest; every link and every manifest
	// names a blob record.
	var blobRecs []*index.Blob
	require.NoError(t, e.db.WalkBlobs(func(b *index.Blob) error { blobRecs = append(blobRecs, b); return nil }))
	for _, rec := range blobRecs {
		st.blobs++
		if verified[rec.Digest] {
			continue
		}
		dk, err := e.blobDataKey(ctx, rec, crypt.DefaultKeyName)
		require.NoError(t, err, "data key of %s", rec.Digest)
		br, err := e.blobs.Open(ctx, rec.Digest, dk)
		require.NoError(t, err, "index names blob %s: its file does not open", rec.Digest)
		got, n, err := readAllDigest(br, rec.Digest.Algorithm())
		require.NoError(t, br.Close())
		require.NoError(t, err, "blob %s", rec.Digest)
		require.Equal(t, rec.Digest, got)
		require.Equal(t, rec.Size, n)
		verified[rec.Digest] = true
	}
	for _, repo := range crashRepos {
		require.NoError(t, e.db.ListLinks(repo, func(d digest.Digest) error {
			if !verified[d] {
				return fmt.Errorf("link %s@%s names no blob record", repo, d)
			}
			return nil
		}))
	}
	require.NoError(t, e.db.WalkManifests(func(m *index.Manifest) error {
		for _, d := range m.Blobs {
			if !verified[d] {
				return fmt.Errorf("manifest %s@%s names blob %s, which has no record", m.Repo, m.Digest, d)
			}
		}
		return nil
	}))
	st.tags += len(a.tags)
}

// crashChildProc is a running child process.
type crashChildProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	out    bytes.Buffer  // stdout after "ready"; read only after done
	done   chan struct{} // closed when stdout reached its end
}

// output is everything the child wrote; call it after the child ended.
func (c *crashChildProc) output() string {
	<-c.done
	return c.out.String() + c.stderr.String()
}

// startCrashChild starts the child and waits until it says "ready".
func startCrashChild(t *testing.T, dir string, seed uint64) *crashChildProc {
	t.Helper()
	return startTestChild(t, crashChildEnv+"="+dir, crashSeedEnv+"="+strconv.FormatUint(seed, 10))
}

// startTestChild starts this test binary again with env added (the
// variable of one of testChildren among it) and waits until it says
// "ready".
func startTestChild(t *testing.T, env ...string) *crashChildProc {
	t.Helper()
	c := &crashChildProc{done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0])
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stderr = &c.stderr
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	c.cmd.Stdout = pw
	err = c.cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatalf("start child: %v", err)
	}
	ready := make(chan bool, 1)
	go func() {
		defer close(c.done)
		defer pr.Close()
		br := bufio.NewReader(pr)
		for {
			l, err := br.ReadString('\n')
			if l == "ready\n" {
				ready <- true
				_, _ = io.Copy(&c.out, br) // the child never blocks on stdout
				return
			}
			c.out.WriteString(l)
			if err != nil {
				ready <- false
				return
			}
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = c.cmd.Wait()
			t.Fatalf("child ended before ready:\n%s", c.output())
		}
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
		t.Fatalf("child not ready after 30 s:\n%s", c.output())
	}
	return c
}

// TestCrash kills a pushing child process with SIGKILL at random moments
// (100 times, or $BERTH_CRASH_KILLS) and checks the store after each kill.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	kills := 100
	if s := os.Getenv(crashKillsEnv); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, crashKillsEnv)
		kills = n
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	start := time.Now()
	var st crashStats
	for i := range kills {
		c := startCrashChild(t, dir, seed+uint64(i)*7919)
		// The kill must land at a random point of the child's real work
		// (another process, on the system's clock): a clock cannot serve.
		time.Sleep(time.Duration(5+r.IntN(76)) * time.Millisecond)
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
		err := c.cmd.Wait()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "child %d:\n%s", i, c.output())
		ws, ok := ee.Sys().(syscall.WaitStatus)
		require.True(t, ok)
		require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL,
			"child %d ended by itself (%v) instead of being killed:\n%s", i, err, c.output())
		verifyCrashStore(t, dir, &st)
	}
	t.Logf("crash: %d kills in %v; %d acknowledged blob/tag checks, %d blob records verified (%d tags), "+
		"uploads: %d resumed (%d completed), %d unknown",
		kills, time.Since(start).Round(time.Millisecond), st.acks, st.blobs, st.tags,
		st.uploadsResumed, st.uploadsCommitted, st.uploadsUnknown)
}
