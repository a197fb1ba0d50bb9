package server

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// BenchmarkPushAudit measures what the audit log costs a push, as a ratio
// in one run: one server whose store keeps an audit log and one whose
// store keeps none (both open registries, as the bench harness runs
// registryd), in alternating phases of 10 pushes each. A push is what
// the harness's client does for a small image into a new repository
// (create on push): for the config and a 16 KiB layer a POST that starts
// a session and the PUT that completes it, then the manifest's PUT; one
// goroutine, so that each sync is on the request's path. It reports the
// wall time per push of each side and their ratio.
func BenchmarkPushAudit(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	handler := func(audit bool) http.Handler {
		e, err := engine.Open(b.TempDir(), &engine.Options{CreateOnPush: true, DisableAudit: !audit, Logger: quiet})
		require.NoError(b, err)
		b.Cleanup(func() { e.Close() })
		s, err := New(e, Config{DisableAccessLog: true, Logger: quiet})
		require.NoError(b, err)
		return s.Handler()
	}
	sides := []http.Handler{handler(true), handler(false)}
	var spent [2]time.Duration
	var pushes [2]int
	n := 0
	push := func(h http.Handler) {
		n++
		repo := fmt.Sprintf("bench/r%06d", n)
		layer := make([]byte, 16<<10)
		_, _ = rand.Read(layer)
		config := []byte(fmt.Sprintf(`{"os":"linux","n":%d}`, n))
		for _, blob := range [][]byte{config, layer} {
			rec := do(h, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
			require.Equal(b, http.StatusAccepted, rec.Code, rec.Body.String())
			loc := rec.Header().Get("Location")
			sep := "?"
			if strings.Contains(loc, "?") {
				sep = "&"
			}
			rec = do(h, http.MethodPut, loc+sep+"digest="+digest.FromBytes(blob).String(), blob, map[string]string{"Content-Type": "application/octet-stream"})
			require.Equal(b, http.StatusCreated, rec.Code, rec.Body.String())
		}
		m := imageManifest(digest.FromBytes(config), digest.FromBytes(layer), len(config), len(layer), nil, "")
		rec := do(h, http.MethodPut, "/v2/"+repo+"/manifests/v1", m, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
		require.Equal(b, http.StatusCreated, rec.Code, rec.Body.String())
	}
	const phase = 10
	b.ResetTimer()
	for done, round := 0, 0; done < b.N; round++ {
		for k := range 2 {
			side := (k + round) % 2
			t := time.Now()
			for range phase {
				push(sides[side])
			}
			spent[side] += time.Since(t)
			pushes[side] += phase
		}
		done += 2 * phase
	}
	b.StopTimer()
	on := spent[0].Seconds() * 1e6 / float64(pushes[0])
	off := spent[1].Seconds() * 1e6 / float64(pushes[1])
	b.ReportMetric(on, "µs/push-audit-on")
	b.ReportMetric(off, "µs/push-audit-off")
	b.ReportMetric(on/off, "on/off")
	b.ReportMetric(0, "ns/op")
}
