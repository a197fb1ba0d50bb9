package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/cli"
)

// hookReceiver is a webhook receiver on 127.0.0.1: it verifies each
// delivery's signature with engine.VerifyWebhook and keeps what it
// accepts; the test can make it refuse (503) or stall.
type hookReceiver struct {
	key    []byte
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	down     bool
	stall    chan struct{}
	delay    time.Duration
	got      []engine.Event
	headers  []http.Header
	attempts int
	badSigs  int
}

func newHookReceiver(t *testing.T, tls bool) *hookReceiver {
	r := &hookReceiver{secret: engine.NewWebhookSecret()}
	var err error
	r.key, err = engine.ParseWebhookSecret(r.secret)
	require.NoError(t, err)
	if tls {
		r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	} else {
		r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	}
	t.Cleanup(func() {
		r.setStall(false)
		r.srv.Close()
	})
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.attempts++
	down, stall, delay := r.down, r.stall, r.delay
	r.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-req.Context().Done():
			return
		}
	}
	if delay > 0 {
		time.Sleep(delay) // a receiver's own work, so that deliveries lag behind pushes; its length does not matter
	}
	if down {
		http.Error(w, "down for the test", http.StatusServiceUnavailable)
		return
	}
	if _, err := engine.VerifyWebhook(r.key, req.Header, body, time.Now(), 0); err != nil {
		r.mu.Lock()
		r.badSigs++
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev engine.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got = append(r.got, ev)
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *hookReceiver) setDown(v bool) { r.mu.Lock(); r.down = v; r.mu.Unlock() }

func (r *hookReceiver) setStall(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case on && r.stall == nil:
		r.stall = make(chan struct{})
	case !on && r.stall != nil:
		close(r.stall)
		r.stall = nil
	}
}

func (r *hookReceiver) events() []engine.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// imageActions are the image actions received, as "ACTION repo:tag".
func (r *hookReceiver) imageActions(t *testing.T) []string {
	var out []string
	for _, ev := range r.events() {
		d, err := ev.DecodeDetail()
		require.NoError(t, err)
		if ia, ok := d.(engine.ImageActionDetail); ok {
			out = append(out, ia.ActionType+" "+ia.RepositoryName+":"+ia.ImageTag)
		}
	}
	return out
}

// TestWebhookEvents: a daemon with three webhooks (one filtered by
// repository prefix and type, one receiving everything, one over TLS
// with its own CA) delivers ECR's events of pushes, deletes and a failed
// pull-through fill; with the receiver down, the deliveries wait (metrics
// and `registryd events list` show them) and arrive in order once it is
// up; the audit log records each event.
func TestWebhookEvents(t *testing.T) {
	ctx := context.Background()
	teams, all, secure := newHookReceiver(t, false), newHookReceiver(t, false), newHookReceiver(t, true)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.srv.Certificate().Raw}), 0o600))
	secretFile := filepath.Join(dir, "teams.secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(teams.secret+"\n"), 0o600))
	fast := func(w cli.Webhook) cli.Webhook {
		w.InitialBackoff, w.MaxBackoff = cli.Duration(20*time.Millisecond), cli.Duration(100*time.Millisecond)
		return w
	}
	teams.setDown(true)
	addr := startServer(t, func(c *cli.Config) {
		c.Webhooks = []cli.Webhook{
			fast(cli.Webhook{Name: "teams", URL: teams.srv.URL + "/hook", SecretFile: secretFile,
				EventTypes: []string{engine.EventImageAction}, RepositoryPrefixes: []string{"team-"}}),
			fast(cli.Webhook{Name: "all", URL: all.srv.URL + "/hook", Secret: all.secret}),
			fast(cli.Webhook{Name: "tls", URL: secure.srv.URL + "/hook", Secret: secure.secret, CAFile: caFile}),
		}
		c.PullThroughCacheRules = []cli.PullThroughCacheRule{{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: "http://" + freePort(t)}}
	})
	push := func(ref string) {
		r, err := name.ParseReference(addr+"/"+ref, name.Insecure)
		require.NoError(t, err)
		img, err := random.Image(512, 1)
		require.NoError(t, err)
		require.NoError(t, remote.Write(r, img))
	}
	var want []string
	for i := range 4 {
		for _, repo := range []string{"team-a/app", "team-b/svc"} {
			tag := fmt.Sprintf("v%d", i)
			push(repo + ":" + tag)
			want = append(want, "PUSH "+repo+":"+tag)
		}
	}
	push("other/tool:v1")

	// The teams receiver is down: its deliveries wait, and say so.
	require.Eventually(t, func() bool { return len(all.events()) == len(want)+1 }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		return strings.Contains(metricsText(t, addr), `berth_events_delivery_failures_total{webhook="teams"}`)
	}, 20*time.Second, 20*time.Millisecond)
	m := metricsText(t, addr)
	assert.Contains(t, m, `berth_events_pending{webhook="teams"} 8`)
	assert.Contains(t, m, `berth_events_delivered_total{webhook="all"} 9`)
	assert.Contains(t, m, `berth_events_delivery_latency_seconds_count{webhook="all"} 9`)
	var out, errOut bytes.Buffer
	code := cli.Main(ctx, cli.Env{Stdout: &out, Stderr: &errOut}, []string{"events", "list", "--server", addr, "--webhook", "teams"})
	require.Zero(t, code, errOut.String())
	assert.Equal(t, 9, strings.Count(out.String(), "\n"), out.String()) // a header and 8 lines
	assert.Contains(t, out.String(), "503 Service Unavailable")

	teams.setDown(false)
	require.Eventually(t, func() bool { return len(teams.events()) == len(want) }, 20*time.Second, 10*time.Millisecond)
	got := teams.imageActions(t)
	for _, repo := range []string{"team-a/app", "team-b/svc"} {
		var gotRepo, wantRepo []string
		for i := range want {
			if strings.Contains(want[i], repo) {
				wantRepo = append(wantRepo, want[i])
			}
			if strings.Contains(got[i], repo) {
				gotRepo = append(gotRepo, got[i])
			}
		}
		assert.Equal(t, wantRepo, gotRepo, "%s: in push order", repo)
	}
	assert.Zero(t, teams.badSigs)

	// A delete by digest: one DELETE per tag of the image.
	ref, err := name.ParseReference(addr+"/team-a/app:v0", name.Insecure)
	require.NoError(t, err)
	desc, err := remote.Head(ref)
	require.NoError(t, err)
	dref, err := name.NewDigest(addr+"/team-a/app@"+desc.Digest.String(), name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Delete(dref))
	require.Eventually(t, func() bool { return len(teams.events()) == len(want)+1 }, 20*time.Second, 10*time.Millisecond)
	assert.Equal(t, "DELETE team-a/app:v0", teams.imageActions(t)[len(want)])

	// A pull through the cache whose upstream is away: a FAILED fill.
	hub, err := name.ParseReference(addr+"/hub/library/redis:7", name.Insecure)
	require.NoError(t, err)
	_, err = remote.Image(hub)
	require.Error(t, err)
	var fail engine.PullThroughCacheActionDetail
	require.Eventually(t, func() bool {
		for _, ev := range all.events() {
			if ev.DetailType == engine.EventPullThroughCacheAction {
				d, err := ev.DecodeDetail()
				require.NoError(t, err)
				fail = d.(engine.PullThroughCacheActionDetail)
				return true
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond)
	assert.Equal(t, "FAILED", fail.SyncStatus)
	assert.Equal(t, "UPSTREAM_UNAVAILABLE", fail.FailureCode)
	assert.Equal(t, "hub/library/redis", fail.RepositoryName)
	assert.Equal(t, "7", fail.ImageTag)
	assert.Equal(t, "hub", fail.ECRRepositoryPrefix)

	// The TLS receiver got everything too, through its own CA.
	require.Eventually(t, func() bool { return len(secure.events()) == len(all.events()) }, 20*time.Second, 10*time.Millisecond)

	// Every event is in the audit log, under its id.
	status, _, body := httpDo(t, http.MethodGet, "http://"+addr+"/admin/v1/audit?action=berth:PublishEvent&limit=0", nil, nil)
	require.Equal(t, http.StatusOK, status, string(body))
	ids := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		r, err := engine.DecodeAuditRecord([]byte(l))
		require.NoError(t, err)
		ids[r.EventID] = true
	}
	for _, ev := range all.events() {
		assert.True(t, ids[ev.ID], "event %s (%s) is not in the audit log", ev.ID, ev.DetailType)
	}
}

// metricsText is the daemon's /metrics answer.
func metricsText(t *testing.T, addr string) string {
	status, _, body := httpDo(t, http.MethodGet, "http://"+addr+"/metrics", nil, nil)
	require.Equal(t, http.StatusOK, status)
	return string(body)
}

// TestWebhookSlowReceiver: a receiver that never answers does not slow
// pushes: the manifest PUT's latency with it is that without a webhook.
func TestWebhookSlowReceiver(t *testing.T) {
	rcv := newHookReceiver(t, false)
	rcv.setStall(true)
	measure := func(hooks []cli.Webhook) time.Duration {
		addr, stop := startStoppableServer(t, func(c *cli.Config) { c.Webhooks = hooks })
		defer stop()
		repos := 8
		manifests := make([][]byte, repos)
		for r := range repos {
			status, e, d := pushImageHTTP(t, addr, fmt.Sprintf("app%d", r), "warm", fmt.Sprint(r))
			require.Equal(t, http.StatusCreated, status, "%+v", e)
			_, _, manifests[r] = httpDo(t, http.MethodGet, fmt.Sprintf("http://%s/v2/app%d/manifests/%s", addr, r, d), nil,
				map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"})
		}
		const n = 120
		lat := make([]time.Duration, 0, n)
		for i := range n {
			start := time.Now()
			status, e, _ := putManifestHTTP(t, addr, fmt.Sprintf("app%d", i%repos), fmt.Sprintf("t%04d", i), manifests[i%repos])
			require.Equal(t, http.StatusCreated, status, "%+v", e)
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		return lat[n/2]
	}
	without := measure(nil)
	with := measure([]cli.Webhook{{Name: "stalled", URL: rcv.srv.URL, Secret: rcv.secret, Timeout: cli.Duration(time.Minute)}})
	rcv.mu.Lock()
	attempts := rcv.attempts
	rcv.mu.Unlock()
	t.Logf("manifest PUT p50: without a webhook %v, with a stalled receiver %v (x%.2f); %d deliveries stalled", without, with, float64(with)/float64(without), attempts)
	require.Positive(t, attempts)
	require.Less(t, with, 2*without+2*time.Millisecond)
}

// TestWebhookSIGKILL: a real registryd pushes into and delivers to a
// slow receiver, and is killed with SIGKILL while deliveries are under
// way, three times; after the last restart every push that got its 201
// has its event at the receiver (duplicates allowed, counted).
func TestWebhookSIGKILL(t *testing.T) {
	dir := t.TempDir()
	bin := buildRegistryd(t)
	rcv := newHookReceiver(t, false)
	rcv.delay = 25 * time.Millisecond
	config := filepath.Join(dir, "registryd.yaml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`webhooks:
  - name: ci
    url: %s/hook
    secret: %s
    concurrency: 1
    initialBackoff: 10ms
    maxBackoff: 50ms
`, rcv.srv.URL, rcv.secret)), 0o600))
	data := filepath.Join(dir, "store")
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	acked := map[string]bool{}
	missing := func() []string {
		seen := map[string]bool{}
		for _, a := range rcv.imageActions(t) {
			seen[strings.TrimPrefix(a, "PUSH ")] = true
		}
		var out []string
		for k := range acked {
			if !seen[k] {
				out = append(out, k)
			}
		}
		return out
	}
	var undelivered []int // acknowledged pushes without their event, at each kill
	const rounds = 3
	for round := range rounds {
		d := startDaemon(t, bin, data, "--config", config)
		for i := range 40 {
			repo, tag := fmt.Sprintf("app%d", i%3), fmt.Sprintf("r%d-%02d", round, i)
			status, e, _ := pushImageHTTP(t, d.addr, repo, tag, fmt.Sprintf("%d-%d", round, i))
			require.Equal(t, http.StatusCreated, status, "%+v", e)
			acked[repo+":"+tag] = true
		}
		// Deliveries lag behind the pushes (the receiver is slow): kill
		// while they are under way. The moment is another process's:
		// real time, which no clock of ours stands for.
		time.Sleep(time.Duration(5+r.IntN(30)) * time.Millisecond)
		d.kill()
		undelivered = append(undelivered, len(missing()))
	}
	startDaemon(t, bin, data, "--config", config)
	require.Eventually(t, func() bool { return len(missing()) == 0 }, 60*time.Second, 20*time.Millisecond,
		"pushes answered 201 without their event: %v", missing)
	ids := map[string]int{}
	for _, ev := range rcv.events() {
		ids[ev.ID]++
	}
	dups := len(rcv.events()) - len(ids)
	t.Logf("%d kills: %d pushes answered 201; undelivered at each kill %v, all delivered after the restarts; %d deliveries, %d duplicates",
		rounds, len(acked), undelivered, len(rcv.events()), dups)
	require.Positive(t, slices.Max(undelivered), "the kills landed with deliveries under way")
	assert.Zero(t, rcv.badSigs)
}
