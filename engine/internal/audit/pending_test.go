package audit

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAppendAll: the records of one call are each a line of their own, in
// their order, written together, and an invalid one fails the call before
// anything is written.
func TestAppendAll(t *testing.T) {
	l, _ := openTest(t, &Options{Now: newFakeClock(t0).Now})
	recs := make([]Record, 100)
	for i := range recs {
		recs[i] = sample(i, "app")
	}
	writes := l.Status().Writes
	require.NoError(t, l.AppendAll(recs, false))
	require.Equal(t, writes+1, l.Status().Writes, "one write(2) for the lot when nobody else writes")
	got := all(t, l, Query{Order: OldestFirst})
	require.Len(t, got, 100)
	for i, r := range got {
		require.Equal(t, recs[i].RequestID, r.RequestID)
	}

	syncs := l.Status().Syncs
	require.NoError(t, l.AppendAll(recs[:3], true))
	require.Greater(t, l.Status().Syncs, syncs, "durable: synced before it returns")

	bad := []Record{sample(1, "app"), {Action: "nonsense"}}
	require.ErrorIs(t, l.AppendAll(bad, false), ErrInvalidRecord)
	require.Len(t, all(t, l, Query{}), 103, "nothing of a refused call is written")
	require.NoError(t, l.AppendAll(nil, true))
}

// TestAppendSyncing: the record is written when AppendSyncing returns (a
// reader sees it), and Wait returns after an fdatasync that began after
// it; a closed log refuses.
func TestAppendSyncing(t *testing.T) {
	l, _ := openTest(t, &Options{Now: newFakeClock(t0).Now})
	syncs := l.Status().Syncs
	p, err := l.AppendSyncing(sample(1, "app"))
	require.NoError(t, err)
	require.Len(t, all(t, l, Query{}), 1, "written before the sync")
	require.NoError(t, p.Wait())
	require.Greater(t, l.Status().Syncs, syncs)

	// Many at once, some waited for late: every one is acknowledged.
	var ps []Pending
	for i := range 20 {
		p, err := l.AppendSyncing(sample(i, "app"))
		require.NoError(t, err)
		ps = append(ps, p)
	}
	for _, p := range ps {
		require.NoError(t, p.Wait())
	}
	require.NoError(t, Pending{}.Wait(), "the zero Pending has nothing to wait for")

	require.NoError(t, l.Close())
	_, err = l.AppendSyncing(sample(2, "app"))
	require.ErrorIs(t, err, ErrClosed)
}

// BenchmarkAppendAll compares a listing's 1,000 records appended one by
// one (a write(2) each) with the same appended together (AppendAll);
// ns/op is per record.
func BenchmarkAppendAll(b *testing.B) {
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = sample(i, "app")
	}
	b.Run("one-by-one", func(b *testing.B) {
		l, _ := openTest(b, &Options{})
		b.ResetTimer()
		for i := 0; i < b.N; i += len(recs) {
			for _, r := range recs {
				if err := l.Append(r, false); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("together", func(b *testing.B) {
		l, _ := openTest(b, &Options{})
		b.ResetTimer()
		for i := 0; i < b.N; i += len(recs) {
			if err := l.AppendAll(recs, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}
