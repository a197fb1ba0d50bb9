package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/engine"
)

// downableKeys is the store's real keyring behind a switch: with it down,
// every call fails as an unreachable HSM does (crypt.ErrUnavailable).
type downableKeys struct {
	*crypt.Keyring
	down atomic.Bool
}

func (k *downableKeys) check() error {
	if k.down.Load() {
		return fmt.Errorf("%w: the test took the key provider away", crypt.ErrUnavailable)
	}
	return nil
}

func (k *downableKeys) Wrap(ctx context.Context, name string, dk, ad []byte) (crypt.WrappedKey, error) {
	if err := k.check(); err != nil {
		return crypt.WrappedKey{}, err
	}
	return k.Keyring.Wrap(ctx, name, dk, ad)
}

func (k *downableKeys) Unwrap(ctx context.Context, w crypt.WrappedKey, ad []byte) ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	return k.Keyring.Unwrap(ctx, w, ad)
}

// TestKeyProviderDownAnswers503: while the key provider is unreachable a
// push that needs a new wrap gets 503 UNAVAILABLE with Retry-After, reads
// of blobs whose data keys are cached go on, nothing is lost, and pushes
// work again when the provider is back, without a restart.
func TestKeyProviderDownAnswers503(t *testing.T) {
	dir := t.TempDir()
	kr, err := crypt.OpenKeyring(filepath.Join(dir, "keyring.json"))
	require.NoError(t, err)
	keys := &downableKeys{Keyring: kr}
	e, err := engine.Open(dir, &engine.Options{CreateOnPush: true, KeyProvider: keys, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	s, err := New(e, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	h := s.Handler()

	d := pushBlob(t, h, "r", []byte("pushed before the outage"))
	require.Equal(t, 200, do(h, http.MethodGet, "/v2/r/blobs/"+d.String(), nil, nil).Code) // caches its data key

	keys.down.Store(true)
	rec := do(h, http.MethodPost, "/v2/r/blobs/uploads/", nil, nil)
	requireOCIError(t, rec, 503, "UNAVAILABLE")
	assert.NotEmpty(t, rec.Header().Get("Retry-After"))
	rec = do(h, http.MethodGet, "/v2/r/blobs/"+d.String(), nil, nil)
	require.Equal(t, 200, rec.Code, "a read whose data key is cached goes on")
	assert.Equal(t, "pushed before the outage", rec.Body.String())

	keys.down.Store(false)
	d2 := pushBlob(t, h, "r", []byte("pushed after the outage"))
	for _, dg := range []string{d.String(), d2.String()} {
		require.Equal(t, 200, do(h, http.MethodGet, "/v2/r/blobs/"+dg, nil, nil).Code)
	}
}
