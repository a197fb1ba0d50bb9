package engine

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/clock"
)

// receiver is a webhook receiver on 127.0.0.1: it checks every
// delivery's signature, answers as the test says (accept, refuse with a
// status, or stall), and keeps what it accepted.
type receiver struct {
	t   testing.TB
	key []byte
	now func() time.Time // the signer's clock, for the timestamp's tolerance
	srv *httptest.Server

	mu          sync.Mutex
	refuseEvery int           // refuse (503) one request in that many; 0: none
	status      int           // the answer; 0: 200
	stall       chan struct{} // not nil: requests wait until it is closed
	got         []received    // every accepted delivery, in arrival order
	attempts    int           // every request
	badSigs     int
}

type received struct {
	ev     Event
	header http.Header
	body   []byte
}

func newReceiver(t testing.TB, now func() time.Time) *receiver {
	key, err := ParseWebhookSecret(NewWebhookSecret())
	require.NoError(t, err)
	r := &receiver{t: t, key: key, now: now}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.setStall(false)
		r.srv.Close()
	})
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.attempts++
	stall, status := r.stall, r.status
	if r.refuseEvery > 0 && r.attempts%r.refuseEvery == 0 {
		status = http.StatusServiceUnavailable
	}
	r.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-req.Context().Done():
			return
		}
	}
	if _, err := VerifyWebhook(r.key, req.Header, body, r.now(), 0); err != nil {
		r.mu.Lock()
		r.badSigs++
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if status != 0 && status != http.StatusOK {
		http.Error(w, "the test refuses", status)
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got = append(r.got, received{ev: ev, header: req.Header.Clone(), body: body})
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) setStatus(s int) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

func (r *receiver) setStall(on bool) {
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

// events returns the accepted deliveries so far.
func (r *receiver) events() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *receiver) webhook(name string) Webhook {
	return Webhook{Name: name, URL: r.srv.URL + "/hooks/" + name, Secret: r.key,
		InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Timeout: 5 * time.Second}
}

// detailOf decodes an image action's detail.
func detailOf(t testing.TB, ev Event) ImageActionDetail {
	t.Helper()
	d, err := ev.DecodeDetail()
	require.NoError(t, err)
	ia, ok := d.(ImageActionDetail)
	require.True(t, ok, "%T", d)
	return ia
}

// eventOptions are quiet options with the manual clock clk and webhooks.
func eventOptions(clk *clock.Manual, hooks ...Webhook) *Options {
	o := quietOptions()
	o.Clock = clk
	o.Webhooks = hooks
	return o
}

// TestEventsPushAndDelete: a push, a tag deletion, an untag that takes the
// image along and a manifest deletion each reach the webhook as ECR Image
// Action events, signed, in ECR's shape, in order, and each is in the
// audit log.
func TestEventsPushAndDelete(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	rcv := newReceiver(t, clk.Now)
	o := eventOptions(clk, rcv.webhook("ci"))
	o.Account, o.Region = "123456789012", "eu-west-1"
	e := openTestEngine(t, o)

	d1, payload := pushImage(t, e, "team/app", "v1", rnd(100))
	_, err := e.PutManifest(ctx, "team/app", "v1.0", ocispec.MediaTypeImageManifest, payload, "latest")
	require.NoError(t, err)
	require.NoError(t, e.DeleteTag(ctx, "team/app", "latest"))
	d2, _ := pushImage(t, e, "team/app", "v2", rnd(100))
	_, deleted, err := e.UntagImage(ctx, "team/app", "v2")
	require.NoError(t, err)
	require.True(t, deleted)
	require.NoError(t, e.DeleteManifest(ctx, "team/app", d1))

	type act struct{ action, tag string }
	want := []act{{"PUSH", "v1"}, {"PUSH", "v1.0"}, {"PUSH", "latest"}, {"DELETE", "latest"}, {"PUSH", "v2"},
		{"DELETE", "v2"}, {"DELETE", "v1"}, {"DELETE", "v1.0"}}
	require.Eventually(t, func() bool { return rcv.count() >= len(want) }, 10*time.Second, 5*time.Millisecond)
	got := rcv.events()
	require.Len(t, got, len(want))
	ids := map[string]bool{}
	for i, g := range got {
		ev := g.ev
		ia := detailOf(t, ev)
		digestWant := d1
		if ia.ImageTag == "v2" {
			digestWant = d2
		}
		assert.Equal(t, want[i], act{ia.ActionType, ia.ImageTag}, "event %d", i)
		assert.Equal(t, ImageActionDetail{Result: "SUCCESS", RepositoryName: "team/app", ImageDigest: string(digestWant),
			ActionType: want[i].action, ImageTag: want[i].tag, ManifestMediaType: ocispec.MediaTypeImageManifest,
			ArtifactMediaType: ocispec.MediaTypeImageConfig}, ia)
		assert.Equal(t, "0", ev.Version)
		assert.Equal(t, "aws.ecr", ev.Source)
		assert.Equal(t, "ECR Image Action", ev.DetailType)
		assert.Equal(t, "123456789012", ev.Account)
		assert.Equal(t, "eu-west-1", ev.Region)
		assert.Equal(t, []string{}, ev.Resources)
		assert.WithinDuration(t, clk.Now(), ev.Time.Time, time.Second)
		assert.False(t, ids[ev.ID], "ids are unique")
		ids[ev.ID] = true
		// The headers: the id, the type, the attempt; the signature
		// checked by hand too (HMAC-SHA256 of id.timestamp.body).
		assert.Equal(t, ev.ID, g.header.Get("webhook-id"))
		assert.Equal(t, "ECR Image Action", g.header.Get("berth-event-type"))
		assert.Equal(t, "1", g.header.Get("berth-delivery-attempt"))
		assert.Equal(t, "application/json", g.header.Get("Content-Type"))
		m := hmac.New(sha256.New, rcv.key)
		fmt.Fprintf(m, "%s.%s.", ev.ID, g.header.Get("webhook-timestamp"))
		m.Write(g.body)
		assert.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)), g.header.Get("webhook-signature"))
		// The raw body has ECR's field names and no others.
		var raw map[string]any
		require.NoError(t, json.Unmarshal(g.body, &raw))
		assert.ElementsMatch(t, []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}, keys(raw))
		assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, raw["time"])
	}
	require.Eventually(t, func() bool { return e.EventStats().Webhooks[0].Delivered == uint64(len(want)) }, 5*time.Second, 5*time.Millisecond)
	st := e.EventStats()
	assert.EqualValues(t, len(want), st.Emitted)
	assert.EqualValues(t, len(want), st.Routed)
	assert.Zero(t, st.Unrouted)
	assert.Zero(t, st.Webhooks[0].Pending)
	assert.EqualValues(t, len(want), st.Webhooks[0].Latency.Count)

	// The audit log holds each event under its id.
	var recs []AuditRecord
	require.NoError(t, e.AuditRecords(ctx, AuditQuery{Action: "berth:PublishEvent", OldestFirst: true}, func(r AuditRecord) error {
		recs = append(recs, r)
		return nil
	}))
	require.Len(t, recs, len(want))
	for i, r := range recs {
		assert.Equal(t, got[i].ev.ID, r.EventID)
		assert.Equal(t, "team/app", r.Repository)
		assert.Equal(t, e.RepositoryARN("team/app"), r.Resource)
		assert.Equal(t, AuditLocal, r.PrincipalType)
		assert.Equal(t, AuditAPIEngine, r.API)
		assert.Equal(t, "ECR Image Action", r.Parameters["detail-type"])
		assert.Equal(t, want[i].action, r.Parameters["action-type"])
		assert.Equal(t, want[i].tag, r.Parameters["image-tag"])
		assert.Equal(t, detailOf(t, got[i].ev).ImageDigest, r.Parameters["image-digest"])
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestEventsReceiverDownThenUp: pushes to three repositories while the
// receiver refuses; nothing is lost, and once it accepts again every
// event arrives, each repository's in the order of its pushes.
func TestEventsReceiverDownThenUp(t *testing.T) {
	clk := manualClock()
	rcv := newReceiver(t, clk.Now)
	rcv.setStatus(http.StatusServiceUnavailable)
	e := openTestEngine(t, eventOptions(clk, rcv.webhook("ci")))
	repos := []string{"a/one", "b/two", "c/three"}
	const perRepo = 8
	for i := range perRepo {
		for _, r := range repos {
			pushImage(t, e, r, fmt.Sprintf("t%02d", i), rnd(64))
		}
	}
	require.Eventually(t, func() bool { return e.EventStats().Webhooks[0].Failed >= 1 }, 10*time.Second, 5*time.Millisecond)
	rcv.setStatus(http.StatusOK)
	require.Eventually(t, func() bool {
		clk.Advance(time.Minute) // past every backoff
		return rcv.count() >= perRepo*len(repos)
	}, 20*time.Second, 10*time.Millisecond)
	byRepo := map[string][]string{}
	for _, g := range rcv.events() {
		ia := detailOf(t, g.ev)
		byRepo[ia.RepositoryName] = append(byRepo[ia.RepositoryName], ia.ImageTag)
	}
	for _, r := range repos {
		require.Len(t, byRepo[r], perRepo, r)
		require.True(t, sort.StringsAreSorted(byRepo[r]), "%s in push order: %v", r, byRepo[r])
	}
	// The receiver counts an event before its answer reaches the sender,
	// so the last delivery may still be pending for a moment.
	require.Eventually(t, func() bool { return e.EventStats().Webhooks[0].Pending == 0 }, 10*time.Second, 5*time.Millisecond)
	st := e.EventStats().Webhooks[0]
	assert.GreaterOrEqual(t, st.Failed, uint64(1))
	assert.Zero(t, st.DeadLettered)
	assert.Zero(t, st.Pending)
}

// TestEventsDeadLetters: a delivery that keeps failing is given up after
// MaxAttempts, listed as a dead letter with its last error, counted; a
// redrive delivers it once the receiver accepts.
func TestEventsDeadLetters(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	rcv := newReceiver(t, clk.Now)
	rcv.setStatus(http.StatusInternalServerError)
	hook := rcv.webhook("ci")
	hook.MaxAttempts = 3
	e := openTestEngine(t, eventOptions(clk, hook))
	pushImage(t, e, "app", "v1", rnd(64))
	pushImage(t, e, "app", "v2", rnd(64))
	require.Eventually(t, func() bool {
		clk.Advance(time.Minute)
		return e.EventStats().Webhooks[0].DeadLettered == 2
	}, 10*time.Second, 10*time.Millisecond)
	st := e.EventStats().Webhooks[0]
	assert.EqualValues(t, 6, st.Failed)
	assert.Equal(t, 2, st.Dead)
	assert.Zero(t, st.Pending)
	var dead []EventListing
	require.NoError(t, e.ListEvents(ctx, EventQuery{State: EventDead}, func(l EventListing) error {
		dead = append(dead, l)
		return nil
	}))
	require.Len(t, dead, 2)
	for i, l := range dead {
		assert.Equal(t, "ci", l.Webhook)
		assert.Equal(t, EventDead, l.State)
		assert.Equal(t, 3, l.Attempts)
		assert.Contains(t, l.LastError, "500 Internal Server Error")
		assert.Contains(t, l.LastError, "the test refuses")
		assert.Equal(t, "3 attempts failed", l.DeadReason)
		assert.Equal(t, fmt.Sprintf("v%d", i+1), detailOf(t, *l.Event).ImageTag)
	}
	require.Zero(t, rcv.count())

	rcv.setStatus(http.StatusOK)
	n, err := e.RedriveEvents(ctx, "ci")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Eventually(t, func() bool { return rcv.count() == 2 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, "1", rcv.events()[0].header.Get("berth-delivery-attempt"), "a redriven delivery starts its attempts again")
	st = e.EventStats().Webhooks[0]
	assert.Zero(t, st.Dead)
	_, err = e.RedriveEvents(ctx, "nope")
	require.ErrorIs(t, err, ErrInvalidArgument)
}

// TestEventsMaxAge: a delivery older than MaxAge is given up at its next
// failure, whatever its attempts.
func TestEventsMaxAge(t *testing.T) {
	clk := manualClock()
	rcv := newReceiver(t, clk.Now)
	rcv.setStatus(http.StatusBadGateway)
	hook := rcv.webhook("ci")
	hook.MaxAge, hook.InitialBackoff, hook.MaxBackoff = time.Hour, 40*time.Minute, 40*time.Minute
	e := openTestEngine(t, eventOptions(clk, hook))
	pushImage(t, e, "app", "v1", rnd(64))
	require.Eventually(t, func() bool { return e.EventStats().Webhooks[0].Failed == 1 }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		clk.Advance(10 * time.Minute)
		return e.EventStats().Webhooks[0].DeadLettered == 1
	}, 10*time.Second, 10*time.Millisecond)
	var l EventListing
	require.NoError(t, e.ListEvents(context.Background(), EventQuery{State: EventDead, Webhook: "ci"}, func(x EventListing) error { l = x; return nil }))
	assert.Contains(t, l.DeadReason, "old (maxAge 1h0m0s)")
	assert.Less(t, l.Attempts, DefaultWebhookMaxAttempts)
}

// TestEventsQueueBound: with the receiver away, a webhook's queue keeps
// at most EventQueueMaxBytes: the oldest deliveries are dropped (counted),
// pushes go on, the audit log keeps every event, and the newest arrive
// once the receiver is back.
func TestEventsQueueBound(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	rcv := newReceiver(t, clk.Now)
	rcv.setStatus(http.StatusServiceUnavailable)
	hook := rcv.webhook("ci")
	hook.Concurrency = 1
	o := eventOptions(clk, hook)
	o.EventQueueMaxBytes = MinEventQueueMaxBytes
	e := openTestEngine(t, o)
	_, payload := pushImage(t, e, "app", "t0000", rnd(64))
	const n = 200 // about 800 bytes a delivery: twice the bound
	for i := 1; i < n; i++ {
		_, err := e.PutManifest(ctx, "app", fmt.Sprintf("t%04d", i), ocispec.MediaTypeImageManifest, payload)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return e.EventStats().Routed == n }, 10*time.Second, 5*time.Millisecond)
	st := e.EventStats().Webhooks[0]
	require.Positive(t, st.Dropped)
	require.LessOrEqual(t, st.PendingBytes, int64(MinEventQueueMaxBytes))
	require.EqualValues(t, n, uint64(st.Pending)+st.Dropped)
	t.Logf("%d events, %d dropped, %d pending in %d bytes", n, st.Dropped, st.Pending, st.PendingBytes)

	audited := 0
	require.NoError(t, e.AuditRecords(ctx, AuditQuery{Action: "berth:PublishEvent"}, func(AuditRecord) error { audited++; return nil }))
	require.Equal(t, n, audited)

	// Once the receiver answers, everything still pending is delivered. A
	// failed attempt rewrites its delivery with the attempt counted, so the
	// bound may drop one or two more of the oldest meanwhile: the count to
	// reach is the live one, and delivered and dropped make up every event.
	rcv.setStatus(http.StatusOK)
	require.Eventually(t, func() bool {
		clk.Advance(time.Second) // past every backoff (at most 50 ms)
		w := e.EventStats().Webhooks[0]
		return w.Pending == 0 && uint64(rcv.count()) == w.Delivered
	}, 10*time.Second, 10*time.Millisecond)
	w := e.EventStats().Webhooks[0]
	require.EqualValues(t, n, w.Delivered+w.Dropped, "delivered %d, dropped %d", w.Delivered, w.Dropped)
	got := rcv.events()
	assert.Equal(t, fmt.Sprintf("t%04d", n-1), detailOf(t, got[len(got)-1].ev).ImageTag, "the newest are kept")
	first := detailOf(t, got[0].ev).ImageTag
	assert.Greater(t, first, "t0000", "the oldest were dropped")
}

// TestEventsFilters: each webhook gets the events its detail types and
// repository prefixes select.
func TestEventsFilters(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	rcvA, rcvB := newReceiver(t, clk.Now), newReceiver(t, clk.Now)
	teamA := rcvA.webhook("team-a")
	teamA.RepositoryPrefixes = []string{"team-a/"}
	pulls := rcvB.webhook("pulls")
	pulls.DetailTypes = []string{EventPullThroughCacheAction}
	e := openTestEngine(t, eventOptions(clk, teamA, pulls))
	_, err := e.CreatePullThroughCacheRule(ctx, PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: "registry-1.docker.io"})
	require.NoError(t, err)

	pushImage(t, e, "team-a/api", "v1", rnd(64))
	pushImage(t, e, "team-ab/api", "v1", rnd(64))
	// A pull-through cache fill: its own event, not a push's.
	_, payload := pushImageInto(t, e, "hub/library/redis", rnd(64))
	res, err := e.PutCachedManifest(ctx, "hub/library/redis", "7.4", ocispec.MediaTypeImageManifest, payload)
	require.NoError(t, err)
	require.NoError(t, e.RecordPullThroughCacheFailure(ctx, "hub/library/redis", "8.0", "UPSTREAM_UNAVAILABLE", "connection refused"))

	require.Eventually(t, func() bool { return rcvA.count() == 1 && rcvB.count() == 2 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, "team-a/api", detailOf(t, rcvA.events()[0].ev).RepositoryName)
	pts := rcvB.events()
	for _, g := range pts {
		assert.Equal(t, "ECR Pull Through Cache Action", g.ev.DetailType)
		assert.Equal(t, []string{e.RepositoryARN("hub/library/redis")}, g.ev.Resources)
	}
	d0, err := pts[0].ev.DecodeDetail()
	require.NoError(t, err)
	assert.Equal(t, PullThroughCacheActionDetail{RuleVersion: "1", SyncStatus: "SUCCESS", ECRRepositoryPrefix: "hub",
		RepositoryName: "hub/library/redis", UpstreamRegistryURL: "registry-1.docker.io", ImageTag: "7.4", ImageDigest: string(res.Digest)}, d0)
	d1, err := pts[1].ev.DecodeDetail()
	require.NoError(t, err)
	assert.Equal(t, PullThroughCacheActionDetail{RuleVersion: "1", SyncStatus: "FAILED", ECRRepositoryPrefix: "hub",
		RepositoryName: "hub/library/redis", UpstreamRegistryURL: "registry-1.docker.io", ImageTag: "8.0",
		FailureCode: "UPSTREAM_UNAVAILABLE", FailureReason: "connection refused"}, d1)
	assert.EqualValues(t, 4, e.EventStats().Routed, "two pushes, a fill and a failed fill")
}

// pushImageInto stores a config and layers in a cache repository (as a
// fill does) and returns the image manifest's digest and payload, not
// put.
func pushImageInto(t testing.TB, e *Engine, repo string, layers ...[]byte) (digest.Digest, []byte) {
	t.Helper()
	ctx := context.Background()
	_, err := e.EnsureCacheRepository(ctx, repo)
	require.NoError(t, err)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd, err := e.PutCachedBlob(ctx, repo, bytes.NewReader(cfg), digest.FromBytes(cfg))
	require.NoError(t, err)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd.Digest, Size: cd.Size}}
	m.SchemaVersion = 2
	for _, l := range layers {
		ld, err := e.PutCachedBlob(ctx, repo, bytes.NewReader(l), digest.FromBytes(l))
		require.NoError(t, err)
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: ld.Digest, Size: ld.Size})
	}
	payload, _ := json.Marshal(m)
	return digest.FromBytes(payload), payload
}

// TestEventsLifecycleExpiry: an image a lifecycle policy expires is a
// DELETE per tag, with the cause in its header and its audit record.
func TestEventsLifecycleExpiry(t *testing.T) {
	ctx := context.Background()
	clk := manualClock()
	rcv := newReceiver(t, clk.Now)
	e := openTestEngine(t, eventOptions(clk, rcv.webhook("ci")))
	old, payload := pushImage(t, e, "app", "old", rnd(64))
	_, err := e.PutManifest(ctx, "app", "older", ocispec.MediaTypeImageManifest, payload)
	require.NoError(t, err)
	// Delivered before the clock moves: the receiver checks the
	// signature's time against the clock.
	require.Eventually(t, func() bool { return rcv.count() == 2 }, 10*time.Second, 5*time.Millisecond)
	clk.Advance(48 * time.Hour)
	pushImage(t, e, "app", "new", rnd(64))
	require.NoError(t, e.PutLifecyclePolicy(ctx, "app", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}`))
	exp, err := e.LifecycleApply(ctx, "app", "")
	require.NoError(t, err)
	require.Len(t, exp, 1)
	require.Eventually(t, func() bool { return rcv.count() == 5 }, 10*time.Second, 5*time.Millisecond)
	var deletes []string
	for _, g := range rcv.events()[3:] {
		ia := detailOf(t, g.ev)
		assert.Equal(t, "DELETE", ia.ActionType)
		assert.Equal(t, string(old), ia.ImageDigest)
		assert.Equal(t, "lifecycle", g.header.Get("berth-event-cause"))
		deletes = append(deletes, ia.ImageTag)
	}
	assert.ElementsMatch(t, []string{"old", "older"}, deletes)
	assert.Empty(t, rcv.events()[0].header.Get("berth-event-cause"), "a push has no cause")
	n := 0
	require.NoError(t, e.AuditRecords(ctx, AuditQuery{Action: "berth:PublishEvent"}, func(r AuditRecord) error {
		if r.Parameters["action-type"] == "DELETE" {
			assert.Equal(t, "lifecycle", r.Parameters["cause"])
			n++
		}
		return nil
	}))
	assert.Equal(t, 2, n)
}

// TestEventsHeld: a store opened with HoldEvents (registryd's one-shot
// commands) keeps its events queued; the next Open without it records
// and delivers them.
func TestEventsHeld(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := manualClock()
	rcv := newReceiver(t, clk.Now)
	o := eventOptions(clk, rcv.webhook("ci"))
	o.HoldEvents = true
	e, err := Open(dir, o)
	require.NoError(t, err)
	pushImage(t, e, "app", "v1", rnd(64))
	var queued []EventListing
	require.NoError(t, e.ListEvents(ctx, EventQuery{State: EventQueued}, func(l EventListing) error {
		queued = append(queued, l)
		return nil
	}))
	require.Len(t, queued, 1)
	assert.Equal(t, "v1", detailOf(t, *queued[0].Event).ImageTag)
	require.NoError(t, e.Close())
	require.Zero(t, rcv.count())

	o.HoldEvents = false
	e, err = Open(dir, o)
	require.NoError(t, err)
	defer e.Close()
	require.Eventually(t, func() bool { return rcv.count() == 1 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, queued[0].Event.ID, rcv.events()[0].ev.ID)
}

// TestEventsDisabled: with DisableEvents nothing is queued.
func TestEventsDisabled(t *testing.T) {
	o := quietOptions()
	o.DisableEvents = true
	e := openTestEngine(t, o)
	pushImage(t, e, "app", "v1", rnd(64))
	st := e.EventStats()
	assert.False(t, st.Enabled)
	assert.Zero(t, st.Emitted)
	n := 0
	require.NoError(t, e.ListEvents(context.Background(), EventQuery{State: EventQueued}, func(EventListing) error { n++; return nil }))
	assert.Zero(t, n)
}

// TestWebhookOptions: every bad webhook setting is refused at Open, each
// with its reason.
func TestWebhookOptions(t *testing.T) {
	key, _ := ParseWebhookSecret(NewWebhookSecret())
	good := Webhook{Name: "ci", URL: "https://hooks.example.com/berth", Secret: key}
	for name, tc := range map[string]struct {
		spoil func(*Webhook)
		want  string
	}{
		"name":            {func(w *Webhook) { w.Name = "CI!" }, "the name must be"},
		"no url":          {func(w *Webhook) { w.URL = "" }, "want https://HOST/PATH"},
		"plain http":      {func(w *Webhook) { w.URL = "http://hooks.example.com/x" }, "http:// only to a loopback address"},
		"ftp":             {func(w *Webhook) { w.URL = "ftp://hooks.example.com/x" }, `scheme "ftp"`},
		"no secret":       {func(w *Webhook) { w.Secret = nil }, "a secret of 0 bytes"},
		"detail type":     {func(w *Webhook) { w.DetailTypes = []string{"ECR Image Push"} }, `detail type "ECR Image Push"`},
		"empty prefix":    {func(w *Webhook) { w.RepositoryPrefixes = []string{""} }, "an empty repository prefix"},
		"concurrency":     {func(w *Webhook) { w.Concurrency = 65 }, "concurrency 65"},
		"attempts":        {func(w *Webhook) { w.MaxAttempts = -1 }, "maxAttempts -1"},
		"negative":        {func(w *Webhook) { w.Timeout = -time.Second }, "negative timeout"},
		"backoff reverse": {func(w *Webhook) { w.InitialBackoff, w.MaxBackoff = time.Hour, time.Minute }, "maxBackoff 1m0s is below"},
	} {
		w := good
		tc.spoil(&w)
		_, err := Open(t.TempDir(), &Options{Webhooks: []Webhook{w}})
		require.ErrorIs(t, err, ErrInvalidArgument, name)
		require.ErrorContains(t, err, tc.want, name)
	}
	_, err := Open(t.TempDir(), &Options{Webhooks: []Webhook{good, good}})
	require.ErrorContains(t, err, `two webhooks are named "ci"`)
	_, err = Open(t.TempDir(), &Options{EventQueueMaxBytes: 1000})
	require.ErrorContains(t, err, "EventQueueMaxBytes 1000")
	for _, u := range []string{"http://127.0.0.1:9/x", "http://[::1]:9/x", "http://localhost/x", "https://10.0.0.1/x"} {
		w := good
		w.URL = u
		e, err := Open(t.TempDir(), &Options{Webhooks: []Webhook{w}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		require.NoError(t, err, u)
		require.NoError(t, e.Close())
	}
	// Open fills defaults in its own copy.
	ws := []Webhook{good}
	e, err := Open(t.TempDir(), &Options{Webhooks: ws, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	require.NoError(t, e.Close())
	assert.Zero(t, ws[0].Timeout)
}

// TestEventsSlowReceiver: a receiver that never answers does not hold
// pushes up: they do not wait for its deliveries (the ratio of the two
// medians is logged; a wait would be the webhook's timeout, a minute).
func TestEventsSlowReceiver(t *testing.T) {
	ctx := context.Background()
	measure := func(o *Options) time.Duration {
		e := openTestEngine(t, o)
		// Eight repositories: every sender has deliveries to stall on.
		const n, repos = 160, 8
		payloads := make([][]byte, repos)
		for r := range repos {
			_, payloads[r] = pushImage(t, e, fmt.Sprintf("app%d", r), "warm", rnd(64))
		}
		lat := make([]time.Duration, 0, n)
		for i := range n {
			start := time.Now()
			_, err := e.PutManifest(ctx, fmt.Sprintf("app%d", i%repos), fmt.Sprintf("t%04d", i), ocispec.MediaTypeImageManifest, payloads[i%repos])
			require.NoError(t, err)
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		return lat[n/2]
	}
	rcv := newReceiver(t, time.Now)
	rcv.setStall(true)
	hook := rcv.webhook("stalled")
	hook.Timeout = time.Minute
	without := measure(quietOptions())
	o := quietOptions()
	o.Webhooks = []Webhook{hook}
	with := measure(o)
	// The senders deliver in the background: on a busy machine the
	// first attempt may reach the receiver only after the pushes.
	attempts := func() int {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.attempts
	}
	require.Eventually(t, func() bool { return attempts() > 0 }, 30*time.Second, 10*time.Millisecond, "the receiver was being called")
	t.Logf("push p50: without a webhook %v, with a stalled receiver %v (x%.2f); %d attempts stalled", without, with, float64(with)/float64(without), attempts())
	// A push that waited for the stalled receiver would wait up to its
	// timeout (a minute); the bound tells that from a busy machine.
	require.Less(t, with, without+time.Second, "a push does not wait for the stalled receiver")
}
