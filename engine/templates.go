package engine

// Repository creation templates: the settings repositories created on
// push or by a pull-through cache get, by the longest prefix of their name
// (the prefix rules are in engine/internal/templates).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/berthstore/berth/engine/internal/errdefs"
	"github.com/berthstore/berth/engine/internal/templates"
	"github.com/berthstore/berth/index"
)

// Scenarios a creation template applies to (its AppliedFor).
const (
	AppliedForCreateOnPush     = "CREATE_ON_PUSH"
	AppliedForPullThroughCache = "PULL_THROUGH_CACHE"
	AppliedForReplication      = "REPLICATION"
)

// RootPrefix is the template prefix that matches every repository no
// other template matches.
const RootPrefix = "ROOT"

// CreationTemplate is an ECR repository creation template: settings for
// repositories created under Prefix (whole path components, or ROOT).
type CreationTemplate struct {
	Prefix      string   `json:"prefix"`
	Description string   `json:"description,omitempty"`
	AppliedFor  []string `json:"appliedFor"`
	// CustomRoleARN is ECR's role to assume when it creates repositories
	// from the template. Berth has no roles and refuses it when set
	// (ErrInvalidArgument); templates stored before keep it.
	CustomRoleARN string    `json:"customRoleArn,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	RepositorySettings
}

const maxTemplateDescriptionLen = 256

// matchTemplate returns the template that applies to a repository named
// repo created for the scenario appliedFor (an AppliedFor* constant): among
// the templates whose AppliedFor lists appliedFor, the one with the
// longest prefix that repo is under, else the ROOT template. It returns a
// copy, and false when no template applies.
func matchTemplate(ts []CreationTemplate, repo, appliedFor string) (*CreationTemplate, bool) {
	var idx []int
	var prefixes []string
	for i := range ts {
		if slices.Contains(ts[i].AppliedFor, appliedFor) {
			idx = append(idx, i)
			prefixes = append(prefixes, templates.NormalizePrefix(ts[i].Prefix))
		}
	}
	best := templates.Longest(prefixes, repo)
	if best < 0 {
		return nil, false
	}
	t := ts[idx[best]]
	return &t, true
}

// validateTemplate checks a creation template: a prefix that is ROOT or a
// valid repository name (optionally ending in "/"), a description of at
// most 256 characters, one or more known and distinct AppliedFor values,
// and valid settings. Errors wrap ErrInvalidArgument.
func validateTemplate(t CreationTemplate) error {
	if err := templates.CheckPrefix(t.Prefix); err != nil {
		return err
	}
	if len(t.Description) > maxTemplateDescriptionLen {
		return fmt.Errorf("%w: description is %d characters, at most %d", ErrInvalidArgument, len(t.Description), maxTemplateDescriptionLen)
	}
	if len(t.AppliedFor) == 0 {
		return fmt.Errorf("%w: appliedFor needs at least one of CREATE_ON_PUSH, PULL_THROUGH_CACHE, REPLICATION", ErrInvalidArgument)
	}
	seen := make(map[string]bool, len(t.AppliedFor))
	for i, a := range t.AppliedFor {
		switch a {
		case AppliedForCreateOnPush, AppliedForPullThroughCache, AppliedForReplication:
		default:
			return fmt.Errorf("%w: appliedFor[%d] %q (want CREATE_ON_PUSH, PULL_THROUGH_CACHE or REPLICATION)", ErrInvalidArgument, i, errdefs.Truncate(a))
		}
		if seen[a] {
			return fmt.Errorf("%w: appliedFor[%d] %q given twice", ErrInvalidArgument, i, a)
		}
		seen[a] = true
	}
	if t.CustomRoleARN != "" {
		// ECR assumes this role to create repositories; Berth has no
		// roles: the caller's own permissions decide each creation.
		return fmt.Errorf("%w: customRoleArn: Berth has no IAM roles to assume; a repository created from a template is authorized as the caller who causes it (leave customRoleArn out)", ErrInvalidArgument)
	}
	if err := validateSettings(t.RepositorySettings); err != nil {
		return fmt.Errorf("template %q: %w", errdefs.Truncate(t.Prefix), err)
	}
	return nil
}

// PutCreationTemplate creates or replaces a repository creation template.
// It never changes repositories that exist already.
func (e *Engine) PutCreationTemplate(ctx context.Context, t CreationTemplate) error {
	return e.putCreationTemplate(ctx, t, putAny)
}

// CreateCreationTemplate creates a repository creation template, or fails
// with ErrTemplateExists when one has its prefix (ECR's
// CreateRepositoryCreationTemplate).
func (e *Engine) CreateCreationTemplate(ctx context.Context, t CreationTemplate) error {
	return e.putCreationTemplate(ctx, t, putCreate)
}

// UpdateCreationTemplate replaces the repository creation template with
// t's prefix, or fails with ErrTemplateNotFound (ECR's
// UpdateRepositoryCreationTemplate). Settings t leaves empty are not kept
// from the old template: t is the whole new template.
func (e *Engine) UpdateCreationTemplate(ctx context.Context, t CreationTemplate) error {
	return e.putCreationTemplate(ctx, t, putUpdate)
}

// putMode says whether a put may create, replace, or both.
type putMode int

const (
	putAny putMode = iota
	putCreate
	putUpdate
)

func (e *Engine) putCreationTemplate(ctx context.Context, t CreationTemplate, mode putMode) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	if t.TagMutability == "" {
		t.TagMutability = TagMutable
	}
	if t.Encryption.EncryptionType == "" {
		t.Encryption.EncryptionType = EncryptionAES256
	}
	if err := validateTemplate(t); err != nil {
		return err
	}
	if err := e.checkKEK(ctx, kekName(&t.RepositorySettings)); err != nil {
		return err
	}
	prefix := templates.NormalizePrefix(t.Prefix)
	unlock := e.repoLocks.Lock("template\x00" + prefix)
	defer unlock()
	now := e.now()
	t.Prefix, t.UpdatedAt = prefix, now
	old, err := e.db.Template(prefix)
	switch {
	case err == nil && mode == putCreate:
		return fmt.Errorf("%w: prefix %q", ErrTemplateExists, prefix)
	case err == nil:
		if prev, err := decodeTemplate(old); err == nil {
			t.CreatedAt = prev.CreatedAt
		}
	case !errors.Is(err, index.ErrNotFound):
		return storageErr(err)
	case mode == putUpdate:
		return fmt.Errorf("%w: prefix %q", ErrTemplateNotFound, prefix)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	v, err := encodeTemplate(t)
	if err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutTemplate(prefix, v); err != nil {
		return storageErr(err)
	}
	return storageErr(b.Commit(true))
}

// DeleteCreationTemplate deletes the template with this prefix, or fails
// with ErrTemplateNotFound.
func (e *Engine) DeleteCreationTemplate(ctx context.Context, prefix string) error {
	prefix = templates.NormalizePrefix(prefix)
	if _, err := e.db.Template(prefix); err != nil {
		if errors.Is(err, index.ErrNotFound) || errors.Is(err, index.ErrInvalidKey) {
			// A prefix no key can hold (empty, a NUL) names no template.
			return fmt.Errorf("%w: prefix %q", ErrTemplateNotFound, prefix)
		}
		return storageErr(err)
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteTemplate(prefix); err != nil {
		return storageErr(err)
	}
	return storageErr(b.Commit(true))
}

// CreationTemplates lists the templates, in prefix order.
func (e *Engine) CreationTemplates(ctx context.Context) ([]CreationTemplate, error) {
	var out []CreationTemplate
	err := e.db.ListTemplates(func(prefix string, v []byte) error {
		t, err := decodeTemplate(v)
		if err != nil {
			return fmt.Errorf("%w: template %q: %v", ErrCorrupt, prefix, err)
		}
		out = append(out, t)
		return nil
	})
	return out, storageErr(err)
}
