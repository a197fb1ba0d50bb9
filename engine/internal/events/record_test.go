package events

import (
	"encoding/json"
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
	q := &Queued{At: at, Cause: CauseLifecycle, Event: testEvent(t)}
	b, err := EncodeQueued(q)
	require.NoError(t, err)
	back, err := DecodeQueued(b)
	require.NoError(t, err)
	require.Equal(t, q.At, back.At)
	require.Equal(t, q.Cause, back.Cause)
	require.Equal(t, q.Event.ID, back.Event.ID)

	d := &Delivery{Queued: *q, Attempts: 3, LastAttemptAt: at.Add(time.Second), LastError: "503 Service Unavailable",
		NextAttemptAt: at.Add(5 * time.Second), DeadAt: at.Add(time.Hour), DeadReason: "20 attempts"}
	b, err = EncodeDelivery(d)
	require.NoError(t, err)
	bd, err := DecodeDelivery(b)
	require.NoError(t, err)
	want, _ := json.Marshal(d.Event)
	got, _ := json.Marshal(bd.Event)
	require.JSONEq(t, string(want), string(got))
	bd.Event, d.Event = nil, nil
	require.Equal(t, d, bd)
}

// TestRecordsRefused: a record of an unknown version, with a field the
// reader does not know, without an event, or with a broken one is
// refused (ErrInvalid), never half read.
func TestRecordsRefused(t *testing.T) {
	ev, _ := json.Marshal(testEvent(t))
	for name, text := range map[string]string{
		"version 2":      `{"version":2,"at":"2026-11-23T10:00:00Z","event":` + string(ev) + `}`,
		"unknown field":  `{"version":1,"at":"2026-11-23T10:00:00Z","priority":1,"event":` + string(ev) + `}`,
		"no event":       `{"version":1,"at":"2026-11-23T10:00:00Z"}`,
		"broken event":   `{"version":1,"at":"2026-11-23T10:00:00Z","event":{"version":"0"}}`,
		"trailing":       `{"version":1,"at":"2026-11-23T10:00:00Z","event":` + string(ev) + `} {}`,
		"not json":       `version 1`,
		"negative tries": `{"version":1,"at":"2026-11-23T10:00:00Z","attempts":-1,"event":` + string(ev) + `}`,
	} {
		_, err := DecodeDelivery([]byte(text))
		require.ErrorIs(t, err, ErrInvalid, name)
		if name != "negative tries" {
			_, err = DecodeQueued([]byte(text))
			require.ErrorIs(t, err, ErrInvalid, name)
		}
	}
}

// FuzzDecodeDelivery: a damaged stored record decodes or fails with
// ErrInvalid, never panics; what decodes encodes again and decodes alike.
func FuzzDecodeDelivery(f *testing.F) {
	ev, _ := json.Marshal(testEvent(f))
	f.Add([]byte(`{"version":1,"at":"2026-11-23T10:00:00Z","attempts":2,"event":` + string(ev) + `}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDelivery(b)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		again, err := EncodeDelivery(d)
		require.NoError(t, err)
		_, err = DecodeDelivery(again)
		require.NoError(t, err)
	})
}
