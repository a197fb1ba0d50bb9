package index

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestChangeRangeAcrossRepositories(t *testing.T) {
	var cb changeBuilder
	cb.keyRange(spanPrefix(prefixTag, "a"), spanPrefix(prefixTag, "b"))
	got, ok := cb.change()
	require.True(t, ok)
	require.Equal(t, Change{Families: FamilyTag, AnyRepository: true}, got)

	cb = changeBuilder{}
	cb.keyRange([]byte{prefixBlob}, []byte{prefixBlob + 1})
	_, ok = cb.change()
	require.False(t, ok, "blob records: no cache holds them")

	cb = changeBuilder{}
	cb.keyRange(nil, nil)
	got, _ = cb.change()
	require.Equal(t, ChangeAll.Families&(FamilyRepository|FamilyTag|FamilyManifest|FamilyRegistry|FamilyCacheRule|FamilyTemplate), got.Families)
	require.True(t, got.AnyRepository)
}

func TestChangePayload(t *testing.T) {
	c := Change{Families: FamilyTag | FamilyManifest, Repositories: []string{"a", "b/c"}}
	sender, seq, got := decodeChange(encodeChange("s1", 7, c))
	require.Equal(t, "s1", sender)
	require.Equal(t, uint64(7), seq)
	require.Equal(t, c, got)

	any := Change{Families: FamilyRegistry, AnyRepository: true}
	_, _, got = decodeChange(encodeChange("s1", 8, any))
	require.Equal(t, any, got)

	long := Change{Families: FamilyTag}
	for range 200 {
		long.Repositories = append(long.Repositories, string(make([]byte, 100))+"x")
	}
	p := encodeChange("s1", 9, long)
	require.LessOrEqual(t, len(p), maxChangePayload)
	_, _, got = decodeChange(p)
	require.Equal(t, Change{Families: FamilyTag, AnyRepository: true}, got)

	for _, bad := range []string{"", "x", "s zz", "s 1", "s 1 zz", "s x 01", "s 1 \xff\xff"} {
		_, _, got = decodeChange(bad)
		require.Equal(t, ChangeAll, got, "%q", bad)
	}
}

func FuzzDecodeChange(f *testing.F) {
	f.Add(encodeChange("s", 1, Change{Families: FamilyTag, Repositories: []string{"a"}}))
	f.Add("s 2 ff *")
	f.Fuzz(func(t *testing.T, p string) {
		_, _, c := decodeChange(p)
		if c.AnyRepository && len(c.Repositories) > 0 {
			t.Fatalf("both AnyRepository and repositories: %q", p)
		}
	})
}

// recordingWatcher records what a ChangeWatcher is told.
type recordingWatcher struct {
	mu        sync.Mutex
	changes   []Change
	local     []Change
	listening []bool
}

func (w *recordingWatcher) Changed(c Change, local bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if local {
		w.local = append(w.local, c)
	} else {
		w.changes = append(w.changes, c)
	}
}

func (w *recordingWatcher) Listening(on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.listening = append(w.listening, on)
}

func (w *recordingWatcher) snapshot() (remote, local []Change, listening []bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Change(nil), w.changes...), append([]Change(nil), w.local...), append([]bool(nil), w.listening...)
}

// TestWatchChangesOnPostgres: two indexes on one database (two
// replicas); a commit on one is told to its own watcher and to the
// other's before it returns (the other acknowledged); a killed listener
// connection is reported and listens again.
func TestWatchChangesOnPostgres(t *testing.T) {
	srv := startPostgres(t)
	url := srv.NewDatabase(t)
	open := func() *DB {
		db, err := OpenPostgres(context.Background(), url, &Options{Logger: testLogger(t)}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	a, b := open(), open()
	wa, wb := &recordingWatcher{}, &recordingWatcher{}
	require.True(t, a.WatchChanges(wa))
	require.True(t, b.WatchChanges(wb))
	listening := func(w *recordingWatcher, n int) func() bool {
		return func() bool { _, _, l := w.snapshot(); return len(l) >= n && l[len(l)-1] }
	}
	require.Eventually(t, listening(wa, 1), 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, listening(wb, 1), 5*time.Second, 5*time.Millisecond)

	batch := a.NewBatch()
	require.NoError(t, batch.PutTag("team/app", "v1", dg("1"), ""))
	require.NoError(t, batch.Commit(true))
	want := Change{Families: FamilyTag, Repositories: []string{"team/app"}}
	_, local, _ := wa.snapshot()
	require.Equal(t, []Change{want}, local, "told to its own process before Commit returns")
	r, _, _ := wb.snapshot()
	require.Equal(t, []Change{want}, r, "told to the other process, which acknowledged, before Commit returns")
	time.Sleep(50 * time.Millisecond)
	r, _, _ = wa.snapshot()
	require.Empty(t, r, "its own notifications are not told again")

	// What each kind of batch is told as.
	for _, tc := range []struct {
		write func(b *Batch) error
		want  Change
	}{
		{func(b *Batch) error { return b.PutRepository(&Repository{Name: "r", CreatedAt: time.Unix(1, 0)}) },
			Change{Families: FamilyRepository, Repositories: []string{"r"}}},
		{func(b *Batch) error { return b.DeleteRepository("r") }, // its range deletions stay inside it
			Change{Families: FamilyRepository | FamilyTag | FamilyManifest, Repositories: []string{"r"}}},
		{func(b *Batch) error { return b.PutRegistrySetting("registryPolicy", []byte("{}")) },
			Change{Families: FamilyRegistry}},
	} {
		batch = a.NewBatch()
		require.NoError(t, tc.write(batch))
		require.NoError(t, batch.Commit(true))
		_, local, _ = wa.snapshot()
		require.Equal(t, tc.want, local[len(local)-1])
	}
	_, local, _ = wa.snapshot()
	told := len(local)

	// A write no cache holds sends nothing.
	batch = a.NewBatch()
	require.NoError(t, batch.PutBlob(&Blob{Digest: dg("2"), Size: 1}))
	require.NoError(t, batch.Commit(true))
	_, local, _ = wa.snapshot()
	require.Len(t, local, told)

	// The listener's connection killed: reported, then listening again.
	_, _, before := wb.snapshot()
	conn, err := b.kv.(*pgKV).pool.Acquire(context.Background())
	require.NoError(t, err)
	_, err = conn.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE starts_with(application_name, 'berth-listen ')`)
	conn.Release()
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, _, l := wb.snapshot()
		return len(l) >= len(before)+2 && !l[len(before)] && l[len(l)-1]
	}, 10*time.Second, 5*time.Millisecond, "lost, then listening again")
}
