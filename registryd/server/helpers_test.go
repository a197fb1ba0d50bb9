package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/engine/enginetest"
)

// newStore opens a real engine in a temporary directory, creating
// repositories on push as registryd does by default.
func newStore(t testing.TB) *engine.Engine {
	t.Helper()
	return enginetest.Open(t, &engine.Options{CreateOnPush: true, FrameSize: 64 << 10})
}

// newTestHandler returns a server over a fresh store.
func newTestHandler(t testing.TB, cfg Config) (*Server, *engine.Engine) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st := newStore(t)
	s, err := New(st, cfg)
	require.NoError(t, err)
	return s, st
}

// do sends one request to h and returns the recorded answer.
func do(h http.Handler, method, target string, body []byte, hdr map[string]string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// requireOCIError checks that rec is the spec's error JSON with code.
func requireOCIError(t testing.TB, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	require.Equal(t, status, rec.Code, "body: %s", rec.Body.String())
	var body struct {
		Errors []struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Detail  json.RawMessage `json:"detail"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), "body: %s", rec.Body.String())
	require.Len(t, body.Errors, 1)
	require.Equal(t, code, body.Errors[0].Code)
	require.NotEmpty(t, body.Errors[0].Message)
}

// pushBlob pushes data monolithically into repo.
func pushBlob(t testing.TB, h http.Handler, repo string, data []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(data)
	rec := do(h, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	return d
}

// imageManifest is a minimal OCI image manifest over config and layer.
func imageManifest(config, layer digest.Digest, configSize, layerSize int, subject *digest.Digest, artifactType string) []byte {
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": configSize},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layerSize}},
	}
	if artifactType != "" {
		m["artifactType"] = artifactType
	}
	if subject != nil {
		m["subject"] = map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": *subject, "size": 1}
	}
	b, _ := json.Marshal(m)
	return b
}
