package main

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/server"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWorkloadsInProcess runs the HTTP workloads, at toy sizes, against
// Berth served inside the test process: the client, the generator and
// the figures end to end.
func TestWorkloadsInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	b := &Bench{
		P: Params{BigMiB: 1, SmallN: 3, SmallKiB: 64, Conc: []int{1, 2}, Dur: 50 * time.Millisecond,
			Tags: 20, Repos: 20, DedupeN: 3, DedupeKiB: 64, ColdManifests: 200, ListRepeat: 1},
		Gen:     NewGen(1),
		Servers: []*Server{{Name: "berth", Style: StyleBerth, InProcess: true}},
		Work:    t.TempDir(),
		Res:     NewResults(),
		Logf:    t.Logf,
	}
	ctx := context.Background()
	for _, w := range Workloads {
		switch w.Name {
		case "push-pull", "manifest", "tags", "catalog", "dedupe":
			require.NoError(t, w.Run(b, ctx), w.Name)
		}
	}
	require.Zero(t, b.Failed, "notes: %v", b.Res.Notes)
	tests := []struct{ workload, metric string }{
		{"push-pull", "push big image, 1 client"},
		{"push-pull", "pull small images, 2 clients"},
		{"manifest", "HEAD rps, 2 clients"},
		{"manifest", "GET p99, 1 client"},
		{"tags", "list 20 tags"},
		{"tags", "tag one manifest 20 times, 1 client"},
		{"catalog", "catalog of 21 repositories (pages of 1000)"},
		{"dedupe", "bytes on disk"},
	}
	for _, tc := range tests {
		f := b.Res.Get(tc.workload, tc.metric)
		require.NotNil(t, f, "%s / %s", tc.workload, tc.metric)
		assert.Greater(t, f.Values["berth"], 0.0, "%s / %s", tc.workload, tc.metric)
	}
}

// TestAccessControlInProcess runs the access-control workload at toy
// sizes against servers in the test process: the identity file, the
// repository policy, the login token and the enforcement checks are
// real, and every configuration gets its figures.
func TestAccessControlInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	b := &Bench{
		P:       Params{Conc: []int{1, 2}, Dur: 60 * time.Millisecond},
		Gen:     NewGen(1),
		Servers: []*Server{{Name: "berth", Style: StyleBerth, InProcess: true}},
		Work:    t.TempDir(),
		Res:     NewResults(),
		Logf:    t.Logf,
	}
	require.NoError(t, b.accessControl(context.Background()))
	require.Zero(t, b.Failed, "notes: %v", b.Res.Notes)
	for _, metric := range []string{"HEAD manifest rps, 2 clients", "GET small blob p99, 1 client", "GET big blob rps, 2 clients"} {
		f := b.Res.Get(AccessControlWorkload, metric)
		require.NotNil(t, f, metric)
		for _, side := range []string{ACOff, ACPassword, ACToken, ACNoAudit} {
			assert.Greater(t, f.Values[side], 0.0, "%s / %s", metric, side)
		}
	}
	rep := &Report{Servers: []string{"berth"}, Results: b.Res, Titles: map[string]string{AccessControlWorkload: "Access control"},
		Columns: map[string][]string{AccessControlWorkload: {ACOff, ACPassword, ACToken, ACNoAudit}}}
	md := Markdown(rep, "charts", "")
	assert.Contains(t, md, "| metric | unit | auth-off | password | login-token | password-noaudit | password vs auth-off | login-token vs auth-off | password-noaudit vs auth-off |")
	var table strings.Builder
	WriteTable(&table, rep)
	assert.Contains(t, table.String(), "login-token vs auth-off")
}

// TestAccessControlTargets: the overhead targets read the 8-client
// figures against auth-off, and the login-token target both benchmark
// figures.
func TestAccessControlTargets(t *testing.T) {
	res := NewResults()
	res.Add(AccessControlWorkload, "HEAD manifest rps, 8 clients", "req/s", true, ACOff, 10000)
	res.Add(AccessControlWorkload, "HEAD manifest rps, 8 clients", "req/s", true, ACPassword, 9600) // +4.2%
	res.Add(AccessControlWorkload, "HEAD manifest rps, 8 clients", "req/s", true, ACToken, 9000)    // +11.1%
	res.Add(AccessControlWorkload, LoginTokenBefore, "µs", false, ACToken, 58800)
	res.Add(AccessControlWorkload, LoginTokenNow, "µs", false, ACToken, 1.6)
	got := map[string]string{}
	for _, tv := range accessControlTargets(res) {
		got[tv.Target] = tv.Verdict + " " + tv.Measured
	}
	require.Len(t, got, 3)
	for target, v := range got {
		switch {
		case strings.Contains(target, "login-token request"):
			assert.True(t, strings.HasPrefix(v, "met 0.0027%"), v)
		case strings.Contains(target, ", password "):
			assert.True(t, strings.HasPrefix(v, "met +4.2%"), v)
		case strings.Contains(target, ", login-token "):
			assert.True(t, strings.HasPrefix(v, "**missed** +11.1%"), v)
		default:
			t.Errorf("unexpected target %q", target)
		}
	}
	assert.Empty(t, accessControlTargets(NewResults()), "no targets when the workload did not run")

	// With the rounds' paired ratios, their median decides: password's
	// totals say +4.2% but its median +6.0% misses; login-token's totals
	// say +11.1% (one slow phase) but its median +2.0% meets.
	res.Add(AccessControlWorkload, acMedianMetric("HEAD manifest", 8), "%", false, ACPassword, 6.0)
	res.Add(AccessControlWorkload, acMedianLowMetric("HEAD manifest", 8), "%", false, ACPassword, 4.0)
	res.Add(AccessControlWorkload, acMedianHighMetric("HEAD manifest", 8), "%", false, ACPassword, 8.0)
	res.Add(AccessControlWorkload, acMedianMetric("HEAD manifest", 8), "%", false, ACToken, 2.0)
	res.Add(AccessControlWorkload, acMedianLowMetric("HEAD manifest", 8), "%", false, ACToken, 0.5)
	res.Add(AccessControlWorkload, acMedianHighMetric("HEAD manifest", 8), "%", false, ACToken, 3.5)
	for _, tv := range accessControlTargets(res) {
		switch {
		case strings.Contains(tv.Target, ", password "):
			assert.Equal(t, "**missed** +6.0% median of paired rounds (95% CI +4.0% to +8.0%); totals +4.2% (9,600 vs 10,000 req/s)", tv.Verdict+" "+tv.Measured)
		case strings.Contains(tv.Target, ", login-token "):
			assert.Equal(t, "met +2.0% median of paired rounds (95% CI +0.5% to +3.5%); totals +11.1% (9,000 vs 10,000 req/s)", tv.Verdict+" "+tv.Measured)
		}
	}
}

// TestACRoundOverheads: each configuration's phases are paired with
// auth-off's of the same round; a round slowed by other load moves the
// median by one rank.
func TestACRoundOverheads(t *testing.T) {
	off := &acSide{name: ACOff}
	pw := &acSide{name: ACPassword}
	few := &acSide{name: ACToken}
	for r := range 12 {
		base := 50e-6 * (1 + 0.1*float64(r%3)) // the machine's speed drifts
		off.perRequest = append(off.perRequest, base)
		pw.perRequest = append(pw.perRequest, base*1.03)
	}
	pw.perRequest[5] *= 3          // a burst during one password phase
	off.perRequest[7] = math.NaN() // a phase without requests: its round is left out
	few.perRequest = []float64{1, 2, 3}
	res := NewResults()
	acRoundOverheads(res, "HEAD manifest", 8, []*acSide{pw, off, few})
	med := res.Get(AccessControlWorkload, acMedianMetric("HEAD manifest", 8))
	require.NotNil(t, med)
	assert.InDelta(t, 3.0, med.Values[ACPassword], 1e-6)
	assert.InDelta(t, 3.0, res.Get(AccessControlWorkload, acMedianLowMetric("HEAD manifest", 8)).Values[ACPassword], 1e-6)
	assert.InDelta(t, 3.0, res.Get(AccessControlWorkload, acMedianHighMetric("HEAD manifest", 8)).Values[ACPassword], 1e-6)
	assert.False(t, hasValue(med, ACToken), "three rounds are too few for an interval")
	assert.False(t, hasValue(med, ACOff))
}

func TestParseBenchNs(t *testing.T) {
	out := []byte("goos: linux\nBenchmarkLoginTokenRequest/after=token-first-2   \t  712345\t      1612 ns/op\nPASS\n")
	ns, ok := parseBenchNs(out)
	require.True(t, ok)
	assert.Equal(t, 1612.0, ns)
	_, ok = parseBenchNs([]byte("FAIL\n"))
	assert.False(t, ok)
}

func TestInProcessConfig(t *testing.T) {
	eo, sc, err := inProcessConfig([]string{"--htpasswd", "/h", "--iam=/i", "--ecr-credentials", "/c", "--no-audit", "--disable-encryption"}, nil)
	require.NoError(t, err)
	assert.True(t, eo.DisableAudit)
	assert.True(t, eo.DisableEncryption)
	assert.Equal(t, "/h", sc.HtpasswdFile)
	assert.Equal(t, "/i", sc.IdentityFile)
	assert.Equal(t, "/c", sc.ECRCredentialsFile)
	_, _, err = inProcessConfig([]string{"--tls-cert", "x"}, nil)
	assert.ErrorContains(t, err, "not served in process")
	_, _, err = inProcessConfig([]string{"--iam"}, nil)
	assert.ErrorContains(t, err, "needs a file")
}

func TestResolvePeersReportsWhatCannotBeHad(t *testing.T) {
	tests := []struct {
		spec, name, status string
	}{
		{"zot=/nonexistent/zot", "zot", "unavailable"},
		{"mystery=/bin/true", "mystery", "no known configuration style"},
		{"nosuch", "nosuch", "unknown peer"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			peers := ResolvePeers(context.Background(), tc.spec, "", t.Logf)
			require.NotEmpty(t, peers)
			assert.Equal(t, tc.name, peers[0].Name)
			assert.Contains(t, peers[0].Status, tc.status)
			assert.Nil(t, peers[0].Server)
		})
	}
	// zot, when not asked for, is still reported.
	peers := ResolvePeers(context.Background(), "", "", t.Logf)
	require.Len(t, peers, 1)
	assert.Equal(t, "zot", peers[0].Name)
	assert.Equal(t, "not run: not in --peers", peers[0].Status)
}

func TestStyleFor(t *testing.T) {
	tests := []struct {
		name, bin string
		want      Style
		ok        bool
	}{
		{"zot", "/opt/zot-linux-amd64", StyleZot, true},
		{"distribution", "/usr/bin/registry", StyleDistribution, true},
		{"dist2", "/root/go/bin/registry", StyleDistribution, true},
		{"other", "/usr/bin/true", "", false},
	}
	for _, tc := range tests {
		got, ok := styleFor(tc.name, tc.bin)
		assert.Equal(t, tc.ok, ok, tc.name)
		assert.Equal(t, tc.want, got, tc.name)
	}
}

func TestTargetsAndMarkdown(t *testing.T) {
	res := NewResults()
	res.Add("push-pull", "push big image, 1 client", "MiB/s", true, "berth", 600)
	res.Add("push-pull", "push big image, 1 client", "MiB/s", true, "distribution", 300)
	res.Add("manifest", "HEAD rps, 8 clients", "req/s", true, "berth", 20000)
	res.Add("manifest", "HEAD rps, 8 clients", "req/s", true, "distribution", 10000)
	res.Add("manifest", "HEAD p99, 32 clients", "ms", false, "berth", 4)
	res.Add("manifest", "peak RSS", "MiB", false, "berth", 120)
	servers := []string{"berth", "distribution"}
	got := map[string]string{}
	for _, v := range EvaluateTargets(res, servers) {
		got[v.Target] = v.Verdict
	}
	tests := []struct{ target, verdict string }{
		{"push throughput: push big image, 1 client", "met"},
		{"manifest HEAD rps: HEAD rps, 8 clients", "**missed**"},
		{"manifest HEAD p99, 32 clients", "met"},
		{"peak RSS of registryd serve, every workload", "**missed**"},
		{"ahead of zot on most workloads", "not measured"},
		{"ahead of distribution: push-pull", "met"},
		{"ahead of distribution on most workloads", "met"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.verdict, got[tc.target], tc.target)
	}
	rep := &Report{Servers: servers, Results: res, Titles: map[string]string{"push-pull": "Push", "manifest": "Manifests"},
		Peers: []Peer{{Name: "zot", Status: "unavailable: no binary"}}}
	rep.Targets = EvaluateTargets(res, servers)
	md := Markdown(rep, "charts", "")
	assert.True(t, strings.HasPrefix(md, SectionHeading+"\n"))
	assert.Contains(t, md, "![push-pull](charts/push-pull.svg)")
	assert.Contains(t, md, "**zot**: unavailable: no binary")
	assert.Contains(t, md, "| metric | unit | berth | distribution | vs distribution |")
	assert.Contains(t, md, "| push big image, 1 client | MiB/s | 600 | 300 | 2.00x |")
	svg := t.TempDir() + "/m.svg"
	require.NoError(t, WriteSVG(svg, rep, "manifest"))
	b, err := os.ReadFile(svg)
	require.NoError(t, err)
	assert.Contains(t, string(b), "HEAD rps, 8 clients")
}

func TestBerthVariantFlag(t *testing.T) {
	var v variantList
	require.NoError(t, v.Set("berth-mem80=GOMEMLIMIT=80MiB --disable-compression"))
	require.NoError(t, v.Set("berth-nolimit=--memory-limit=none"))
	require.Len(t, v.list, 2)
	assert.Equal(t, variant{name: "berth-mem80", env: []string{"GOMEMLIMIT=80MiB"}, args: []string{"--disable-compression"}}, v.list[0])
	assert.Equal(t, variant{name: "berth-nolimit", args: []string{"--memory-limit=none"}}, v.list[1])
	for _, bad := range []string{"mem80=GOMEMLIMIT=80MiB", "berth-noenc=--x", "berth-mem80=--y", "berth-a b=--x", "berth-x"} {
		assert.Error(t, v.Set(bad), bad)
	}
}

// acHandler is a server of one access-control configuration in this
// process (flags as --berth-variant gives them: inProcessConfig), holding
// the workload's image and, with authentication, its repository policy;
// and its handler, for requests served without a network.
func acHandler(b *testing.B, im *Image, files *acFiles, args ...string) (http.Handler, string) {
	b.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eo, sc, err := inProcessConfig(args, quiet)
	require.NoError(b, err)
	e, err := engine.Open(b.TempDir(), eo)
	require.NoError(b, err)
	b.Cleanup(func() { e.Close() })
	s, err := server.New(e, sc)
	require.NoError(b, err)
	ts := httptest.NewServer(s.Handler())
	b.Cleanup(ts.Close)
	authenticated := slices.Contains(args, "--htpasswd")
	admin := NewClient(ts.URL, 1)
	defer admin.Close()
	if authenticated {
		admin.SetBasicAuth("admin", files.adminPassword)
	}
	require.NoError(b, acPopulate(context.Background(), admin, im))
	if authenticated {
		_, err := ecrClient(ts.URL, acAdminKey, acAdminSecret).SetRepositoryPolicy(context.Background(), &ecr.SetRepositoryPolicyInput{
			RepositoryName: aws.String(acRepository), PolicyText: aws.String(acRepositoryPolicy)})
		require.NoError(b, err)
	}
	return s.Handler(), ts.URL
}

// BenchmarkAccessControl serves the access-control workload's manifest
// HEAD and small blob GET in this process, without a network (the
// handler called directly, as from 127.0.0.1): the place to profile what
// access control costs a request. OP/all serves each configuration in
// turn, in phases of 1,000 requests (the order rotating), by GOMAXPROCS
// goroutines (OP/all/http: through net/http on 127.0.0.1, by 8), and reports each one's CPU time per request (getrusage: the
// machine's other load hardly moves it) and its ratio to auth-off, in one
// run; OP/CONFIG serves one configuration alone, for a profile:
//
//	go test -run '^$' -bench 'AccessControl/HEAD-manifest/all' -benchtime 100000x ./bench
//	go test -run '^$' -bench 'AccessControl/HEAD-manifest/password$' -cpuprofile cpu.out ./bench
func BenchmarkAccessControl(b *testing.B) {
	files, err := writeACFiles(b.TempDir())
	require.NoError(b, err)
	im, err := NewGen(1).Image(ImageSpec{Name: "access", Layers: []LayerSpec{
		{Name: "access-small", Size: 8 << 10, Compression: Gzip},
		{Name: "access-big", Size: 1 << 20, Compression: Gzip},
	}})
	require.NoError(b, err)
	// As the workload: no bcrypt of an expired cached password in a
	// measurement (acAuthCacheTTL).
	authArgs := []string{"--htpasswd", files.htpasswd, "--iam", files.identities, "--ecr-credentials", files.credentials,
		"--auth-cache-ttl", acAuthCacheTTL.String()}
	type config struct {
		name, authorization string
		h                   http.Handler
		client              *Client // the handler served on 127.0.0.1
	}
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	off, _ := acHandler(b, im, files)
	withAuth, url := acHandler(b, im, files, authArgs...)
	noAudit, _ := acHandler(b, im, files, append(authArgs, "--no-audit")...)
	offNoAudit, _ := acHandler(b, im, files, "--no-audit")
	token, err := loginToken(context.Background(), url, acDevKey, acDevSecret)
	require.NoError(b, err)
	configs := []config{
		{name: ACOff, h: off},
		{name: ACPassword, authorization: basic("dev", files.devPassword), h: withAuth},
		{name: ACToken, authorization: basic("AWS", token), h: withAuth},
		{name: ACNoAudit, authorization: basic("dev", files.devPassword), h: noAudit},
		// Not in the workload: with password-noaudit, it tells what
		// authentication and the decision cost without the audit log.
		{name: ACOff + "-noaudit", h: offNoAudit},
	}
	for i := range configs {
		// The server's connection goroutines carry the configuration's
		// name as a profile label (config=NAME), as the clients' do: a
		// profile of OP/all/http tells the configurations apart
		// (go tool pprof -tagfocus config=password).
		labels := pprof.WithLabels(context.Background(), pprof.Labels("config", configs[i].name))
		h := configs[i].h
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			pprof.SetGoroutineLabels(labels)
			h.ServeHTTP(w, r)
		}))
		b.Cleanup(ts.Close)
		configs[i].client = NewClient(ts.URL, 16)
		configs[i].client.setAuthorization(configs[i].authorization)
		b.Cleanup(configs[i].client.Close)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for _, op := range []struct{ name, method, path string }{
		{"HEAD-manifest", http.MethodHead, "/v2/" + acRepository + "/manifests/v1"},
		{"GET-small-blob", http.MethodGet, "/v2/" + acRepository + "/blobs/" + im.Blobs[1].Digest.String()},
	} {
		direct := func(c config) {
			req := httptest.NewRequest(op.method, op.path, nil)
			req.RemoteAddr = "127.0.0.1:40000"
			req.Header.Set("Accept", manifestAccept)
			if c.authorization != "" {
				req.Header.Set("Authorization", c.authorization)
			}
			rec := httptest.NewRecorder()
			c.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%s %s: %d %s", op.method, op.path, rec.Code, rec.Body)
			}
		}
		overHTTP := func(c config) {
			code, err := c.client.Status(context.Background(), op.method, op.path)
			if err != nil || code != http.StatusOK {
				b.Fatalf("%s %s: %d %v", op.method, op.path, code, err)
			}
		}
		for _, mode := range []struct {
			name    string
			serve   func(config)
			workers int
		}{
			{"", direct, runtime.GOMAXPROCS(0)},
			// Through net/http on 127.0.0.1 by 8 clients, as the
			// workload's target: the server's scheduling and system calls
			// too (and the client's CPU, the same in every configuration).
			{"/http", overHTTP, 8},
		} {
			b.Run(op.name+"/all"+mode.name, func(b *testing.B) {
				const phase = 1000
				used := make([]time.Duration, len(configs))
				run := func(i, n int) {
					var next atomic.Int64
					var wg sync.WaitGroup
					cpu0 := cpu()
					for range mode.workers {
						wg.Go(func() {
							pprof.Do(context.Background(), pprof.Labels("config", configs[i].name), func(context.Context) {
								for next.Add(1) <= int64(n) {
									mode.serve(configs[i])
								}
							})
						})
					}
					wg.Wait()
					used[i] += cpu() - cpu0
				}
				done := 0
				for k := 0; done < b.N; k++ {
					n := min(phase, b.N-done)
					for j := range configs {
						run((k+j)%len(configs), n)
					}
					done += n
				}
				for i, c := range configs {
					b.ReportMetric(float64(used[i].Nanoseconds())/float64(done), c.name+"-cpu-ns/op")
					if i > 0 {
						b.ReportMetric(float64(used[i])/float64(used[0]), c.name+"/"+ACOff)
					}
				}
			})
			for _, c := range configs {
				b.Run(op.name+"/"+c.name+mode.name, func(b *testing.B) {
					b.SetParallelism(max(1, mode.workers/runtime.GOMAXPROCS(0)))
					b.ReportAllocs()
					cpu0 := cpu()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							mode.serve(c)
						}
					})
					b.ReportMetric(float64((cpu()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
				})
			}
		}
	}
}

// TestMergeReport: --merge keeps the workloads the run did not measure,
// with the run that measured them, and replaces those it did.
func TestMergeReport(t *testing.T) {
	old := &Report{Machine: Machine{Started: "earlier", Commit: "old"}, Servers: []string{"berth", "distribution"},
		Peers:   []Peer{{Name: "distribution", Status: "ok: distribution v3"}, {Name: "zot", Status: "not run: not in --peers"}},
		Results: NewResults(), Titles: map[string]string{"manifest": "Manifests", "gc": "gc"}}
	old.Results.Add("manifest", "HEAD rps, 1 client", "req/s", true, "berth", 100)
	old.Results.Add("manifest", "HEAD rps, 1 client", "req/s", true, "distribution", 50)
	old.Results.Add(AccessControlWorkload, "HEAD manifest rps, 8 clients", "req/s", true, ACOff, 1)
	old.Results.Note("gc", "gc notes")
	rep := &Report{Machine: Machine{Started: "now"}, Servers: []string{"berth"},
		Peers:   []Peer{{Name: "distribution", Status: "not run: not in --peers"}},
		Results: NewResults(), Titles: map[string]string{AccessControlWorkload: "Access control"}}
	rep.Results.Add(AccessControlWorkload, "HEAD manifest rps, 8 clients", "req/s", true, ACOff, 2)
	rep.Results.Add(AccessControlWorkload, "HEAD manifest rps, 8 clients", "req/s", true, ACPassword, 3)
	mergeReport(rep, old)
	assert.Equal(t, 2.0, rep.Results.Get(AccessControlWorkload, "HEAD manifest rps, 8 clients").Values[ACOff], "this run's figures win")
	assert.Equal(t, 50.0, rep.Results.Get("manifest", "HEAD rps, 1 client").Values["distribution"], "the others are kept")
	assert.Equal(t, []string{"gc notes"}, rep.Results.Notes["gc"])
	assert.Equal(t, "earlier", rep.Runs["manifest"].Started)
	assert.Equal(t, "earlier", rep.Runs["gc"].Started)
	assert.NotContains(t, rep.Runs, AccessControlWorkload)
	assert.Equal(t, []string{"berth", "distribution"}, rep.Servers)
	require.Len(t, rep.Peers, 2)
	assert.Equal(t, "ok: distribution v3", rep.Peers[0].Status, "the peer ran for the workloads kept")
	assert.Equal(t, "zot", rep.Peers[1].Name, "in the earlier run's order")
	assert.Equal(t, "manifest", rep.Results.Figures[0].Workload, "figures in the order of the workloads")
	assert.Equal(t, "Manifests", rep.Titles["manifest"])
	md := Markdown(rep, "charts", "")
	assert.Contains(t, md, "The workloads gc, manifest come from earlier runs")
	assert.Contains(t, md, "Measured by an earlier run, `go run ./bench` (earlier")
}
