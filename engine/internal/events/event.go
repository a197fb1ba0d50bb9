package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The envelope's constant fields, as EventBridge sets them for Amazon
// ECR's events.
const (
	// Version is the envelope's version ("0" for every AWS event).
	Version = "0"
	// Source is the source of Amazon ECR's events.
	Source = "aws.ecr"
)

// The detail types (EventBridge's "detail-type") of Amazon ECR's events.
const (
	// DetailImageAction: an image pushed, deleted, archived or restored
	// (ImageAction).
	DetailImageAction = "ECR Image Action"
	// DetailReferrerAction: an archived referrer (an SBOM, a signature,
	// an attestation) restored (ImageAction with its own detail type).
	DetailReferrerAction = "ECR Referrer Action"
	// DetailImageScan: an image scan completed (ImageScan).
	DetailImageScan = "ECR Image Scan"
	// DetailReplicationAction: an image replication completed or failed
	// (ReplicationAction).
	DetailReplicationAction = "ECR Replication Action"
	// DetailPullThroughCacheAction: a pull-through cache fill attempted
	// (PullThroughCacheAction).
	DetailPullThroughCacheAction = "ECR Pull Through Cache Action"
)

// DetailTypes are the detail types this package knows, for the filters'
// validation.
var DetailTypes = []string{
	DetailImageAction, DetailReferrerAction, DetailImageScan,
	DetailReplicationAction, DetailPullThroughCacheAction,
}

// KnownDetailType reports whether t is one of DetailTypes.
func KnownDetailType(t string) bool {
	for _, k := range DetailTypes {
		if k == t {
			return true
		}
	}
	return false
}

// The values of ImageAction's and ReplicationAction's fields.
const (
	// ResultSuccess and ResultFailed are "result" (and
	// PullThroughCacheAction's "sync-status").
	ResultSuccess = "SUCCESS"
	ResultFailed  = "FAILED"

	// ActionPush, ActionDelete and ActionUpdateStorageClass are
	// ImageAction's "action-type"; ActionReplicate is ReplicationAction's.
	ActionPush               = "PUSH"
	ActionDelete             = "DELETE"
	ActionUpdateStorageClass = "UPDATE_STORAGE_CLASS"
	ActionReplicate          = "REPLICATE"

	// StorageClassArchive and StorageClassStandard are ImageAction's
	// "target-storage-class".
	StorageClassArchive  = "ARCHIVE"
	StorageClassStandard = "STANDARD"

	// ScanComplete and ScanFailed are ImageScan's "scan-status".
	ScanComplete = "COMPLETE"
	ScanFailed   = "FAILED"
)

// Event is one EventBridge event. Its JSON is the envelope EventBridge
// delivers, field for field; Detail is the detail type's own JSON object
// (use NewEvent and DecodeDetail for the typed forms).
type Event struct {
	// Version is "0".
	Version string `json:"version"`
	// ID is the event's unique id (a UUID). A receiver dedupes by it: a
	// delivery may be repeated (at least once).
	ID string `json:"id"`
	// DetailType names the detail's shape ("ECR Image Action").
	DetailType string `json:"detail-type"`
	// Source is "aws.ecr".
	Source string `json:"source"`
	// Account is the registry's account ID.
	Account string `json:"account"`
	// Time is when the event happened, in UTC; its JSON has whole
	// seconds ("2026-11-23T10:15:00Z"), as EventBridge writes it.
	Time Time `json:"time"`
	// Region is the registry's region.
	Region string `json:"region"`
	// Resources are the ARNs the event concerns; empty (never null) for
	// ECR Image Action, the repository's ARN for the others, as ECR sends
	// them.
	Resources []string `json:"resources"`
	// Detail is the detail object.
	Detail json.RawMessage `json:"detail"`
}

// Time is an event's time: JSON in whole seconds, UTC, with a Z.
type Time struct{ time.Time }

// timeLayout is EventBridge's "time".
const timeLayout = "2006-01-02T15:04:05Z"

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(timeLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, timeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler: any RFC 3339 time.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("events: time: %w", err)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("events: time: %w", err)
	}
	t.Time = v.UTC()
	return nil
}

// ImageAction is the detail of ECR Image Action (and of ECR Referrer
// Action): an image pushed (PUSH), deleted (DELETE), archived or restored
// (UPDATE_STORAGE_CLASS with TargetStorageClass ARCHIVE or STANDARD).
type ImageAction struct {
	// Result is SUCCESS (ECR sends no event for a failed push).
	Result string `json:"result"`
	// RepositoryName is the repository's name.
	RepositoryName string `json:"repository-name"`
	// ImageDigest is the image manifest's digest.
	ImageDigest string `json:"image-digest"`
	// ActionType is PUSH, DELETE or UPDATE_STORAGE_CLASS.
	ActionType string `json:"action-type"`
	// ImageTag is the tag pushed or deleted; left out for an image pushed
	// or deleted by digest alone.
	ImageTag string `json:"image-tag,omitempty"`
	// TargetStorageClass is ARCHIVE or STANDARD, for UPDATE_STORAGE_CLASS.
	TargetStorageClass string `json:"target-storage-class,omitempty"`
	// ManifestMediaType is the manifest's media type.
	ManifestMediaType string `json:"manifest-media-type,omitempty"`
	// ArtifactMediaType is the image's config media type (or its
	// artifactType); left out for an index.
	ArtifactMediaType string `json:"artifact-media-type,omitempty"`
	// LastActivatedAt is when an archived image was last restored, for a
	// restore (RFC 3339 with fractional seconds).
	LastActivatedAt string `json:"last-activated-at,omitempty"`
}

// PullThroughCacheAction is the detail of ECR Pull Through Cache Action:
// a pull-through cache fill attempted, with its outcome.
type PullThroughCacheAction struct {
	// RuleVersion is the rule's version ("1").
	RuleVersion string `json:"rule-version"`
	// SyncStatus is SUCCESS or FAILED.
	SyncStatus string `json:"sync-status"`
	// ECRRepositoryPrefix is the rule's prefix.
	ECRRepositoryPrefix string `json:"ecr-repository-prefix"`
	// RepositoryName is the cache repository's name.
	RepositoryName string `json:"repository-name"`
	// UpstreamRegistryURL is the rule's upstream registry.
	UpstreamRegistryURL string `json:"upstream-registry-url"`
	// ImageTag is the tag pulled, when the pull named one.
	ImageTag string `json:"image-tag,omitempty"`
	// ImageDigest is the digest cached (or pulled by).
	ImageDigest string `json:"image-digest,omitempty"`
	// FailureCode and FailureReason say why a fill FAILED.
	FailureCode   string `json:"failure-code,omitempty"`
	FailureReason string `json:"failure-reason,omitempty"`
}

// ImageScan is the detail of ECR Image Scan: an image scan completed.
// Berth's scanner emits it; nothing else does.
type ImageScan struct {
	// ScanStatus is COMPLETE or FAILED.
	ScanStatus string `json:"scan-status"`
	// RepositoryName is the repository's name.
	RepositoryName string `json:"repository-name"`
	// FindingSeverityCounts counts the findings by severity (CRITICAL,
	// HIGH, MEDIUM, LOW, INFORMATIONAL, UNDEFINED); a severity with no
	// finding is left out, as ECR leaves it out.
	FindingSeverityCounts map[string]int `json:"finding-severity-counts,omitempty"`
	// ImageDigest is the image's digest.
	ImageDigest string `json:"image-digest"`
	// ImageTags are the image's tags (empty, never null, for none).
	ImageTags []string `json:"image-tags"`
}

// ReplicationAction is the detail of ECR Replication Action: an image
// replicated into this registry, or a replication that failed.
type ReplicationAction struct {
	// Result is SUCCESS or FAILED.
	Result string `json:"result"`
	// RepositoryName is the destination repository's name.
	RepositoryName string `json:"repository-name"`
	// ImageDigest is the image's digest.
	ImageDigest string `json:"image-digest"`
	// SourceAccount and SourceRegion name the registry replicated from.
	SourceAccount string `json:"source-account"`
	// ActionType is REPLICATE.
	ActionType   string `json:"action-type"`
	SourceRegion string `json:"source-region"`
	// ImageTag is the tag replicated, when there is one.
	ImageTag string `json:"image-tag,omitempty"`
}

// Detail is one of the detail types of this package.
type Detail interface {
	// DetailType is the detail type it is the detail of.
	DetailType() string
	// Repository is the repository it concerns.
	Repository() string
}

// DetailType implements Detail: ECR Image Action. A referrer's restore
// is an ECR Referrer Action: set Event.DetailType to DetailReferrerAction
// after NewEvent.
func (ImageAction) DetailType() string { return DetailImageAction }

// Repository implements Detail.
func (d ImageAction) Repository() string { return d.RepositoryName }

// DetailType implements Detail.
func (PullThroughCacheAction) DetailType() string { return DetailPullThroughCacheAction }

// Repository implements Detail.
func (d PullThroughCacheAction) Repository() string { return d.RepositoryName }

// DetailType implements Detail.
func (ImageScan) DetailType() string { return DetailImageScan }

// Repository implements Detail.
func (d ImageScan) Repository() string { return d.RepositoryName }

// DetailType implements Detail.
func (ReplicationAction) DetailType() string { return DetailReplicationAction }

// Repository implements Detail.
func (d ReplicationAction) Repository() string { return d.RepositoryName }

var (
	_ Detail = ImageAction{}
	_ Detail = PullThroughCacheAction{}
	_ Detail = ImageScan{}
	_ Detail = ReplicationAction{}
)

// Origin is who emits an event: the registry's account and region, and
// the ARN of a repository by its name.
type Origin struct {
	Account, Region string
	// RepositoryARN returns the ARN of a repository.
	RepositoryARN func(name string) string
}

// NewEvent returns the event of detail d, with id and time at. Resources
// are as ECR sends them: none for an image action, the repository's ARN
// for the others.
func (o Origin) NewEvent(id string, at time.Time, d Detail) (*Event, error) {
	if s, ok := d.(ImageScan); ok && s.ImageTags == nil {
		s.ImageTags = []string{}
		d = s
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("events: detail: %w", err)
	}
	ev := &Event{
		Version: Version, ID: id, DetailType: d.DetailType(), Source: Source,
		Account: o.Account, Time: Time{at.UTC()}, Region: o.Region, Resources: []string{}, Detail: raw,
	}
	if _, image := d.(ImageAction); !image && o.RepositoryARN != nil {
		ev.Resources = []string{o.RepositoryARN(d.Repository())}
	}
	return ev, nil
}

// Queue returns the queued form of the event of detail d, with id, time
// at and cause: NewEvent and NewQueued in one encoding of the detail (the
// push path pays it).
func (o Origin) Queue(id string, at time.Time, d Detail, cause string) (*Queued, error) {
	if s, ok := d.(ImageScan); ok && s.ImageTags == nil {
		s.ImageTags = []string{}
		d = s
	}
	resources := []string{}
	if _, image := d.(ImageAction); !image && o.RepositoryARN != nil {
		resources = []string{o.RepositoryARN(d.Repository())}
	}
	if id == "" || o.Account == "" || o.Region == "" || at.IsZero() {
		return nil, fmt.Errorf("%w: an event needs an id, an account, a region and a time", ErrInvalid)
	}
	body, err := json.Marshal(wireEvent{
		Version: Version, ID: id, DetailType: d.DetailType(), Source: Source,
		Account: o.Account, Time: Time{at.UTC()}, Region: o.Region, Resources: resources, Detail: d,
	})
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return &Queued{At: at, Cause: cause, ID: id, DetailType: d.DetailType(), Repository: d.Repository(), Body: body}, nil
}

// wireEvent is Event with its detail typed, as Queue encodes it.
type wireEvent struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       Time     `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	Detail     Detail   `json:"detail"`
}

// ErrInvalid reports an event or a stored record that does not decode or
// lacks what every event has.
var ErrInvalid = errors.New("events: invalid event")

// Validate reports what ev lacks: a version, an id, a known detail type,
// the source, an account, a region, a time, and a detail object.
func (ev *Event) Validate() error {
	switch {
	case ev.Version != Version:
		return fmt.Errorf("%w: version %q", ErrInvalid, ev.Version)
	case ev.ID == "":
		return fmt.Errorf("%w: no id", ErrInvalid)
	case !KnownDetailType(ev.DetailType):
		return fmt.Errorf("%w: detail-type %q", ErrInvalid, ev.DetailType)
	case ev.Source != Source:
		return fmt.Errorf("%w: source %q", ErrInvalid, ev.Source)
	case ev.Account == "" || ev.Region == "":
		return fmt.Errorf("%w: no account or region", ErrInvalid)
	case ev.Time.IsZero():
		return fmt.Errorf("%w: no time", ErrInvalid)
	case len(bytes.TrimSpace(ev.Detail)) == 0 || bytes.TrimSpace(ev.Detail)[0] != '{':
		return fmt.Errorf("%w: detail is not an object", ErrInvalid)
	}
	return nil
}

// DecodeDetail decodes ev's detail into the type of its detail type: an
// ImageAction (for ECR Image Action and ECR Referrer Action), a
// PullThroughCacheAction, an ImageScan or a ReplicationAction.
func (ev *Event) DecodeDetail() (Detail, error) {
	var d Detail
	var err error
	switch ev.DetailType {
	case DetailImageAction, DetailReferrerAction:
		var v ImageAction
		err = json.Unmarshal(ev.Detail, &v)
		d = v
	case DetailPullThroughCacheAction:
		var v PullThroughCacheAction
		err = json.Unmarshal(ev.Detail, &v)
		d = v
	case DetailImageScan:
		var v ImageScan
		err = json.Unmarshal(ev.Detail, &v)
		d = v
	case DetailReplicationAction:
		var v ReplicationAction
		err = json.Unmarshal(ev.Detail, &v)
		d = v
	default:
		return nil, fmt.Errorf("%w: detail-type %q", ErrInvalid, ev.DetailType)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s detail: %v", ErrInvalid, ev.DetailType, err)
	}
	return d, nil
}

// Repository is the repository ev concerns, from its detail ("" when the
// detail does not decode).
func (ev *Event) Repository() string {
	var v struct {
		Name string `json:"repository-name"`
	}
	if json.Unmarshal(ev.Detail, &v) != nil {
		return ""
	}
	return v.Name
}
