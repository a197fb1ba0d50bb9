package events

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func testEvent(t testing.TB) *Event {
	ev, err := testOrigin.NewEvent("4d0c6f1e-8b2a-4c3d-9e5f-7a6b5c4d3e2f", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		ImageAction{Result: ResultSuccess, RepositoryName: "app", ImageDigest: testDigest, ActionType: ActionDelete, ImageTag: "v1"})
	require.NoError(t, err)
	return ev
}

func TestRecordsRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	q, err := NewQueued(testEvent(t), at, CauseLifecycle)
	require.NoError(t, err)
	require.Equal(t, "app", q.Repository)
	require.Equal(t, DetailImageAction, q.DetailType)
	back, err := DecodeQueued(EncodeQueued(q))
	require.NoError(t, err)
	require.Equal(t, q, back)
	ev, err := back.Event()
	require.NoError(t, err)
	require.Equal(t, testEvent(t).ID, ev.ID)

	d := &Delivery{Queued: *q, Attempts: 3, LastAttemptAt: at.Add(time.Second), LastError: "503 Service Unavailable",
		NextAttemptAt: at.Add(5 * time.Second), DeadAt: at.Add(time.Hour), DeadReason: "20 attempts"}
	bd, err := DecodeDelivery(EncodeDelivery(d))
	require.NoError(t, err)
	require.Equal(t, d, bd)
	fresh := &Delivery{Queued: *q}
	bd, err = DecodeDelivery(EncodeDelivery(fresh))
	require.NoError(t, err)
	require.Equal(t, fresh, bd)
	// Times before the epoch and the zero time differ.
	q.At = time.Unix(-5, 0).UTC()
	back, err = DecodeQueued(EncodeQueued(q))
	require.NoError(t, err)
	require.Equal(t, q.At, back.At)
}

// TestRecordsRefused: a record of an unknown version, cut short, with
// bytes after it, or without what every event has is refused
// (ErrInvalid), never half read.
func TestRecordsRefused(t *testing.T) {
	q, err := NewQueued(testEvent(t), time.Now(), "")
	require.NoError(t, err)
	good := EncodeDelivery(&Delivery{Queued: *q, Attempts: 2})
	noID := *q
	noID.ID = ""
	badType := *q
	badType.DetailType = "ECR Image Push"
	for name, b := range map[string][]byte{
		"empty":         nil,
		"version 2":     append([]byte{2}, good[1:]...),
		"cut":           good[:len(good)-3],
		"trailing":      append(append([]byte(nil), good...), 0),
		"no id":         EncodeDelivery(&Delivery{Queued: noID}),
		"detail type":   EncodeDelivery(&Delivery{Queued: badType}),
		"huge attempts": EncodeDelivery(&Delivery{Queued: *q, Attempts: 1 << 40}),
	} {
		_, err := DecodeDelivery(b)
		require.ErrorIs(t, err, ErrInvalid, name)
	}
	_, err = DecodeQueued(append([]byte{9}, EncodeQueued(q)[1:]...))
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewQueued(&Event{}, time.Now(), "")
	require.ErrorIs(t, err, ErrInvalid)
}

// FuzzDecodeDelivery: a damaged stored record decodes or fails with
// ErrInvalid, never panics; what decodes encodes and decodes alike.
func FuzzDecodeDelivery(f *testing.F) {
	q, _ := NewQueued(testEvent(f), time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), CauseLifecycle)
	f.Add(EncodeDelivery(&Delivery{Queued: *q, Attempts: 2, LastError: "x"}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDelivery(b)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		again, err := DecodeDelivery(EncodeDelivery(d))
		require.NoError(t, err)
		require.Equal(t, d, again)
	})
}

// TestQueueIsNewEvent: Queue encodes what NewEvent and NewQueued do.
func TestQueueIsNewEvent(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 5, time.UTC)
	for _, d := range []Detail{
		ImageAction{Result: ResultSuccess, RepositoryName: "app", ImageDigest: testDigest, ActionType: ActionPush, ImageTag: "v1"},
		PullThroughCacheAction{RuleVersion: "1", SyncStatus: ResultFailed, RepositoryName: "hub/x", FailureCode: "X"},
		ImageScan{ScanStatus: ScanComplete, RepositoryName: "app", ImageDigest: testDigest},
		ReplicationAction{Result: ResultSuccess, RepositoryName: "app", ImageDigest: testDigest, ActionType: ActionReplicate},
	} {
		ev, err := testOrigin.NewEvent("id-1", at, d)
		require.NoError(t, err)
		want, err := NewQueued(ev, at, CauseLifecycle)
		require.NoError(t, err)
		got, err := testOrigin.Queue("id-1", at, d, CauseLifecycle)
		require.NoError(t, err)
		require.Equal(t, want, got, "%T", d)
	}
	_, err := testOrigin.Queue("", at, ImageAction{}, "")
	require.ErrorIs(t, err, ErrInvalid)
}
