package index

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func collect(t *testing.T, walk func(func(uint64, []byte) (bool, error)) error) (seqs []uint64, vals []string) {
	t.Helper()
	require.NoError(t, walk(func(seq uint64, v []byte) (bool, error) {
		seqs = append(seqs, seq)
		vals = append(vals, string(v))
		return true, nil
	}))
	return seqs, vals
}

// TestEventQueue: events list in sequence order (numeric, not the order
// written), move to endpoints and to dead letters, and the last sequence
// number is found across the three spans.
func TestEventQueue(t *testing.T) {
	db := openTest(t)
	last, err := db.LastEventSeq()
	require.NoError(t, err)
	require.Zero(t, last)

	b := db.NewBatch()
	for _, seq := range []uint64{300, 2, 17, 1 << 40} {
		require.NoError(t, b.PutEvent(seq, fmt.Appendf(nil, "ev%d", seq)))
	}
	require.NoError(t, b.Commit(true))
	seqs, vals := collect(t, db.WalkEvents)
	require.Equal(t, []uint64{2, 17, 300, 1 << 40}, seqs)
	require.Equal(t, []string{"ev2", "ev17", "ev300", fmt.Sprintf("ev%d", uint64(1<<40))}, vals)
	last, err = db.LastEventSeq()
	require.NoError(t, err)
	require.Equal(t, uint64(1<<40), last)

	// Routing: the events go to endpoints (a, a-b: one is a prefix of
	// the other's name), the queue empties.
	b = db.NewBatch()
	for _, seq := range seqs {
		require.NoError(t, b.DeleteEvent(seq))
		require.NoError(t, b.PutDelivery("a", seq, []byte("to a")))
		if seq != 2 {
			require.NoError(t, b.PutDelivery("a-b", seq, []byte("to a-b")))
		}
	}
	require.NoError(t, b.PutDeadLetter("z", 5, []byte("dead")))
	require.NoError(t, b.Commit(true))
	seqs, _ = collect(t, db.WalkEvents)
	require.Empty(t, seqs)
	seqs, vals = collect(t, func(fn func(uint64, []byte) (bool, error)) error { return db.WalkDeliveries("a", fn) })
	require.Equal(t, []uint64{2, 17, 300, 1 << 40}, seqs)
	require.Equal(t, "to a", vals[0])
	seqs, _ = collect(t, func(fn func(uint64, []byte) (bool, error)) error { return db.WalkDeliveries("a-b", fn) })
	require.Equal(t, []uint64{17, 300, 1 << 40}, seqs)
	eps, err := db.DeliveryEndpoints()
	require.NoError(t, err)
	require.Equal(t, []string{"a", "a-b", "z"}, eps)
	last, err = db.LastEventSeq()
	require.NoError(t, err)
	require.Equal(t, uint64(1<<40), last)

	v, err := db.Delivery("a-b", 300)
	require.NoError(t, err)
	require.Equal(t, "to a-b", string(v))
	_, err = db.Delivery("a-b", 2)
	require.ErrorIs(t, err, ErrNotFound)

	// Delivered and given up: the last sequence number is the dead
	// letter's once the others are gone.
	b = db.NewBatch()
	for _, ep := range []string{"a", "a-b"} {
		for _, seq := range []uint64{2, 17, 300, 1 << 40} {
			require.NoError(t, b.DeleteDelivery(ep, seq))
		}
	}
	require.NoError(t, b.PutDeadLetter("a", 40, []byte("dead too")))
	require.NoError(t, b.Commit(true))
	last, err = db.LastEventSeq()
	require.NoError(t, err)
	require.Equal(t, uint64(40), last)
	eps, err = db.DeliveryEndpoints()
	require.NoError(t, err)
	require.Equal(t, []string{"a", "z"}, eps)
	seqs, vals = collect(t, func(fn func(uint64, []byte) (bool, error)) error { return db.WalkDeadLetters("a", fn) })
	require.Equal(t, []uint64{40}, seqs)
	require.Equal(t, []string{"dead too"}, vals)
	v, err = db.DeadLetter("z", 5)
	require.NoError(t, err)
	require.Equal(t, "dead", string(v))

	// Early stop.
	b = db.NewBatch()
	for seq := uint64(1); seq <= 5; seq++ {
		require.NoError(t, b.PutEvent(seq, nil))
	}
	require.NoError(t, b.Commit(false))
	n := 0
	require.NoError(t, db.WalkEvents(func(uint64, []byte) (bool, error) { n++; return n < 2, nil }))
	require.Equal(t, 2, n)

	// Bad endpoint names are refused.
	b = db.NewBatch()
	require.ErrorIs(t, b.PutDelivery("", 1, nil), ErrInvalidKey)
	require.ErrorIs(t, b.PutDelivery("a\x00b", 1, nil), ErrInvalidKey)
	require.NoError(t, b.Close())
}
