package engine

// Fsck, driven by the files of testdata/fsck: each builds a store, breaks
// it in one way, checks it with and without verification, and collects
// garbage (the only repair there is: it removes orphans and leaves
// corruption for a person to judge) before checking again.
//
// Commands (arguments key=value):
//
//	store [plain]
//	    a fresh, empty store (the file starts with one): encrypted and
//	    compressed, or with plain neither (blob files hold the bytes as
//	    pushed, framed)
//	push repo=R (tag=T | name=N) [layers=N] [size=BYTES]
//	    an image of a config and N layers (default 1) of deterministic
//	    random bytes, tagged T (named R:T) or pushed by digest (R@N); its
//	    blobs are named R:T/config, R:T/layer0, ...
//	index repo=R (tag=T | name=N) children=N1,N2
//	    an image index over the images R@N1, R@N2
//	referrer repo=R name=N subject=REF
//	    an artifact manifest (named R@N) whose subject is REF
//	blob repo=R name=N [size=BYTES]
//	    a blob pushed alone (linked to R, no manifest names it)
//	mount repo=R from=R2 blob=B
//	    blob B mounted from R2 into R (a second link)
//	upload repo=R name=N [size=BYTES]
//	    an upload session that received bytes and was left idle
//	archive ref=R:T | restore ref=R:T
//	    UpdateImageStorageClass to ARCHIVE or STANDARD, then wait for the
//	    tier jobs (blob files are where their records say: the archive
//	    tier or the hot one)
//	break HOW ...
//	    flip-byte blob=B        change one byte of B's file (its last frame)
//	    truncate-file blob=B    cut B's file short
//	    remove-file blob=B      delete B's file
//	    replace-file blob=B from=B2  put a copy of B2's file in B's place
//	    add-file name=N from=B  a copy of B's file under the digest of N,
//	                            which no record names
//	    drop-record KIND=REF [repo=R]
//	                            delete one index key (docs/keys.md), KIND
//	                            one of repository, manifest, blob, upload,
//	                            link and reverse-link (of blob REF to
//	                            repository R, by default REF's own)
//	    garble-record tag=R:T   overwrite a tag record with bytes that do
//	                            not decode
//	    copy-file blob=B tier=T put a copy of B's file in tier T (hot or
//	                            archive), where its record does not name it
//	    activate ref=R:T        mark an archived manifest active in its
//	                            record, its blobs left in the archive
//	fsck
//	    check without and with verification and print both reports
//	gc
//	    collect garbage with no grace period and print what went
//
// Digests print as the names the commands gave them. TestFsckKindsCovered
// checks that the expected outputs show every finding kind the engine
// declares.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/index"
)

// fsckStore is the store of one data-driven file and the names of what
// it holds.
type fsckStore struct {
	t       *testing.T
	dir     string
	plain   bool
	e       *Engine
	names   map[digest.Digest]string
	digests map[string]digest.Digest // name -> digest
	sizes   map[string]int64         // manifest name -> payload size
	uploads map[string]string        // upload name -> id
	idNames map[string]string        // upload id -> name
}

func newFsckStore(t *testing.T) *fsckStore {
	s := &fsckStore{t: t, dir: t.TempDir(), names: map[digest.Digest]string{}, digests: map[string]digest.Digest{},
		sizes: map[string]int64{}, uploads: map[string]string{}, idNames: map[string]string{}}
	s.open()
	t.Cleanup(func() {
		if s.e != nil {
			s.e.Close()
		}
	})
	return s
}

func (s *fsckStore) open() {
	o := quietOptions()
	o.DisableEncryption, o.DisableCompression = s.plain, s.plain
	e, err := Open(s.dir, o)
	require.NoError(s.t, err)
	s.e = e
}

func (s *fsckStore) name(d digest.Digest, name string) {
	if _, ok := s.names[d]; !ok {
		s.names[d] = name
	}
	s.digests[name] = d
}

// digestOf is the digest a name stands for.
func (s *fsckStore) digestOf(d *datadriven.TestData, name string) digest.Digest {
	dg, ok := s.digests[name]
	if !ok {
		d.Fatalf(s.t, "no blob or manifest named %q", name)
	}
	return dg
}

// show renders a digest or upload id by its name.
func (s *fsckStore) show(v string) string {
	if n, ok := s.names[digest.Digest(v)]; ok {
		return n
	}
	if n, ok := s.idNames[v]; ok {
		return n
	}
	return v
}

// fsckContent is n deterministic random bytes named name.
func fsckContent(name string, n int) []byte {
	var seed [32]byte
	copy(seed[:], digest.FromString(name).Encoded())
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

func (s *fsckStore) putBlob(repo, name string, data []byte) ocispec.Descriptor {
	ds, err := s.e.PutBlob(context.Background(), repo, bytes.NewReader(data), digest.FromBytes(data))
	require.NoError(s.t, err)
	s.name(ds.Digest, name)
	return ocispec.Descriptor{Digest: ds.Digest, Size: ds.Size}
}

// putManifest stores payload in repo under tag (or by digest when tag is
// empty) and names it.
func (s *fsckStore) putManifest(repo, tag, name, mediaType string, payload []byte) {
	ref := tag
	if ref == "" {
		ref = digest.FromBytes(payload).String()
	}
	res, err := s.e.PutManifest(context.Background(), repo, ref, mediaType, payload)
	require.NoError(s.t, err)
	s.name(res.Digest, name)
	s.sizes[name] = int64(len(payload))
}

// ref reads the repo=, tag= or name= arguments: the repository, the tag
// ("" for none) and the name of what is pushed.
func ref(t *testing.T, d *datadriven.TestData) (repo, tag, name string) {
	d.ScanArgs(t, "repo", &repo)
	if d.HasArg("tag") {
		d.ScanArgs(t, "tag", &tag)
		return repo, tag, repo + ":" + tag
	}
	d.ScanArgs(t, "name", &name)
	return repo, "", repo + "@" + name
}

func intArg(t *testing.T, d *datadriven.TestData, key string, def int) int {
	if !d.HasArg(key) {
		return def
	}
	var v int
	d.ScanArgs(t, key, &v)
	return v
}

func (s *fsckStore) push(d *datadriven.TestData) string {
	repo, tag, name := ref(s.t, d)
	layers, size := intArg(s.t, d, "layers", 1), intArg(s.t, d, "size", 5000)
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"image":%q}`, name))
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	m.SchemaVersion = 2
	m.Config = s.putBlob(repo, name+"/config", cfg)
	m.Config.MediaType = ocispec.MediaTypeImageConfig
	out := []string{name + "/config"}
	for i := range layers {
		ln := fmt.Sprintf("%s/layer%d", name, i)
		l := s.putBlob(repo, ln, fsckContent(ln, size))
		l.MediaType = ocispec.MediaTypeImageLayer
		m.Layers = append(m.Layers, l)
		out = append(out, ln)
	}
	payload, err := json.Marshal(m)
	require.NoError(s.t, err)
	s.putManifest(repo, tag, name, ocispec.MediaTypeImageManifest, payload)
	return fmt.Sprintf("%s: %s\n", name, strings.Join(out, ", "))
}

func (s *fsckStore) index(d *datadriven.TestData) string {
	repo, tag, name := ref(s.t, d)
	var children []string
	d.ScanArgs(s.t, "children", &children)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	archs := []string{"amd64", "arm64", "s390x"}
	for i, c := range children {
		cn := repo + "@" + c
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest,
			Digest: s.digestOf(d, cn), Size: s.sizes[cn], Platform: &ocispec.Platform{OS: "linux", Architecture: archs[i%len(archs)]}})
	}
	payload, err := json.Marshal(idx)
	require.NoError(s.t, err)
	s.putManifest(repo, tag, name, ocispec.MediaTypeImageIndex, payload)
	return fmt.Sprintf("%s: index of %d\n", name, len(children))
}

func (s *fsckStore) referrer(d *datadriven.TestData) string {
	repo, tag, name := ref(s.t, d)
	var subject string
	d.ScanArgs(s.t, "subject", &subject)
	body := s.putBlob(repo, name+"/signature", []byte("signature of "+subject))
	body.MediaType = "application/octet-stream"
	empty := s.putBlob(repo, name+"/empty", []byte("{}"))
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.test.sig",
		Config: ocispec.Descriptor{MediaType: ocispec.DescriptorEmptyJSON.MediaType, Digest: empty.Digest, Size: empty.Size},
		Layers: []ocispec.Descriptor{body},
		Subject: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: s.digestOf(d, subject),
			Size: s.sizes[subject]}}
	m.SchemaVersion = 2
	payload, err := json.Marshal(m)
	require.NoError(s.t, err)
	s.putManifest(repo, tag, name, ocispec.MediaTypeImageManifest, payload)
	return fmt.Sprintf("%s: refers to %s\n", name, subject)
}

// scan scans image=REPO:TAG (its layers are not tar archives: the scan
// ends UNSUPPORTED_IMAGE, with a record like any other).
func (s *fsckStore) scan(d *datadriven.TestData) string {
	var image string
	d.ScanArgs(s.t, "image", &image)
	repo, tag, _ := strings.Cut(image, ":")
	_, err := s.e.StartImageScan(context.Background(), repo, tag)
	require.NoError(s.t, err)
	waitScans(s.t, s.e)
	sc, err := s.e.ImageScan(context.Background(), repo, tag, false)
	require.NoError(s.t, err)
	return fmt.Sprintf("%s: %s\n", image, sc.Status)
}

func (s *fsckStore) blob(d *datadriven.TestData) string {
	repo, _, name := ref(s.t, d)
	s.putBlob(repo, name, fsckContent(name, intArg(s.t, d, "size", 3000)))
	return name + "\n"
}

func (s *fsckStore) mount(d *datadriven.TestData) string {
	var repo, from, name string
	d.ScanArgs(s.t, "repo", &repo)
	d.ScanArgs(s.t, "from", &from)
	d.ScanArgs(s.t, "blob", &name)
	_, err := s.e.MountBlob(context.Background(), repo, from, s.digestOf(d, name))
	require.NoError(s.t, err)
	return "ok\n"
}

func (s *fsckStore) upload(d *datadriven.TestData) string {
	repo, _, name := ref(s.t, d)
	ctx := context.Background()
	up, err := s.e.BeginUpload(ctx, repo)
	require.NoError(s.t, err)
	_, err = up.Write(fsckContent(name, intArg(s.t, d, "size", 3000)))
	require.NoError(s.t, err)
	require.NoError(s.t, up.Checkpoint(ctx))
	s.uploads[name] = up.ID()
	s.idNames[up.ID()] = name
	require.NoError(s.t, up.Close())
	return fmt.Sprintf("%s: %d bytes\n", name, up.Size())
}

// blobPath is the file of the blob named name, in the tier its record
// names (the hot tier when it has none).
func (s *fsckStore) blobPath(d *datadriven.TestData, name string) string {
	dg := s.digestOf(d, name)
	st := s.e.blobs
	if rec, err := s.e.db.Blob(dg); err == nil && rec.Tier == index.TierArchive {
		st = archiveFiles(s.t, s.e)
	}
	p, err := st.Path(dg)
	require.NoError(s.t, err)
	return p
}

// storageClass runs UpdateImageStorageClass on ref R:T and waits for the
// tier jobs.
func (s *fsckStore) storageClass(d *datadriven.TestData, to StorageClass) string {
	var r string
	d.ScanArgs(s.t, "ref", &r)
	repo, tag := s.splitRef(d, r)
	ctx := context.Background()
	u, err := s.e.UpdateImageStorageClass(ctx, repo, tag, to)
	require.NoError(s.t, err)
	require.NoError(s.t, s.e.WaitTierJobs(ctx))
	im, err := s.e.Image(ctx, repo, tag)
	require.NoError(s.t, err)
	return fmt.Sprintf("%s: %s, then %s\n", r, u.Status, im.Status)
}

// indexKey is a key of the index as docs/keys.md lays it out: a prefix
// byte, then each part after a 0x00.
func indexKey(prefix byte, parts ...string) []byte {
	k := []byte{prefix}
	for _, p := range parts {
		k = append(append(k, 0), p...)
	}
	return k
}

// rawIndex closes the engine, lets edit change the index's pebble store
// directly, and reopens the engine.
func (s *fsckStore) rawIndex(edit func(db *pebble.DB)) {
	require.NoError(s.t, s.e.Close())
	s.e = nil
	db, err := pebble.Open(filepath.Join(s.dir, "index"), &pebble.Options{Logger: quietPebble{}})
	require.NoError(s.t, err)
	edit(db)
	require.NoError(s.t, db.Close())
	s.open()
}

// quietPebble keeps pebble's informational lines out of the test output.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)           {}
func (quietPebble) Errorf(string, ...any)          {}
func (quietPebble) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// splitRef reads R:T or R@N into the repository and the tag or digest.
func (s *fsckStore) splitRef(d *datadriven.TestData, r string) (repo, tagOrDigest string) {
	if i := strings.LastIndex(r, "@"); i > 0 {
		return r[:i], s.digestOf(d, r).String()
	}
	i := strings.LastIndex(r, ":")
	if i <= 0 {
		d.Fatalf(s.t, "%q is neither R:T nor R@N", r)
	}
	return r[:i], r[i+1:]
}

func (s *fsckStore) breakStore(d *datadriven.TestData) string {
	how := d.CmdArgs[0].Key
	arg := func(key string) string {
		var v string
		d.ScanArgs(s.t, key, &v)
		return v
	}
	switch how {
	case "flip-byte":
		p := s.blobPath(d, arg("blob"))
		b, err := os.ReadFile(p)
		require.NoError(s.t, err)
		b[len(b)-20] ^= 0x01
		require.NoError(s.t, os.WriteFile(p, b, 0o600))
	case "truncate-file":
		p := s.blobPath(d, arg("blob"))
		fi, err := os.Stat(p)
		require.NoError(s.t, err)
		require.NoError(s.t, os.Truncate(p, fi.Size()-100))
	case "remove-file":
		require.NoError(s.t, os.Remove(s.blobPath(d, arg("blob"))))
	case "replace-file":
		b, err := os.ReadFile(s.blobPath(d, arg("from")))
		require.NoError(s.t, err)
		require.NoError(s.t, os.WriteFile(s.blobPath(d, arg("blob")), b, 0o600))
	case "add-file":
		name := arg("name")
		s.name(digest.FromString(name), name)
		b, err := os.ReadFile(s.blobPath(d, arg("from")))
		require.NoError(s.t, err)
		p := s.blobPath(d, name)
		require.NoError(s.t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(s.t, os.WriteFile(p, b, 0o600))
	case "drop-record":
		var key []byte
		switch kind, r := d.CmdArgs[1].Key, d.CmdArgs[1].Vals[0]; kind {
		case "repository":
			key = indexKey('r', r)
		case "manifest":
			repo, dg := s.splitRef(d, r)
			if !strings.Contains(r, "@") {
				dg = s.digestOf(d, r).String()
			}
			key = indexKey('m', repo, dg)
		case "blob":
			key = indexKey('b', s.digestOf(d, r).String())
		case "upload":
			id, ok := s.uploads[r]
			if !ok {
				d.Fatalf(s.t, "no upload named %q", r)
			}
			key = indexKey('u', id)
		case "link", "reverse-link":
			dg := s.digestOf(d, r).String()
			repo := r[:max(strings.IndexAny(r, "@:"), 0)]
			if d.HasArg("repo") {
				d.ScanArgs(s.t, "repo", &repo)
			}
			key = indexKey('l', repo, dg)
			if kind == "reverse-link" {
				key = indexKey('L', dg, repo)
			}
		default:
			d.Fatalf(s.t, "drop-record of unknown kind %q", kind)
		}
		s.rawIndex(func(db *pebble.DB) {
			_, closer, err := db.Get(key)
			require.NoError(s.t, err, "the record to drop exists")
			require.NoError(s.t, closer.Close())
			require.NoError(s.t, db.Delete(key, pebble.Sync))
		})
	case "copy-file":
		dg := s.digestOf(d, arg("blob"))
		st := s.e.blobs
		if arg("tier") == "archive" {
			st = archiveFiles(s.t, s.e)
		}
		b, err := os.ReadFile(s.blobPath(d, arg("blob")))
		require.NoError(s.t, err)
		p, err := st.Path(dg)
		require.NoError(s.t, err)
		require.NoError(s.t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(s.t, os.WriteFile(p, b, 0o600))
	case "activate":
		repo, tag := s.splitRef(d, arg("ref"))
		dg, err := s.e.db.Tag(repo, tag)
		require.NoError(s.t, err)
		m, err := s.e.db.Manifest(repo, dg)
		require.NoError(s.t, err)
		m.Status = index.StatusActive
		b := s.e.db.NewBatch()
		require.NoError(s.t, b.PutManifest(m))
		require.NoError(s.t, b.Commit(true))
		require.NoError(s.t, b.Close())
	case "garble-record":
		repo, tag := s.splitRef(d, arg("tag"))
		s.rawIndex(func(db *pebble.DB) {
			require.NoError(s.t, db.Set(indexKey('t', repo, tag), []byte{0xff, 0xfe}, pebble.Sync))
		})
	default:
		d.Fatalf(s.t, "unknown break %q", how)
	}
	return "ok\n"
}

// report renders a check: its counts, then one line a finding, sorted.
func (s *fsckStore) report(r *FsckReport) string {
	var b strings.Builder
	verified := ""
	if r.Verified > 0 {
		verified = fmt.Sprintf(" (%d verified)", r.Verified)
	}
	fmt.Fprintf(&b, "%d repositories, %d manifests, %d tags, %d links, %d blob records%s, %d blob files, %d uploads\n",
		r.Repositories, r.Manifests, r.Tags, r.Links, r.BlobRecords, verified, r.BlobFiles, r.Uploads)
	var lines []string
	for class, fs := range map[string][]FsckFinding{"corrupt": r.Corrupt, "orphan": r.Orphans} {
		for _, f := range fs {
			l := class + " " + f.Kind
			if f.Repo != "" {
				l += " repo=" + f.Repo
			}
			if f.Digest != "" {
				l += " " + s.show(string(f.Digest))
			}
			if f.Ref != "" {
				l += " ref=" + s.show(f.Ref)
			}
			if f.Detail != "" {
				l += ": " + s.redact(f.Detail)
			}
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		lines = append(lines, "clean")
	}
	b.WriteString(strings.Join(lines, "\n"))
	b.WriteString("\n")
	return b.String()
}

var digestPattern = regexp.MustCompile(`sha(256|512):[0-9a-f]{64,128}`)

// redact replaces the digests in a finding's detail with their names.
func (s *fsckStore) redact(detail string) string {
	return digestPattern.ReplaceAllStringFunc(detail, s.show)
}

func (s *fsckStore) fsck() string {
	ctx := context.Background()
	plain, err := s.e.Fsck(ctx, FsckOptions{})
	require.NoError(s.t, err)
	verified, err := s.e.Fsck(ctx, FsckOptions{Verify: true})
	require.NoError(s.t, err)
	return "without verify: " + s.report(plain) + "with verify: " + s.report(verified)
}

func (s *fsckStore) gc() string {
	r, err := s.e.CollectGarbage(context.Background(), noGrace)
	require.NoError(s.t, err)
	return fmt.Sprintf("swept %d blobs, %d orphan files, %d orphan uploads; %d errors\n",
		r.BlobsSwept, r.OrphanFilesRemoved, r.OrphanUploadsRemoved, r.Errors)
}

func TestFsckDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/fsck", func(t *testing.T, path string) {
		s := newFsckStore(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			s.t = t
			switch d.Cmd {
			case "store":
				require.NoError(t, s.e.Close())
				s.e = nil
				s = newFsckStore(t)
				if d.HasArg("plain") {
					require.NoError(t, s.e.Close())
					s.plain = true
					s.open()
				}
				return "ok\n"
			case "push":
				return s.push(d)
			case "index":
				return s.index(d)
			case "referrer":
				return s.referrer(d)
			case "scan":
				return s.scan(d)
			case "blob":
				return s.blob(d)
			case "upload":
				return s.upload(d)
			case "mount":
				return s.mount(d)
			case "archive":
				return s.storageClass(d, StorageArchive)
			case "restore":
				return s.storageClass(d, StorageStandard)
			case "break":
				return s.breakStore(d)
			case "fsck":
				return s.fsck()
			case "gc":
				return s.gc()
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
	})
}

// TestFsckKindsCovered: every finding kind the engine declares (its Fsck*
// string constants) shows in the expected output of a data-driven case
// (which TestFsckDataDriven checks the real output against), and the
// engine declares exactly the kinds package gc reports. A new kind
// without a case fails here.
func TestFsckKindsCovered(t *testing.T) {
	declared := stringConsts(t, ".", "Fsck")
	require.NotEmpty(t, declared)
	require.Equal(t, stringConsts(t, "../gc", "Kind"), declared, "engine's Fsck kinds are gc's")

	shown := map[string][]string{}
	line := regexp.MustCompile(`(?m)^(?:corrupt|orphan) (\S+)`)
	files, err := filepath.Glob("testdata/fsck/*")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range line.FindAllStringSubmatch(string(b), -1) {
			shown[m[1]] = append(shown[m[1]], filepath.Base(f))
		}
	}
	var missing, unknown []string
	for k := range declared {
		if len(shown[k]) == 0 {
			missing = append(missing, k)
		}
	}
	for k := range shown {
		if !declared[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(unknown)
	require.Empty(t, missing, "finding kinds no case in testdata/fsck provokes")
	require.Empty(t, unknown, "kinds in testdata/fsck the engine does not declare")
}

// stringConsts returns the values of the string constants whose names
// start with prefix in the (non-test) Go files of the package in dir.
func stringConsts(t *testing.T, dir, prefix string) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	out := map[string]bool{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		require.NoError(t, err)
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, prefix) || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					require.NoError(t, err)
					out[v] = true
				}
			}
		}
	}
	return out
}
