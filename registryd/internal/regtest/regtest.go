// Package regtest holds the helpers that the tests of registryd's
// handlers share: a real engine in a temporary directory, one request
// through a handler, the OCI and ECR error checks, and the blobs and
// manifests tests push. Only tests import it.
package regtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/engine"
)

// The ECR API's protocol: the X-Amz-Target prefix of every call and the
// AWS JSON 1.1 media type.
const (
	ECRTargetPrefix = "AmazonEC2ContainerRegistry_V20150921."
	ECRContentType  = "application/x-amz-json-1.1"
)

// Quiet is a logger that writes nothing.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Engine opens a real engine in a temporary directory, creating
// repositories on push as registryd does by default, closed at the end of
// the test.
func Engine(t testing.TB) *engine.Engine {
	t.Helper()
	e, err := engine.Open(t.TempDir(), &engine.Options{CreateOnPush: true, FrameSize: 64 << 10, Logger: Quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

// Do sends one request to h and returns the recorded answer.
func Do(h http.Handler, method, target string, body []byte, hdr map[string]string) *httptest.ResponseRecorder {
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

// ECRDo sends one ECR API call to h, unsigned.
func ECRDo(h http.Handler, op, body string) *httptest.ResponseRecorder {
	return Do(h, http.MethodPost, "/", []byte(body), map[string]string{
		"X-Amz-Target": ECRTargetPrefix + op, "Content-Type": ECRContentType})
}

// RequireOCIError checks that rec is the OCI spec's error JSON with code.
func RequireOCIError(t testing.TB, rec *httptest.ResponseRecorder, status int, code string) {
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

// ECRError is the body of an AWS JSON 1.1 error.
type ECRError struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

// RequireECRError checks that rec is an AWS JSON 1.1 error of type typ
// with status.
func RequireECRError(t testing.TB, rec *httptest.ResponseRecorder, status int, typ string) {
	t.Helper()
	require.Equal(t, status, rec.Code, "body: %s", rec.Body.String())
	require.Equal(t, typ, rec.Header().Get("X-Amzn-ErrorType"))
	var eb ECRError
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &eb), "body: %s", rec.Body.String())
	require.Equal(t, typ, eb.Type)
	require.NotEmpty(t, eb.Message)
}

// PushBlob pushes data monolithically into repo.
func PushBlob(t testing.TB, h http.Handler, repo string, data []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(data)
	rec := Do(h, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	return d
}

// ImageManifest is a minimal OCI image manifest over config and layer.
func ImageManifest(config, layer digest.Digest, configSize, layerSize int, subject *digest.Digest, artifactType string) []byte {
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

// WriteHtpasswd writes a one-user htpasswd file (bcrypt, minimum cost)
// and returns its path.
func WriteHtpasswd(t testing.TB, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "htpasswd")
	require.NoError(t, os.WriteFile(p, []byte("# users\n"+user+":"+string(h)+"\n"), 0o600))
	return p
}

// Basic is the Authorization header of basic credentials.
func Basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// ValidHeader reports whether a header could be sent by net/http (for
// fuzz targets).
func ValidHeader(name, value string) bool {
	if name == "" || !utf8.ValidString(name) {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	for _, c := range value {
		if c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}
