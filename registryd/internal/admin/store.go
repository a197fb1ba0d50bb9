package admin

import (
	"context"
	"io"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// The engine's maintenance types, under short names.
type (
	gcOptions   = engine.GCOptions
	gcReport    = engine.GCReport
	fsckOptions = engine.FsckOptions
	fsckReport  = engine.FsckReport
	expiry      = engine.Expiry
)

// The engine's maintenance errors: a collection already running, and a
// lifecycle policy that does not parse.
var (
	errGCRunning     = engine.ErrGCRunning
	errInvalidPolicy = engine.ErrInvalidPolicy
)

// Store is the role of the store the admin API drives: collection, the
// store check, lifecycle policies run now, the access decisions that
// policy simulations ask, the audit log's export, and the keys,
// repositories, creation templates and secrets the commands manage.
type Store interface {
	authz.Decider
	KeyStore
	RepositoryStore
	TemplateStore
	SecretStore
	CollectGarbage(ctx context.Context, opts gcOptions) (gcReport, error)
	Fsck(ctx context.Context, opts fsckOptions) (*fsckReport, error)
	LifecyclePreview(ctx context.Context, repo, policyOverride string) ([]expiry, error)
	LifecycleApply(ctx context.Context, repo, policyOverride string) ([]expiry, error)
	ExportAudit(ctx context.Context, q engine.AuditQuery, w io.Writer) error
	EventStore
	ReplicationStore
	ImportVulnerabilities(ctx context.Context, path string) (*engine.VulnImport, error)
	VulnDatabaseStatus(ctx context.Context) (engine.VulnDatabaseStatus, error)
	RollbackVulnDatabase(ctx context.Context) (*engine.VulnDatabaseVersion, error)
	ScanQueue(ctx context.Context) (int, error)
}

var _ Store = (*engine.Engine)(nil)
