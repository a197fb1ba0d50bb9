package engine

// Events: Amazon ECR's EventBridge events (image pushed and deleted,
// pull-through cache fills; the shapes of scans, replications and
// storage-class changes too), queued in the index in the batch of the
// change they report, recorded in the audit log and delivered to webhooks
// (webhooks.go). engine/internal/events holds the shapes; docs/events.md
// the whole design.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/audit"
	"github.com/berthstore/berth/engine/internal/events"
	"github.com/berthstore/berth/index"
)

// The event shapes, as receivers read them: the EventBridge envelope and
// the detail of each detail type (docs/events.md).
type (
	// Event is one EventBridge event: "version", "id", "detail-type",
	// "source" (aws.ecr), "account", "time", "region", "resources",
	// "detail". Its DecodeDetail returns the typed detail.
	Event = events.Event
	// EventTime is an event's time (JSON in whole seconds, UTC).
	EventTime = events.Time
	// EventDetail is a typed detail: one of the four below.
	EventDetail = events.Detail
	// ImageActionDetail is the detail of ECR Image Action (and ECR
	// Referrer Action): PUSH, DELETE, UPDATE_STORAGE_CLASS.
	ImageActionDetail = events.ImageAction
	// PullThroughCacheActionDetail is the detail of ECR Pull Through
	// Cache Action.
	PullThroughCacheActionDetail = events.PullThroughCacheAction
	// ImageScanDetail is the detail of ECR Image Scan.
	ImageScanDetail = events.ImageScan
	// ReplicationActionDetail is the detail of ECR Replication Action.
	ReplicationActionDetail = events.ReplicationAction
)

// The detail types of the events (EventBridge's "detail-type").
const (
	EventImageAction            = events.DetailImageAction
	EventReferrerAction         = events.DetailReferrerAction
	EventImageScan              = events.DetailImageScan
	EventReplicationAction      = events.DetailReplicationAction
	EventPullThroughCacheAction = events.DetailPullThroughCacheAction
)

// EventCauseLifecycle is the cause of an image a lifecycle policy
// expired: its DELETE event carries it in the audit record and in the
// berth-event-cause header of its deliveries.
const EventCauseLifecycle = events.CauseLifecycle

// The errors of webhook secrets and signatures.
var (
	// ErrWebhookSecret: a secret that is not "whsec_" and the base64 of
	// 24 to 64 bytes.
	ErrWebhookSecret = events.ErrSecret
	// ErrWebhookSignature: a delivery whose signature does not verify.
	ErrWebhookSignature = events.ErrSignature
)

// The headers of a webhook delivery: the Standard Webhooks signature
// headers, and Berth's own.
const (
	WebhookHeaderID        = events.HeaderID
	WebhookHeaderTimestamp = events.HeaderTimestamp
	WebhookHeaderSignature = events.HeaderSignature
	WebhookHeaderEventType = events.HeaderEventType
	WebhookHeaderAttempt   = events.HeaderAttempt
	WebhookHeaderCause     = events.HeaderCause
)

// ParseWebhookSecret returns the HMAC key of a secret's text ("whsec_"
// and base64), for Webhook.Secret. Errors wrap ErrWebhookSecret.
func ParseWebhookSecret(s string) ([]byte, error) { return events.ParseSecret(s) }

// NewWebhookSecret returns a fresh secret's text (32 random bytes).
func NewWebhookSecret() string { return events.NewSecret() }

// VerifyWebhook checks a delivery as a receiver does: its headers, its
// body as received, the receiver's time now and how far the signature's
// timestamp may be from it (5 minutes when zero). It returns the event's
// id, by which the receiver dedupes (a delivery may repeat). Errors wrap
// ErrWebhookSignature.
func VerifyWebhook(key []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) (string, error) {
	return events.Verify(key, h, body, now, tolerance)
}

// eventsState is the engine's event machinery.
type eventsState struct {
	// on is false with Options.DisableEvents: nothing is queued.
	on bool
	// seq numbers queued events; Open starts it after the highest in the
	// index.
	seq    atomic.Uint64
	origin events.Origin
	// kick wakes the router (buffered 1).
	kick chan struct{}
	// endpoints are the configured webhooks, by name; fixed at Open.
	endpoints map[string]*endpoint
	names     []string // their names, in configuration order
	// unrouted counts events queued and not yet routed (an estimate:
	// those found at Open, plus those queued since, less those routed).
	unrouted            atomic.Int64
	emitted, routed     atomic.Uint64
	corrupt, auditFails atomic.Uint64
	// routeMu serialises routing rounds (the router, and Close's last
	// round).
	routeMu sync.Mutex
}

// eventsEnabled reports whether changes queue events.
func (e *Engine) eventsEnabled() bool { return e.ev.on }

// openEvents prepares the event machinery at Open: the next sequence
// number, and the configured endpoints with what the index holds for
// them. The router and senders start in startEvents.
func (e *Engine) openEvents() error {
	e.ev.on = !e.opts.DisableEvents
	e.ev.kick = make(chan struct{}, 1)
	e.ev.origin = events.Origin{Account: e.opts.Account, Region: e.opts.Region, RepositoryARN: e.RepositoryARN}
	if !e.ev.on {
		return nil
	}
	last, err := e.db.LastEventSeq()
	if err != nil {
		return fmt.Errorf("engine: event queue: %w", err)
	}
	e.ev.seq.Store(last)
	n := 0
	if err := e.db.WalkEvents(func(uint64, []byte) (bool, error) { n++; return true, nil }); err != nil {
		return fmt.Errorf("engine: event queue: %w", err)
	}
	e.ev.unrouted.Store(int64(n))
	e.ev.endpoints = map[string]*endpoint{}
	for i := range e.opts.Webhooks {
		ep, err := e.newEndpoint(e.opts.Webhooks[i])
		if err != nil {
			return err
		}
		e.ev.endpoints[ep.cfg.Name] = ep
		e.ev.names = append(e.ev.names, ep.cfg.Name)
	}
	if !e.opts.HoldEvents {
		for _, name := range e.ev.names {
			if err := e.ev.endpoints[name].load(); err != nil {
				return err
			}
		}
	}
	eps, err := e.db.DeliveryEndpoints()
	if err != nil {
		return fmt.Errorf("engine: event queue: %w", err)
	}
	for _, name := range eps {
		if _, ok := e.ev.endpoints[name]; !ok {
			e.log.Warn("events: the store holds deliveries or dead letters of a webhook that is not configured; they stay until it is configured again",
				"webhook", name)
		}
	}
	return nil
}

// startEvents starts the router and the senders, unless events are off
// or held.
func (e *Engine) startEvents() {
	if !e.ev.on || e.opts.HoldEvents {
		return
	}
	e.goBackground(e.routeEvents)
	for _, name := range e.ev.names {
		e.ev.endpoints[name].start()
	}
}

// kickEvents wakes the router after a commit that queued events.
func (e *Engine) kickEvents() {
	select {
	case e.ev.kick <- struct{}{}:
	default:
	}
}

// eventQueue collects the events of one change, queued in its batch.
type eventQueue struct {
	e *Engine
	b *index.Batch
	n int
}

// events returns the event queue of batch b.
func (e *Engine) events(b *index.Batch) *eventQueue { return &eventQueue{e: e, b: b} }

// add queues the event of detail d with cause ("" for a change a request
// asked for).
func (q *eventQueue) add(d events.Detail, cause string) error {
	if !q.e.ev.on {
		return nil
	}
	now := q.e.now()
	qd, err := q.e.ev.origin.Queue(audit.NewEventID(), now, d, cause)
	if err != nil {
		return err
	}
	seq, err := q.e.nextEventSeq()
	if err != nil {
		return err
	}
	if err := q.b.PutEvent(seq, events.EncodeQueued(qd)); err != nil {
		return storageErr(err)
	}
	q.n++
	return nil
}

// imageActions queues one ECR Image Action of type action for manifest
// m of repo per tag, or one without a tag when tags is empty.
func (q *eventQueue) imageActions(repo, action string, d digest.Digest, mediaType, artifactType string, tags []string, cause string) error {
	ia := events.ImageAction{
		Result: events.ResultSuccess, RepositoryName: repo, ImageDigest: string(d), ActionType: action,
		ManifestMediaType: mediaType, ArtifactMediaType: artifactType,
	}
	if len(tags) == 0 {
		return q.add(ia, cause)
	}
	for _, t := range tags {
		ia.ImageTag = t
		if err := q.add(ia, cause); err != nil {
			return err
		}
	}
	return nil
}

// replicationActions queues one ECR Replication Action (SUCCESS) for
// manifest d of repo replicated from src, per tag, or one without a tag.
func (q *eventQueue) replicationActions(repo string, d digest.Digest, tags []string, src ReplicationSource) error {
	ra := events.ReplicationAction{
		Result: events.ResultSuccess, RepositoryName: repo, ImageDigest: string(d), ActionType: events.ActionReplicate,
		SourceAccount: src.Account, SourceRegion: src.Region,
	}
	if len(tags) == 0 {
		return q.add(ra, "")
	}
	for _, t := range tags {
		ra.ImageTag = t
		if err := q.add(ra, ""); err != nil {
			return err
		}
	}
	return nil
}

// committed tells the router, after the batch committed, that it has
// events to route.
func (q *eventQueue) committed() {
	if q.n > 0 {
		q.e.ev.emitted.Add(uint64(q.n))
		q.e.ev.unrouted.Add(int64(q.n))
		q.e.kickEvents()
	}
}

// pullThroughSuccess queues the ECR Pull Through Cache Action of a fill
// of repo that stored manifest d under tags (none: by digest).
func (q *eventQueue) pullThroughSuccess(repo string, d digest.Digest, tags []string) error {
	pa := q.e.pullThroughDetail(repo)
	pa.SyncStatus, pa.ImageDigest = events.ResultSuccess, string(d)
	if len(tags) == 0 {
		return q.add(pa, "")
	}
	for _, t := range tags {
		pa.ImageTag = t
		if err := q.add(pa, ""); err != nil {
			return err
		}
	}
	return nil
}

// pullThroughDetail is the rule part of a pull-through cache event of
// repo: the rule it falls under, version 1 (Berth does not version
// rules).
func (e *Engine) pullThroughDetail(repo string) events.PullThroughCacheAction {
	pa := events.PullThroughCacheAction{RuleVersion: "1", RepositoryName: repo}
	if rule, ok, err := e.matchCacheRule(repo); err == nil && ok {
		pa.ECRRepositoryPrefix, pa.UpstreamRegistryURL = rule.ECRRepositoryPrefix, rule.UpstreamRegistryURL
	}
	return pa
}

// RecordPullThroughCacheFailure queues the ECR Pull Through Cache Action
// of a fill of reference (a tag or a digest) into repo that failed:
// sync-status FAILED, with code and reason (docs/events.md lists the
// codes registryd's cache uses). Registryd's pull-through cache calls it;
// a successful fill's event is queued by PutCachedManifest itself.
func (e *Engine) RecordPullThroughCacheFailure(ctx context.Context, repo, reference, code, reason string) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	if !e.ev.on {
		return nil
	}
	if err := ValidateRepositoryName(repo); err != nil {
		return err
	}
	pa := e.pullThroughDetail(repo)
	pa.SyncStatus, pa.FailureCode, pa.FailureReason = events.ResultFailed, code, reason
	tag, d, err := ParseReference(reference)
	if err != nil {
		return err
	}
	pa.ImageTag, pa.ImageDigest = tag, string(d)
	b := e.db.NewBatch()
	defer b.Close()
	q := e.events(b)
	if err := q.add(pa, ""); err != nil {
		return err
	}
	if err := b.Commit(true); err != nil {
		return storageErr(err)
	}
	q.committed()
	return nil
}

// eventAuditStatement is the statement of an event's audit record.
const eventAuditStatement = "an event the engine emitted: recorded as it is routed to the webhooks (docs/events.md)"

// eventAuditRecord is the audit record of event q: the action
// berth:PublishEvent on its repository, by the engine itself (principal
// type Local, user "system", API engine), its id the event's (so that a
// record written twice after a crash has one id), its detail's fields in
// the parameters under their EventBridge names.
func (e *Engine) eventAuditRecord(q *events.Queued) AuditRecord {
	params := map[string]string{"detail-type": q.DetailType}
	if q.Cause != "" {
		params["cause"] = q.Cause
	}
	var env struct {
		Detail map[string]json.RawMessage `json:"detail"`
	}
	_ = json.Unmarshal(q.Body, &env)
	for k, raw := range env.Detail {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = string(raw) // numbers, arrays, objects: their JSON
		}
		if k != "repository-name" && len(params) < audit.MaxParameters {
			params[k] = s
		}
	}
	repo := q.Repository
	rec := AuditRecord{
		EventID: q.ID, RequestID: q.ID,
		PrincipalType: AuditLocal, UserName: "system", SourceIP: "local",
		API: AuditAPIEngine, Action: "berth:PublishEvent", Resource: "*",
		Repository: repo, Parameters: params,
		Decision: AuditAllow, Statement: eventAuditStatement, ReadOnly: true,
	}
	if repo != "" {
		rec.Resource = e.RepositoryARN(repo)
	}
	return rec
}

// EventState selects what ListEvents lists.
type EventState string

// The states of an event.
const (
	// EventQueued: queued, not yet routed (recorded in the audit log and
	// handed to the webhooks).
	EventQueued EventState = "queued"
	// EventPending: routed to a webhook, not yet delivered.
	EventPending EventState = "pending"
	// EventDead: given up (a dead letter): its attempts or its age
	// exhausted.
	EventDead EventState = "dead"
)

// EventListing is one listed event: queued, pending for a webhook or
// given up.
type EventListing struct {
	// State is queued, pending or dead.
	State EventState `json:"state"`
	// Webhook is the endpoint's name ("" for a queued event).
	Webhook string `json:"webhook,omitempty"`
	// Seq is the event's sequence number in the store.
	Seq uint64 `json:"seq"`
	// EmittedAt is when the event was queued; Cause why the engine made
	// the change by itself ("" for a request's).
	EmittedAt time.Time `json:"emittedAt"`
	Cause     string    `json:"cause,omitempty"`
	// Attempts, LastAttemptAt, LastError and NextAttemptAt are the
	// delivery's so far.
	Attempts      int       `json:"attempts,omitempty"`
	LastAttemptAt time.Time `json:"lastAttemptAt,omitzero"`
	LastError     string    `json:"lastError,omitempty"`
	NextAttemptAt time.Time `json:"nextAttemptAt,omitzero"`
	// DeadAt and DeadReason say when and why a dead letter was given up.
	DeadAt     time.Time `json:"deadAt,omitzero"`
	DeadReason string    `json:"deadReason,omitempty"`
	// Event is the event, as delivered.
	Event *Event `json:"event"`
}

// EventQuery selects listed events.
type EventQuery struct {
	// State is what to list: queued, pending (the default) or dead.
	State EventState
	// Webhook selects one endpoint's deliveries (pending or dead); ""
	// lists every endpoint's, configured or not (a store may hold the
	// deliveries of a webhook since removed from the configuration).
	Webhook string
	// Limit stops after that many; 0 is no limit.
	Limit int
}

// errEnough stops a walk at a query's limit.
var errEnough = errors.New("enough")

// ListEvents calls fn with each event q selects, in sequence order
// (endpoint by endpoint, in name order), until fn returns an error (which
// it returns) or the limit is reached. Errors: ErrInvalidArgument (an
// unknown state, a negative limit), ErrClosed.
func (e *Engine) ListEvents(ctx context.Context, q EventQuery, fn func(EventListing) error) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	if q.State == "" {
		q.State = EventPending
	}
	if q.Limit < 0 {
		return fmt.Errorf("%w: event query: negative limit %d", ErrInvalidArgument, q.Limit)
	}
	n := 0
	emit := func(l EventListing) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(l); err != nil {
			return err
		}
		n++
		if q.Limit > 0 && n >= q.Limit {
			return errEnough
		}
		return nil
	}
	var err error
	switch q.State {
	case EventQueued:
		err = e.db.WalkEvents(func(seq uint64, v []byte) (bool, error) {
			qd, derr := events.DecodeQueued(v)
			var ev *Event
			if derr == nil {
				ev, derr = qd.Event()
			}
			if derr != nil {
				return false, fmt.Errorf("%w: queued event %d: %v", ErrCorrupt, seq, derr)
			}
			return true, emit(EventListing{State: EventQueued, Seq: seq, EmittedAt: qd.At, Cause: qd.Cause, Event: ev})
		})
	case EventPending, EventDead:
		names := []string{q.Webhook}
		if q.Webhook == "" {
			if names, err = e.db.DeliveryEndpoints(); err != nil {
				return storageErr(err)
			}
		}
		walk := e.db.WalkDeliveries
		if q.State == EventDead {
			walk = e.db.WalkDeadLetters
		}
		for _, name := range names {
			if err = walk(name, func(seq uint64, v []byte) (bool, error) {
				d, derr := events.DecodeDelivery(v)
				var ev *Event
				if derr == nil {
					ev, derr = d.Event()
				}
				if derr != nil {
					return false, fmt.Errorf("%w: delivery %s/%d: %v", ErrCorrupt, name, seq, derr)
				}
				return true, emit(listingOf(q.State, name, seq, d, ev))
			}); err != nil {
				break
			}
		}
	default:
		return fmt.Errorf("%w: event state %q: want queued, pending or dead", ErrInvalidArgument, q.State)
	}
	if errors.Is(err, errEnough) {
		return nil
	}
	if errors.Is(err, index.ErrInvalidKey) {
		return fmt.Errorf("%w: webhook %q: %v", ErrInvalidArgument, q.Webhook, err)
	}
	return err
}

func listingOf(state EventState, name string, seq uint64, d *events.Delivery, ev *Event) EventListing {
	return EventListing{
		State: state, Webhook: name, Seq: seq, EmittedAt: d.At, Cause: d.Cause,
		Attempts: d.Attempts, LastAttemptAt: d.LastAttemptAt, LastError: d.LastError, NextAttemptAt: d.NextAttemptAt,
		DeadAt: d.DeadAt, DeadReason: d.DeadReason, Event: ev,
	}
}

// seqText is a sequence number as logs show it.
func seqText(seq uint64) string { return strconv.FormatUint(seq, 10) }
