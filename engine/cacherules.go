package engine

// Pull-through cache rules (ECR's CreatePullThroughCacheRule): which
// repository prefixes mirror which upstream registry. The engine keeps the
// rules and creates cache repositories from PULL_THROUGH_CACHE templates;
// registryd fetches from upstream (docs/pull-through-cache.md).

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/berthstore/berth/engine/internal/errdefs"
	"github.com/berthstore/berth/engine/internal/templates"
	"github.com/berthstore/berth/index"
)

// maxCacheRules is ECR's limit on pull-through cache rules a registry.
const maxCacheRules = 50

// cachePrefixPattern is ECR's ecrRepositoryPrefix (besides ROOT).
var cachePrefixPattern = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// PullThroughCacheRule maps the repositories under ECRRepositoryPrefix to
// an upstream registry: a pull of <prefix>/<path> that misses locally is
// served from <UpstreamRepositoryPrefix>/<path> of UpstreamRegistryURL.
type PullThroughCacheRule struct {
	// ECRRepositoryPrefix is the local prefix (2 to 30 characters,
	// whole path components) or ROOT.
	ECRRepositoryPrefix string `json:"ecrRepositoryPrefix"`
	// UpstreamRegistryURL is the upstream registry: a host[:port], or a
	// URL with scheme https:// or http:// (http only for plain-HTTP
	// registries, such as one on 127.0.0.1).
	UpstreamRegistryURL string `json:"upstreamRegistryUrl"`
	// UpstreamRepositoryPrefix is the upstream prefix that replaces the
	// local one; ROOT (the default) drops it. Settable only when the
	// local prefix is not ROOT.
	UpstreamRepositoryPrefix string `json:"upstreamRepositoryPrefix"`
	// UpstreamRegistry is the upstream registry's name as ECR knows it
	// (docker-hub, quay, ...: UpstreamRegistries). Given alone, it sets
	// the URL of a registry ECR knows by one; left out, it is found from
	// the URL ("" for a registry ECR does not name).
	UpstreamRegistry string `json:"upstreamRegistry,omitempty"`
	// CredentialARN is the ARN of the stored secret (SecretARN; its name
	// starts with ecr-pullthroughcache/, as ECR wants) whose credentials
	// authenticate to the upstream; "" for anonymous pulls.
	CredentialARN string    `json:"credentialArn,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// ErrPushToCacheRepository: a push (a manifest, a blob upload or a
// mount) into a repository a pull-through cache created, which only its
// cache fills.
var ErrPushToCacheRepository = errors.New("engine: repository is a pull-through cache")

// refusePush refuses a push into r when a pull-through cache created it.
func refusePush(r *repoState) error {
	if r.CreatedByCacheRule == "" {
		return nil
	}
	return fmt.Errorf("%w: %s is filled from its upstream by the pull-through cache rule of prefix %s; push to a repository outside the rule's prefix", ErrPushToCacheRepository, r.Name, r.CreatedByCacheRule)
}

// CacheSecretPrefix starts the name of every secret a pull-through cache
// rule may name, as in ECR.
const CacheSecretPrefix = "ecr-pullthroughcache/"

// UpstreamRepository is the upstream repository that local repository
// repo (under the rule's prefix) mirrors.
func (r *PullThroughCacheRule) UpstreamRepository(repo string) string {
	path := repo
	if r.ECRRepositoryPrefix != RootPrefix {
		path = strings.TrimPrefix(repo, r.ECRRepositoryPrefix+"/")
	}
	if r.UpstreamRepositoryPrefix == "" || r.UpstreamRepositoryPrefix == RootPrefix {
		return path
	}
	return r.UpstreamRepositoryPrefix + "/" + path
}

// validateCacheRule checks a rule against ECR's constraints (a prefix's
// trailing "/", which ECR assumes, is dropped); errors wrap
// ErrInvalidArgument.
func validateCacheRule(r *PullThroughCacheRule) error {
	r.ECRRepositoryPrefix = trimPrefixSlash(r.ECRRepositoryPrefix)
	r.UpstreamRepositoryPrefix = trimPrefixSlash(r.UpstreamRepositoryPrefix)
	p := r.ECRRepositoryPrefix
	if p != RootPrefix && (len(p) < 2 || len(p) > 30 || !cachePrefixPattern.MatchString(p)) {
		return fmt.Errorf("%w: ecrRepositoryPrefix %q: want ROOT or 2 to 30 characters of repository name components", ErrInvalidArgument, errdefs.Truncate(p))
	}
	if r.UpstreamRepositoryPrefix == "" {
		r.UpstreamRepositoryPrefix = RootPrefix
	}
	up := r.UpstreamRepositoryPrefix
	if up != RootPrefix {
		if p == RootPrefix {
			return fmt.Errorf("%w: upstreamRepositoryPrefix can be set only when ecrRepositoryPrefix is not ROOT", ErrInvalidArgument)
		}
		if len(up) < 2 || len(up) > 30 || !cachePrefixPattern.MatchString(up) {
			return fmt.Errorf("%w: upstreamRepositoryPrefix %q: want ROOT or 2 to 30 characters of repository name components", ErrInvalidArgument, errdefs.Truncate(up))
		}
	}
	return resolveUpstreamRegistry(r)
}

// trimPrefixSlash drops the one trailing "/" ECR's prefix pattern allows
// ("ecr-public/" is "ecr-public").
func trimPrefixSlash(p string) string {
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		return p[:len(p)-1]
	}
	return p
}

// ParseUpstreamURL splits an upstreamRegistryUrl into its host[:port] and
// whether it is reached over plain HTTP.
func ParseUpstreamURL(s string) (host string, plainHTTP bool, err error) {
	raw := s
	if !strings.Contains(s, "://") {
		raw = "https://" + s
	}
	u, perr := url.Parse(raw)
	if perr != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", false, fmt.Errorf("%w: upstreamRegistryUrl %q: want a registry host such as registry-1.docker.io, or https://host[:port] or http://host[:port]", ErrInvalidArgument, errdefs.Truncate(s))
	}
	return u.Host, u.Scheme == "http", nil
}

// CreatePullThroughCacheRule adds a rule, or fails with
// ErrCacheRuleExists; at most 50 rules.
func (e *Engine) CreatePullThroughCacheRule(ctx context.Context, r PullThroughCacheRule) (PullThroughCacheRule, error) {
	return e.putCacheRule(ctx, r, putCreate)
}

// PutPullThroughCacheRule creates the rule, or replaces the one with its
// prefix (keeping its creation time): what a configuration file applied
// at every start wants.
func (e *Engine) PutPullThroughCacheRule(ctx context.Context, r PullThroughCacheRule) (PullThroughCacheRule, error) {
	return e.putCacheRule(ctx, r, putAny)
}

func (e *Engine) putCacheRule(ctx context.Context, r PullThroughCacheRule, mode putMode) (PullThroughCacheRule, error) {
	if err := e.checkOpen(); err != nil {
		return r, err
	}
	if err := validateCacheRule(&r); err != nil {
		return r, err
	}
	unlock := e.repoLocks.Lock("cache-rule\x00")
	defer unlock()
	if err := e.checkCacheCredential(ctx, r.CredentialARN); err != nil {
		return r, err
	}
	rules, err := e.PullThroughCacheRules(ctx)
	if err != nil {
		return r, err
	}
	now := e.now()
	r.CreatedAt, r.UpdatedAt = now, now
	found := false
	for _, old := range rules {
		if old.ECRRepositoryPrefix == r.ECRRepositoryPrefix {
			found, r.CreatedAt = true, old.CreatedAt
		}
	}
	switch {
	case found && mode == putCreate:
		return r, fmt.Errorf("%w: prefix %q", ErrCacheRuleExists, r.ECRRepositoryPrefix)
	case !found && mode == putUpdate:
		return r, fmt.Errorf("%w: prefix %q", ErrCacheRuleNotFound, r.ECRRepositoryPrefix)
	case !found && len(rules) >= maxCacheRules:
		return r, fmt.Errorf("%w: a registry has at most %d pull-through cache rules", ErrLimitExceeded, maxCacheRules)
	}
	v, err := encodeCacheRule(r)
	if err != nil {
		return r, err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutCacheRule(r.ECRRepositoryPrefix, v); err != nil {
		return r, storageErr(err)
	}
	defer e.dropCachedRules()
	return r, storageErr(b.Commit(true))
}

// UpdatePullThroughCacheRule sets the credentials of the rule of prefix
// (ECR's UpdatePullThroughCacheRule: the only field it changes):
// credentialARN names a stored secret as CreatePullThroughCacheRule's
// does. It fails with ErrCacheRuleNotFound when no rule has the prefix.
func (e *Engine) UpdatePullThroughCacheRule(ctx context.Context, prefix, credentialARN string) (PullThroughCacheRule, error) {
	if err := e.checkOpen(); err != nil {
		return PullThroughCacheRule{}, err
	}
	prefix = trimPrefixSlash(prefix)
	if credentialARN == "" {
		return PullThroughCacheRule{}, fmt.Errorf("%w: credentialArn is required", ErrInvalidArgument)
	}
	unlock := e.repoLocks.Lock("cache-rule\x00")
	defer unlock()
	v, err := e.db.CacheRule(prefix)
	if errors.Is(err, index.ErrNotFound) || errors.Is(err, index.ErrInvalidKey) {
		return PullThroughCacheRule{}, fmt.Errorf("%w: prefix %q", ErrCacheRuleNotFound, errdefs.Truncate(prefix))
	}
	if err != nil {
		return PullThroughCacheRule{}, storageErr(err)
	}
	r, err := decodeCacheRule(v)
	if err != nil {
		return r, fmt.Errorf("%w: pull-through cache rule %q: %v", ErrCorrupt, prefix, err)
	}
	if err := e.checkCacheCredential(ctx, credentialARN); err != nil {
		return r, err
	}
	r.CredentialARN, r.UpdatedAt = credentialARN, e.now()
	if v, err = encodeCacheRule(r); err != nil {
		return r, err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutCacheRule(prefix, v); err != nil {
		return r, storageErr(err)
	}
	defer e.dropCachedRules()
	return r, storageErr(b.Commit(true))
}

// checkCacheCredential checks a rule's credentialArn: "" (none), or the
// ARN of a stored secret of this registry whose name starts with
// ecr-pullthroughcache/ (ErrInvalidArgument otherwise), that exists
// (ErrSecretNotFound), opens (ErrKeyUnavailable or ErrKeyDestroyed when
// its key cannot) and holds credentials (ErrInvalidArgument).
func (e *Engine) checkCacheCredential(ctx context.Context, arn string) error {
	if arn == "" {
		return nil
	}
	name, err := e.SecretNameFromARN(arn)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(name, CacheSecretPrefix) {
		return fmt.Errorf("%w: credentialArn: the name of a pull-through cache rule's secret starts with %s (got %q)", ErrInvalidArgument, CacheSecretPrefix, errdefs.Truncate(name))
	}
	v, err := e.SecretValue(ctx, name)
	if err != nil {
		return err
	}
	defer clear(v)
	_, err = ParseUpstreamCredentials(v)
	return err
}

// CacheRuleCredentials returns the upstream credentials of rule, read
// from the secret its CredentialARN names; ok is false for a rule
// without credentials (anonymous pulls). The pull-through cache uses
// them for the rule (the rule's creator was allowed to name the secret).
func (e *Engine) CacheRuleCredentials(ctx context.Context, rule *PullThroughCacheRule) (c UpstreamCredentials, ok bool, err error) {
	if rule.CredentialARN == "" {
		return UpstreamCredentials{}, false, nil
	}
	name, err := e.SecretNameFromARN(rule.CredentialARN)
	if err != nil {
		return UpstreamCredentials{}, false, err
	}
	v, err := e.SecretValue(ctx, name)
	if err != nil {
		return UpstreamCredentials{}, false, err
	}
	defer clear(v)
	c, err = ParseUpstreamCredentials(v)
	return c, err == nil, err
}

// DeletePullThroughCacheRule removes the rule with this prefix and returns
// it, or fails with ErrCacheRuleNotFound. Repositories it created stay.
func (e *Engine) DeletePullThroughCacheRule(ctx context.Context, prefix string) (PullThroughCacheRule, error) {
	prefix = trimPrefixSlash(prefix)
	unlock := e.repoLocks.Lock("cache-rule\x00")
	defer unlock()
	var r PullThroughCacheRule
	v, err := e.db.CacheRule(prefix)
	if errors.Is(err, index.ErrNotFound) || errors.Is(err, index.ErrInvalidKey) {
		return r, fmt.Errorf("%w: prefix %q", ErrCacheRuleNotFound, errdefs.Truncate(prefix))
	}
	if err != nil {
		return r, storageErr(err)
	}
	if r, err = decodeCacheRule(v); err != nil {
		return r, fmt.Errorf("%w: pull-through cache rule %q: %v", ErrCorrupt, prefix, err)
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteCacheRule(prefix); err != nil {
		return r, storageErr(err)
	}
	defer e.dropCachedRules()
	return r, storageErr(b.Commit(true))
}

// PullThroughCacheRules lists the rules in prefix order.
func (e *Engine) PullThroughCacheRules(ctx context.Context) ([]PullThroughCacheRule, error) {
	rules, err := e.cachedRules()
	return slices.Clone(rules), err
}

// cachedRules returns the rules, read from the index once after each
// change: every pull asks for them, so the common case is one atomic
// load. A read from the index and the drop after a change's commit both
// hold rulesMu, so a read that raced the commit cannot outlive it.
func (e *Engine) cachedRules() ([]PullThroughCacheRule, error) {
	if p := e.cacheRules.Load(); p != nil {
		return *p, nil
	}
	e.rulesMu.Lock()
	defer e.rulesMu.Unlock()
	if p := e.cacheRules.Load(); p != nil {
		return *p, nil
	}
	g := e.fillGen()
	out := []PullThroughCacheRule{}
	err := e.db.ListCacheRules(func(prefix string, v []byte) error {
		r, err := decodeCacheRule(v)
		if err != nil {
			return fmt.Errorf("%w: pull-through cache rule %q: %v", ErrCorrupt, prefix, err)
		}
		if r.UpstreamRegistry == "" {
			// A rule stored before the name was (version 1): found from the URL.
			if host, plain, err := ParseUpstreamURL(r.UpstreamRegistryURL); err == nil {
				r.UpstreamRegistry = upstreamRegistryOf(host, plain)
			}
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, storageErr(err)
	}
	if e.fresh(g) {
		e.cacheRules.Store(&out)
		if !e.fresh(g) {
			e.cacheRules.CompareAndSwap(&out, nil)
		}
	}
	return out, nil
}

// dropCachedRules makes the next cachedRules read the index.
func (e *Engine) dropCachedRules() {
	e.rulesMu.Lock()
	e.cacheRules.Store(nil)
	e.rulesMu.Unlock()
}

// MatchPullThroughCacheRule returns the rule that repo falls under: the
// longest prefix of whole path components, else ROOT's; false when none
// (the rule creation templates follow too: engine/internal/templates).
// A rule applies only to repositories that a pull-through cache created
// (Repository.CreatedByCacheRule) and to names with no repository yet:
// never to a repository that was pushed to or created directly, whatever
// its name.
func (e *Engine) MatchPullThroughCacheRule(ctx context.Context, repo string) (*PullThroughCacheRule, bool, error) {
	rule, ok, err := e.matchCacheRule(repo)
	if err != nil || !ok {
		return nil, false, err
	}
	r, err := e.loadRepo(repo)
	switch {
	case errors.Is(err, ErrNameUnknown):
		return rule, true, nil
	case err != nil:
		return nil, false, err
	case r.CreatedByCacheRule == "":
		return nil, false, nil
	}
	return rule, true, nil
}

// matchCacheRule returns the rule whose prefix repo falls under, whether
// or not repo exists.
func (e *Engine) matchCacheRule(repo string) (*PullThroughCacheRule, bool, error) {
	rules, err := e.cachedRules()
	if err != nil || len(rules) == 0 {
		return nil, false, err
	}
	prefixes := make([]string, len(rules))
	for i := range rules {
		prefixes[i] = rules[i].ECRRepositoryPrefix
	}
	best := templates.Longest(prefixes, repo)
	if best < 0 {
		return nil, false, nil
	}
	c := rules[best]
	return &c, true, nil
}

// EnsureCacheRepository creates repo, when it does not exist, with the
// settings of the PULL_THROUGH_CACHE creation template that matches it
// (defaults without one), recording the rule that created it: a
// pull-through cache's first pull of a repository. It fails with
// ErrCacheRuleNotFound when no rule covers repo, and with
// ErrNotPullThroughCache when repo exists but no pull-through cache
// created it. The creation check of ctx decides the creation. created
// reports that this call created it (a fill that then fails removes it
// again, RemoveEmptyRepository).
func (e *Engine) EnsureCacheRepository(ctx context.Context, repo string) (created bool, err error) {
	_, created, err = e.ensureCacheRepo(ctx, repo)
	return created, err
}

func (e *Engine) ensureCacheRepo(ctx context.Context, repo string) (*repoState, bool, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, false, err
	}
	rule, ok, err := e.matchCacheRule(repo)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		return nil, false, fmt.Errorf("%w: no rule covers %s", ErrCacheRuleNotFound, repo)
	}
	r, created, err := e.ensureRepoFor(ctx, repo, AppliedForPullThroughCache, rule.ECRRepositoryPrefix, true)
	if err != nil {
		return nil, false, err
	}
	if r.CreatedByCacheRule == "" {
		return nil, false, fmt.Errorf("%w: %s", ErrNotPullThroughCache, repo)
	}
	return r, created, nil
}
