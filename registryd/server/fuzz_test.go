package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/registryd/internal/ecrapi"
	"github.com/berthstore/berth/registryd/internal/regtest"
)

// FuzzHandler drives the handler with random methods, paths, headers and
// bodies: it must never panic, never answer 5xx (every request here is a
// client's doing, and the in-memory store does not fail), and every error
// must be the spec's error JSON.
func FuzzHandler(f *testing.F) {
	d := digest.FromString("hello").String()
	seeds := []struct{ method, path, hdrName, hdrValue, body string }{
		{"GET", "/v2/", "", "", ""},
		{"POST", "/v2/r/blobs/uploads/?digest=" + d, "", "", "hello"},
		{"POST", "/v2/r/blobs/uploads/?mount=" + d + "&from=r", "", "", ""},
		{"PATCH", "/v2/r/blobs/uploads/x", "Content-Range", "0-4", "hello"},
		{"GET", "/v2/r/blobs/" + d, "Range", "bytes=0-1,3-", ""},
		{"PUT", "/v2/r/manifests/latest?tag=a", "Content-Type", "application/vnd.oci.image.manifest.v1+json", `{"schemaVersion":2}`},
		{"GET", "/v2/r/tags/list?n=1&last=a", "", "", ""},
		{"GET", "/v2/_catalog?n=-1", "", "", ""},
		{"GET", "/v2/r/referrers/" + d + "?artifactType=x", "", "", ""},
		{"DELETE", "/v2/../x/manifests/y", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.hdrName, s.hdrValue, []byte(s.body))
	}
	srv, _ := newTestHandler(f, Config{MaxManifestSize: 1 << 16})
	h := srv.Handler()
	// Known content, so that random requests reach deeper code.
	pushBlob(f, h, "r", []byte("hello"))
	f.Fuzz(func(t *testing.T, method, path, hdrName, hdrValue string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://registry"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		if hdrName != "" && regtest.ValidHeader(hdrName, hdrValue) {
			req.Header.Set(hdrName, hdrValue)
		}
		req.RemoteAddr = "127.0.0.1:1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s (%s: %q): %d %s", method, path, hdrName, hdrValue, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 && method != http.MethodHead && !ecrapi.IsRequest(req) { // FuzzECRAPI checks those
			var eb struct {
				Errors []struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || len(eb.Errors) == 0 || eb.Errors[0].Code == "" {
				t.Fatalf("%s %s: %d with a body that is no OCI error: %q", method, path, rec.Code, rec.Body.String())
			}
		}
	})
}
