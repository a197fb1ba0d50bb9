package e2e

// Benchmarks of the console against a real registryd on 127.0.0.1 (go
// test -bench Console -benchtime=1x ./registryd/e2e): the repository list
// of 10,000 repositories and the listing of /usr/lib of a Debian base
// image, each by 8 signed-in clients at once (latency per request as the
// client sees it, an upper bound of the server time, and the server time
// of the console's histogram); and the time to show /etc/os-release of an
// image never opened before against `crane export | tar -x`.
// bench/RESULTS.md, section "Console", has a run.

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/internal/testenv"
	"github.com/berthstore/berth/registryd/internal/console/consoletest"
	"github.com/berthstore/berth/registryd/internal/regtest"
)

// consoleClients is how many clients ask at once.
const consoleClients = 8

// loadConsole has consoleClients clients GET path perClient times each
// (after one warm-up request) and reports p50, p99 and max latency, and
// the console's server-side mean for page from its histogram.
func loadConsole(b *testing.B, reg *consoletest.Registry, path, page string, perClient int) {
	b.Helper()
	clients := make([]*http.Client, consoleClients)
	for i := range clients {
		clients[i] = reg.SignIn(b, consoletest.Admin)
	}
	// get answers the client's latency and the server's time (its
	// Server-Timing header).
	get := func(c *http.Client) (time.Duration, time.Duration) {
		start := time.Now()
		resp, err := c.Get(reg.URL + path)
		if err != nil {
			b.Error(err)
			return 0, 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Errorf("%s: %d", path, resp.StatusCode)
		}
		return time.Since(start), serverTiming(b, resp)
	}
	first, _ := get(clients[0])
	sum0, n0 := pageTime(b, reg, page)
	var mu sync.Mutex
	var lat, srv []time.Duration
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, perClient)
			mineSrv := make([]time.Duration, 0, perClient)
			for range perClient {
				l, s := get(c)
				mine, mineSrv = append(mine, l), append(mineSrv, s)
			}
			mu.Lock()
			lat, srv = append(lat, mine...), append(srv, mineSrv...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	b.StopTimer()
	sum1, n1 := pageTime(b, reg, page)
	slices.Sort(lat)
	slices.Sort(srv)
	q := func(ds []time.Duration, p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	serverMean := time.Duration((sum1 - sum0) / float64(n1-n0) * float64(time.Second))
	b.ReportMetric(ms(q(srv, 0.5)), "server-p50-ms")
	b.ReportMetric(ms(q(srv, 0.99)), "server-p99-ms")
	b.ReportMetric(ms(q(lat, 0.5)), "client-p50-ms")
	b.ReportMetric(ms(q(lat, 0.99)), "client-p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "client-max-ms")
	b.ReportMetric(float64(len(lat))/wall.Seconds(), "req/s")
	b.Logf("%s: first request %v; %d requests by %d clients: server time p50 %v, p99 %v, max %v, mean %v (histogram); client latency p50 %v, p99 %v, max %v; %.0f req/s",
		path, first.Round(time.Microsecond), len(lat), consoleClients,
		q(srv, 0.5).Round(time.Microsecond), q(srv, 0.99).Round(time.Microsecond), srv[len(srv)-1].Round(time.Microsecond), serverMean.Round(time.Microsecond),
		q(lat, 0.5).Round(time.Microsecond), q(lat, 0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond),
		float64(len(lat))/wall.Seconds())
}

// serverTiming is the console's time of an answer (its Server-Timing
// header, page;dur=<ms>).
func serverTiming(b *testing.B, resp *http.Response) time.Duration {
	v := resp.Header.Get("Server-Timing")
	_, dur, ok := strings.Cut(v, "dur=")
	if !ok {
		b.Errorf("no Server-Timing: %q", v)
		return 0
	}
	ms, err := strconv.ParseFloat(dur, 64)
	if err != nil {
		b.Error(err)
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// pageTime reads the console's page-time histogram of page: the sum of
// seconds and the count.
func pageTime(b *testing.B, reg *consoletest.Registry, page string) (float64, uint64) {
	b.Helper()
	mfs, err := reg.Server.MetricsRegistry().Gather()
	require.NoError(b, err)
	for _, mf := range mfs {
		if mf.GetName() != "berth_console_page_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelOf(m, "page") == page {
				return m.GetHistogram().GetSampleSum(), m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0, 0
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// BenchmarkConsoleRepositoryList: the repository list of 10,000
// repositories (one small image each), sorted by name (the first page)
// and by size (every repository's figures sorted), 8 clients.
func BenchmarkConsoleRepositoryList(b *testing.B) {
	reg := consoletest.Start(b, consoletest.Options{})
	ctx := context.Background()
	const repos = 10_000
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				pushTinyImage(b, reg.Engine, fmt.Sprintf("team-%02d/service-%05d", i%50, i), i)
			}
		}()
	}
	for i := range repos {
		next <- i
	}
	close(next)
	wg.Wait()
	n, err := reg.Engine.ListRepositories(ctx, "", 0)
	require.NoError(b, err)
	require.Len(b, n, repos)
	b.Logf("%d repositories with one image each made in %v", repos, time.Since(start).Round(time.Millisecond))
	for _, sortBy := range []string{"name", "size", "pushed"} {
		b.Run("sort="+sortBy, func(b *testing.B) {
			loadConsole(b, reg, "/console/repositories?sort="+sortBy, "repositories", 25)
		})
	}
	b.Run("search", func(b *testing.B) {
		loadConsole(b, reg, "/console/repositories?q=service-0999&sort=size", "repositories", 25)
	})
}

// pushTinyImage stores a one-layer image of its own bytes in repo,
// through the engine (the benchmark is of the listing, not of pushes).
func pushTinyImage(b *testing.B, e *engine.Engine, repo string, i int) {
	ctx := context.Background()
	layer := []byte(fmt.Sprintf("layer %d %s", i, strings.Repeat("x", i%4096)))
	config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","n":%d}`, i))
	ld, err := e.PutBlob(ctx, repo, strings.NewReader(string(layer)), "")
	if err != nil {
		b.Error(err)
		return
	}
	cd, err := e.PutBlob(ctx, repo, strings.NewReader(string(config)), "")
	if err != nil {
		b.Error(err)
		return
	}
	m := regtest.ImageManifest(cd.Digest, ld.Digest, len(config), len(layer), nil, "")
	if _, err := e.PutManifest(ctx, repo, "v1", "application/vnd.oci.image.manifest.v1+json", m); err != nil {
		b.Error(err)
	}
}

// BenchmarkConsoleDirectoryListing: the file browser's listing of
// /usr/lib of a Debian base image (its layer tables built by a first
// view), 8 clients.
func BenchmarkConsoleDirectoryListing(b *testing.B) {
	reg, _ := debianRegistry(b, "")
	status, body := consoletest.Get(b, reg.SignIn(b, consoletest.Admin), reg.URL+"/console/files?repo=debian/base&ref=v1&path=/usr/lib")
	require.Equal(b, http.StatusOK, status)
	n := strings.Count(body, `class="entry"`)
	b.Run("dir=/usr/lib", func(b *testing.B) {
		b.Logf("/usr/lib lists %d entries", n)
		loadConsole(b, reg, "/console/files?repo=debian/base&ref=v1&path=/usr/lib", "files", 50)
	})
	// The largest directory of the image.
	status, body = consoletest.Get(b, reg.SignIn(b, consoletest.Admin), reg.URL+"/console/files?repo=debian/base&ref=v1&path=/usr/lib/x86_64-linux-gnu")
	require.Equal(b, http.StatusOK, status)
	n = strings.Count(body, `class="entry"`)
	b.Run("dir=/usr/lib/x86_64-linux-gnu", func(b *testing.B) {
		b.Logf("/usr/lib/x86_64-linux-gnu lists %d entries", n)
		loadConsole(b, reg, "/console/files?repo=debian/base&ref=v1&path=/usr/lib/x86_64-linux-gnu", "files", 50)
	})
}

// debianRegistry starts a registry in dir (a temporary one when "")
// holding the Debian base image as debian/base:v1, pushed with a real
// client, and returns it and the image's reference.
func debianRegistry(b *testing.B, dir string) (*consoletest.Registry, string) {
	base := debianBaseLayer(b)
	reg := consoletest.Start(b, consoletest.Options{Dir: dir})
	l, err := tarball.LayerFromFile(base)
	require.NoError(b, err)
	img, err := mutate.AppendLayers(empty.Image, l)
	require.NoError(b, err)
	reg.Push(b, "debian/base", "v1", img)
	return reg, reg.Host + "/debian/base:v1"
}

// BenchmarkConsoleFirstView: how long until /etc/os-release of an image
// nobody opened before is on screen (the console's first view builds the
// layer tables: each gzip layer decompressed into a seekable tar and
// indexed), in a registry just started on the store; then the same file
// in a registry started again on that store (the tables built, no cache
// warm); against `crane export REF - | tar -x` and reading the file
// from the disk. The page cache is not dropped (the machine is shared).
func BenchmarkConsoleFirstView(b *testing.B) {
	crane := testenv.NeedTool(b, "crane")
	testenv.NeedTool(b, "tar")
	dir := b.TempDir()
	reg, ref := debianRegistry(b, dir)
	reg.Stop()

	view := func() time.Duration {
		reg := consoletest.Start(b, consoletest.Options{Dir: dir})
		defer reg.Stop()
		c := reg.SignIn(b, consoletest.Admin)
		start := time.Now()
		status, body := consoletest.Get(b, c, reg.URL+"/console/files?repo=debian/base&ref=v1&path=/usr/lib/os-release")
		d := time.Since(start)
		require.Equal(b, http.StatusOK, status)
		require.Contains(b, body, "ID=debian")
		return d
	}
	b.ResetTimer()
	first := view()
	again := view()

	reg = consoletest.Start(b, consoletest.Options{Dir: dir})
	ref = reg.Host + "/debian/base:v1"
	out := b.TempDir()
	start := time.Now()
	cmd := exec.Command("bash", "-c", fmt.Sprintf("%s export --insecure %s - | tar -x -C %s", crane, ref, out))
	cmd.Env = append(os.Environ(), "HOME="+b.TempDir())
	require.NoError(b, writeCraneAuth(cmd, reg.Host))
	outb, err := cmd.CombinedOutput()
	require.NoError(b, err, string(outb))
	text, err := os.ReadFile(filepath.Join(out, "usr/lib/os-release"))
	exported := time.Since(start)
	require.NoError(b, err)
	require.Contains(b, string(text), "ID=debian")
	b.StopTimer()
	b.ReportMetric(float64(first.Milliseconds()), "first-view-ms")
	b.ReportMetric(float64(again.Milliseconds()), "tables-built-view-ms")
	b.ReportMetric(float64(exported.Milliseconds()), "crane-export-ms")
	b.Logf("/usr/lib/os-release on screen: %v the first time (layer tables built), %v in a registry started again (tables built, nothing warm); crane export | tar -x then read: %v (%.1fx, %.1fx)",
		first.Round(time.Millisecond), again.Round(time.Millisecond), exported.Round(time.Millisecond),
		float64(exported)/float64(first), float64(exported)/float64(again))
}

// writeCraneAuth gives crane (through cmd's HOME) the admin's basic
// credentials for host.
func writeCraneAuth(cmd *exec.Cmd, host string) error {
	var home string
	for _, e := range cmd.Env {
		if v, ok := strings.CutPrefix(e, "HOME="); ok {
			home = v
		}
	}
	if err := os.MkdirAll(filepath.Join(home, ".docker"), 0o700); err != nil {
		return err
	}
	auth := base64.StdEncoding.EncodeToString([]byte(consoletest.Admin + ":" + consoletest.Password))
	return os.WriteFile(filepath.Join(home, ".docker", "config.json"),
		[]byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)), 0o600)
}
