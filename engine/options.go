package engine

// Options of a store, their defaults and their validation.

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/engine/internal/clock"
)

// Options configure a store. Open clones them and fills zero values with
// the defaults each field names (EnsureDefaults); Validate reports every
// problem at once.
type Options struct {
	// FrameSize is the logical size of a blob frame. Default 1 MiB.
	FrameSize int
	// DisableEncryption stores new blobs unsealed (integrity-checked by
	// CRC-32C only). Default false: envelope encryption on, as in ECR.
	DisableEncryption bool
	// DisableCompression stores every frame raw. Default false: zstd
	// where it pays.
	DisableCompression bool
	// MaxBlobSize bounds one blob. Default 52,000 MiB (ECR's layer limit).
	MaxBlobSize int64
	// MaxManifestSize bounds one manifest. Default 4 MiB.
	MaxManifestSize int64
	// CreateOnPush creates a repository on push with default settings
	// when no creation template with CREATE_ON_PUSH matches its name.
	// Default false: ECR behaviour (NAME_UNKNOWN).
	CreateOnPush bool
	// AllowSparse accepts sparse manifests (OCI distribution-spec
	// "sparse" data): image manifests whose layers, and indexes whose
	// child manifests, the repository does not hold. The config blob is
	// still required. Default false: every reference must be present, as
	// ECR requires.
	AllowSparse bool
	// PrepareLayersOnPush builds the tables of contents of a pushed
	// image's layers in the background (what the FUSE view needs to list
	// it at once). Default false: built on first use.
	PrepareLayersOnPush bool
	// KeyProvider holds the key-encryption keys (an HSM or a KMS plugs in
	// here). Default: the keyring file (KeyringPath), created when the
	// store is created (mode 0600), with PKCS11Module's keys beside it.
	KeyProvider KeyProvider
	// KeyringPath is the keyring file of the default key provider, so
	// that it can live on another volume than the store (it may also be a
	// symlink: writes replace the file it points to, beside it). Open
	// creates it only with a new store (one without an index yet); for an
	// existing store a missing keyring, or a missing directory (an
	// unmounted volume), fails with ErrKeyringMissing and nothing is
	// written. Default: <dir>/keyring.json. Ignored when KeyProvider is
	// set.
	KeyringPath string
	// KeyCacheTTL bounds how long an unwrapped data key stays in memory.
	// Default 5 minutes.
	KeyCacheTTL time.Duration
	// KeyCacheSize bounds how many unwrapped data keys stay in memory.
	// Default 4096.
	KeyCacheSize int
	// PKCS11Module is the path of a PKCS#11 module (e.g.
	// /usr/lib/softhsm/libsofthsm2.so) serving the key names that are
	// pkcs11: URIs, beside the keyring. Needs a build with cgo and
	// -tags pkcs11. Default "": no HSM. Ignored when KeyProvider is set.
	PKCS11Module string
	// PKCS11Token is the label of the HSM token holding the keys.
	// Default "berth".
	PKCS11Token string
	// PKCS11PIN is the token's user PIN. Default "".
	PKCS11PIN string
	// IdleUploadTimeout closes in-memory handles of uploads idle this
	// long (they stay resumable). Default 10 minutes.
	IdleUploadTimeout time.Duration
	// GCInterval runs an online garbage collection this often (engine/gc.go,
	// engine/schedule.go, docs/gc.md, "Schedules"). Default 0: collections
	// run only on demand (CollectGarbage), and after lifecycle runs with
	// GCAfterLifecycle.
	GCInterval time.Duration
	// GCAfterLifecycle runs a collection (with GCGrace) after each
	// scheduled lifecycle run that expired images, so that their bytes
	// come back without waiting for GCInterval. Default false.
	GCAfterLifecycle bool
	// GCGrace is the grace period of scheduled collections. Default 0:
	// DefaultGCGrace (1 h).
	GCGrace time.Duration
	// UploadTTL expires upload sessions idle this long at each collection.
	// Default 0: DefaultUploadTTL (7 days).
	UploadTTL time.Duration
	// LifecycleInterval applies every repository's lifecycle policy this
	// often (engine/lifecycle_run.go). Default 0: only on demand
	// (LifecycleApply).
	LifecycleInterval time.Duration
	// ArchiveDir is the archive tier's directory: the blobs of archived
	// images that no active image needs, recompressed at zstd's best
	// level and sealed as in the hot tier (docs/archive.md). It may be on
	// another, cheaper file system. Default "<dir>/archive". A relative
	// path is relative to the working directory.
	ArchiveDir string
	// ObjectStore, when set, keeps the blobs of the hot tier in an
	// S3-compatible bucket instead of <dir>/blobs (docs/scale-out.md).
	// Default nil: files under the store's directory.
	ObjectStore *ObjectStoreOptions
	// Metadata, when set, is the PostgreSQL database that keeps the
	// store's metadata (postgres://user@host:port/db?sslmode=...) instead
	// of pebble under <dir>/index (docs/scale-out.md). Default "": pebble.
	Metadata string
	// SharedCacheTTL bounds, with Metadata set (an index that other
	// processes may share), how long a change committed by another
	// process can go unseen by this one's caches when its notification is
	// lost: every cache is dropped this often. Default
	// DefaultSharedCacheTTL (5 s). Unused on pebble.
	SharedCacheTTL time.Duration
	// ScheduleJitter moves each scheduled run (GCInterval,
	// LifecycleInterval) by up to this fraction of its interval, either
	// way, at random, so that registries started together do not all
	// collect at once. Default 0: runs fall due exactly (registryd serve
	// sets 0.1). At most 0.5.
	ScheduleJitter float64
	// IndexCacheSize is the size in bytes of the index's block cache
	// (pebble). Default 0: index.DefaultCacheSize (64 MiB), what a daemon
	// serving reads wants. The one-shot gc and fsck commands scan the index
	// once and set a small one (docs/gc.md, Memory).
	IndexCacheSize int64
	// Logger receives the store's logs. Default slog.Default().
	Logger *slog.Logger
	// FS is the file system of the store's local files: the index
	// (pebble), the blob files of the hot and archive tiers (and the
	// object store's spool), and the audit log all go through it. Default
	// vfs.Default, the operating system's. Tests give internal/faultfs
	// (a byte quota that fails writes with ENOSPC, injected I/O errors)
	// to fill or fail the disk without root or a tmpfs; it must see the
	// operating system's directories (faultfs over vfs.Default in a
	// temporary directory), since the few small files the engine writes
	// itself (keyring, store identity, rewrap state) do not go through it.
	FS vfs.FS
	// Clock is the store's source of time (see Clock): timestamps, expiry
	// and schedules. Default: the system clock.
	Clock Clock
	// Account is the registry's account ID (12 digits), in the ARNs of
	// its repositories and keys that access decisions match policies
	// against. Default DefaultAccount.
	Account string
	// Region is the registry's region name, in the same ARNs. Default
	// DefaultRegion.
	Region string
	// AuditDir is the directory of the audit log (engine/audit.go,
	// docs/audit.md): every access decision and every change, as
	// CloudTrail-shaped JSON lines. Default "<dir>/audit" (created on
	// open, also for a store an older Berth made). A relative path is
	// relative to the working directory.
	AuditDir string
	// AuditMaxAge is how long audit records are kept. Default
	// DefaultAuditMaxAge (90 days, as CloudTrail's event history);
	// negative: for ever (AuditMaxBytes still bounds them).
	AuditMaxAge time.Duration
	// AuditMaxBytes bounds the audit log's directory: the oldest records
	// go first. Default DefaultAuditMaxBytes (1 GiB); at least
	// MinAuditMaxBytes.
	AuditMaxBytes int64
	// ScanWorkers bounds the image scans run at once. Default 1 (a scan
	// is one goroutine: pushes and pulls keep the other cores); negative:
	// no scans run (jobs stay queued).
	ScanWorkers int
	// ScanQuietPeriod is how long no client write (upload, mount,
	// manifest) must have been in flight before a scan takes a job, so
	// that scans do not take the CPU from pushes. Default 50 ms;
	// negative: scans do not wait.
	ScanQuietPeriod time.Duration
	// ScanMaxYield bounds how long scans wait for a quiet moment in a
	// row; past it they run alongside the writes. Default 30 s.
	ScanMaxYield time.Duration
	// ScanMaxAttempts is the number of runs of a scan job before the scan
	// is FAILED. Default 3.
	ScanMaxAttempts int
	// ScanRetryDelay is the wait before a failed scan runs again, times
	// the attempts made. Default 1 minute.
	ScanRetryDelay time.Duration
	// ScanEligibility is how long after its last push or pull an image is
	// still re-matched under a continuous scanning rule; past it, a
	// re-match sets SCAN_ELIGIBILITY_EXPIRED. Default 0: for the image's
	// lifetime.
	ScanEligibility time.Duration
	// DisableAudit keeps no audit log: RecordAudit records nothing and
	// the queries fail with ErrAuditDisabled. Default false.
	DisableAudit bool
	// Webhooks are the endpoints events are delivered to (engine/events.go,
	// docs/events.md). Default none: events are recorded in the audit log
	// only.
	Webhooks []Webhook
	// EventQueueMaxBytes bounds each webhook's pending deliveries, and
	// its dead letters, in bytes of stored records; past it the oldest
	// are dropped (counted and logged; pushes never wait). Default
	// DefaultEventQueueMaxBytes (64 MiB); at least MinEventQueueMaxBytes.
	EventQueueMaxBytes int64
	// HoldEvents leaves the queued events queued: they are neither
	// recorded in the audit log nor delivered by this Open, but by the
	// next one without it (registryd's one-shot commands set it, so that
	// the daemon delivers what they queue). Default false.
	HoldEvents bool
	// DisableEvents queues no events: no webhook deliveries, no event
	// records in the audit log. Default false.
	DisableEvents bool
	// ReplicationDestinations are the registries this one can replicate
	// to (those its embedder has an endpoint for: registryd's
	// configuration names one per destination); PutReplicationConfiguration
	// refuses a rule naming another. Default none.
	ReplicationDestinations []ReplicationDestination
	// ReplicationInitialBackoff and ReplicationMaxBackoff are the waits
	// between the attempts of a replication that keeps failing (doubling,
	// with jitter). Defaults 1 s and 5 min.
	ReplicationInitialBackoff, ReplicationMaxBackoff time.Duration
	// ReplicationMaxAge is how long a replication is retried after the
	// push that queued it: its next failure past it gives it up (FAILED,
	// until `registryd replication retry`). Default 24 h.
	ReplicationMaxAge time.Duration
}

// The registry's account and region when Options name none (an AWS
// account ID that no real account has, and ECR's first region).
const (
	DefaultAccount = "000000000000"
	DefaultRegion  = "us-east-1"
)

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.FrameSize == 0 {
		o.FrameSize = 1 << 20
	}
	if o.MaxBlobSize == 0 {
		o.MaxBlobSize = 52000 << 20
	}
	if o.MaxManifestSize == 0 {
		o.MaxManifestSize = 4 << 20
	}
	if o.ReplicationInitialBackoff == 0 {
		o.ReplicationInitialBackoff = time.Second
	}
	if o.ReplicationMaxBackoff == 0 {
		o.ReplicationMaxBackoff = 5 * time.Minute
	}
	if o.ReplicationMaxAge == 0 {
		o.ReplicationMaxAge = 24 * time.Hour
	}
	if o.KeyCacheTTL == 0 {
		o.KeyCacheTTL = 5 * time.Minute
	}
	if o.SharedCacheTTL == 0 {
		o.SharedCacheTTL = DefaultSharedCacheTTL
	}
	if o.KeyCacheSize == 0 {
		o.KeyCacheSize = 4096
	}
	if o.IdleUploadTimeout == 0 {
		o.IdleUploadTimeout = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Account == "" {
		o.Account = DefaultAccount
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.ScanWorkers == 0 {
		o.ScanWorkers = 1
	}
	if o.ScanQuietPeriod == 0 {
		o.ScanQuietPeriod = 50 * time.Millisecond
	}
	if o.ScanMaxYield <= 0 {
		o.ScanMaxYield = 30 * time.Second
	}
	if o.ScanMaxAttempts <= 0 {
		o.ScanMaxAttempts = 3
	}
	if o.ScanRetryDelay <= 0 {
		o.ScanRetryDelay = time.Minute
	}
	if o.AuditMaxAge == 0 {
		o.AuditMaxAge = DefaultAuditMaxAge
	}
	if o.AuditMaxBytes == 0 {
		o.AuditMaxBytes = DefaultAuditMaxBytes
	}
	if o.EventQueueMaxBytes == 0 {
		o.EventQueueMaxBytes = DefaultEventQueueMaxBytes
	}
	o.Webhooks = cloneWebhooks(o.Webhooks)
	for i := range o.Webhooks {
		o.Webhooks[i].ensureDefaults()
	}
}

// Validate reports every out-of-range option.
func (o *Options) Validate() error {
	var errs []error
	if !validAccount(o.Account) {
		errs = append(errs, fmt.Errorf("%w: Account %q is not 12 digits", ErrInvalidArgument, o.Account))
	}
	if !validRegion(o.Region) {
		errs = append(errs, fmt.Errorf("%w: Region %q is not a region name such as us-east-1", ErrInvalidArgument, o.Region))
	}
	if o.FrameSize < blob.MinFrameSize || o.FrameSize > blob.MaxFrameSize {
		errs = append(errs, fmt.Errorf("%w: FrameSize %d outside [%d, %d]", ErrInvalidArgument, o.FrameSize, blob.MinFrameSize, blob.MaxFrameSize))
	}
	if o.Metadata != "" && !strings.HasPrefix(o.Metadata, "postgres://") && !strings.HasPrefix(o.Metadata, "postgresql://") {
		errs = append(errs, fmt.Errorf("%w: Metadata is not a postgres:// URL", ErrInvalidArgument))
	}
	if o.ObjectStore != nil {
		if err := o.ObjectStore.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range o.ReplicationDestinations {
		if err := d.validate(); err != nil {
			errs = append(errs, fmt.Errorf("ReplicationDestinations: %w", err))
		}
	}
	if o.ReplicationInitialBackoff < 0 || o.ReplicationMaxBackoff < 0 || o.ReplicationMaxAge < 0 {
		errs = append(errs, fmt.Errorf("%w: ReplicationInitialBackoff, ReplicationMaxBackoff and ReplicationMaxAge must not be negative", ErrInvalidArgument))
	}
	if o.MaxBlobSize < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxBlobSize %d", ErrInvalidArgument, o.MaxBlobSize))
	}
	if o.MaxManifestSize < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxManifestSize %d", ErrInvalidArgument, o.MaxManifestSize))
	}
	if o.IndexCacheSize < 0 {
		errs = append(errs, fmt.Errorf("%w: IndexCacheSize %d", ErrInvalidArgument, o.IndexCacheSize))
	}
	if o.AuditMaxBytes < MinAuditMaxBytes {
		errs = append(errs, fmt.Errorf("%w: AuditMaxBytes %d is below %d", ErrInvalidArgument, o.AuditMaxBytes, MinAuditMaxBytes))
	}
	if o.GCInterval < 0 || o.LifecycleInterval < 0 {
		errs = append(errs, fmt.Errorf("%w: negative schedule interval (GCInterval %v, LifecycleInterval %v)", ErrInvalidArgument, o.GCInterval, o.LifecycleInterval))
	}
	if o.ScheduleJitter < 0 || o.ScheduleJitter > 0.5 {
		errs = append(errs, fmt.Errorf("%w: ScheduleJitter %v outside [0, 0.5]", ErrInvalidArgument, o.ScheduleJitter))
	}
	if o.SharedCacheTTL < 0 {
		errs = append(errs, fmt.Errorf("%w: negative SharedCacheTTL", ErrInvalidArgument))
	}
	if o.KeyCacheSize < 0 || o.KeyCacheTTL < 0 {
		errs = append(errs, fmt.Errorf("%w: negative key cache bound", ErrInvalidArgument))
	}
	if o.EventQueueMaxBytes < MinEventQueueMaxBytes {
		errs = append(errs, fmt.Errorf("%w: EventQueueMaxBytes %d is below %d", ErrInvalidArgument, o.EventQueueMaxBytes, MinEventQueueMaxBytes))
	}
	names := map[string]bool{}
	for i := range o.Webhooks {
		w := &o.Webhooks[i]
		errs = append(errs, w.validate()...)
		if names[w.Name] {
			errs = append(errs, fmt.Errorf("%w: two webhooks are named %q", ErrInvalidArgument, w.Name))
		}
		names[w.Name] = true
	}
	return errors.Join(errs...)
}

// validAccount reports whether s is an AWS account ID: 12 digits.
func validAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validRegion reports whether s has the shape of an AWS region name:
// lower-case letters and digits in at least three dash-separated parts,
// the first letters only and the last digits only (us-east-1,
// ap-southeast-2, us-gov-west-1), at most 32 characters.
func validRegion(s string) bool {
	parts := strings.Split(s, "-")
	if len(s) > 32 || len(parts) < 3 {
		return false
	}
	for i, p := range parts {
		if p == "" {
			return false
		}
		for j := 0; j < len(p); j++ {
			c := p[j]
			letter, digit := c >= 'a' && c <= 'z', c >= '0' && c <= '9'
			switch {
			case i == 0 && !letter, i == len(parts)-1 && !digit, !letter && !digit:
				return false
			}
		}
	}
	return true
}
