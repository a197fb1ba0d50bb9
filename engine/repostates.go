package engine

// The decoded repository records, cached per repository: a blob GET, a
// tag listing or a push reads its repository's settings (its key above
// all) without decoding the stored record again.

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/berthstore/berth/index"
)

// repoStates caches each repository's decoded record (*repoState) by
// name.
//
// An entry carries the generation it was read under; only an entry of
// the current generation is served. Every change of a repository record
// (its settings, its deletion) bumps the generation after its batch is
// committed and before the call that made it returns (repoChanged), so a
// read that starts after that call returns never sees an older record: an
// entry read before the commit carries an older generation, also when it
// is stored after the bump. A miss reads the record without a lock (the
// callers of loadRepo may hold the repository's). Names that do not exist
// are not cached (they are unbounded), so creating a repository needs no
// bump; deleting one does. Settings change seldom, so one generation for
// the whole store costs a decode per repository and change, no more.
type repoStates struct {
	gen atomic.Uint64
	m   sync.Map // name -> *cachedRepo
	// loaded, when set (by tests, before the engine is used), runs after
	// a miss has read a record and before it is cached: where a change
	// that commits meanwhile must not leave the older record served.
	loaded func(name string)
}

// cachedRepo is one cached record: read only, shared by every reader.
type cachedRepo struct {
	gen   uint64
	state *repoState
}

// cachedRepoState returns repository name's decoded record from the
// cache, reading it on a miss. The result is shared: read it, never
// change it (loadRepo returns a copy to change).
func (e *Engine) cachedRepoState(name string) (*repoState, error) {
	gen := e.repoStates.gen.Load()
	if v, ok := e.repoStates.m.Load(name); ok {
		if c := v.(*cachedRepo); c.gen == gen {
			return c.state, nil
		}
	}
	r, err := e.readRepo(name)
	if err != nil {
		return nil, err
	}
	if e.repoStates.loaded != nil {
		e.repoStates.loaded(name)
	}
	if e.cacheable() {
		e.repoStates.m.Store(name, &cachedRepo{gen: gen, state: r})
	}
	return r, nil
}

// commitRepoChange commits b, which changes or deletes repository name's
// record, with Sync, and drops the cached record (repoChanged). Call it
// under the repository's lock.
func (e *Engine) commitRepoChange(b *index.Batch, name string) error {
	defer e.repoChanged(name)
	return b.Commit(true)
}

// repoChanged records that repository name's record was changed or
// deleted: called once the batch that did it is committed (or failed to
// commit), under the repository's lock, before the change returns.
func (e *Engine) repoChanged(name string) {
	e.repoStates.gen.Add(1)
	e.repoStates.m.Delete(name)
}

// loadRepo returns repository name's settings, decoded, as a copy the
// caller may change (ErrNameUnknown when it does not exist).
func (e *Engine) loadRepo(name string) (*repoState, error) {
	c, err := e.cachedRepoState(name)
	if err != nil {
		return nil, err
	}
	r := *c
	r.TagMutabilityExclusions = slices.Clone(c.TagMutabilityExclusions)
	r.ResourceTags = slices.Clone(c.ResourceTags)
	return &r, nil
}

// readRepo reads and decodes repository name's record from the index.
func (e *Engine) readRepo(name string) (*repoState, error) {
	rec, err := e.db.Repository(name)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNameUnknown, name)
		}
		return nil, storageErr(err)
	}
	r := &repoState{Repository: Repository{Name: rec.Name, CreatedAt: rec.CreatedAt}}
	if len(rec.Settings) > 0 {
		if err := decodeRepository(rec.Settings, &r.Repository); err != nil {
			return nil, fmt.Errorf("%w: repository %s settings: %v", ErrCorrupt, name, err)
		}
	}
	r.kek = kekName(&r.RepositorySettings)
	return r, nil
}
