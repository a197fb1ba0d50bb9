package index

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawStore opens the pebble store of an index directory as it is, with
// no schema check or migration, for edit; it is closed afterwards.
func rawStore(t *testing.T, dir string, edit func(pdb *pebble.DB)) {
	t.Helper()
	pdb, err := pebble.Open(dir, &pebble.Options{Logger: &pebbleLogger{db: &DB{dbState: &dbState{log: testLogger(t)}}}})
	require.NoError(t, err)
	edit(pdb)
	require.NoError(t, pdb.Close())
}

// storeVersion is the schema version recorded in pdb.
func storeVersion(t *testing.T, pdb *pebble.DB) uint32 {
	t.Helper()
	v, closer, err := pdb.Get(metaKey)
	require.NoError(t, err)
	defer closer.Close()
	ver, err := decodeMeta(v)
	require.NoError(t, err)
	return ver
}

// writeV2Links writes links as schema version 2 did (l keys, no reverse
// entries) and marks the store version 2.
func writeV2Links(t *testing.T, pdb *pebble.DB, links map[string][]string) {
	t.Helper()
	b := pdb.NewBatch()
	for repo, names := range links {
		for _, n := range names {
			require.NoError(t, b.Set(makeKey(prefixLink, repo, dg(n).String()), encodeLink(t0), nil))
		}
	}
	require.NoError(t, b.Set(metaKey, encodeMeta(2), nil))
	require.NoError(t, pdb.Apply(b, pebble.Sync))
}

// TestMigrateReverseLinks: a store written at schema version 2 (links,
// no reverse index) is raised to the current version on open, with a
// reverse entry for every link, and nothing else changed.
func TestMigrateReverseLinks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idx")
	db, err := Open(dir, &Options{Logger: testLogger(t)})
	require.NoError(t, err)
	commit(t, db, func(b *Batch) { require.NoError(t, b.PutRepository(&Repository{Name: "kept", CreatedAt: t0})) })
	require.NoError(t, db.Close())

	links := map[string][]string{"a": {"x", "y"}, "a/b": {"x"}, "c": {"y", "z"}}
	rawStore(t, dir, func(pdb *pebble.DB) {
		writeV2Links(t, pdb, links)
	})

	db, err = Open(dir, &Options{Logger: testLogger(t)})
	require.NoError(t, err)
	assert.Equal(t, SchemaVersion, storeVersion(t, db.pdb))
	assert.Equal(t, []string{"a", "a/b"}, linkedTo(t, db, dg("x")))
	assert.Equal(t, []string{"a", "c"}, linkedTo(t, db, dg("y")))
	assert.Equal(t, []string{"c"}, linkedTo(t, db, dg("z")))
	assert.Len(t, reverseLinks(t, db), 5)
	ok, err := db.HasRepository("kept")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = db.Linked("c", dg("z"))
	require.NoError(t, err)
	assert.True(t, ok)
	require.NoError(t, db.Close())

	// Opening again changes nothing.
	db, err = Open(dir, &Options{Logger: testLogger(t)})
	require.NoError(t, err)
	assert.Len(t, reverseLinks(t, db), 5)
	require.NoError(t, db.Close())
}

// TestMigrateInterrupted: a migration stopped after some of its batches
// (a crash, a full disk) leaves the store at version 2 with part of the
// reverse index; version 2's code may then open the store, add links
// without reverse entries and delete links whose entries stay; the next
// Open runs the migration again and ends with exactly one reverse entry
// per link.
func TestMigrateInterrupted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idx")
	db, err := Open(dir, &Options{Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	links := map[string][]string{}
	for i := range 20 {
		repo := fmt.Sprintf("r%02d", i%7)
		links[repo] = append(links[repo], fmt.Sprint("blob", i))
	}
	rawStore(t, dir, func(pdb *pebble.DB) { writeV2Links(t, pdb, links) })

	defer func(n int) { migrationBatchKeys, migrationBatchHook = n, nil }(migrationBatchKeys)
	migrationBatchKeys = 3
	crash := errors.New("crash")
	batches := 0
	migrationBatchHook = func(n int) error {
		batches = n
		if n == 2 {
			return crash
		}
		return nil
	}
	_, err = Open(dir, &Options{Logger: testLogger(t)})
	require.ErrorIs(t, err, crash)
	assert.Equal(t, 2, batches)
	migrationBatchHook = nil

	var partial int
	rawStore(t, dir, func(pdb *pebble.DB) {
		assert.Equal(t, uint32(2), storeVersion(t, pdb), "the version is raised only once the migration is done")
		it, err := pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLinkRev}, UpperBound: []byte{prefixLinkRev + 1}})
		require.NoError(t, err)
		for ok := it.First(); ok; ok = it.Next() {
			partial++
		}
		require.NoError(t, it.Close())
		// Version 2's code at work: a link deleted (its reverse entry
		// stays, stale), a link added without a reverse entry.
		require.NoError(t, pdb.Delete(makeKey(prefixLink, "r00", dg("blob0").String()), pebble.Sync))
		require.NoError(t, pdb.Set(makeKey(prefixLink, "new", dg("blob0").String()), encodeLink(t0), pebble.Sync))
	})
	assert.Equal(t, 6, partial, "two batches of three were written")

	db, err = Open(dir, &Options{Logger: testLogger(t)})
	require.NoError(t, err)
	defer db.Close()
	assert.Equal(t, SchemaVersion, storeVersion(t, db.pdb))
	var want []string
	require.NoError(t, db.WalkLinks(func(repo string, d digest.Digest, _ time.Time) error {
		want = append(want, repo+"@"+d.String())
		return nil
	}))
	assert.Len(t, want, 20)
	assert.ElementsMatch(t, want, reverseLinks(t, db))
	assert.Equal(t, []string{"new"}, linkedTo(t, db, dg("blob0")))
}

// migrateChildEnv names the store of TestMigrateKilled's child process.
const migrateChildEnv = "BERTH_INDEX_MIGRATE_CHILD"

// TestMigrateKilled: a process SIGKILLed in the middle of a migration
// (this test binary run again as a child, stopped for good after its
// second batch) leaves the store at its old version, and the next Open
// completes the migration.
func TestMigrateKilled(t *testing.T) {
	if dir := os.Getenv(migrateChildEnv); dir != "" {
		migrationBatchKeys = 3
		migrationBatchHook = func(n int) error {
			if n == 2 {
				fmt.Println("batches written")
				select {} // until killed
			}
			return nil
		}
		_, err := Open(dir, &Options{})
		t.Fatalf("the migration was not stopped: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "idx")
	db, err := Open(dir, &Options{Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	links := map[string][]string{}
	for i := range 20 {
		repo := fmt.Sprintf("r%02d", i%5)
		links[repo] = append(links[repo], fmt.Sprint("blob", i))
	}
	rawStore(t, dir, func(pdb *pebble.DB) { writeV2Links(t, pdb, links) })

	cmd := exec.Command(os.Args[0], "-test.run=^TestMigrateKilled$")
	cmd.Env = append(os.Environ(), migrateChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(out)
	stopped := false
	for !stopped && sc.Scan() {
		stopped = sc.Text() == "batches written"
	}
	require.True(t, stopped, "the child did not reach its second batch")
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()

	rawStore(t, dir, func(pdb *pebble.DB) {
		assert.Equal(t, uint32(2), storeVersion(t, pdb), "killed mid-migration: still version 2")
	})
	db, err = Open(dir, &Options{Logger: testLogger(t)})
	require.NoError(t, err)
	defer db.Close()
	assert.Equal(t, SchemaVersion, storeVersion(t, db.pdb))
	assert.Len(t, reverseLinks(t, db), 20)
	assert.Equal(t, []string{"r00"}, linkedTo(t, db, dg("blob0")))
	assert.Equal(t, []string{"r04"}, linkedTo(t, db, dg("blob19")))
}
