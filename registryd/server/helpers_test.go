package server

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/regtest"
)

// The shared test helpers under their short names.
var (
	newStore        = regtest.Engine
	do              = regtest.Do
	requireOCIError = regtest.RequireOCIError
	pushBlob        = regtest.PushBlob
	imageManifest   = regtest.ImageManifest
	writeHtpasswd   = regtest.WriteHtpasswd
	basic           = regtest.Basic
)

// newTestHandler returns a server over a fresh store.
func newTestHandler(t testing.TB, cfg Config) (*Server, *engine.Engine) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = regtest.Quiet()
	}
	st := newStore(t)
	s, err := New(st, cfg)
	require.NoError(t, err)
	return s, st
}
