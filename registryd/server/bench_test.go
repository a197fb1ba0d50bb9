package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkHeadManifest measures the HEAD path in process (no network):
// routing, logging, metrics, the tag lookup and the manifest record.
func BenchmarkHeadManifest(b *testing.B) {
	for _, accessLog := range []bool{false, true} {
		name := "access-log-off"
		if accessLog {
			name = "access-log-on"
		}
		b.Run(name, func(b *testing.B) {
			s, _ := newTestHandler(b, Config{DisableAccessLog: !accessLog})
			h := s.Handler()
			cfg := pushBlob(b, h, "bench/app", []byte(`{"os":"linux"}`))
			l := pushBlob(b, h, "bench/app", []byte("layer"))
			m := imageManifest(cfg, l, 14, 5, nil, "")
			const mt = "application/vnd.oci.image.manifest.v1+json"
			require.Equal(b, 201, do(h, http.MethodPut, "/v2/bench/app/manifests/v1", m, map[string]string{"Content-Type": mt}).Code)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodHead, "/v2/bench/app/manifests/v1", nil)
					req.Header.Set("Accept", mt)
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("HEAD: %d", rec.Code)
					}
				}
			})
		})
	}
}
