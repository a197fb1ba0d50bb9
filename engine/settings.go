package engine

// Repository settings: their types, ECR's constraints on them, and the
// settings that may change after creation (ECR's PutImageTagMutability,
// TagResource, PutImageScanningConfiguration).

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/berthstore/berth/engine/internal/errdefs"
	"github.com/berthstore/berth/engine/internal/tagfilter"
)

// Tag mutability settings, as ECR names them.
const (
	TagMutable                = "MUTABLE"
	TagImmutable              = "IMMUTABLE"
	TagImmutableWithExclusion = "IMMUTABLE_WITH_EXCLUSION"
	TagMutableWithExclusion   = "MUTABLE_WITH_EXCLUSION"
)

// Encryption types of a repository's EncryptionConfig, as ECR names them.
const (
	EncryptionAES256  = "AES256"
	EncryptionKMS     = "KMS"
	EncryptionKMSDSSE = "KMS_DSSE"
)

// TagFilter is one imageTagMutabilityExclusionFilter: a wildcard pattern
// (`*` matches any run of characters) over tags. FilterType is WILDCARD.
type TagFilter struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

// EncryptionConfig is ECR's encryptionConfiguration. KMSKey names the
// key-encryption key (a keyring key name or a pkcs11: URI); empty means
// the registry's default key.
type EncryptionConfig struct {
	EncryptionType string `json:"encryptionType"`
	KMSKey         string `json:"kmsKey,omitempty"`
}

// ResourceTag is an AWS resource tag on a repository.
type ResourceTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// RepositorySettings are the settings a repository is created with,
// directly or from a creation template.
type RepositorySettings struct {
	// TagMutability is one of the Tag* constants; empty means MUTABLE.
	TagMutability string `json:"imageTagMutability,omitempty"`
	// TagMutabilityExclusions are 1 to 5 wildcard filters, used only with
	// the *_WITH_EXCLUSION settings.
	TagMutabilityExclusions []TagFilter `json:"imageTagMutabilityExclusionFilters,omitempty"`
	// Encryption is fixed at creation; zero means AES256 with the default key.
	Encryption EncryptionConfig `json:"encryptionConfiguration"`
	// ScanOnPush asks for an image scan after each push.
	ScanOnPush bool `json:"scanOnPush,omitempty"`
	// LifecyclePolicy is ECR lifecycle policy JSON, empty for none.
	LifecyclePolicy string `json:"lifecyclePolicy,omitempty"`
	// RepositoryPolicy is an ECR repository policy JSON, empty for none.
	RepositoryPolicy string `json:"repositoryPolicy,omitempty"`
	// ResourceTags are at most 50 AWS resource tags.
	ResourceTags []ResourceTag `json:"resourceTags,omitempty"`
}

// ECR limits on repository settings.
const (
	// FilterTypeWildcard is the only filterType of a TagFilter.
	FilterTypeWildcard = "WILDCARD"

	maxExclusionFilters   = 5
	maxResourceTags       = 50
	maxResourceTagKeyLen  = 128
	maxResourceTagValLen  = 256
	maxKMSKeyLen          = 2048
	maxLifecyclePolicyLen = 30720
	maxRepoPolicyLen      = 10240
)

// validateSettings checks s against ECR's constraints. Every error wraps
// ErrInvalidArgument and names the field.
func validateSettings(s RepositorySettings) error {
	withExclusion := false
	switch s.TagMutability {
	case "", TagMutable, TagImmutable:
	case TagImmutableWithExclusion, TagMutableWithExclusion:
		withExclusion = true
	default:
		return fmt.Errorf("%w: imageTagMutability %q (want MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION)",
			ErrInvalidArgument, errdefs.Truncate(s.TagMutability))
	}
	n := len(s.TagMutabilityExclusions)
	switch {
	case withExclusion && (n < 1 || n > maxExclusionFilters):
		return fmt.Errorf("%w: imageTagMutabilityExclusionFilters: %s needs 1 to %d filters, got %d",
			ErrInvalidArgument, s.TagMutability, maxExclusionFilters, n)
	case !withExclusion && n > 0:
		return fmt.Errorf("%w: imageTagMutabilityExclusionFilters are allowed only with IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION",
			ErrInvalidArgument)
	}
	for i, f := range s.TagMutabilityExclusions {
		if f.FilterType != FilterTypeWildcard {
			return fmt.Errorf("%w: imageTagMutabilityExclusionFilters[%d].filterType %q (want WILDCARD)",
				ErrInvalidArgument, i, errdefs.Truncate(f.FilterType))
		}
		if !tagfilter.Valid(f.Filter) {
			return fmt.Errorf("%w: imageTagMutabilityExclusionFilters[%d].filter %q must match ^[0-9a-zA-Z._*-]{1,128}$",
				ErrInvalidArgument, i, errdefs.Truncate(f.Filter))
		}
	}

	switch s.Encryption.EncryptionType {
	case "", EncryptionAES256:
		if s.Encryption.KMSKey != "" {
			return fmt.Errorf("%w: encryptionConfiguration.kmsKey is allowed only with KMS or KMS_DSSE", ErrInvalidArgument)
		}
	case EncryptionKMS, EncryptionKMSDSSE:
		if len(s.Encryption.KMSKey) > maxKMSKeyLen {
			return fmt.Errorf("%w: encryptionConfiguration.kmsKey longer than %d characters", ErrInvalidArgument, maxKMSKeyLen)
		}
	default:
		return fmt.Errorf("%w: encryptionConfiguration.encryptionType %q (want AES256, KMS or KMS_DSSE)",
			ErrInvalidArgument, errdefs.Truncate(s.Encryption.EncryptionType))
	}

	if len(s.ResourceTags) > maxResourceTags {
		return fmt.Errorf("%w: resourceTags: %d tags, at most %d", ErrInvalidArgument, len(s.ResourceTags), maxResourceTags)
	}
	keys := make(map[string]bool, len(s.ResourceTags))
	for i, t := range s.ResourceTags {
		switch {
		case t.Key == "" || len(t.Key) > maxResourceTagKeyLen:
			return fmt.Errorf("%w: resourceTags[%d].Key must be 1 to %d characters", ErrInvalidArgument, i, maxResourceTagKeyLen)
		case len(t.Value) > maxResourceTagValLen:
			return fmt.Errorf("%w: resourceTags[%d].Value longer than %d characters", ErrInvalidArgument, i, maxResourceTagValLen)
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return fmt.Errorf("%w: resourceTags[%d].Key %q: the aws: prefix is reserved", ErrInvalidArgument, i, t.Key)
		case keys[t.Key]:
			return fmt.Errorf("%w: resourceTags[%d].Key %q given twice", ErrInvalidArgument, i, t.Key)
		}
		keys[t.Key] = true
	}

	if err := checkPolicyText("lifecyclePolicy", s.LifecyclePolicy, maxLifecyclePolicyLen); err != nil {
		return err
	}
	if err := checkPolicyText("repositoryPolicy", s.RepositoryPolicy, maxRepoPolicyLen); err != nil {
		return err
	}
	if s.RepositoryPolicy != "" {
		if _, err := parseRepositoryPolicy("repository", s.RepositoryPolicy); err != nil {
			return fmt.Errorf("%w: repositoryPolicy: %w", ErrInvalidArgument, err)
		}
	}
	return nil
}

// checkPolicyText checks a policy's length and that it is JSON; its
// meaning is checked by the code that evaluates it.
func checkPolicyText(field, text string, max int) error {
	if text == "" {
		return nil
	}
	if len(text) > max {
		return fmt.Errorf("%w: %s is %d characters, at most %d", ErrInvalidArgument, field, len(text), max)
	}
	if !json.Valid([]byte(text)) {
		return fmt.Errorf("%w: %s is not valid JSON", ErrInvalidArgument, field)
	}
	return nil
}

// updateSettings changes a repository's settings under its lock (as
// SetTagMutability does).
func (e *Engine) updateSettings(repo string, change func(*RepositorySettings) error) error {
	if err := ValidateRepositoryName(repo); err != nil {
		return err
	}
	unlock := e.repoLocks.Lock(repo)
	defer unlock()
	r, err := e.loadRepo(repo)
	if err != nil {
		return err
	}
	if err := change(&r.RepositorySettings); err != nil {
		return err
	}
	if err := validateSettings(r.RepositorySettings); err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := e.putRepo(b, &r.Repository); err != nil {
		return storageErr(err)
	}
	defer e.policies.Delete(repo)
	return storageErr(e.commitRepoChange(b, repo))
}

// SetTagMutability changes a repository's tag mutability setting.
func (e *Engine) SetTagMutability(ctx context.Context, name, mutability string, exclusions []TagFilter) error {
	if err := ValidateRepositoryName(name); err != nil {
		return err
	}
	unlock := e.repoLocks.Lock(name)
	defer unlock()
	r, err := e.loadRepo(name)
	if err != nil {
		return err
	}
	r.TagMutability, r.TagMutabilityExclusions = mutability, exclusions
	if err := validateSettings(r.RepositorySettings); err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := e.putRepo(b, &r.Repository); err != nil {
		return storageErr(err)
	}
	return storageErr(e.commitRepoChange(b, name))
}

// TagRepository adds resource tags to repo, replacing the values of keys
// it has already (ECR's TagResource). A repository holds at most 50.
func (e *Engine) TagRepository(ctx context.Context, repo string, tags []ResourceTag) error {
	if len(tags) == 0 {
		return fmt.Errorf("%w: tags is empty", ErrInvalidArgument)
	}
	return e.updateSettings(repo, func(s *RepositorySettings) error {
		for _, t := range tags {
			i := slices.IndexFunc(s.ResourceTags, func(o ResourceTag) bool { return o.Key == t.Key })
			if i >= 0 {
				s.ResourceTags[i].Value = t.Value
			} else {
				s.ResourceTags = append(s.ResourceTags, t)
			}
		}
		return nil
	})
}

// UntagRepository removes the resource tags with these keys from repo;
// keys it does not have are ignored (ECR's UntagResource).
func (e *Engine) UntagRepository(ctx context.Context, repo string, keys []string) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: tagKeys is empty", ErrInvalidArgument)
	}
	return e.updateSettings(repo, func(s *RepositorySettings) error {
		s.ResourceTags = slices.DeleteFunc(s.ResourceTags, func(t ResourceTag) bool { return slices.Contains(keys, t.Key) })
		return nil
	})
}

// SetScanOnPush changes whether repo's images are scanned after each push
// (ECR's PutImageScanningConfiguration).
func (e *Engine) SetScanOnPush(ctx context.Context, repo string, scanOnPush bool) error {
	return e.updateSettings(repo, func(s *RepositorySettings) error {
		s.ScanOnPush = scanOnPush
		return nil
	})
}
