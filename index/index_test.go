package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openTest(t testing.TB) *DB {
	t.Helper()
	if pgServer != nil {
		return openPostgres(t, pgServer)
	}
	db, err := Open("", &Options{InMemory: true, Logger: testLogger(t), CacheSize: 8 << 20})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func commit(t testing.TB, db *DB, fn func(b *Batch)) {
	t.Helper()
	b := db.NewBatch()
	fn(b)
	require.NoError(t, b.Commit(true))
}

func dg(s string) digest.Digest { return digest.FromString(s) }

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)

func TestRoundTrips(t *testing.T) {
	db := openTest(t)
	repo := &Repository{Name: "prod/app", CreatedAt: t0, Settings: []byte(`{"m":"IMMUTABLE"}`)}
	man := &Manifest{Repo: "prod/app", Digest: dg("m1"), MediaType: "application/vnd.oci.image.manifest.v1+json",
		ArtifactType: "application/x", Subject: dg("subj"), PushedAt: t0, LastPulledAt: t0.Add(time.Hour),
		Blobs: []digest.Digest{dg("c"), dg("l1")}, Children: []digest.Digest{dg("ch")},
		Annotations: map[string]string{"a": "1", "b": "2"}, Payload: []byte(`{"schemaVersion":2}`)}
	blob := &Blob{Digest: dg("l1"), Size: 10, StoredSize: 7, CreatedAt: t0,
		Wraps:  []KeyWrap{{KeyID: "k1", Version: 3, Wrapped: []byte{1, 2, 3}}, {KeyID: "k2", Version: 1, Wrapped: []byte{4}}},
		FileID: []byte("f1")}
	ref := &Referrer{Subject: dg("m1"), Digest: dg("sig"), MediaType: "mt", ArtifactType: "at", Size: 99,
		Annotations: map[string]string{"x": "y"}}
	up := &Upload{ID: "u-1", Repo: "prod/app", StartedAt: t0, UpdatedAt: t0.Add(time.Second), State: []byte("state")}

	commit(t, db, func(b *Batch) {
		require.NoError(t, b.PutRepository(repo))
		require.NoError(t, b.PutManifest(man))
		require.NoError(t, b.PutTag("prod/app", "v1", man.Digest, ""))
		require.NoError(t, b.PutBlob(blob))
		require.NoError(t, b.PutLink("prod/app", blob.Digest, t0))
		require.NoError(t, b.PutReferrer("prod/app", ref))
		require.NoError(t, b.PutUpload(up))
		require.NoError(t, b.PutTemplate("prod", []byte(`{"t":1}`)))
	})

	gotRepo, err := db.Repository("prod/app")
	require.NoError(t, err)
	assert.Equal(t, repo.Name, gotRepo.Name)
	assert.True(t, repo.CreatedAt.Equal(gotRepo.CreatedAt))
	assert.Equal(t, repo.Settings, gotRepo.Settings)

	gotMan, err := db.Manifest("prod/app", man.Digest)
	require.NoError(t, err)
	assert.True(t, gotMan.PushedAt.Equal(man.PushedAt))
	assert.True(t, gotMan.LastPulledAt.Equal(man.LastPulledAt))
	gotMan.PushedAt, gotMan.LastPulledAt = man.PushedAt, man.LastPulledAt
	assert.Equal(t, int64(len(man.Payload)), gotMan.PayloadSize)
	gotMan.PayloadSize = 0
	assert.Equal(t, man, gotMan)

	meta, err := db.ManifestMeta("prod/app", man.Digest)
	require.NoError(t, err)
	assert.Nil(t, meta.Payload)
	assert.Equal(t, int64(len(man.Payload)), meta.PayloadSize, "the size is known without reading the payload")
	assert.Equal(t, man.Blobs, meta.Blobs)

	has, err := db.HasManifest("prod/app", man.Digest)
	require.NoError(t, err)
	assert.True(t, has)
	has, err = db.HasManifest("prod/app", dg("nope"))
	require.NoError(t, err)
	assert.False(t, has)

	d, err := db.Tag("prod/app", "v1")
	require.NoError(t, err)
	assert.Equal(t, man.Digest, d)

	gotBlob, err := db.Blob(blob.Digest)
	require.NoError(t, err)
	assert.True(t, gotBlob.CreatedAt.Equal(blob.CreatedAt))
	gotBlob.CreatedAt = blob.CreatedAt
	assert.Equal(t, blob, gotBlob)

	linked, err := db.Linked("prod/app", blob.Digest)
	require.NoError(t, err)
	assert.True(t, linked)
	linked, err = db.Linked("prod", blob.Digest)
	require.NoError(t, err)
	assert.False(t, linked)

	refs, err := db.Referrers("prod/app", dg("m1"))
	require.NoError(t, err)
	assert.Equal(t, []Referrer{*ref}, refs)

	gotUp, err := db.Upload("u-1")
	require.NoError(t, err)
	assert.Equal(t, up.State, gotUp.State)
	assert.Equal(t, up.Repo, gotUp.Repo)
	assert.True(t, up.UpdatedAt.Equal(gotUp.UpdatedAt))

	tv, err := db.Template("prod")
	require.NoError(t, err)
	assert.Equal(t, []byte(`{"t":1}`), tv)

	// Deletes.
	commit(t, db, func(b *Batch) {
		require.NoError(t, b.DeleteBlob(blob.Digest))
		require.NoError(t, b.DeleteLink("prod/app", blob.Digest))
		require.NoError(t, b.DeleteReferrer("prod/app", dg("m1"), dg("sig")))
		require.NoError(t, b.DeleteUpload("u-1"))
		require.NoError(t, b.DeleteTemplate("prod"))
		require.NoError(t, b.DeleteManifest("prod/app", man.Digest))
	})
	_, err = db.Blob(blob.Digest)
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = db.Upload("u-1")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = db.Template("prod")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = db.Manifest("prod/app", man.Digest)
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = db.Tag("prod/app", "v1")
	assert.ErrorIs(t, err, ErrNotFound, "deleting a manifest deletes its tags")
	refs, err = db.Referrers("prod/app", dg("m1"))
	require.NoError(t, err)
	assert.Empty(t, refs)
	linked, err = db.Linked("prod/app", blob.Digest)
	require.NoError(t, err)
	assert.False(t, linked)
}

func TestNotFoundNamesTheKey(t *testing.T) {
	db := openTest(t)
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"repository", func() error { _, err := db.Repository("r"); return err }, "repository r"},
		{"tag", func() error { _, err := db.Tag("r", "t"); return err }, "tag r:t"},
		{"manifest", func() error { _, err := db.Manifest("r", dg("x")); return err }, string(dg("x"))},
		{"blob", func() error { _, err := db.Blob(dg("x")); return err }, string(dg("x"))},
		{"upload", func() error { _, err := db.Upload("u"); return err }, "upload u"},
		{"template", func() error { _, err := db.Template("p"); return err }, "template p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.ErrorIs(t, err, ErrNotFound)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestInvalidKeys(t *testing.T) {
	db := openTest(t)
	b := db.NewBatch()
	defer func() { _ = b.Close() }()
	tests := []struct {
		name string
		call func() error
	}{
		{"empty repo", func() error { return b.PutRepository(&Repository{}) }},
		{"nul repo", func() error { return b.PutRepository(&Repository{Name: "a\x00b"}) }},
		{"nul tag", func() error { return b.PutTag("a", "t\x00", dg("x"), "") }},
		{"empty tag", func() error { return b.PutTag("a", "", dg("x"), "") }},
		{"bad digest", func() error { return b.PutTag("a", "t", "sha256:zz", "") }},
		{"unknown alg", func() error { return b.PutBlob(&Blob{Digest: "md5:00"}) }},
		{"empty digest", func() error { return b.PutManifest(&Manifest{Repo: "a"}) }},
		{"nul upload", func() error { return b.PutUpload(&Upload{ID: "\x00"}) }},
		{"empty template", func() error { return b.PutTemplate("", nil) }},
		{"read tag", func() error { _, err := db.Tag("a\x00", "t"); return err }},
		{"list tags", func() error { _, err := db.ListTags("", "", 0); return err }},
		{"tags of", func() error { _, err := db.TagsOf("a", "nope"); return err }},
		{"referrers", func() error { _, err := db.Referrers("a", "sha256:1"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, tt.call(), ErrInvalidKey)
		})
	}
}

func TestPagination(t *testing.T) {
	db := openTest(t)
	repos := []string{"a", "a-b", "a/b", "a/b/c", "ab", "b"}
	tags := []string{"1.0", "1.0-rc", "latest", "v1", "v10", "v2"}
	commit(t, db, func(b *Batch) {
		for _, r := range repos {
			require.NoError(t, b.PutRepository(&Repository{Name: r, CreatedAt: t0}))
			for _, tag := range tags {
				require.NoError(t, b.PutTag(r, tag+"-"+r, dg(r+tag), ""))
			}
		}
		for _, tag := range tags {
			require.NoError(t, b.PutTag("only", tag, dg(tag), ""))
		}
	})

	rtests := []struct {
		name  string
		after string
		n     int
		want  []string
	}{
		{"all", "", 0, repos},
		{"n negative", "", -1, repos},
		{"first two", "", 2, []string{"a", "a-b"}},
		{"after a", "a", 0, []string{"a-b", "a/b", "a/b/c", "ab", "b"}},
		{"after a/b n1", "a/b", 1, []string{"a/b/c"}},
		{"after last", "b", 0, nil},
		{"after beyond end", "zzz", 5, nil},
		{"after absent middle", "a/a", 2, []string{"a/b", "a/b/c"}},
		{"n larger", "ab", 100, []string{"b"}},
	}
	for _, tt := range rtests {
		t.Run("repos "+tt.name, func(t *testing.T) {
			got, err := db.ListRepositories(tt.after, tt.n)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	ttests := []struct {
		name  string
		repo  string
		after string
		n     int
		want  []string
	}{
		{"all", "only", "", 0, tags},
		{"page", "only", "1.0", 2, []string{"1.0-rc", "latest"}},
		{"after last", "only", "v2", 0, nil},
		{"beyond", "only", "w", 3, nil},
		{"prefix repo a not a-b", "a", "", 0, suffixed(tags, "-a")},
		{"prefix repo a/b not a/b/c", "a/b", "", 2, suffixed(tags, "-a/b")[:2]},
		{"absent repo", "nope", "", 0, nil},
	}
	for _, tt := range ttests {
		t.Run("tags "+tt.name, func(t *testing.T) {
			got, err := db.ListTags(tt.repo, tt.after, tt.n)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	n, err := db.CountTags("a")
	require.NoError(t, err)
	assert.Equal(t, len(tags), n)
}

func suffixed(in []string, s string) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = v + s
	}
	return out
}

func TestReverseTagIndex(t *testing.T) {
	db := openTest(t)
	d1, d2 := dg("one"), dg("two")
	commit(t, db, func(b *Batch) {
		require.NoError(t, b.PutManifest(&Manifest{Repo: "r", Digest: d1}))
		require.NoError(t, b.PutManifest(&Manifest{Repo: "r", Digest: d2}))
		require.NoError(t, b.PutTag("r", "a", d1, ""))
		require.NoError(t, b.PutTag("r", "b", d1, ""))
		require.NoError(t, b.PutTag("r", "c", d2, ""))
		require.NoError(t, b.PutTag("r-x", "a", d1, "")) // other repo, same digest
	})
	tagsOf := func(repo string, d digest.Digest) []string {
		got, err := db.TagsOf(repo, d)
		require.NoError(t, err)
		return got
	}
	assert.Equal(t, []string{"a", "b"}, tagsOf("r", d1))
	assert.Equal(t, []string{"c"}, tagsOf("r", d2))

	// Move b to d2.
	commit(t, db, func(b *Batch) { require.NoError(t, b.PutTag("r", "b", d2, d1)) })
	assert.Equal(t, []string{"a"}, tagsOf("r", d1))
	assert.Equal(t, []string{"b", "c"}, tagsOf("r", d2))
	// Re-put same digest is idempotent.
	commit(t, db, func(b *Batch) { require.NoError(t, b.PutTag("r", "b", d2, d2)) })
	assert.Equal(t, []string{"b", "c"}, tagsOf("r", d2))
	// Delete tag with prev unknown: the batch looks it up.
	commit(t, db, func(b *Batch) { require.NoError(t, b.DeleteTag("r", "c", "")) })
	assert.Equal(t, []string{"b"}, tagsOf("r", d2))
	// Delete tag with prev known.
	commit(t, db, func(b *Batch) { require.NoError(t, b.DeleteTag("r", "a", d1)) })
	assert.Empty(t, tagsOf("r", d1))
	// Deleting a manifest removes its tags, including one put in the same batch.
	commit(t, db, func(b *Batch) {
		require.NoError(t, b.PutTag("r", "new", d2, ""))
		require.NoError(t, b.DeleteManifest("r", d2))
	})
	assert.Empty(t, tagsOf("r", d2))
	got, err := db.ListTags("r", "", 0)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Equal(t, []string{"a"}, tagsOf("r-x", d1), "other repository untouched")
}

func TestDeleteRepository(t *testing.T) {
	db := openTest(t)
	for _, r := range []string{"a", "a-b", "a/b"} {
		commit(t, db, func(b *Batch) {
			require.NoError(t, b.PutRepository(&Repository{Name: r}))
			require.NoError(t, b.PutManifest(&Manifest{Repo: r, Digest: dg(r)}))
			require.NoError(t, b.PutTag(r, "t", dg(r), ""))
			require.NoError(t, b.PutLink(r, dg("l"), t0))
			require.NoError(t, b.PutReferrer(r, &Referrer{Subject: dg(r), Digest: dg("s")}))
		})
	}
	commit(t, db, func(b *Batch) { require.NoError(t, b.DeleteRepository("a")) })
	names, err := db.ListRepositories("", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"a-b", "a/b"}, names)
	n, err := db.CountManifests("a")
	require.NoError(t, err)
	assert.Zero(t, n)
	_, err = db.Tag("a", "t")
	assert.ErrorIs(t, err, ErrNotFound)
	for _, r := range []string{"a-b", "a/b"} {
		_, err := db.Tag(r, "t")
		require.NoError(t, err)
		ok, err := db.Linked(r, dg("l"))
		require.NoError(t, err)
		assert.True(t, ok)
		n, err := db.CountManifests(r)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
	}
}

func TestWalksAndLists(t *testing.T) {
	db := openTest(t)
	commit(t, db, func(b *Batch) {
		for i := range 5 {
			r := fmt.Sprintf("r%d", i%2)
			d := dg(fmt.Sprint(i))
			require.NoError(t, b.PutManifest(&Manifest{Repo: r, Digest: d, Payload: []byte("p")}))
			require.NoError(t, b.PutBlob(&Blob{Digest: d, Size: int64(i)}))
			require.NoError(t, b.PutLink(r, d, t0))
			require.NoError(t, b.PutUpload(&Upload{ID: fmt.Sprint("u", i), Repo: r}))
			require.NoError(t, b.PutTemplate(fmt.Sprint("p", i), []byte("{}")))
		}
	})
	count := func(walk func() error) {
		require.NoError(t, walk())
	}
	var ms, r0, blobs, links, ups, tpls int
	count(func() error {
		return db.WalkManifests(func(m *Manifest) error {
			assert.Nil(t, m.Payload)
			ms++
			return nil
		})
	})
	count(func() error { return db.ListManifests("r0", func(*Manifest) error { r0++; return nil }) })
	count(func() error { return db.WalkBlobs(func(*Blob) error { blobs++; return nil }) })
	count(func() error { return db.ListLinks("r1", func(digest.Digest) error { links++; return nil }) })
	count(func() error { return db.ListUploads(func(*Upload) error { ups++; return nil }) })
	count(func() error { return db.ListTemplates(func(string, []byte) error { tpls++; return nil }) })
	assert.Equal(t, []int{5, 3, 5, 2, 5, 5}, []int{ms, r0, blobs, links, ups, tpls})

	// io.EOF stops early without error; other errors are returned.
	n := 0
	require.NoError(t, db.WalkBlobs(func(*Blob) error { n++; return io.EOF }))
	assert.Equal(t, 1, n)
	boom := errors.New("boom")
	assert.ErrorIs(t, db.ListUploads(func(*Upload) error { return boom }), boom)
}

func TestReopenPersistence(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idx")
	db, err := Open(dir, &Options{Logger: testLogger(t)})
	require.NoError(t, err)
	commit(t, db, func(b *Batch) {
		require.NoError(t, b.PutRepository(&Repository{Name: "r", CreatedAt: t0}))
		require.NoError(t, b.PutTag("r", "t", dg("x"), ""))
	})
	require.NoError(t, db.Close())
	assert.ErrorIs(t, db.Close(), ErrClosed)
	_, err = db.Tag("r", "t")
	assert.ErrorIs(t, err, ErrClosed)
	b := db.NewBatch()
	assert.ErrorIs(t, b.PutTemplate("p", nil), ErrClosed)

	db, err = Open(dir, &Options{Logger: testLogger(t)})
	require.NoError(t, err)
	d, err := db.Tag("r", "t")
	require.NoError(t, err)
	assert.Equal(t, dg("x"), d)

	// A store of an older schema version is raised to this one.
	pb := db.pdb.NewBatch()
	require.NoError(t, pb.Set(metaKey, encodeMeta(1), nil))
	require.NoError(t, db.pdb.Apply(pb, nil))
	require.NoError(t, db.Close())
	db, err = Open(dir, &Options{Logger: testLogger(t)})
	require.NoError(t, err)
	v, closer, err := db.pdb.Get(metaKey)
	require.NoError(t, err)
	ver, err := decodeMeta(v)
	require.NoError(t, closer.Close())
	require.NoError(t, err)
	assert.Equal(t, SchemaVersion, ver)

	// A store from a newer schema version is refused.
	pb = db.pdb.NewBatch()
	require.NoError(t, pb.Set(metaKey, encodeMeta(SchemaVersion+1), nil))
	require.NoError(t, db.pdb.Apply(pb, nil))
	require.NoError(t, db.Close())
	_, err = Open(dir, &Options{Logger: testLogger(t)})
	assert.ErrorIs(t, err, ErrCorrupt)
}

func TestBatchLifecycle(t *testing.T) {
	db := openTest(t)
	b := db.NewBatch()
	require.NoError(t, b.PutTemplate("p", []byte("x")))
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	assert.ErrorIs(t, b.Commit(true), ErrClosed)
	_, err := db.Template("p")
	assert.ErrorIs(t, err, ErrNotFound, "closed batch is discarded")

	b = db.NewBatch()
	require.NoError(t, b.Commit(false), "empty commit")
	assert.ErrorIs(t, b.PutTemplate("p", nil), ErrClosed)
}

func TestCorruptValues(t *testing.T) {
	db := openTest(t)
	d := dg("x")
	keys := map[string][]byte{
		"repo":     makeKey(prefixRepo, "r"),
		"tag":      makeKey(prefixTag, "r", "t"),
		"manifest": makeKey(prefixManifest, "r", string(d)),
		"blob":     makeKey(prefixBlob, string(d)),
		"referrer": makeKey(prefixReferrer, "r", string(d), string(d)),
		"upload":   makeKey(prefixUpload, "u"),
		"template": makeKey(prefixTemplate, "p"),
	}
	reads := map[string]func() error{
		"repo":     func() error { _, err := db.Repository("r"); return err },
		"tag":      func() error { _, err := db.Tag("r", "t"); return err },
		"manifest": func() error { _, err := db.Manifest("r", d); return err },
		"blob":     func() error { _, err := db.Blob(d); return err },
		"referrer": func() error { _, err := db.Referrers("r", d); return err },
		"upload":   func() error { _, err := db.Upload("u"); return err },
		"template": func() error { _, err := db.Template("p"); return err },
	}
	values := []struct {
		name string
		v    []byte
	}{
		{"empty", []byte{}},
		{"bad version", []byte{9, 1, 2}},
		{"huge length", []byte{valueV1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"truncated varint", []byte{valueV1, 0x80}},
		{"huge count", append([]byte{valueV1, 0, 0, 0, 0, 0}, 0xff, 0xff, 0xff, 0x7f)},
	}
	for name, k := range keys {
		for _, tv := range values {
			t.Run(name+" "+tv.name, func(t *testing.T) {
				pb := db.kv.newBatch()
				require.NoError(t, pb.set(k, tv.v))
				require.NoError(t, db.kv.apply(context.Background(), pb, true))
				err := reads[name]()
				if (name == "tag" || name == "template") && len(tv.v) > 1 && tv.v[0] == valueV1 {
					return // opaque bytes after the version byte are valid values
				}
				assert.ErrorIs(t, err, ErrCorrupt)
			})
		}
	}
}

func TestConcurrency(t *testing.T) {
	db := openTest(t)
	var wg sync.WaitGroup
	const writers, per = 4, 50
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range per {
				b := db.NewBatch()
				tag := fmt.Sprintf("w%d-%03d", w, i)
				d := dg(tag)
				if err := b.PutManifest(&Manifest{Repo: "c", Digest: d, Payload: []byte(tag)}); err != nil {
					t.Error(err)
					return
				}
				if err := b.PutTag("c", tag, d, ""); err != nil {
					t.Error(err)
					return
				}
				if err := b.Commit(i%2 == 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range per {
				tag := fmt.Sprintf("w%d-%03d", w, i)
				if d, err := db.Tag("c", tag); err == nil {
					if _, err := db.Manifest("c", d); err != nil {
						t.Error("tag visible before its manifest:", err)
					}
				}
				if _, err := db.ListTags("c", "", 10); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	n, err := db.CountTags("c")
	require.NoError(t, err)
	assert.Equal(t, writers*per, n)
}

// TestSyncWAL: a batch committed without sync, then SyncWAL, is there
// after a reopen; SyncWAL on a closed DB is ErrClosed.
func TestSyncWAL(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, nil)
	require.NoError(t, err)
	b := db.NewBatch()
	require.NoError(t, b.PutTag("a/b", "v1", dg("m"), ""))
	require.NoError(t, b.Commit(false))
	require.NoError(t, db.SyncWAL())
	require.NoError(t, db.Close())
	require.ErrorIs(t, db.SyncWAL(), ErrClosed)

	db, err = Open(dir, nil)
	require.NoError(t, err)
	defer db.Close()
	got, err := db.Tag("a/b", "v1")
	require.NoError(t, err)
	assert.Equal(t, dg("m"), got)
}

func TestRegistrySettings(t *testing.T) {
	db := openTest(t)
	_, err := db.RegistrySetting("registryPolicy")
	require.ErrorIs(t, err, ErrNotFound)
	b := db.NewBatch()
	require.NoError(t, b.PutRegistrySetting("registryPolicy", []byte(`{"Version":"2012-10-17"}`)))
	require.NoError(t, b.Commit(true))
	v, err := db.RegistrySetting("registryPolicy")
	require.NoError(t, err)
	require.Equal(t, `{"Version":"2012-10-17"}`, string(v))
	// Registry settings never show among templates or cache rules.
	require.NoError(t, db.ListTemplates(func(p string, _ []byte) error { t.Fatalf("template %q", p); return nil }))
	b = db.NewBatch()
	require.NoError(t, b.DeleteRegistrySetting("registryPolicy"))
	require.NoError(t, b.Commit(true))
	_, err = db.RegistrySetting("registryPolicy")
	require.ErrorIs(t, err, ErrNotFound)
}
