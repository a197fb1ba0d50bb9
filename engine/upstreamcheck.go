package engine

// When each tag of a pull-through cache repository was last checked
// against its upstream, kept in the index (key U, docs/keys.md) so that a
// restart does not check every cached tag again.

import (
	"context"
	"errors"
	"time"

	"github.com/berthstore/berth/index"
)

// MarkUpstreamChecked records that tag of repo was checked against its
// upstream now (the engine's clock). The record is committed without
// sync: it is a hint (a crash that loses it costs one more check), and
// it survives a restart of the process. It goes with the repository.
func (e *Engine) MarkUpstreamChecked(ctx context.Context, repo, tag string) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	if err := ValidateRepositoryName(repo); err != nil {
		return err
	}
	if err := ValidateTag(tag); err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutUpstreamCheck(repo, tag, e.now()); err != nil {
		return storageErr(err)
	}
	return storageErr(b.Commit(false))
}

// UpstreamCheckedAt returns when tag of repo was last checked against its
// upstream; ok is false when it never was (or the record went with its
// repository).
func (e *Engine) UpstreamCheckedAt(ctx context.Context, repo, tag string) (at time.Time, ok bool, err error) {
	if err := e.checkOpen(); err != nil {
		return time.Time{}, false, err
	}
	at, err = e.db.UpstreamCheck(repo, tag)
	if errors.Is(err, index.ErrNotFound) || errors.Is(err, index.ErrInvalidKey) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, storageErr(err)
	}
	return at, true, nil
}

// Now is the time on the engine's clock (Options.Clock): what a caller
// that compares with the engine's timestamps (UpstreamCheckedAt) measures
// against.
func (e *Engine) Now() time.Time { return e.now() }
