package engine

// Rewrapping after a key rotation: every wrap under an older version of
// a key moved to its primary version, in the background, resumable after
// a restart. No blob file is touched.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/index"
	"github.com/berthstore/berth/internal/vfsutil"
)

const (
	// rewrapBatch is how many blob records one synced index batch of a
	// rewrap updates.
	rewrapBatch = 512
	// rewrapRound bounds the digests one scan of the blob records
	// collects; a rewrap of more stale wraps scans again.
	rewrapRound = 1 << 16
	// rewrapLogEvery is the least time between two progress lines.
	rewrapLogEvery = 2 * time.Second
	// rewrapStateFile lists, in the store directory, the keys whose
	// rewrap has not finished, so that it resumes after a restart.
	rewrapStateFile = "rewrap.json"
	// maxRewrapBackoff bounds the wait between two attempts of a rewrap
	// that found its key provider unreachable.
	maxRewrapBackoff = time.Minute
)

// RewrapStats reports one rewrap of a key.
type RewrapStats struct {
	// Key is the key rewrapped.
	Key string `json:"key"`
	// Version is the version wraps were moved to.
	Version uint32 `json:"version"`
	// Rewrapped is the number of blob records (and stored secrets)
	// updated.
	Rewrapped int `json:"rewrapped"`
	// Failed is the number of wraps that did not open (corrupt or
	// under a lost version); they are left as they are and logged.
	Failed int `json:"failed"`
	// Elapsed is the time the rewrap took.
	Elapsed time.Duration `json:"elapsed"`
}

// RewrapKey moves every blob's wrap under an older version of key name
// to its primary version, now, and returns when done. It never reads or
// writes a blob file: each data key is unwrapped and wrapped again by
// the key provider and the blob records are updated in synced batches
// of rewrapBatch, so the cost is proportional to the number of blobs,
// not their bytes. It is resumable: wraps already moved are skipped, so
// an interrupted rewrap goes on where it stopped. RotateKey runs it in
// the background; progress goes to the log.
func (e *Engine) RewrapKey(ctx context.Context, name string) (RewrapStats, error) {
	start := time.Now() // work measured on the system's clock (see Clock)
	st := RewrapStats{Key: name}
	if err := e.checkOpen(); err != nil {
		return st, err
	}
	info, err := crypt.LookupKey(ctx, e.keys, name)
	if err != nil {
		return st, keyOpErr(err)
	}
	switch info.State {
	case crypt.KeyDestroyed:
		return st, fmt.Errorf("%w: %q", ErrKeyDestroyed, name)
	case crypt.KeyDisabled:
		return st, fmt.Errorf("%w: key %q is disabled", ErrKeyUnavailable, name)
	}
	st.Version = info.PrimaryVersion
	canon := crypt.CanonicalKeyName(name)
	skip := map[digest.Digest]bool{}
	lastLog := time.Now()
	for {
		var cands []digest.Digest
		err := e.db.WalkBlobs(func(rec *index.Blob) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if _, ok := staleWrap(rec, canon, st.Version); ok && !skip[rec.Digest] {
				cands = append(cands, rec.Digest)
				if len(cands) >= rewrapRound {
					return io.EOF
				}
			}
			return nil
		})
		if err != nil {
			return st, storageErr(err)
		}
		for i := 0; i < len(cands); i += rewrapBatch {
			n, failed, err := e.rewrapBatch(ctx, canon, st.Version, cands[i:min(i+rewrapBatch, len(cands))])
			st.Rewrapped += n
			st.Failed += len(failed)
			for _, d := range failed {
				skip[d] = true
			}
			if err != nil {
				st.Elapsed = time.Since(start)
				return st, err
			}
			if time.Since(lastLog) >= rewrapLogEvery {
				lastLog = time.Now()
				e.log.Info("key rewrap progress", "key", name, "version", st.Version, "rewrapped", st.Rewrapped, "failed", st.Failed, "elapsed", time.Since(start).Round(time.Millisecond))
			}
		}
		if len(cands) < rewrapRound {
			break
		}
	}
	moved, failed, err := e.rewrapSecrets(ctx, canon, st.Version)
	st.Rewrapped += moved
	st.Failed += failed
	if err != nil {
		st.Elapsed = time.Since(start)
		return st, err
	}
	st.Elapsed = time.Since(start)
	e.log.Info("key rewrap done", "key", name, "version", st.Version, "rewrapped", st.Rewrapped, "failed", st.Failed, "elapsed", st.Elapsed.Round(time.Millisecond))
	return st, nil
}

// staleWrap returns the index in rec.Wraps of a wrap under key canon
// older than version v.
func staleWrap(rec *index.Blob, canon string, v uint32) (int, bool) {
	for i, w := range rec.Wraps {
		if w.Version < v && crypt.CanonicalKeyName(w.KeyID) == canon {
			return i, true
		}
	}
	return 0, false
}

// rewrapBatch rewraps the stale wraps of ds. The provider calls run
// without locks; then, under the digests' locks, each record is read
// again and updated only if its stale wrap is still the one that was
// rewrapped (a concurrent push may have added a wrap, gc may have
// removed the blob), and one synced batch commits them all. It returns
// how many records changed and the digests whose wrap did not open.
func (e *Engine) rewrapBatch(ctx context.Context, canon string, v uint32, ds []digest.Digest) (int, []digest.Digest, error) {
	var ups []rewrapUpdate
	var failed []digest.Digest
	for _, d := range ds {
		rec, err := e.db.Blob(d)
		if errors.Is(err, index.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, failed, storageErr(err)
		}
		i, ok := staleWrap(rec, canon, v)
		if !ok {
			continue
		}
		old := rec.Wraps[i]
		dk, err := e.keys.Unwrap(ctx, fromIndexWrap(old), blobWrapAD(d))
		if err == nil {
			var nw crypt.WrappedKey
			nw, err = e.keys.Wrap(ctx, old.KeyID, dk, blobWrapAD(d))
			clear(dk)
			if err == nil {
				if nw.Version > old.Version {
					ups = append(ups, rewrapUpdate{d: d, old: old, new: toIndexWrap(nw)})
				}
				continue
			}
		}
		if errors.Is(err, crypt.ErrUnavailable) || errors.Is(err, crypt.ErrKeyDisabled) || ctx.Err() != nil {
			// Retry later; what was rewrapped so far is kept below.
			if len(ups) == 0 {
				return 0, failed, keyErr(err)
			}
			n, cerr := e.commitRewraps(ups)
			return n, failed, errors.Join(keyErr(err), cerr)
		}
		e.log.Warn("key rewrap: wrap does not open; left as it is", "blob", d, "key", old.KeyID, "version", old.Version, "err", err)
		failed = append(failed, d)
	}
	n, err := e.commitRewraps(ups)
	return n, failed, err
}

// rewrapUpdate replaces the wrap old of blob d by new.
type rewrapUpdate struct {
	d        digest.Digest
	old, new index.KeyWrap
}

func (e *Engine) commitRewraps(ups []rewrapUpdate) (int, error) {
	if len(ups) == 0 {
		return 0, nil
	}
	keys := make([]string, len(ups))
	for i, u := range ups {
		keys[i] = digestKey(u.d)
	}
	unlock := e.digestLocks.LockMany(keys)
	defer unlock()
	b := e.db.NewBatch()
	defer b.Close()
	n := 0
	for _, u := range ups {
		rec, err := e.db.Blob(u.d)
		if errors.Is(err, index.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, storageErr(err)
		}
		for i, w := range rec.Wraps {
			if w.KeyID == u.old.KeyID && w.Version == u.old.Version && bytes.Equal(w.Wrapped, u.old.Wrapped) {
				rec.Wraps[i] = u.new
				if err := b.PutBlob(rec); err != nil {
					return 0, storageErr(err)
				}
				n++
				break
			}
		}
	}
	if err := b.Commit(true); err != nil {
		return 0, storageErr(err)
	}
	return n, nil
}

// startRewrap runs RewrapKey(name) in the background until it succeeds,
// retrying with backoff while the key provider is unreachable or the key
// disabled, and stopping when the engine closes.
func (e *Engine) startRewrap(name string) {
	e.kops.mu.Lock()
	if e.kops.running[name] {
		e.kops.again[name] = true
		e.kops.mu.Unlock()
		return
	}
	e.kops.running[name] = true
	e.kops.mu.Unlock()
	started := e.goBackground(func(ctx context.Context) {
		defer func() {
			e.kops.mu.Lock()
			delete(e.kops.running, name)
			delete(e.kops.again, name)
			e.kops.idle.Broadcast()
			e.kops.mu.Unlock()
		}()
		backoff := time.Second
		for {
			_, err := e.RewrapKey(ctx, name)
			if err == nil {
				e.kops.mu.Lock()
				again := e.kops.again[name]
				delete(e.kops.again, name)
				e.kops.mu.Unlock()
				if again {
					continue
				}
				if err := e.setRewrapPending(name, false); err != nil {
					e.log.Warn("clearing pending rewrap", "key", name, "err", err)
				}
				return
			}
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, ErrKeyUnavailable) && !errors.Is(err, ErrStorageFull) {
				e.log.Error("key rewrap abandoned", "key", name, "err", err)
				if errors.Is(err, ErrKeyDestroyed) || errors.Is(err, ErrKeyNotFound) {
					e.setRewrapPending(name, false)
				}
				return
			}
			e.log.Warn("key rewrap paused; retrying", "key", name, "in", backoff, "err", err)
			if !e.sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, maxRewrapBackoff)
		}
	})
	if !started {
		e.kops.mu.Lock()
		delete(e.kops.running, name)
		e.kops.mu.Unlock()
	}
}

// WaitRewraps waits until no background rewrap runs.
func (e *Engine) WaitRewraps(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		e.kops.mu.Lock()
		e.kops.idle.Broadcast()
		e.kops.mu.Unlock()
	})
	defer stop()
	e.kops.mu.Lock()
	defer e.kops.mu.Unlock()
	for len(e.kops.running) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		e.kops.idle.Wait()
	}
	return nil
}

// rewrapState is the content of rewrapStateFile.
type rewrapState struct {
	Pending []string `json:"pending"`
}

func (e *Engine) loadRewrapState() ([]string, error) {
	b, err := os.ReadFile(filepath.Join(e.dir, rewrapStateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s rewrapState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", rewrapStateFile, err)
	}
	return s.Pending, nil
}

var rewrapStateMu sync.Mutex

// setRewrapPending adds key name to the pending rewraps, or removes it,
// and writes the list atomically.
func (e *Engine) setRewrapPending(name string, pending bool) error {
	rewrapStateMu.Lock()
	defer rewrapStateMu.Unlock()
	cur, err := e.loadRewrapState()
	if err != nil {
		cur = nil
	}
	var next []string
	for _, n := range cur {
		if n != name {
			next = append(next, n)
		}
	}
	if pending {
		next = append(next, name)
	}
	path := filepath.Join(e.dir, rewrapStateFile)
	if len(next) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(rewrapState{Pending: next})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// The rename is durable once the directory is synced.
	return vfsutil.SyncDir(vfs.Default, filepath.Dir(path))
}
