package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berthstore/berth/index"
)

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
	prefix := normalizeTemplatePrefix(t.Prefix)
	unlock := e.repoLocks.lock("template\x00" + prefix)
	defer unlock()
	now := time.Now().UTC()
	t.Prefix, t.UpdatedAt = prefix, now
	old, err := e.db.Template(prefix)
	switch {
	case err == nil && mode == putCreate:
		return fmt.Errorf("%w: prefix %q", ErrTemplateExists, prefix)
	case err == nil:
		var prev CreationTemplate
		if json.Unmarshal(old, &prev) == nil {
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
	v, err := json.Marshal(&t)
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
	prefix = normalizeTemplatePrefix(prefix)
	if _, err := e.db.Template(prefix); err != nil {
		if errors.Is(err, index.ErrNotFound) {
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
		var t CreationTemplate
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("%w: template %q: %v", ErrCorrupt, prefix, err)
		}
		out = append(out, t)
		return nil
	})
	return out, storageErr(err)
}
