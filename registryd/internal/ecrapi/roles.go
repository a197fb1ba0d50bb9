package ecrapi

// The roles of the store the operations depend on, each narrow, each
// operation group holding only those it uses (operations.go). The engine
// has them all; New takes the Store they make up, so that an API built
// over a store that lacks one does not compile.

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
)

// expiry is an image a lifecycle policy expires.
type expiry = engine.Expiry

// RepositoryStore creates, describes, lists, configures and deletes
// repositories.
type RepositoryStore interface {
	CreateRepository(ctx context.Context, name string, s engine.RepositorySettings) (*engine.Repository, error)
	Repository(ctx context.Context, name string) (*engine.Repository, error)
	ListRepositories(ctx context.Context, last string, n int) ([]string, error)
	DeleteRepository(ctx context.Context, name string, force bool) error
	SetTagMutability(ctx context.Context, name, mutability string, exclusions []engine.TagFilter) error
	SetScanOnPush(ctx context.Context, repo string, scanOnPush bool) error
}

// ResourceTagStore reads and changes a repository's AWS resource tags.
type ResourceTagStore interface {
	Repository(ctx context.Context, name string) (*engine.Repository, error)
	TagRepository(ctx context.Context, repo string, tags []engine.ResourceTag) error
	UntagRepository(ctx context.Context, repo string, keys []string) error
}

// ImageStore lists, reads, puts and deletes images.
type ImageStore interface {
	Images(ctx context.Context, repo string) ([]engine.ImageDetail, error)
	Image(ctx context.Context, repo, reference string) (*engine.ImageDetail, error)
	GetManifest(ctx context.Context, repo, reference string) (*engine.Manifest, error)
	StatManifest(ctx context.Context, repo, reference string) (engine.Descriptor, error)
	PutManifest(ctx context.Context, repo, reference, mediaType string, payload []byte, tags ...string) (engine.PutManifestResult, error)
	UntagImage(ctx context.Context, repo, tag string) (digest.Digest, bool, error)
	DeleteImage(ctx context.Context, repo string, d digest.Digest) error
}

// LayerStore checks layers and takes them in by resumable uploads.
type LayerStore interface {
	StatBlob(ctx context.Context, repo string, d digest.Digest) (engine.Descriptor, error)
	BeginUpload(ctx context.Context, repo string) (engine.Upload, error)
	ResumeUpload(ctx context.Context, repo, id string) (engine.Upload, error)
}

// PolicyStore keeps repository policies.
type PolicyStore interface {
	SetRepositoryPolicy(ctx context.Context, repo, policy string) error
	GetRepositoryPolicy(ctx context.Context, repo string) (string, error)
	DeleteRepositoryPolicy(ctx context.Context, repo string) (string, error)
}

// RegistryPolicyStore keeps the registry policy.
type RegistryPolicyStore interface {
	SetRegistryPolicy(ctx context.Context, text string) error
	RegistryPolicy(ctx context.Context) (string, error)
	DeleteRegistryPolicy(ctx context.Context) (string, error)
}

// LifecycleStore keeps lifecycle policies and their stored previews.
type LifecycleStore interface {
	PutLifecyclePolicy(ctx context.Context, repo, policy string) error
	GetLifecyclePolicy(ctx context.Context, repo string) (string, error)
	DeleteLifecyclePolicy(ctx context.Context, repo string) (string, error)
	StartLifecyclePolicyPreview(ctx context.Context, repo, policyOverride string) (engine.LifecyclePolicyPreview, error)
	LifecyclePolicyPreview(ctx context.Context, repo string, after digest.Digest, fn func(engine.LifecyclePreviewResult) error) (engine.LifecyclePolicyPreview, error)
}

// TemplateStore keeps repository creation templates.
type TemplateStore interface {
	CreateCreationTemplate(ctx context.Context, t engine.CreationTemplate) error
	UpdateCreationTemplate(ctx context.Context, t engine.CreationTemplate) error
	DeleteCreationTemplate(ctx context.Context, prefix string) error
	CreationTemplates(ctx context.Context) ([]engine.CreationTemplate, error)
}

// CacheRuleStore keeps pull-through cache rules, and reads the names of
// the stored secrets their credentialArn names.
type CacheRuleStore interface {
	CreatePullThroughCacheRule(ctx context.Context, r engine.PullThroughCacheRule) (engine.PullThroughCacheRule, error)
	UpdatePullThroughCacheRule(ctx context.Context, prefix, credentialARN string) (engine.PullThroughCacheRule, error)
	DeletePullThroughCacheRule(ctx context.Context, prefix string) (engine.PullThroughCacheRule, error)
	PullThroughCacheRules(ctx context.Context) ([]engine.PullThroughCacheRule, error)
	SecretNameFromARN(arn string) (string, error)
}

// Upstreams are the upstream registries of pull-through cache rules
// (*pullthrough.Cache).
type Upstreams interface {
	// ValidateUpstream answers whether rule's upstream can be reached and
	// authenticates with the rule's credentials: "" when it does, else
	// why not.
	ValidateUpstream(ctx context.Context, rule *engine.PullThroughCacheRule) string
	// Prime makes the handshake with rule's upstream in the background,
	// so that the rule's first pull does not wait for it.
	Prime(rule *engine.PullThroughCacheRule)
}

// AccountSettingStore keeps the account settings.
type AccountSettingStore interface {
	AccountSetting(ctx context.Context, name string) (string, error)
	PutAccountSetting(ctx context.Context, name, value string) error
}

// ReferrerStore lists the referrers of a subject.
type ReferrerStore interface {
	AllReferrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]engine.Referrer, error)
}

// Store is every role the ECR API needs.
type Store interface {
	ScanStore
	RepositoryStore
	ResourceTagStore
	ImageStore
	LayerStore
	PolicyStore
	RegistryPolicyStore
	LifecycleStore
	TemplateStore
	CacheRuleStore
	StorageClassStore
	AccountSettingStore
	ReferrerStore
	ReplicationStore
}

var _ Store = (*engine.Engine)(nil)

// TokenMinter mints the registry login tokens of GetAuthorizationToken.
type TokenMinter interface {
	MintLoginToken(user string) (token string, expires time.Time)
}
