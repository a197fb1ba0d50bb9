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
	if old, err := e.db.Template(prefix); err == nil {
		var prev CreationTemplate
		if json.Unmarshal(old, &prev) == nil {
			t.CreatedAt = prev.CreatedAt
		}
	} else if !errors.Is(err, index.ErrNotFound) {
		return storageErr(err)
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

// DeleteCreationTemplate deletes the template with this prefix.
func (e *Engine) DeleteCreationTemplate(ctx context.Context, prefix string) error {
	prefix = normalizeTemplatePrefix(prefix)
	if _, err := e.db.Template(prefix); err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return fmt.Errorf("%w: no creation template with prefix %q", ErrInvalidArgument, prefix)
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
