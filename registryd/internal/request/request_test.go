package request

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInfo(t *testing.T) {
	info := &Info{Route: "unknown"}
	ctx := WithInfo(context.Background(), info)
	InfoFrom(ctx).Route = "manifest"
	assert.Equal(t, "manifest", info.Route, "handlers fill in the server's record")
	InfoFrom(context.Background()).Route = "x" // no record: harmless
}

// TestNewRequestID: request ids are version 4 UUIDs, and differ.
func TestNewRequestID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewRequestID()
		require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, id)
		require.False(t, seen[id])
		seen[id] = true
	}
}

// brokenReader fails after its bytes.
type brokenReader struct{ r io.Reader }

func (b brokenReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset")
	}
	return n, err
}

func TestBody(t *testing.T) {
	r := httptest.NewRequest("PUT", "/", strings.NewReader("hello"))
	b := BodyOf(r)
	assert.Same(t, b, BodyOf(r), "wrapped once")
	data, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(data))
	assert.Equal(t, int64(5), b.N())
	require.NoError(t, b.Err(), "EOF is no error")

	broken := NewBody(io.NopCloser(brokenReader{strings.NewReader("abc")}))
	_, err = io.ReadAll(broken)
	require.Error(t, err)
	assert.EqualError(t, broken.Err(), "connection reset")
	assert.Equal(t, int64(3), broken.N())
}

func TestUploads(t *testing.T) {
	var u Uploads
	require.NoError(t, u.Begin())
	require.NoError(t, u.Begin())
	assert.Equal(t, int64(2), u.InProgress())
	u.End()
	u.Close()
	require.ErrorIs(t, u.Begin(), ErrShuttingDown, "no new upload after Close")
	// Wait is bounded: one upload is still open. A short timeout is the
	// point of this check, not a race to win.
	assert.False(t, u.Wait(10*time.Millisecond))
	u.End()
	assert.True(t, u.Wait(time.Second))
	assert.Zero(t, u.InProgress())
}
