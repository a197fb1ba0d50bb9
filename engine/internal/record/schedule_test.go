package record

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var runAt = time.Date(2026, 11, 23, 10, 15, 0, 123456789, time.UTC)

// The records of previews and schedules: their stored form pinned, read
// back, and what is not theirs refused.
func TestScheduleRecords(t *testing.T) {
	p := Preview{Policy: `{"rules":[]}`, Status: "COMPLETE", StartedAt: runAt, FinishedAt: runAt.Add(time.Second), Expiring: 2}
	b, err := EncodePreview(p)
	require.NoError(t, err)
	assert.Equal(t, `{"version":1,"policy":"{\"rules\":[]}","status":"COMPLETE","startedAt":"2026-11-23T10:15:00.123456789Z","finishedAt":"2026-11-23T10:15:01.123456789Z","expiring":2}`, string(b))
	got, v, err := DecodePreview(b)
	require.NoError(t, err)
	assert.Equal(t, p, got)
	assert.Equal(t, PreviewVersion, v)

	r := PreviewResult{Tags: []string{"a"}, PushedAt: runAt, RulePriority: 3, Description: "old", Action: "EXPIRE"}
	b, err = EncodePreviewResult(r)
	require.NoError(t, err)
	assert.Equal(t, `{"tags":["a"],"pushedAt":"2026-11-23T10:15:00.123456789Z","rulePriority":3,"description":"old","action":"EXPIRE"}`, string(b))
	gr, err := DecodePreviewResult(b, v)
	require.NoError(t, err)
	assert.Equal(t, r, gr)
	_, err = DecodePreviewResult(b, 2)
	require.ErrorIs(t, err, ErrVersion)

	s := Schedule{NextDue: runAt, Running: true, RunID: "r1", StartedAt: runAt, Cursor: "team/a"}
	b, err = EncodeSchedule(s)
	require.NoError(t, err)
	assert.Equal(t, `{"version":1,"nextDue":"2026-11-23T10:15:00.123456789Z","running":true,"runId":"r1","startedAt":"2026-11-23T10:15:00.123456789Z","cursor":"team/a"}`, string(b))
	gs, err := DecodeSchedule(b)
	require.NoError(t, err)
	assert.Equal(t, s, gs)

	for _, bad := range []string{`{"version":2,"policy":""}`, `{"policy":""}`} {
		_, _, err := DecodePreview([]byte(bad))
		require.ErrorIs(t, err, ErrVersion, bad)
	}
	_, _, err = DecodePreview([]byte(`{"version":1,"policy":"","extra":1}`))
	require.Error(t, err)
	_, err = DecodeSchedule([]byte(`{"version":1,"cursor":"a"} {}`))
	require.Error(t, err)
	_, err = DecodeSchedule([]byte(`{"version":9}`))
	require.ErrorIs(t, err, ErrVersion)
	_, err = DecodePreviewResult([]byte(`{"action":"EXPIRE","x":1}`), 1)
	require.Error(t, err)
}
