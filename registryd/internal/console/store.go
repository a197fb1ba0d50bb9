package console

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// Store is the role of the store the console reads and changes: the
// repositories and their images, an image's files (ImageFS), the
// lifecycle policies and their preview, scans, replication status,
// templates, pull-through
// rules, keys and the store's figures, and the access decisions of the
// Authorizer. *engine.Engine is one.
type Store interface {
	authz.Decider
	ListRepositories(ctx context.Context, last string, n int) ([]string, error)
	Repository(ctx context.Context, name string) (*engine.Repository, error)
	Images(ctx context.Context, repo string) ([]engine.ImageDetail, error)
	Image(ctx context.Context, repo, reference string) (*engine.ImageDetail, error)
	InspectManifest(ctx context.Context, repo, reference string) (*engine.Manifest, error)
	PutManifest(ctx context.Context, repo, reference, mediaType string, payload []byte, tags ...string) (engine.PutManifestResult, error)
	DeleteImage(ctx context.Context, repo string, d digest.Digest) error
	OpenBlob(ctx context.Context, repo string, d digest.Digest) (engine.BlobReader, error)
	BlobStorage(ctx context.Context, repo string, d digest.Digest) (engine.BlobStorage, error)
	AllReferrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]engine.Referrer, error)
	ImageFS(ctx context.Context, repo, reference string, opts *engine.ImageFSOptions) (*engine.ImageFS, error)
	GetLifecyclePolicy(ctx context.Context, repo string) (string, error)
	PutLifecyclePolicy(ctx context.Context, repo, policy string) error
	LifecyclePreview(ctx context.Context, repo, policyOverride string) ([]engine.Expiry, error)
	ImageScan(ctx context.Context, repo, reference string, findings bool) (*engine.ImageScan, error)
	ImageReplicationStatuses(ctx context.Context, repo, reference string) (digest.Digest, []engine.ImageReplicationStatus, error)
	CreationTemplates(ctx context.Context) ([]engine.CreationTemplate, error)
	PullThroughCacheRules(ctx context.Context) ([]engine.PullThroughCacheRule, error)
	StoreStats(ctx context.Context) (engine.StoreStats, error)
	GCStats() engine.GCStats
	Keys(ctx context.Context) ([]engine.KeyStatus, error)
}

var _ Store = (*engine.Engine)(nil)
