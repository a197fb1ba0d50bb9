// Package record is the stored form of the engine's settings records:
// a repository's settings, repository creation templates and pull-through
// cache rules, as the engine keeps them in the index (docs/keys.md,
// "Engine records").
//
// A record is JSON with a "version" field and field names of its own, so
// that the stored form changes only when this package says so: not when
// the engine's API types change, nor ECR's wire format (which those types
// carry as JSON names), nor registryd's configuration schema.
//
// Versions:
//
//	0  no "version" field: the engine's API types marshalled with their
//	   ECR JSON names, as the engine wrote them before records had a
//	   version. Read only (testdata/unversioned.json holds such records).
//	1  the types of this package. Written for templates and pull-through
//	   cache rules; read for repository settings.
//	2  repository records: version 1's settings and the prefix of the
//	   pull-through cache rule whose fill created the repository
//	   (CacheRule; left out when none). Read only. Pull-through cache
//	   rules: version 1's fields, the ARN of the stored secret the rule
//	   authenticates to its upstream with (CredentialARN) and the
//	   upstream registry's ECR name (UpstreamRegistry), each left out
//	   when empty. Written.
//	3  repository records only: version 2's fields and when the
//	   repository's lifecycle policy was last evaluated
//	   (LifecycleEvaluatedAt; left out when never). Written.
//
// Each kind of record counts its versions on its own: a repository's
// record is at 3, a cache rule at 2, a template at 1. Stored secrets (the
// secret store of the pull-through cache's upstream credentials) start at
// version 1.
//
// Decode reads every version and returns the current form; Encode writes
// the current version of its record. A record is rewritten in the current version when
// the engine next writes it (nothing is rewritten on open). Any change to
// the fields of a record is a new version: version 1 records with fields
// this package does not know are refused.
package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The versions the Encode functions write, by record: a repository's
// record is at version 3 since it carries the last lifecycle evaluation
// (version 2 added the pull-through cache marker); cache rules are at
// version 2 since they carry credentials and the upstream registry's
// name; templates and secrets are at version 1.
const (
	RepositoryVersion = 3
	TemplateVersion   = 1
	CacheRuleVersion  = 2
	SecretVersion     = 1
)

// ErrVersion is returned (wrapped) for a record of a version this
// package does not know, a newer one.
var ErrVersion = errors.New("record: unknown version")

// Settings are a repository's settings, also the settings a creation
// template gives the repositories it creates.
type Settings struct {
	// TagMutability is ECR's imageTagMutability (MUTABLE, IMMUTABLE,
	// IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION); "" is MUTABLE.
	TagMutability string `json:"tagMutability,omitempty"`
	// TagMutabilityExclusions are the filters of the *_WITH_EXCLUSION
	// settings.
	TagMutabilityExclusions []TagFilter `json:"tagMutabilityExclusions,omitempty"`
	// Encryption is the encryption type and key-encryption key.
	Encryption Encryption `json:"encryption"`
	// ScanOnPush asks for an image scan after each push.
	ScanOnPush bool `json:"scanOnPush,omitempty"`
	// LifecyclePolicy and RepositoryPolicy are policy JSON texts, as given.
	LifecyclePolicy  string `json:"lifecyclePolicy,omitempty"`
	RepositoryPolicy string `json:"repositoryPolicy,omitempty"`
	// ResourceTags are the repository's AWS resource tags, in order.
	ResourceTags []ResourceTag `json:"resourceTags,omitempty"`
}

// Repository is what a repository's record holds besides its name and
// creation time (which the index keeps): its settings, and what created
// it.
type Repository struct {
	// Settings are the repository's settings.
	Settings Settings `json:"settings"`
	// CacheRule is the prefix of the pull-through cache rule (or ROOT)
	// whose fill created the repository; "" for a repository created any
	// other way (a push, CreateRepository). Only such repositories are
	// ever filled from an upstream registry.
	CacheRule string `json:"cacheRule,omitempty"`
	// LifecycleEvaluatedAt is when the repository's lifecycle policy was
	// last evaluated (applied), zero for never (ECR's lastEvaluatedAt).
	LifecycleEvaluatedAt time.Time `json:"lifecycleEvaluatedAt,omitzero"`
}

// TagFilter is one tag mutability exclusion filter.
type TagFilter struct {
	Pattern string `json:"pattern"`
	Type    string `json:"type"`
}

// Encryption is a repository's encryption configuration.
type Encryption struct {
	// Type is AES256, KMS or KMS_DSSE.
	Type string `json:"type,omitempty"`
	// KMSKey names the key-encryption key; "" for the registry's default.
	KMSKey string `json:"kmsKey,omitempty"`
}

// ResourceTag is one AWS resource tag.
type ResourceTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Template is a repository creation template.
type Template struct {
	Prefix        string    `json:"prefix"`
	Description   string    `json:"description,omitempty"`
	AppliedFor    []string  `json:"appliedFor"`
	CustomRoleARN string    `json:"customRoleArn,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	Settings      Settings  `json:"settings"`
}

// CacheRule is a pull-through cache rule.
type CacheRule struct {
	// Prefix is the local repository prefix, or ROOT.
	Prefix string `json:"prefix"`
	// UpstreamURL is the upstream registry, a host[:port] or a URL.
	UpstreamURL string `json:"upstreamUrl"`
	// UpstreamPrefix is the upstream repository prefix, or ROOT.
	UpstreamPrefix string    `json:"upstreamPrefix"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
	// UpstreamRegistry is the upstream registry's name as ECR knows it
	// (docker-hub, quay, ...), "" for another registry (version 2).
	UpstreamRegistry string `json:"upstreamRegistry,omitempty"`
	// CredentialARN names the stored secret the rule authenticates to
	// its upstream with, "" for anonymous pulls (version 2).
	CredentialARN string `json:"credentialArn,omitempty"`
}

// cacheRuleFieldsV1 are a cache rule's fields at version 1.
type cacheRuleFieldsV1 struct {
	Prefix         string    `json:"prefix"`
	UpstreamURL    string    `json:"upstreamUrl"`
	UpstreamPrefix string    `json:"upstreamPrefix"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

// Secret is a stored secret, sealed: its value is sealed under a data
// key of its own (crypt.SealValue), which is kept only wrapped by a
// key-encryption key, as a blob's is.
type Secret struct {
	// Key names the key-encryption key that wraps the data key.
	Key string `json:"key"`
	// KeyVersion is the version of Key that made the wrap.
	KeyVersion uint32 `json:"keyVersion"`
	// WrappedKey is the wrapped data key.
	WrappedKey []byte `json:"wrappedKey"`
	// Sealed is the sealed value.
	Sealed    []byte    `json:"sealed"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// The stored forms: each record with its version.
type (
	settingsV1 struct {
		Version  int      `json:"version"`
		Settings Settings `json:"settings"`
	}
	repositoryV2 struct {
		Version   int      `json:"version"`
		Settings  Settings `json:"settings"`
		CacheRule string   `json:"cacheRule,omitempty"`
	}
	repositoryV3 struct {
		Version int `json:"version"`
		Repository
	}
	templateV1 struct {
		Version int `json:"version"`
		Template
	}
	cacheRuleV1 struct {
		Version int `json:"version"`
		cacheRuleFieldsV1
	}
	cacheRuleV2 struct {
		Version int `json:"version"`
		CacheRule
	}
	secretV1 struct {
		Version int `json:"version"`
		Secret
	}
)

// EncodeRepository returns the stored form of a repository's record
// (version 3).
func EncodeRepository(r Repository) ([]byte, error) {
	return json.Marshal(repositoryV3{Version: RepositoryVersion, Repository: r})
}

// DecodeRepository reads a repository's record of any version: versions
// 0 and 1 hold settings only (no repository of theirs was created by a
// pull-through cache as far as the record knows).
func DecodeRepository(b []byte) (Repository, error) {
	v, err := version(b)
	if err != nil {
		return Repository{}, err
	}
	switch v {
	case 0:
		var l legacySettings
		if err := json.Unmarshal(b, &l); err != nil {
			return Repository{}, fmt.Errorf("record: settings (version 0): %w", err)
		}
		return Repository{Settings: l.current()}, nil
	case 1:
		var r settingsV1
		if err := decodeStrict(b, &r); err != nil {
			return Repository{}, fmt.Errorf("record: settings: %w", err)
		}
		return Repository{Settings: r.Settings}, nil
	case 2:
		var r repositoryV2
		if err := decodeStrict(b, &r); err != nil {
			return Repository{}, fmt.Errorf("record: repository: %w", err)
		}
		return Repository{Settings: r.Settings, CacheRule: r.CacheRule}, nil
	case 3:
		var r repositoryV3
		if err := decodeStrict(b, &r); err != nil {
			return Repository{}, fmt.Errorf("record: repository: %w", err)
		}
		return r.Repository, nil
	}
	return Repository{}, fmt.Errorf("%w: repository record of version %d (this build knows up to %d)", ErrVersion, v, RepositoryVersion)
}

// EncodeTemplate returns the stored form of a creation template.
func EncodeTemplate(t Template) ([]byte, error) {
	return json.Marshal(templateV1{Version: TemplateVersion, Template: t})
}

// DecodeTemplate reads a creation template of any version.
func DecodeTemplate(b []byte) (Template, error) {
	v, err := version(b)
	if err != nil {
		return Template{}, err
	}
	switch v {
	case 0:
		var l legacyTemplate
		if err := json.Unmarshal(b, &l); err != nil {
			return Template{}, fmt.Errorf("record: template (version 0): %w", err)
		}
		return Template{
			Prefix: l.Prefix, Description: l.Description, AppliedFor: l.AppliedFor, CustomRoleARN: l.CustomRoleARN,
			CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt, Settings: l.legacySettings.current(),
		}, nil
	case 1:
		var r templateV1
		if err := decodeStrict(b, &r); err != nil {
			return Template{}, fmt.Errorf("record: template: %w", err)
		}
		return r.Template, nil
	}
	return Template{}, fmt.Errorf("%w: template of version %d (this build knows up to %d)", ErrVersion, v, TemplateVersion)
}

// EncodeCacheRule returns the stored form of a pull-through cache rule
// (version 2).
func EncodeCacheRule(r CacheRule) ([]byte, error) {
	return json.Marshal(cacheRuleV2{Version: CacheRuleVersion, CacheRule: r})
}

// DecodeCacheRule reads a pull-through cache rule of any version.
func DecodeCacheRule(b []byte) (CacheRule, error) {
	v, err := version(b)
	if err != nil {
		return CacheRule{}, err
	}
	switch v {
	case 0:
		var l legacyCacheRule
		if err := json.Unmarshal(b, &l); err != nil {
			return CacheRule{}, fmt.Errorf("record: pull-through cache rule (version 0): %w", err)
		}
		return CacheRule{Prefix: l.ECRRepositoryPrefix, UpstreamURL: l.UpstreamRegistryURL, UpstreamPrefix: l.UpstreamRepositoryPrefix,
			CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt}, nil
	case 1:
		var r cacheRuleV1
		if err := decodeStrict(b, &r); err != nil {
			return CacheRule{}, fmt.Errorf("record: pull-through cache rule: %w", err)
		}
		f := r.cacheRuleFieldsV1
		return CacheRule{Prefix: f.Prefix, UpstreamURL: f.UpstreamURL, UpstreamPrefix: f.UpstreamPrefix,
			CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt}, nil
	case 2:
		var r cacheRuleV2
		if err := decodeStrict(b, &r); err != nil {
			return CacheRule{}, fmt.Errorf("record: pull-through cache rule: %w", err)
		}
		return r.CacheRule, nil
	}
	return CacheRule{}, fmt.Errorf("%w: pull-through cache rule of version %d (this build knows up to %d)", ErrVersion, v, CacheRuleVersion)
}

// EncodeSecret returns the stored form of a sealed secret (version 1).
func EncodeSecret(s Secret) ([]byte, error) {
	return json.Marshal(secretV1{Version: SecretVersion, Secret: s})
}

// DecodeSecret reads a sealed secret of any version.
func DecodeSecret(b []byte) (Secret, error) {
	v, err := version(b)
	if err != nil {
		return Secret{}, err
	}
	if v != 1 {
		return Secret{}, fmt.Errorf("%w: secret of version %d (this build knows up to %d)", ErrVersion, v, SecretVersion)
	}
	var r secretV1
	if err := decodeStrict(b, &r); err != nil {
		return Secret{}, fmt.Errorf("record: secret: %w", err)
	}
	return r.Secret, nil
}

// version reads a record's version: 0 when it has no "version" field.
func version(b []byte) (int, error) {
	var p struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return 0, fmt.Errorf("record: %w", err)
	}
	if p.Version == nil {
		return 0, nil
	}
	if *p.Version < 1 {
		return 0, fmt.Errorf("%w: version %d", ErrVersion, *p.Version)
	}
	return *p.Version, nil
}

// decodeStrict decodes one JSON value into v, refusing fields v does not
// have and anything after the value.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the record")
	}
	return nil
}
