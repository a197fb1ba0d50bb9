package server

import (
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/engine/enginetest"
)

// TestKeyProviderDownAnswers503: while the key provider is unreachable a
// push that needs a new wrap gets 503 UNAVAILABLE with Retry-After, reads
// of blobs whose data keys are cached go on, nothing is lost, and pushes
// work again when the provider is back, without a restart.
func TestKeyProviderDownAnswers503(t *testing.T) {
	dir := t.TempDir()
	keys := enginetest.NewKeys(t, dir)
	e := enginetest.OpenDir(t, dir, &engine.Options{CreateOnPush: true, KeyProvider: keys})
	s, err := New(e, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	h := s.Handler()

	d := pushBlob(t, h, "r", []byte("pushed before the outage"))
	require.Equal(t, 200, do(h, http.MethodGet, "/v2/r/blobs/"+d.String(), nil, nil).Code) // caches its data key

	keys.SetDown(true)
	rec := do(h, http.MethodPost, "/v2/r/blobs/uploads/", nil, nil)
	requireOCIError(t, rec, 503, "UNAVAILABLE")
	assert.NotEmpty(t, rec.Header().Get("Retry-After"))
	rec = do(h, http.MethodGet, "/v2/r/blobs/"+d.String(), nil, nil)
	require.Equal(t, 200, rec.Code, "a read whose data key is cached goes on")
	assert.Equal(t, "pushed before the outage", rec.Body.String())

	keys.SetDown(false)
	d2 := pushBlob(t, h, "r", []byte("pushed after the outage"))
	for _, dg := range []string{d.String(), d2.String()} {
		require.Equal(t, 200, do(h, http.MethodGet, "/v2/r/blobs/"+dg, nil, nil).Code)
	}
}
