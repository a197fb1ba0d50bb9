package engine

// Pull times: when each manifest was last pulled, recorded in memory and
// written to the index in batches (sinceImagePulled lifecycle rules and
// ECR's lastRecordedPullTime read them).

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// pullFlushInterval is how often recorded pull times reach the index.
const pullFlushInterval = 5 * time.Second

type pullKey struct {
	repo string
	d    digest.Digest
}

// notePull records that manifest d of repo was pulled now; the time
// reaches the index at the next flush (every few seconds, unsynced: a
// crash may lose the last seconds of pull times, which only makes
// sinceImagePulled rules see an older pull).
func (e *Engine) notePull(repo string, d digest.Digest) {
	now := e.now()
	e.gcs.pullMu.Lock()
	if e.gcs.pulls == nil {
		e.gcs.pulls = map[pullKey]time.Time{}
	}
	e.gcs.pulls[pullKey{repo, d}] = now
	e.gcs.pullMu.Unlock()
}

// flushPulls writes the recorded pull times into the manifest records;
// it returns once every pull noted before it is written.
func (e *Engine) flushPulls() {
	e.gcs.flushMu.Lock()
	defer e.gcs.flushMu.Unlock()
	e.gcs.pullMu.Lock()
	pulls := e.gcs.pulls
	e.gcs.pulls = nil
	e.gcs.pullMu.Unlock()
	for k, t := range pulls {
		if err := e.writePull(k, t); err != nil {
			e.log.Debug("recording pull time", "repository", k.repo, "digest", k.d, "err", err)
		}
	}
}

func (e *Engine) writePull(k pullKey, t time.Time) error {
	unlock := e.repoLocks.Lock(k.repo)
	defer unlock()
	m, err := e.db.Manifest(k.repo, k.d)
	if err != nil {
		return err // deleted meanwhile: nothing to record
	}
	if !m.LastPulledAt.Before(t) {
		return nil
	}
	m.LastPulledAt = t
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutManifest(m); err != nil {
		return err
	}
	return b.Commit(false)
}
