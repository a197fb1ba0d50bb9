package engine

// Webhooks: the endpoints events are delivered to, each with its own
// queue in the index (w and W keys), its sender goroutines (one per
// partition of the repositories, so that one repository's events go out
// in order) and its counters. docs/events.md.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthstore/berth/engine/internal/events"
	"github.com/berthstore/berth/index"
)

// Defaults and bounds of a Webhook and of the event queue.
const (
	// DefaultWebhookTimeout bounds one delivery attempt.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultWebhookConcurrency is the number of sender goroutines of an
	// endpoint.
	DefaultWebhookConcurrency = 4
	// DefaultWebhookMaxAttempts and DefaultWebhookMaxAge bound a
	// delivery: past either it is given up (a dead letter).
	DefaultWebhookMaxAttempts = 20
	DefaultWebhookMaxAge      = 24 * time.Hour
	// DefaultWebhookInitialBackoff and DefaultWebhookMaxBackoff shape
	// the waits between attempts (doubling, with jitter).
	DefaultWebhookInitialBackoff = time.Second
	DefaultWebhookMaxBackoff     = time.Hour
	// DefaultEventQueueMaxBytes bounds each webhook's pending deliveries,
	// and its dead letters, in bytes of stored records.
	DefaultEventQueueMaxBytes = 64 << 20
	// MinEventQueueMaxBytes is the smallest EventQueueMaxBytes Validate
	// accepts.
	MinEventQueueMaxBytes = 64 << 10
	// maxWebhookConcurrency bounds Webhook.Concurrency.
	maxWebhookConcurrency = 64
	// maxLastError bounds the error text a delivery keeps.
	maxLastError = 512
)

// Webhook is an endpoint that events are delivered to: an HTTPS URL that
// receives each event it selects as a signed POST (docs/events.md).
type Webhook struct {
	// Name names the endpoint and its queue in the store: 1 to 64
	// characters of a-z, 0-9, '.', '_' and '-', starting and ending with
	// a letter or digit. Renaming an endpoint starts an empty queue (the
	// old one stays, and is reported at Open, until the name comes back).
	Name string
	// URL receives the POSTs: https://, or http:// to a loopback address
	// only (127.0.0.0/8, ::1, localhost: a receiver on the same machine,
	// tests). Redirects are not followed.
	URL string
	// Secret is the HMAC-SHA256 key that signs every delivery (24 to 64
	// bytes; ParseWebhookSecret reads a "whsec_..." text). Required.
	Secret []byte
	// DetailTypes selects the events by detail type ("ECR Image Action",
	// ...). Default: all.
	DetailTypes []string
	// RepositoryPrefixes selects the events of repositories whose names
	// start with one of these (a plain string prefix). Default: all.
	RepositoryPrefixes []string
	// Timeout bounds one attempt. Default DefaultWebhookTimeout (10 s).
	Timeout time.Duration
	// Concurrency is the number of sender goroutines: the repositories
	// are spread over them, each repository's events sent one after
	// the other in order. Default DefaultWebhookConcurrency (4); at most
	// 64.
	Concurrency int
	// MaxAttempts gives a delivery up after that many failed attempts.
	// Default DefaultWebhookMaxAttempts (20).
	MaxAttempts int
	// MaxAge gives a delivery up once its event is that old (checked
	// after a failed attempt). Default DefaultWebhookMaxAge (24 h).
	MaxAge time.Duration
	// InitialBackoff is the wait after the first failed attempt; it
	// doubles after each further one up to MaxBackoff, each wait drawn
	// from [d/2, d]. Defaults DefaultWebhookInitialBackoff (1 s) and
	// DefaultWebhookMaxBackoff (1 h).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// RootCAs are the certificate authorities trusted for the URL's TLS
	// certificate. Default nil: the system's roots.
	RootCAs *x509.CertPool
}

// webhookNamePattern is what Webhook.Name may be.
var webhookNamePattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$`)

// ensureDefaults fills w's zero fields.
func (w *Webhook) ensureDefaults() {
	if w.Timeout == 0 {
		w.Timeout = DefaultWebhookTimeout
	}
	if w.Concurrency == 0 {
		w.Concurrency = DefaultWebhookConcurrency
	}
	if w.MaxAttempts == 0 {
		w.MaxAttempts = DefaultWebhookMaxAttempts
	}
	if w.MaxAge == 0 {
		w.MaxAge = DefaultWebhookMaxAge
	}
	if w.InitialBackoff == 0 {
		w.InitialBackoff = DefaultWebhookInitialBackoff
	}
	if w.MaxBackoff == 0 {
		w.MaxBackoff = DefaultWebhookMaxBackoff
	}
}

// validate reports every problem of w (defaults filled).
func (w *Webhook) validate() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: webhook %q: %s", ErrInvalidArgument, w.Name, fmt.Sprintf(format, args...)))
	}
	if !webhookNamePattern.MatchString(w.Name) {
		bad("the name must be 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting and ending with a letter or digit")
	}
	if err := checkWebhookURL(w.URL); err != nil {
		bad("%v", err)
	}
	if len(w.Secret) < events.MinSecretBytes || len(w.Secret) > events.MaxSecretBytes {
		bad("a secret of %d bytes; want %d to %d (every delivery is signed)", len(w.Secret), events.MinSecretBytes, events.MaxSecretBytes)
	}
	for _, t := range w.DetailTypes {
		if !events.KnownDetailType(t) {
			bad("detail type %q: want one of %q", t, events.DetailTypes)
		}
	}
	for _, p := range w.RepositoryPrefixes {
		if p == "" {
			bad("an empty repository prefix (leave the list empty for every repository)")
		}
	}
	switch {
	case w.Timeout < 0, w.MaxAge < 0, w.InitialBackoff < 0, w.MaxBackoff < 0:
		bad("negative timeout, age or backoff")
	case w.MaxBackoff < w.InitialBackoff:
		bad("maxBackoff %v is below initialBackoff %v", w.MaxBackoff, w.InitialBackoff)
	}
	if w.Concurrency < 1 || w.Concurrency > maxWebhookConcurrency {
		bad("concurrency %d: want 1 to %d", w.Concurrency, maxWebhookConcurrency)
	}
	if w.MaxAttempts < 1 {
		bad("maxAttempts %d: want at least 1", w.MaxAttempts)
	}
	return errs
}

// checkWebhookURL accepts https:// URLs, and http:// ones to a loopback
// address.
func checkWebhookURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("url: %v", err)
	}
	if u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("url %q: want https://HOST/PATH", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("url %q: http:// only to a loopback address (a receiver on this machine); use https://", s)
	}
	return fmt.Errorf("url %q: scheme %q: want https", s, u.Scheme)
}

// cloneWebhooks copies ws so that filling defaults leaves the caller's
// alone.
func cloneWebhooks(ws []Webhook) []Webhook {
	out := slices.Clone(ws)
	for i := range out {
		out[i].Secret = slices.Clone(out[i].Secret)
		out[i].DetailTypes = slices.Clone(out[i].DetailTypes)
		out[i].RepositoryPrefixes = slices.Clone(out[i].RepositoryPrefixes)
	}
	return out
}

// endpoint is a configured webhook at work.
type endpoint struct {
	e        *Engine
	cfg      Webhook
	filter   events.Filter
	backoff  events.Backoff
	client   *http.Client
	maxBytes int64

	// mu guards the in-memory queues and sizes, and orders the endpoint's
	// index writes: a trim never races a sender's update of the same key.
	mu           sync.Mutex
	parts        []*partition
	running      bool // loaded and started (not with HoldEvents)
	pendingCount int
	pendingBytes int64
	deadCount    int
	deadBytes    int64
	failing      bool // the last attempt failed (logged once a streak)

	delivered, failed, deadLettered, dropped, deadDropped atomic.Uint64
	latency                                               *latencyHistogram
}

// partition is one sender's share of the repositories: its deliveries
// in the order they were routed.
type partition struct {
	q    []*pending
	wake chan struct{}
}

// pending is a delivery in memory: what a sender needs to schedule it
// (the record itself stays in the index).
type pending struct {
	seq      uint64
	repo     string
	size     int
	at       time.Time
	attempts int
	next     time.Time
	dropped  bool
}

func (e *Engine) newEndpoint(w Webhook) (*endpoint, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: w.RootCAs, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = w.Concurrency
	ep := &endpoint{
		e: e, cfg: w,
		filter:   events.Filter{DetailTypes: w.DetailTypes, RepositoryPrefixes: w.RepositoryPrefixes},
		backoff:  events.Backoff{Initial: w.InitialBackoff, Max: w.MaxBackoff},
		client:   &http.Client{Transport: tr, CheckRedirect: events.NoRedirects},
		maxBytes: e.opts.EventQueueMaxBytes,
		latency:  newLatencyHistogram(),
	}
	for range w.Concurrency {
		ep.parts = append(ep.parts, &partition{wake: make(chan struct{}, 1)})
	}
	return ep, nil
}

// partitionOf is the partition of repository repo's deliveries.
func (ep *endpoint) partitionOf(repo string) *partition {
	h := fnv.New32a()
	_, _ = h.Write([]byte(repo))
	return ep.parts[int(h.Sum32()%uint32(len(ep.parts)))]
}

// load reads the endpoint's pending deliveries and dead letters from the
// index.
func (ep *endpoint) load() error {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	name := ep.cfg.Name
	err := ep.e.db.WalkDeliveries(name, func(seq uint64, v []byte) (bool, error) {
		d, err := events.DecodeDelivery(v)
		if err != nil {
			ep.e.log.Error("events: a pending delivery does not decode; it is removed", "webhook", name, "seq", seq, "err", err)
			b := ep.e.db.NewBatch()
			defer b.Close()
			if err := b.DeleteDelivery(name, seq); err != nil {
				return false, err
			}
			ep.e.ev.corrupt.Add(1)
			return true, b.Commit(false)
		}
		p := &pending{seq: seq, repo: d.Repository, size: len(v), at: d.At, attempts: d.Attempts, next: d.NextAttemptAt}
		part := ep.partitionOf(p.repo)
		part.q = append(part.q, p)
		ep.pendingCount++
		ep.pendingBytes += int64(len(v))
		return true, nil
	})
	if err == nil {
		err = ep.e.db.WalkDeadLetters(name, func(_ uint64, v []byte) (bool, error) {
			ep.deadCount++
			ep.deadBytes += int64(len(v))
			return true, nil
		})
	}
	if err != nil {
		return fmt.Errorf("engine: webhook %s: %w", name, storageErr(err))
	}
	ep.running = true
	ep.trimLocked()
	ep.trimDeadLocked()
	if ep.pendingCount > 0 {
		ep.e.log.Info("events: pending deliveries resume", "webhook", name, "deliveries", ep.pendingCount, "bytes", ep.pendingBytes)
	}
	return nil
}

// start starts the endpoint's senders.
func (ep *endpoint) start() {
	for _, part := range ep.parts {
		ep.e.goBackground(func(ctx context.Context) { ep.send(ctx, part) })
	}
}

// add hands freshly routed deliveries to the senders, then trims the
// queue to its bound.
func (ep *endpoint) add(ps []*pending) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if !ep.running {
		return
	}
	for _, p := range ps {
		part := ep.partitionOf(p.repo)
		part.q = append(part.q, p)
		ep.pendingCount++
		ep.pendingBytes += int64(p.size)
		wake(part.wake)
	}
	ep.trimLocked()
}

// wake signals c without blocking.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// trimLocked drops the oldest pending deliveries while the queue is over
// its bound: pushes never wait for a receiver, and a receiver that is
// away long enough loses the oldest events (counted, logged; the audit
// log keeps them).
func (ep *endpoint) trimLocked() {
	if ep.pendingBytes <= ep.maxBytes {
		return
	}
	b := ep.e.db.NewBatch()
	defer b.Close()
	n := 0
	for ep.pendingBytes > ep.maxBytes {
		var oldest *pending
		for _, part := range ep.parts {
			for _, p := range part.q {
				if !p.dropped {
					if oldest == nil || p.seq < oldest.seq {
						oldest = p
					}
					break
				}
			}
		}
		if oldest == nil {
			break
		}
		oldest.dropped = true
		ep.pendingCount--
		ep.pendingBytes -= int64(oldest.size)
		if err := b.DeleteDelivery(ep.cfg.Name, oldest.seq); err != nil {
			ep.e.log.Error("events: dropping a delivery", "webhook", ep.cfg.Name, "err", err)
			return
		}
		n++
	}
	if err := b.Commit(false); err != nil {
		ep.e.log.Error("events: dropping deliveries", "webhook", ep.cfg.Name, "err", err)
		return
	}
	ep.dropped.Add(uint64(n))
	ep.e.log.Warn("events: the webhook's queue is full; its oldest deliveries are dropped (the audit log keeps the events)",
		"webhook", ep.cfg.Name, "dropped", n, "bound", ep.maxBytes)
}

// trimDeadLocked removes the oldest dead letters while they are over the
// bound.
func (ep *endpoint) trimDeadLocked() {
	if ep.deadBytes <= ep.maxBytes {
		return
	}
	b := ep.e.db.NewBatch()
	defer b.Close()
	n := 0
	err := ep.e.db.WalkDeadLetters(ep.cfg.Name, func(seq uint64, v []byte) (bool, error) {
		if ep.deadBytes <= ep.maxBytes {
			return false, nil
		}
		ep.deadBytes -= int64(len(v))
		ep.deadCount--
		n++
		return true, b.DeleteDeadLetter(ep.cfg.Name, seq)
	})
	if err == nil {
		err = b.Commit(false)
	}
	if err != nil {
		ep.e.log.Error("events: dropping dead letters", "webhook", ep.cfg.Name, "err", err)
		return
	}
	ep.deadDropped.Add(uint64(n))
	ep.e.log.Warn("events: the webhook's dead letters are over the bound; the oldest are dropped", "webhook", ep.cfg.Name, "dropped", n)
}

// send is one sender: it delivers its partition's deliveries one after
// the other, each when due, until ctx ends.
func (ep *endpoint) send(ctx context.Context, part *partition) {
	for {
		ep.mu.Lock()
		for len(part.q) > 0 && part.q[0].dropped {
			part.q = part.q[1:]
		}
		var head *pending
		if len(part.q) > 0 {
			head = part.q[0]
		}
		ep.mu.Unlock()
		if head == nil {
			select {
			case <-part.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		if wait := head.next.Sub(ep.e.clock.Now()); wait > 0 {
			stop := ep.e.clock.AfterFunc(wait, func() { wake(part.wake) })
			select {
			case <-part.wake:
				stop()
				continue
			case <-ctx.Done():
				stop()
				return
			}
		}
		ep.attempt(ctx, part, head)
		if ctx.Err() != nil {
			return
		}
	}
}

// attempt makes one attempt of delivery head and records its outcome.
func (ep *endpoint) attempt(ctx context.Context, part *partition, head *pending) {
	e, name := ep.e, ep.cfg.Name
	v, err := e.db.Delivery(name, head.seq)
	if errors.Is(err, index.ErrNotFound) {
		ep.mu.Lock()
		ep.removeLocked(part, head)
		ep.mu.Unlock()
		return
	}
	var d *events.Delivery
	if err == nil {
		if d, err = events.DecodeDelivery(v); err != nil {
			e.log.Error("events: a pending delivery does not decode; it is removed", "webhook", name, "seq", head.seq, "err", err)
			e.ev.corrupt.Add(1)
			ep.mu.Lock()
			ep.deleteLocked(part, head)
			ep.mu.Unlock()
			return
		}
	}
	if err != nil {
		e.log.Error("events: reading a pending delivery", "webhook", name, "seq", head.seq, "err", err)
		e.sleep(ctx, time.Second)
		return
	}
	actx, cancel := context.WithTimeout(ctx, ep.cfg.Timeout)
	perr := events.Post(actx, ep.client, events.Attempt{
		URL: ep.cfg.URL, Key: ep.cfg.Secret, Body: d.Body, ID: d.ID, DetailType: d.DetailType,
		Cause: d.Cause, Number: d.Attempts + 1, Now: e.clock.Now(),
	})
	cancel()
	if ctx.Err() != nil {
		return // closing: the attempt's outcome is unknown; it is made again after Open
	}
	now := e.clock.Now()
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if perr == nil {
		ep.deleteLocked(part, head)
		ep.delivered.Add(1)
		ep.latency.observe(now.Sub(d.At))
		if ep.failing {
			ep.failing = false
			e.log.Info("events: the webhook accepts deliveries again", "webhook", name)
		}
		return
	}
	ep.failed.Add(1)
	if !ep.failing {
		ep.failing = true
		e.log.Warn("events: a delivery failed; it is retried with backoff", "webhook", name, "event", d.ID, "err", perr)
	}
	if head.dropped {
		ep.removeLocked(part, head)
		return
	}
	d.Attempts++
	d.LastAttemptAt, d.LastError = now, perr.Error()
	if len(d.LastError) > maxLastError {
		d.LastError = d.LastError[:maxLastError]
	}
	var reason string
	switch age := now.Sub(d.At); {
	case d.Attempts >= ep.cfg.MaxAttempts:
		reason = fmt.Sprintf("%d attempts failed", d.Attempts)
	case age >= ep.cfg.MaxAge:
		reason = fmt.Sprintf("the event is %v old (maxAge %v)", age.Round(time.Second), ep.cfg.MaxAge)
	}
	b := e.db.NewBatch()
	defer b.Close()
	if reason != "" {
		d.DeadAt, d.DeadReason, d.NextAttemptAt = now, reason, time.Time{}
		val := events.EncodeDelivery(d)
		err := b.DeleteDelivery(name, head.seq)
		if err == nil {
			err = b.PutDeadLetter(name, head.seq, val)
		}
		if err == nil {
			err = b.Commit(false)
		}
		if err != nil {
			e.log.Error("events: giving a delivery up", "webhook", name, "seq", head.seq, "err", err)
			return
		}
		ep.removeLocked(part, head)
		ep.deadCount++
		ep.deadBytes += int64(len(val))
		ep.deadLettered.Add(1)
		e.log.Warn("events: a delivery is given up (a dead letter: registryd events list --dead)",
			"webhook", name, "event", d.ID, "detailType", d.DetailType, "reason", reason, "lastError", d.LastError)
		ep.trimDeadLocked()
		return
	}
	d.NextAttemptAt = now.Add(ep.backoff.Delay(d.Attempts))
	val := events.EncodeDelivery(d)
	err = b.PutDelivery(name, head.seq, val)
	if err == nil {
		err = b.Commit(false)
	}
	if err != nil {
		e.log.Error("events: recording a failed attempt", "webhook", name, "seq", head.seq, "err", err)
	}
	ep.pendingBytes += int64(len(val) - head.size)
	head.size, head.attempts, head.next = len(val), d.Attempts, d.NextAttemptAt
	ep.trimLocked() // the record grew by its last error
}

// deleteLocked removes delivery head from the index and the queue (done
// or unreadable).
func (ep *endpoint) deleteLocked(part *partition, head *pending) {
	if !head.dropped {
		b := ep.e.db.NewBatch()
		defer b.Close()
		err := b.DeleteDelivery(ep.cfg.Name, head.seq)
		if err == nil {
			err = b.Commit(false)
		}
		if err != nil {
			ep.e.log.Error("events: removing a delivery", "webhook", ep.cfg.Name, "seq", head.seq, "err", err)
		}
	}
	ep.removeLocked(part, head)
}

// removeLocked takes head out of its partition's queue and the sizes.
func (ep *endpoint) removeLocked(part *partition, head *pending) {
	if i := slices.Index(part.q, head); i >= 0 {
		part.q = slices.Delete(part.q, i, i+1)
	}
	if !head.dropped {
		head.dropped = true
		ep.pendingCount--
		ep.pendingBytes -= int64(head.size)
	}
}

// RedriveEvents moves the dead letters of webhook name back to its
// queue, their attempts forgotten, to be delivered again. It returns how
// many moved. Errors: ErrInvalidArgument (no webhook of that name is
// configured), ErrClosed.
func (e *Engine) RedriveEvents(ctx context.Context, name string) (int, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	ep := e.ev.endpoints[name]
	if ep == nil {
		return 0, fmt.Errorf("%w: no webhook %q is configured", ErrInvalidArgument, name)
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	b := e.db.NewBatch()
	defer b.Close()
	var moved []*pending
	var freed int64
	err := e.db.WalkDeadLetters(name, func(seq uint64, v []byte) (bool, error) {
		d, err := events.DecodeDelivery(v)
		if err != nil {
			return false, fmt.Errorf("%w: dead letter %s/%d: %v", ErrCorrupt, name, seq, err)
		}
		d.Attempts, d.NextAttemptAt, d.DeadAt, d.DeadReason = 0, time.Time{}, time.Time{}, ""
		val := events.EncodeDelivery(d)
		if err := b.DeleteDeadLetter(name, seq); err != nil {
			return false, err
		}
		if err := b.PutDelivery(name, seq, val); err != nil {
			return false, err
		}
		freed += int64(len(v))
		moved = append(moved, &pending{seq: seq, repo: d.Repository, size: len(val), at: d.At})
		return true, ctx.Err()
	})
	if err != nil {
		return 0, storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		return 0, storageErr(err)
	}
	e.log.Info("events: dead letters redriven", "webhook", name, "deliveries", len(moved))
	if !ep.running {
		return len(moved), nil
	}
	ep.deadCount -= len(moved)
	ep.deadBytes -= freed
	for _, p := range moved {
		part := ep.partitionOf(p.repo)
		part.q = append(part.q, p)
		ep.pendingCount++
		ep.pendingBytes += int64(p.size)
		wake(part.wake)
	}
	ep.trimLocked()
	return len(moved), nil
}

// closeEvents lets the endpoints' idle connections go (Close, after the
// senders stopped).
func (e *Engine) closeEvents() {
	for _, ep := range e.ev.endpoints {
		ep.client.CloseIdleConnections()
	}
}

// latencyBounds are the upper bounds, in seconds, of the delivery
// latency histogram: from the event's emission to its receiver's 2xx.
var latencyBounds = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600}

// latencyHistogram counts delivery latencies in latencyBounds' buckets.
type latencyHistogram struct {
	mu     sync.Mutex
	counts []uint64 // per bucket, the last for above every bound
	sum    float64
	n      uint64
}

func newLatencyHistogram() *latencyHistogram {
	return &latencyHistogram{counts: make([]uint64, len(latencyBounds)+1)}
}

func (h *latencyHistogram) observe(d time.Duration) {
	s := max(d.Seconds(), 0)
	i, _ := slices.BinarySearch(latencyBounds, s)
	h.mu.Lock()
	h.counts[i]++
	h.sum += s
	h.n++
	h.mu.Unlock()
}

// EventLatency is a histogram of delivery latencies (seconds), in the
// form Prometheus takes: cumulative counts per upper bound.
type EventLatency struct {
	// Bounds are the buckets' upper bounds; Cumulative[i] counts the
	// latencies at most Bounds[i].
	Bounds     []float64
	Cumulative []uint64
	// Sum and Count are of every latency observed.
	Sum   float64
	Count uint64
}

func (h *latencyHistogram) snapshot() EventLatency {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := EventLatency{Bounds: latencyBounds, Cumulative: make([]uint64, len(latencyBounds)), Sum: h.sum, Count: h.n}
	var c uint64
	for i := range latencyBounds {
		c += h.counts[i]
		out.Cumulative[i] = c
	}
	return out
}

// WebhookStats are one webhook's figures: its queue now, and its counts
// since Open.
type WebhookStats struct {
	// Name is the webhook's.
	Name string
	// Pending and PendingBytes are the deliveries waiting (with their
	// stored bytes); Dead and DeadBytes the dead letters kept.
	Pending      int
	PendingBytes int64
	Dead         int
	DeadBytes    int64
	// Delivered counts deliveries the receiver accepted; Failed the
	// attempts that failed; DeadLettered the deliveries given up;
	// Dropped the deliveries dropped unsent because the queue was full;
	// DeadDropped the dead letters dropped over the bound.
	Delivered, Failed, DeadLettered, Dropped, DeadDropped uint64
	// Latency is the histogram of the delivered events' latencies.
	Latency EventLatency
}

// EventStats are the event queue's figures, for metrics.
type EventStats struct {
	// Enabled is false with Options.DisableEvents.
	Enabled bool
	// Emitted counts events queued since Open; Routed those routed
	// (recorded in the audit log, handed to the webhooks); Unrouted is
	// the queue's length now (an estimate); Corrupt counts records that
	// did not decode and were removed.
	Emitted, Routed uint64
	Unrouted        int64
	Corrupt         uint64
	// AuditFailures counts routing rounds that could not record their
	// events in the audit log (retried).
	AuditFailures uint64
	// Webhooks are the configured webhooks', in configuration order.
	Webhooks []WebhookStats
}

// EventStats returns the event queue's figures.
func (e *Engine) EventStats() EventStats {
	s := EventStats{
		Enabled: e.ev.on, Emitted: e.ev.emitted.Load(), Routed: e.ev.routed.Load(),
		Unrouted: max(e.ev.unrouted.Load(), 0), Corrupt: e.ev.corrupt.Load(), AuditFailures: e.ev.auditFails.Load(),
	}
	for _, name := range e.ev.names {
		ep := e.ev.endpoints[name]
		ep.mu.Lock()
		ws := WebhookStats{Name: name, Pending: ep.pendingCount, PendingBytes: ep.pendingBytes, Dead: ep.deadCount, DeadBytes: ep.deadBytes}
		ep.mu.Unlock()
		ws.Delivered, ws.Failed, ws.DeadLettered = ep.delivered.Load(), ep.failed.Load(), ep.deadLettered.Load()
		ws.Dropped, ws.DeadDropped = ep.dropped.Load(), ep.deadDropped.Load()
		ws.Latency = ep.latency.snapshot()
		s.Webhooks = append(s.Webhooks, ws)
	}
	return s
}
