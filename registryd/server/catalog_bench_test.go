package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// BenchmarkCatalogAudit measures what the audit log costs a listing, as a
// ratio in one run: the whole catalog of 2,000 repositories, in pages of
// 1,000 (each page asks one question per repository; the listing is one
// record, with a record for each repository it hides), from
// one server whose store keeps an audit log and one whose store keeps
// none, in alternating rounds. It reports the wall time and the
// process's CPU time (getrusage: what other processes on a shared machine
// do not change) of one whole listing on each side, and the CPU ratio.
func BenchmarkCatalogAudit(b *testing.B) {
	const repos = 2000
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	handler := func(audit bool) http.Handler {
		e, err := engine.Open(b.TempDir(), &engine.Options{DisableAudit: !audit, Logger: quiet})
		require.NoError(b, err)
		b.Cleanup(func() { e.Close() })
		for i := range repos {
			_, err := e.CreateRepository(context.Background(), fmt.Sprintf("cat/r%05d", i), engine.RepositorySettings{})
			require.NoError(b, err)
		}
		s, err := New(e, Config{DisableAccessLog: true, Logger: quiet})
		require.NoError(b, err)
		return s.Handler()
	}
	sides := []http.Handler{handler(true), handler(false)}
	list := func(h http.Handler) {
		path, seen := "/v2/_catalog?n=1000", 0
		for path != "" {
			rec := do(h, http.MethodGet, path, nil, nil)
			require.Equal(b, http.StatusOK, rec.Code)
			seen += strings.Count(rec.Body.String(), "cat/r")
			path = ""
			if link := rec.Header().Get("Link"); link != "" {
				path = link[1:strings.Index(link, ">")]
			}
		}
		require.Equal(b, repos, seen)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var spent, used [2]time.Duration
	var lists [2]int
	b.ResetTimer()
	for i := range b.N {
		for k := range 2 {
			side := (k + i) % 2
			t, c := time.Now(), cpu()
			list(sides[side])
			spent[side] += time.Since(t)
			used[side] += cpu() - c
			lists[side]++
		}
	}
	b.StopTimer()
	per := func(d time.Duration, n int) float64 { return d.Seconds() * 1e3 / float64(n) }
	b.ReportMetric(per(spent[0], lists[0]), "ms/list-audit-on")
	b.ReportMetric(per(spent[1], lists[1]), "ms/list-audit-off")
	b.ReportMetric(per(used[0], lists[0]), "cpu-ms/list-audit-on")
	b.ReportMetric(per(used[1], lists[1]), "cpu-ms/list-audit-off")
	b.ReportMetric(float64(used[0])/float64(used[1]), "cpu-on/off")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCatalogListing10k measures one whole catalog of 10,000
// repositories (pages of 1,000, as the bench harness's catalog workload
// asks them) through the server's handler, from an open registry whose
// store keeps an audit log: every repository decided and the listing
// recorded. It reports the wall time and the process's CPU time of one
// listing.
func BenchmarkCatalogListing10k(b *testing.B) {
	const repos = 10000
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := engine.Open(b.TempDir(), &engine.Options{Logger: quiet})
	require.NoError(b, err)
	b.Cleanup(func() { e.Close() })
	for i := range repos {
		_, err := e.CreateRepository(context.Background(), fmt.Sprintf("cat/r%05d", i), engine.RepositorySettings{})
		require.NoError(b, err)
	}
	s, err := New(e, Config{DisableAccessLog: true, Logger: quiet})
	require.NoError(b, err)
	h := s.Handler()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var used time.Duration
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		c := cpu()
		path, seen := "/v2/_catalog?n=1000", 0
		for path != "" {
			rec := do(h, http.MethodGet, path, nil, nil)
			require.Equal(b, http.StatusOK, rec.Code)
			seen += strings.Count(rec.Body.String(), "cat/r")
			path = ""
			if link := rec.Header().Get("Link"); link != "" {
				path = link[1:strings.Index(link, ">")]
			}
		}
		require.Equal(b, repos, seen)
		used += cpu() - c
	}
	b.StopTimer()
	b.ReportMetric(time.Since(start).Seconds()*1e3/float64(b.N), "ms/list")
	b.ReportMetric(used.Seconds()*1e3/float64(b.N), "cpu-ms/list")
	b.ReportMetric(0, "ns/op")
}
