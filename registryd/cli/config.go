package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"gopkg.in/yaml.v3"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/request"
)

// ErrConfig reports an unusable configuration file or flag.
var ErrConfig = errors.New("registryd: bad configuration")

// Config is the daemon's configuration: a YAML or JSON file (--config)
// whose every field can also be set by a flag. Flags win over the file,
// the file over the defaults. docs/registryd.md documents each field.
type Config struct {
	// Addr is the listen address. Default 127.0.0.1:5000.
	Addr string `json:"addr"`
	// Data is the store directory. Default ./berth-data.
	Data string `json:"data"`
	// TLSCert and TLSKey are PEM files; both set means HTTPS.
	TLSCert string `json:"tlsCert,omitempty"`
	TLSKey  string `json:"tlsKey,omitempty"`
	// Htpasswd is an htpasswd file (bcrypt); set means basic auth.
	Htpasswd string `json:"htpasswd,omitempty"`
	// IAM is the identity file: users, groups and their identity policies
	// (YAML or JSON; docs/policies.md). Empty: every authenticated user
	// is an administrator. Needs Htpasswd or ECRCredentials. Reloaded on
	// SIGHUP with the htpasswd and credentials files.
	IAM string `json:"iam,omitempty"`
	// TrustedProxies are CIDR prefixes of reverse proxies whose
	// X-Forwarded-For header is believed for the client's address
	// (aws:SourceIp, the access log): the rightmost address that is not a
	// trusted proxy is the client's. Empty: the TCP peer is the client.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// AnonymousPull lets GET and HEAD through without credentials.
	AnonymousPull bool `json:"anonymousPull"`
	// CreateOnPush creates an unknown repository on push with default
	// settings when no creation template matches. Default true; false is
	// ECR's behaviour (NAME_UNKNOWN).
	CreateOnPush bool `json:"createOnPush"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `json:"logLevel"`
	// LogFormat is text or json. Default text.
	LogFormat string `json:"logFormat"`
	// AccessLog logs one line per request. Default true.
	AccessLog bool `json:"accessLog"`
	// Metrics serves Prometheus metrics at /metrics. Default true.
	Metrics bool `json:"metrics"`
	// Console serves the web console at /console/. Default true.
	Console bool `json:"console"`
	// ShutdownTimeout bounds the wait for in-flight requests. Default 30s.
	ShutdownTimeout Duration `json:"shutdownTimeout"`
	// MemoryLimit is the Go runtime's soft memory limit
	// (runtime/debug.SetMemoryLimit): the collector works harder as the
	// process nears it. Default auto: 90% of the memory limit of the
	// cgroup registryd runs in when one is set, none otherwise; 0: none;
	// else bytes. A GOMEMLIMIT environment variable wins over it.
	MemoryLimit MemoryLimit `json:"memoryLimit"`
	// AuthCacheTTL is how long a good password is cached. Default 1m.
	AuthCacheTTL Duration `json:"authCacheTTL"`
	// MaxManifestSize bounds a manifest, in bytes. Default 4 MiB.
	MaxManifestSize int64 `json:"maxManifestSize"`
	// MaxBlobSize bounds a blob, in bytes. 0: the engine's default.
	MaxBlobSize int64 `json:"maxBlobSize,omitempty"`
	// FrameSize is the engine's blob frame size. 0: the engine's default.
	FrameSize int `json:"frameSize,omitempty"`
	// DisableEncryption stores new blobs unsealed.
	DisableEncryption bool `json:"disableEncryption,omitempty"`
	// DisableCompression stores every frame raw.
	DisableCompression bool `json:"disableCompression,omitempty"`
	// AllowSparse accepts sparse manifests: layers or child manifests the
	// repository does not hold (OCI "sparse" data). Default false.
	AllowSparse bool `json:"allowSparse,omitempty"`
	// Keyring is the keyring file of the store's keys. Default
	// <data>/keyring.json. It may live on another volume (or be a
	// symlink to one): registryd refuses to open an existing store whose
	// keyring is missing, or whose keyring directory is (an unmounted
	// volume), rather than make a new keyring.
	Keyring string `json:"keyring,omitempty"`
	// PKCS11Module is the PKCS#11 module that serves key names of the form
	// pkcs11:token=...;object=... (needs a registryd built with -tags
	// pkcs11). Empty: no HSM.
	PKCS11Module string `json:"pkcs11Module,omitempty"`
	// PKCS11Token is the label of the HSM token. Default "berth".
	PKCS11Token string `json:"pkcs11Token,omitempty"`
	// PKCS11PinFile holds the token's user PIN. Empty: the
	// BERTH_PKCS11_PIN environment variable.
	PKCS11PinFile string `json:"pkcs11PinFile,omitempty"`
	// Mount, when set, mounts the read-only FUSE view of the store there
	// while the daemon serves (serve only).
	Mount string `json:"mount,omitempty"`
	// ECRCredentials is a file of ACCESS_KEY_ID:SECRET_ACCESS_KEY lines:
	// the keys the ECR management API accepts (SigV4). Empty: the ECR API
	// is open when Htpasswd is empty and closed when it is set.
	ECRCredentials string `json:"ecrCredentials,omitempty"`
	// ECRRegion is the region the ECR API answers for. Default us-east-1.
	ECRRegion string `json:"ecrRegion,omitempty"`
	// ECRAccountID is the registry ID (12 digits) the ECR API answers for.
	// Default 000000000000.
	ECRAccountID string `json:"ecrAccountId,omitempty"`
	// PullThroughRefresh is how often a tag of a pull-through cache
	// repository is checked against its upstream. Default 24h (ECR);
	// negative: at every pull.
	PullThroughRefresh Duration `json:"pullThroughRefresh,omitempty"`
	// PullThroughCacheRules are pull-through cache rules put into the
	// store at start (engine.PutPullThroughCacheRule), in the ECR field
	// names: ecrRepositoryPrefix, upstreamRegistryUrl, upstreamRegistry,
	// upstreamRepositoryPrefix, credentialArn.
	PullThroughCacheRules []PullThroughCacheRule `json:"pullThroughCacheRules,omitempty"`
	// Templates are repository creation templates put into the store at
	// start (engine.PutCreationTemplate), in the ECR field names.
	Templates []Template `json:"templates,omitempty"`
	// AuditDir is the audit log's directory. Empty: <data>/audit.
	AuditDir string `json:"auditDir,omitempty"`
	// ArchiveDir is the archive tier's directory (ECR's archive storage
	// class: docs/archive.md); it may be on another, cheaper file system.
	// Empty: <data>/archive.
	ArchiveDir string `json:"archiveDir,omitempty"`
	// BlobStore puts the hot tier's blobs in an S3-compatible bucket:
	// s3://HOST[:PORT]/BUCKET[/PREFIX][?tls=false&region=R], credentials
	// from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the AWS shared
	// files, or the instance role). Empty: files under the data directory.
	// TLS is on unless tls=false. See docs/scale-out.md.
	BlobStore string `json:"blobStore,omitempty"`
	// Metadata keeps the store's metadata in a PostgreSQL database
	// (postgres://user@host:port/db?sslmode=...) instead of pebble under
	// the data directory. See docs/scale-out.md.
	Metadata string `json:"metadata,omitempty"`
	// SharedCacheTTL bounds, with Metadata, how long a change another
	// replica made can go unseen here when its notification is lost:
	// every cache is dropped this often. 0: the engine's default, 5 s.
	// Only with Metadata. See docs/scale-out.md.
	SharedCacheTTL Duration `json:"sharedCacheTTL,omitempty"`
	// AuditMaxAge is how long audit records are kept. 0: the engine's
	// default, 90 days; negative: for ever (AuditMaxBytes still bounds
	// them).
	AuditMaxAge Duration `json:"auditMaxAge,omitempty"`
	// AuditMaxBytes bounds the audit log's directory, in bytes. 0: the
	// engine's default, 1 GiB; at least 1 MiB.
	AuditMaxBytes int64 `json:"auditMaxBytes,omitempty"`
	// ScanWorkers bounds the image scans run at once (docs/scanning.md).
	// 0: the engine's default, 1; negative: no scans run (they stay
	// queued).
	ScanWorkers int `json:"scanWorkers,omitempty"`
	// ScanQuietPeriod is how long no push may have been in flight before
	// a scan runs (docs/scanning.md). 0: the engine's default, 50 ms;
	// negative: scans do not wait for pushes.
	ScanQuietPeriod Duration `json:"scanQuietPeriod,omitempty"`
	// ScanMaxYield bounds how long scans wait for pushes to pause, in a
	// row. 0: the engine's default, 30 s.
	ScanMaxYield Duration `json:"scanMaxYield,omitempty"`
	// NoAudit keeps no audit log: nothing is recorded, and `registryd
	// audit` and GET /admin/v1/audit answer that there is none.
	NoAudit bool `json:"noAudit,omitempty"`
	// LifecycleInterval applies the lifecycle policy of every repository
	// that has one this often, each run moved by up to 10% either way at
	// random (serve only; docs/gc.md, "Schedules"). Default 24h (ECR
	// applies policies within 24 hours); 0: off. At least a minute
	// unless ShortSchedules.
	LifecycleInterval Duration `json:"lifecycleInterval"`
	// GCInterval runs an online garbage collection this often, jittered
	// likewise (serve only). Default 24h; 0: off.
	GCInterval Duration `json:"gcInterval"`
	// GCAfterLifecycle also runs a collection after each scheduled
	// lifecycle run that expired images, so that their bytes come back
	// at once (serve only). Default true.
	GCAfterLifecycle bool `json:"gcAfterLifecycle"`
	// GCGrace is the grace period of scheduled collections: unreferenced
	// blobs younger than this are spared. 0: the engine's default, 1h.
	GCGrace Duration `json:"gcGrace,omitempty"`
	// ShortSchedules allows LifecycleInterval and GCInterval under a
	// minute (tests and demonstrations).
	ShortSchedules bool `json:"shortSchedules,omitempty"`
	// AdminSocket is the unix socket (mode 0600) on which serve answers
	// the admin API to the users of this machine, and through which the
	// registryd commands reach the daemon holding the store. Empty:
	// <data>/admin.sock; "none": no socket.
	AdminSocket string `json:"adminSocket,omitempty"`
	// Webhooks are the endpoints events (ECR's EventBridge events) are
	// delivered to, signed (docs/events.md). The daemon delivers; the
	// one-shot commands leave the events they cause queued for it.
	Webhooks []Webhook `json:"webhooks,omitempty"`
	// EventQueueMaxBytes bounds each webhook's queue (and its dead
	// letters), in bytes: past it the oldest are dropped. 0: the
	// engine's default, 64 MiB.
	EventQueueMaxBytes int64 `json:"eventQueueMaxBytes,omitempty"`
	// Replication names the registries replication rules may send to,
	// each with its endpoint and credentials (docs/replication.md). Only
	// serve replicates; the one-shot commands leave the queue to it.
	Replication Replication `json:"replication,omitempty"`
	// FS is the file system of the store's local files
	// (engine.Options.FS), not set by the configuration file: the tests
	// that run the daemon in their process give internal/faultfs to fill
	// or fail its disk. Default nil: the operating system's.
	FS vfs.FS `json:"-" yaml:"-"`
}

// The shapes of an AWS account ID and region name.
var (
	ecrAccountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	ecrRegionPattern  = regexp.MustCompile(`^[a-z]{2,}(-[a-z0-9]+)+-[0-9]+$`)
)

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:5000",
		Data:            "./berth-data",
		CreateOnPush:    true,
		LogLevel:        "info",
		LogFormat:       "text",
		AccessLog:       true,
		Metrics:         true,
		Console:         true,
		ShutdownTimeout: Duration(30 * time.Second),
		AuthCacheTTL:    Duration(time.Minute),
		MaxManifestSize: 4 << 20,
		MemoryLimit:     MemoryLimitAuto,

		LifecycleInterval: Duration(DefaultScheduleInterval),
		GCInterval:        Duration(DefaultScheduleInterval),
		GCAfterLifecycle:  true,
	}
}

// EngineOptions are the engine options the configuration asks for. It
// reads the PKCS#11 PIN file when one is configured.
func (c *Config) EngineOptions() (*engine.Options, error) {
	objectStore, err := ParseBlobStore(c.BlobStore)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	o := &engine.Options{
		FrameSize:           c.FrameSize,
		DisableEncryption:   c.DisableEncryption,
		DisableCompression:  c.DisableCompression,
		MaxBlobSize:         c.MaxBlobSize,
		MaxManifestSize:     c.MaxManifestSize,
		CreateOnPush:        c.CreateOnPush,
		AllowSparse:         c.AllowSparse,
		PrepareLayersOnPush: c.Mount != "",
		Account:             c.ECRAccountID,
		Region:              c.ECRRegion,
		KeyringPath:         c.Keyring,
		AuditDir:            c.AuditDir,
		ArchiveDir:          c.ArchiveDir,
		ObjectStore:         objectStore,
		Metadata:            c.Metadata,
		SharedCacheTTL:      time.Duration(c.SharedCacheTTL),
		AuditMaxAge:         time.Duration(c.AuditMaxAge),
		AuditMaxBytes:       c.AuditMaxBytes,
		DisableAudit:        c.NoAudit,
		// Only serve runs scans (it sets ScanWorkers from the
		// configuration): a one-shot command leaves the queue to the
		// daemon, and a run it cut short at its exit would count an
		// attempt.
		ScanWorkers:        -1,
		EventQueueMaxBytes: c.EventQueueMaxBytes,
		// Only serve delivers events (it clears this): a one-shot
		// command leaves what it queues to the daemon.
		HoldEvents: true,
		FS:         c.FS,
	}
	c.replicationOptions(o)
	if o.Webhooks, err = c.engineWebhooks(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.PKCS11Module != "" {
		o.PKCS11Module, o.PKCS11Token = c.PKCS11Module, c.PKCS11Token
		o.PKCS11PIN = os.Getenv("BERTH_PKCS11_PIN")
		if c.PKCS11PinFile != "" {
			b, err := os.ReadFile(c.PKCS11PinFile)
			if err != nil {
				return nil, fmt.Errorf("%w: pkcs11PinFile: %w", ErrConfig, err)
			}
			o.PKCS11PIN = strings.TrimRight(string(b), "\r\n")
		}
	}
	return o, nil
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("addr is empty"))
	}
	if c.Data == "" {
		errs = append(errs, errors.New("data is empty"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tlsCert and tlsKey go together"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("logLevel %q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("logFormat %q: want text or json", c.LogFormat))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("shutdownTimeout must be positive"))
	}
	if c.MaxManifestSize <= 0 {
		errs = append(errs, errors.New("maxManifestSize must be positive"))
	}
	if c.AuditMaxBytes != 0 && c.AuditMaxBytes < engine.MinAuditMaxBytes {
		errs = append(errs, fmt.Errorf("auditMaxBytes %d: want 0 (the default, 1 GiB) or at least %d", c.AuditMaxBytes, engine.MinAuditMaxBytes))
	}
	if c.MaxBlobSize < 0 || c.FrameSize < 0 {
		errs = append(errs, errors.New("maxBlobSize and frameSize must not be negative"))
	}
	if c.ScanMaxYield < 0 {
		errs = append(errs, fmt.Errorf("scanMaxYield %v must not be negative (0: the default, 30s)", time.Duration(c.ScanMaxYield)))
	}
	if c.SharedCacheTTL < 0 || c.SharedCacheTTL != 0 && c.Metadata == "" {
		errs = append(errs, fmt.Errorf("sharedCacheTTL %v: want a positive duration, and only with metadata (0: the default, 5s)", time.Duration(c.SharedCacheTTL)))
	}
	if c.ECRAccountID != "" && !ecrAccountPattern.MatchString(c.ECRAccountID) {
		errs = append(errs, fmt.Errorf("ecrAccountId %q: want 12 digits", c.ECRAccountID))
	}
	if c.ECRRegion != "" && !ecrRegionPattern.MatchString(c.ECRRegion) {
		errs = append(errs, fmt.Errorf("ecrRegion %q: want a region name such as us-east-1", c.ECRRegion))
	}
	if c.IAM != "" && c.Htpasswd == "" && c.ECRCredentials == "" {
		errs = append(errs, errors.New("iam: identity policies need authentication (htpasswd or ecrCredentials); without it the registry is open to anyone"))
	}
	errs = append(errs, c.validateSchedules()...)
	if _, err := c.trustedProxies(); err != nil {
		errs = append(errs, fmt.Errorf("trustedProxies: %w", err))
	}
	for i, t := range c.Templates {
		if t.Prefix == "" {
			errs = append(errs, fmt.Errorf("templates[%d]: prefix is required", i))
		}
		if len(t.AppliedFor) == 0 {
			errs = append(errs, fmt.Errorf("templates[%d] (%s): appliedFor is required", i, t.Prefix))
		}
	}
	if _, err := c.engineWebhooks(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.checkReplication()...)
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// trustedProxies parses TrustedProxies.
func (c *Config) trustedProxies() (request.TrustedProxies, error) {
	var out request.TrustedProxies
	for _, item := range c.TrustedProxies {
		p, err := request.ParseTrustedProxies(item)
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
	}
	return out, nil
}

// LoadConfigFile reads a YAML or JSON file over c. Unknown fields are
// errors.
func LoadConfigFile(path string, c *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return parseConfig(b, path, c)
}

func parseConfig(b []byte, path string, c *Config) error {
	// YAML is a superset of JSON: decode to generic values, re-encode as
	// JSON, and decode strictly with the JSON field names (ECR's names for
	// templates and pull-through cache rules).
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	if v == nil {
		return nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	return nil
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// String implements flag.Value.
func (d *Duration) String() string { return time.Duration(*d).String() }

// Set implements flag.Value.
func (d *Duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// templateList is the repeatable --template flag: one JSON template each.
type templateList struct{ c *Config }

func (t templateList) String() string { return "" }

func (t templateList) Set(s string) error {
	var ct Template
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ct); err != nil {
		return fmt.Errorf("template JSON: %w", err)
	}
	t.c.Templates = append(t.c.Templates, ct)
	return nil
}

// proxyList is the --trusted-proxies flag: comma-separated prefixes,
// replacing the configuration file's list.
type proxyList struct{ c *Config }

func (p proxyList) String() string {
	if p.c == nil {
		return ""
	}
	return strings.Join(p.c.TrustedProxies, ",")
}

func (p proxyList) Set(s string) error {
	if _, err := request.ParseTrustedProxies(s); err != nil {
		return err
	}
	p.c.TrustedProxies = []string{s}
	return nil
}

// bindServeFlags defines one flag per Config field, defaulting to c's
// current values (the defaults, overlaid by the config file).
func bindServeFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (host:port)")
	bindStoreFlags(fs, c)
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "TLS certificate (PEM); with --tls-key, serve HTTPS")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "TLS private key (PEM)")
	fs.StringVar(&c.Htpasswd, "htpasswd", c.Htpasswd, "htpasswd file (bcrypt entries): require basic authentication")
	fs.BoolVar(&c.AnonymousPull, "anonymous-pull", c.AnonymousPull, "with --htpasswd, allow GET and HEAD without credentials")
	fs.StringVar(&c.IAM, "iam", c.IAM, "identity file (YAML or JSON): users, groups and their IAM identity policies; reloaded on SIGHUP (default: every authenticated user is an administrator)")
	fs.Var(proxyList{c}, "trusted-proxies", "comma-separated CIDR prefixes of reverse proxies whose X-Forwarded-For is believed for the client's address (default: none, the TCP peer is the client)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.BoolVar(&c.AccessLog, "access-log", c.AccessLog, "log one line per request")
	fs.BoolVar(&c.Metrics, "metrics", c.Metrics, "serve Prometheus metrics at /metrics")
	fs.BoolVar(&c.Console, "console", c.Console, "serve the web console at /console/")
	fs.Var(&c.ShutdownTimeout, "shutdown-timeout", "bound on the wait for in-flight requests at shutdown")
	fs.Var(&c.MemoryLimit, "memory-limit", `Go runtime soft memory limit: "auto" (90% of the cgroup's memory limit when one is set, none otherwise), "none", or bytes with an optional unit ("512MiB"); the GOMEMLIMIT environment variable wins`)
	fs.Var(&c.AuthCacheTTL, "auth-cache-ttl", "how long a verified password is cached (0 or negative: never)")
	fs.StringVar(&c.Mount, "mount", c.Mount, "mount the read-only FUSE view of the store at this directory while serving (live: pushes and deletes show within a second)")
	fs.StringVar(&c.ECRCredentials, "ecr-credentials", c.ECRCredentials, "file of ACCESS_KEY_ID:SECRET_ACCESS_KEY lines the ECR management API accepts (aws ecr, AWS SDKs); empty: the ECR API is open without --htpasswd, closed with it")
	fs.StringVar(&c.ECRRegion, "ecr-region", c.ECRRegion, "region the ECR API answers for (default us-east-1)")
	fs.StringVar(&c.ECRAccountID, "ecr-account-id", c.ECRAccountID, "registry ID the ECR API answers for (default 000000000000)")
	fs.Var(&c.PullThroughRefresh, "pull-through-refresh", "how often a pull-through cache tag is checked upstream (default 24h; negative: every pull)")
	bindScheduleFlags(fs, c)
	fs.Var(replicationList{c}, "replication-destination", `replication destination and its endpoint as JSON, repeatable (e.g. '{"region":"eu-west-1","registryId":"111122223333","url":"https://replica.example:5000","username":"replicator","passwordFile":"/etc/berth/replica.pw"}')`)
	fs.Var(templateList{c}, "template", `repository creation template as JSON, repeatable (e.g. '{"prefix":"team-a","appliedFor":["CREATE_ON_PUSH"],"imageTagMutability":"IMMUTABLE"}')`)
}

// bindStoreFlags defines the flags that open a store.
func bindStoreFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Data, "data", c.Data, "store directory")
	fs.BoolVar(&c.CreateOnPush, "create-on-push", c.CreateOnPush, "create an unknown repository on push with default settings when no creation template matches (false: ECR behaviour, NAME_UNKNOWN)")
	fs.Int64Var(&c.MaxManifestSize, "max-manifest-size", c.MaxManifestSize, "largest manifest accepted, bytes")
	fs.Int64Var(&c.MaxBlobSize, "max-blob-size", c.MaxBlobSize, "largest blob accepted, bytes (0: engine default, 52,000 MiB)")
	fs.IntVar(&c.FrameSize, "frame-size", c.FrameSize, "blob frame size, bytes (0: engine default, 1 MiB)")
	fs.BoolVar(&c.DisableEncryption, "disable-encryption", c.DisableEncryption, "store new blobs unencrypted")
	fs.BoolVar(&c.DisableCompression, "disable-compression", c.DisableCompression, "store blob frames uncompressed")
	fs.StringVar(&c.Keyring, "keyring", c.Keyring, "keyring file of the store's keys (default <data>/keyring.json); may be on another volume; a missing keyring (or keyring directory) of an existing store is refused")
	fs.StringVar(&c.PKCS11Module, "pkcs11-module", c.PKCS11Module, "PKCS#11 module serving pkcs11: key names (e.g. /usr/lib/softhsm/libsofthsm2.so); needs a registryd built with -tags pkcs11")
	fs.StringVar(&c.PKCS11Token, "pkcs11-token", c.PKCS11Token, `label of the HSM token (default "berth")`)
	fs.StringVar(&c.PKCS11PinFile, "pkcs11-pin-file", c.PKCS11PinFile, "file holding the token's user PIN (default: the BERTH_PKCS11_PIN environment variable)")
	fs.StringVar(&c.AuditDir, "audit-dir", c.AuditDir, "audit log directory (default <data>/audit)")
	fs.StringVar(&c.ArchiveDir, "archive-dir", c.ArchiveDir, "archive tier directory: the blobs of archived images no active image needs, recompressed (default <data>/archive); may be another, cheaper file system")
	fs.StringVar(&c.BlobStore, "blob-store", c.BlobStore, "keep blobs in an S3-compatible bucket: s3://HOST[:PORT]/BUCKET[/PREFIX][?tls=false&region=R], credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (default: files under the data directory)")
	fs.StringVar(&c.Metadata, "metadata", c.Metadata, "keep the store's metadata in PostgreSQL: postgres://USER@HOST:PORT/DB?sslmode=... (default: pebble under the data directory)")
	fs.Var(&c.SharedCacheTTL, "shared-cache-ttl", "with --metadata: how often every cache is dropped, the bound on how long another replica's change can go unseen when its notification is lost (default 5s)")
	fs.Var(&c.AuditMaxAge, "audit-max-age", "how long audit records are kept (default 90 days, 2160h; negative: for ever)")
	fs.IntVar(&c.ScanWorkers, "scan-workers", c.ScanWorkers, "image scans run at once (0: 1; negative: none, scans stay queued)")
	fs.Var(&c.ScanQuietPeriod, "scan-quiet-period", "how long no push may have been in flight before a scan runs (default 50ms; negative: scans do not wait)")
	fs.Var(&c.ScanMaxYield, "scan-max-yield", "the longest scans wait for pushes to pause, in a row (default 30s)")
	fs.Int64Var(&c.AuditMaxBytes, "audit-max-bytes", c.AuditMaxBytes, "bound on the audit log's size, bytes (0: 1 GiB; at least 1 MiB); the oldest records go first")
	fs.BoolVar(&c.NoAudit, "no-audit", c.NoAudit, "keep no audit log (nothing recorded, nothing to query)")
	fs.StringVar(&c.AdminSocket, "admin-socket", c.AdminSocket, `the admin API's unix socket: serve answers there (mode 0600) to this machine's users; the other commands reach the daemon holding the store through it when the store is locked (default <data>/admin.sock; "none": no socket)`)
	fs.BoolVar(&c.AllowSparse, "allow-sparse", c.AllowSparse, "accept sparse manifests: image manifests with layers, and indexes with child manifests, that are not in the repository (the config blob is still required)")
}

// configFileArg finds --config in args before flag parsing, so that the
// file's values become the flags' defaults.
func configFileArg(args []string) (string, error) {
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, p := range []string{"-config", "--config"} {
			if a == p {
				if i+1 >= len(args) {
					return "", fmt.Errorf("%w: %s needs a file", ErrConfig, p)
				}
				return args[i+1], nil
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, nil
			}
		}
	}
	return "", nil
}

// parseFlags loads the defaults, then --config, then the flags.
func parseFlags(fs *flag.FlagSet, args []string, bind func(*flag.FlagSet, *Config)) (*Config, error) {
	c := DefaultConfig()
	file, err := configFileArg(args)
	if err != nil {
		return nil, err
	}
	if file != "" {
		if err := LoadConfigFile(file, &c); err != nil {
			return nil, err
		}
	}
	var ignored string
	fs.StringVar(&ignored, "config", file, "configuration file (YAML or JSON); flags override it")
	bind(fs, &c)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return &c, nil
}
