package engine

// Key operations (issue #5): creating, rotating, disabling, enabling and
// destroying key-encryption keys; the background rewrap that follows a
// rotation; crypto-shredding on destroy. See docs/crypto.md.

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
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/index"
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

// KeyUnknown is the state reported for a key that repositories name but
// that no key provider holds.
const KeyUnknown crypt.KeyState = "unknown"

// KeyStatus describes one key-encryption key and its use in the store.
type KeyStatus struct {
	crypt.KeyInfo
	// Repositories is the number of repositories keyed by it.
	Repositories int `json:"repositories"`
	// Blobs is the number of blobs whose data key it wraps.
	Blobs int `json:"blobs"`
	// OnlyBlobs is the number of blobs that it alone wraps: what
	// destroying it would shred.
	OnlyBlobs int `json:"onlyBlobs"`
	// StaleWraps is the number of its wraps made under a version older
	// than the primary one (a rewrap after rotation is pending).
	StaleWraps int `json:"staleWraps"`
	// Rewrapping is true while a background rewrap of it runs.
	Rewrapping bool `json:"rewrapping"`
}

// RewrapStats reports one rewrap of a key.
type RewrapStats struct {
	// Key is the key rewrapped.
	Key string `json:"key"`
	// Version is the version wraps were moved to.
	Version uint32 `json:"version"`
	// Rewrapped is the number of blob records updated.
	Rewrapped int `json:"rewrapped"`
	// Failed is the number of wraps that did not open (corrupt or
	// under a lost version); they are left as they are and logged.
	Failed int `json:"failed"`
	// Elapsed is the time the rewrap took.
	Elapsed time.Duration `json:"elapsed"`
}

// keyOpsState is the engine's key-operations machinery.
type keyOpsState struct {
	// closeKeys closes the key provider the engine opened itself.
	closeKeys func() error

	mu      sync.Mutex
	running map[string]bool // keys with a rewrap worker
	again   map[string]bool // rotated again while their worker ran
	idle    *sync.Cond      // signalled when a worker ends
}

// openKeyProvider returns the provider of a store opened with o: o's own
// KeyProvider, or the keyring file <dir>/keyring.json, joined by a
// PKCS#11 provider for pkcs11: key names when o.PKCS11Module is set. The
// returned function closes what this call opened.
func openKeyProvider(dir string, o *Options) (crypt.KeyProvider, func() error, error) {
	if o.KeyProvider != nil {
		return o.KeyProvider, func() error { return nil }, nil
	}
	kr, err := crypt.OpenKeyring(filepath.Join(dir, "keyring.json"))
	if err != nil {
		return nil, nil, err
	}
	var hsm crypt.KeyProvider = crypt.NoProvider{Err: fmt.Errorf("%w: no PKCS#11 module configured (Options.PKCS11Module)", crypt.ErrUnsupported)}
	if o.PKCS11Module != "" {
		p, err := crypt.OpenPKCS11(crypt.PKCS11Config{Module: o.PKCS11Module, Token: o.PKCS11Token, PIN: o.PKCS11PIN})
		if err != nil {
			return nil, nil, err
		}
		hsm = p
	}
	m := crypt.NewMultiProvider(kr, crypt.Route{Prefix: crypt.PKCS11Scheme, Provider: hsm})
	return m, m.Close, nil
}

// startKeyOps prepares the key machinery and resumes the rewraps an
// earlier run left unfinished. Called by Open.
func (e *Engine) startKeyOps(closeKeys func() error) {
	e.kops.closeKeys = closeKeys
	e.kops.running = map[string]bool{}
	e.kops.again = map[string]bool{}
	e.kops.idle = sync.NewCond(&e.kops.mu)
	pending, err := e.loadRewrapState()
	if err != nil {
		e.log.Warn("reading pending rewraps", "err", err)
	}
	for _, name := range pending {
		e.log.Info("resuming key rewrap", "key", name)
		e.startRewrap(name)
	}
}

// closeKeyProvider closes the key provider if the engine opened it.
func (e *Engine) closeKeyProvider() error {
	if e.kops.closeKeys == nil {
		return nil
	}
	return e.kops.closeKeys()
}

// keyOpErr translates provider errors of key management calls.
func keyOpErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, crypt.ErrKeyNotFound):
		return fmt.Errorf("%w: %w", ErrKeyNotFound, err)
	case errors.Is(err, crypt.ErrKeyExists):
		return fmt.Errorf("%w: %w", ErrKeyExists, err)
	case errors.Is(err, crypt.ErrInvalidKey):
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	case errors.Is(err, crypt.ErrUnsupported):
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return keyErr(err)
}

func (e *Engine) keyManager() (crypt.KeyManager, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	km, ok := e.keys.(crypt.KeyManager)
	if !ok {
		return nil, fmt.Errorf("%w: the key provider does not manage keys", ErrUnsupported)
	}
	return km, nil
}

// CreateKey creates a key-encryption key: a keyring key, or with a
// pkcs11: URI name a key generated inside the HSM. Repositories name it
// in encryptionConfiguration.kmsKey.
func (e *Engine) CreateKey(ctx context.Context, name string) (crypt.KeyInfo, error) {
	km, err := e.keyManager()
	if err != nil {
		return crypt.KeyInfo{}, err
	}
	if err := km.CreateKey(ctx, name); err != nil {
		return crypt.KeyInfo{}, keyOpErr(err)
	}
	e.log.Info("key created", "key", name)
	info, err := crypt.LookupKey(ctx, e.keys, name)
	return info, keyOpErr(err)
}

// RotateKey makes a new version of key name primary and starts the
// background rewrap of every blob's wrap under an older version (no blob
// file is touched; see RewrapKey). It returns the new version.
func (e *Engine) RotateKey(ctx context.Context, name string) (uint32, error) {
	km, err := e.keyManager()
	if err != nil {
		return 0, err
	}
	v, err := km.RotateKey(ctx, name)
	if err != nil {
		return 0, keyOpErr(err)
	}
	e.log.Info("key rotated", "key", name, "version", v)
	if err := e.setRewrapPending(name, true); err != nil {
		e.log.Warn("recording pending rewrap", "key", name, "err", err)
	}
	e.startRewrap(name)
	return v, nil
}

// DisableKey disables key name: reads and pushes through it fail with
// ErrKeyUnavailable until EnableKey. Data keys it unwrapped are dropped
// from the cache at once.
func (e *Engine) DisableKey(ctx context.Context, name string) error {
	return e.setKeyState(ctx, name, crypt.KeyDisabled)
}

// EnableKey re-enables a disabled key.
func (e *Engine) EnableKey(ctx context.Context, name string) error {
	if err := e.setKeyState(ctx, name, crypt.KeyEnabled); err != nil {
		return err
	}
	if pending, _ := e.loadRewrapState(); slices.Contains(pending, name) {
		e.startRewrap(name)
	}
	return nil
}

// DestroyKey destroys key name (crypto-shredding): every version's
// material is erased, every blob wrapped by it alone becomes unreadable
// for good (reads fail with ErrKeyDestroyed) and is removed from the
// store before DestroyKey returns (what a failure leaves, gc removes:
// see SweepShredded); repositories
// keyed by it report KeyState destroyed. Blobs that other keys wrap too
// stay readable through those keys. The registry's default key cannot be
// destroyed.
func (e *Engine) DestroyKey(ctx context.Context, name string) error {
	if crypt.CanonicalKeyName(name) == crypt.DefaultKeyName {
		return fmt.Errorf("%w: the registry's default key %q cannot be destroyed", ErrInvalidArgument, name)
	}
	if err := e.setKeyState(ctx, name, crypt.KeyDestroyed); err != nil {
		return err
	}
	if err := e.setRewrapPending(name, false); err != nil {
		e.log.Warn("clearing pending rewrap", "key", name, "err", err)
	}
	// Remove what is now unreadable; what a failure here leaves, gc
	// removes later. The key is destroyed either way.
	n, err := e.SweepShredded(ctx)
	if err != nil {
		e.log.Warn("removing shredded blobs; gc will retry", "key", name, "removed", n, "err", err)
		return nil
	}
	e.log.Info("shredded blobs removed", "key", name, "blobs", n)
	return nil
}

func (e *Engine) setKeyState(ctx context.Context, name string, state crypt.KeyState) error {
	km, err := e.keyManager()
	if err != nil {
		return err
	}
	if err := km.SetKeyState(ctx, name, state); err != nil {
		return keyOpErr(err)
	}
	if state != crypt.KeyEnabled {
		n := e.dkeys.dropKey(name)
		e.log.Info("key "+string(state), "key", name, "cachedDataKeysDropped", n)
	} else {
		e.log.Info("key enabled", "key", name)
	}
	return nil
}

// keyState is the state of key name as a repository reports it.
func (e *Engine) keyState(ctx context.Context, name string) crypt.KeyState {
	info, err := crypt.LookupKey(ctx, e.keys, name)
	switch {
	case err == nil:
		return info.State
	case errors.Is(err, crypt.ErrKeyNotFound):
		return KeyUnknown
	}
	return crypt.KeyUnavailable
}

// Keys lists the key-encryption keys with their use: repositories keyed
// by each, blobs it wraps (alone or with others), wraps awaiting rewrap.
// Keys that repositories name but no provider holds are listed with
// state unknown (or unavailable when a provider failed). If a provider
// cannot be reached, the other providers' keys are still returned, with
// an error wrapping ErrKeyUnavailable.
func (e *Engine) Keys(ctx context.Context) ([]KeyStatus, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	infos, perr := e.keys.Keys(ctx)
	byName := map[string]*KeyStatus{}
	var order []string
	add := func(info crypt.KeyInfo) *KeyStatus {
		c := crypt.CanonicalKeyName(info.Name)
		if st := byName[c]; st != nil {
			return st
		}
		byName[c] = &KeyStatus{KeyInfo: info}
		order = append(order, c)
		return byName[c]
	}
	for _, info := range infos {
		add(info)
	}
	missing := KeyUnknown
	if perr != nil {
		missing = crypt.KeyUnavailable
	}
	names, err := e.db.ListRepositories("", 0)
	if err != nil {
		return nil, storageErr(err)
	}
	for _, n := range names {
		r, err := e.loadRepo(n)
		if errors.Is(err, ErrNameUnknown) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		add(crypt.KeyInfo{Name: r.kek, State: missing}).Repositories++
	}
	err = e.db.WalkBlobs(func(rec *index.Blob) error {
		distinct := 0
		for i, w := range rec.Wraps {
			st := add(crypt.KeyInfo{Name: w.KeyID, State: missing})
			seen := false
			for _, o := range rec.Wraps[:i] {
				seen = seen || crypt.CanonicalKeyName(o.KeyID) == crypt.CanonicalKeyName(w.KeyID)
			}
			if seen {
				continue
			}
			distinct++
			st.Blobs++
			if w.Version < st.PrimaryVersion {
				st.StaleWraps++
			}
		}
		if distinct == 1 {
			byName[crypt.CanonicalKeyName(rec.Wraps[0].KeyID)].OnlyBlobs++
		}
		return nil
	})
	if err != nil {
		return nil, storageErr(err)
	}
	e.kops.mu.Lock()
	out := make([]KeyStatus, 0, len(order))
	for _, c := range order {
		st := byName[c]
		st.Rewrapping = e.kops.running[c] || e.kops.running[st.Name]
		out = append(out, *st)
	}
	e.kops.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if perr != nil {
		return out, keyErr(perr)
	}
	return out, nil
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
	start := time.Now()
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
	unlock := e.digestLocks.lockMany(keys)
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
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
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

// goBackground runs fn in a goroutine that Close waits for, with a
// context cancelled when the engine closes. It reports false (and runs
// nothing) if the engine is closed.
func (e *Engine) goBackground(fn func(ctx context.Context)) bool {
	e.upMu.Lock()
	if e.closed {
		e.upMu.Unlock()
		return false
	}
	e.wg.Add(1)
	e.upMu.Unlock()
	go func() {
		defer e.wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-e.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		fn(ctx)
	}()
	return true
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
	return os.Rename(tmp, path)
}

// destroyedKeys returns the canonical names of the destroyed keys. It
// fails, rather than guess, if a provider cannot be reached.
func (e *Engine) destroyedKeys(ctx context.Context) (map[string]bool, error) {
	infos, err := e.keys.Keys(ctx)
	if err != nil {
		return nil, keyErr(err)
	}
	out := map[string]bool{}
	for _, k := range infos {
		if k.State == crypt.KeyDestroyed {
			out[crypt.CanonicalKeyName(k.Name)] = true
		}
	}
	return out, nil
}

func shredded(rec *index.Blob, destroyed map[string]bool) bool {
	if len(rec.Wraps) == 0 {
		return false
	}
	for _, w := range rec.Wraps {
		if !destroyed[crypt.CanonicalKeyName(w.KeyID)] {
			return false
		}
	}
	return true
}

// ShreddedBlobs calls fn with the digest of every blob that only
// destroyed keys wrap: its bytes can never be read again. gc removes
// them (SweepShredded, or RemoveShreddedBlob for each) whatever still
// references them. A key whose state cannot be learned (its provider is
// unreachable) is never taken for destroyed: then ShreddedBlobs fails.
func (e *Engine) ShreddedBlobs(ctx context.Context, fn func(digest.Digest) error) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	destroyed, err := e.destroyedKeys(ctx)
	if err != nil || len(destroyed) == 0 {
		return err
	}
	var ds []digest.Digest
	err = e.db.WalkBlobs(func(rec *index.Blob) error {
		if shredded(rec, destroyed) {
			ds = append(ds, rec.Digest)
		}
		return ctx.Err()
	})
	if err != nil {
		return storageErr(err)
	}
	for _, d := range ds {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

// RemoveShreddedBlob removes blob d, record and file, if only destroyed
// keys wrap it, checking again under the digest's lock (a push may have
// replaced it meanwhile). It reports whether it removed it. Links and
// manifests that name d are left to gc: reads through them fail with
// ErrBlobUnknown.
func (e *Engine) RemoveShreddedBlob(ctx context.Context, d digest.Digest) (bool, error) {
	if err := e.checkOpen(); err != nil {
		return false, err
	}
	destroyed, err := e.destroyedKeys(ctx)
	if err != nil {
		return false, err
	}
	unlock := e.digestLocks.lock(digestKey(d))
	defer unlock()
	rec, err := e.db.Blob(d)
	if errors.Is(err, index.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, storageErr(err)
	}
	if !shredded(rec, destroyed) {
		return false, nil
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteBlob(d); err != nil {
		return false, storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		return false, storageErr(err)
	}
	if err := e.blobs.Delete(ctx, d); err != nil {
		e.log.Warn("removing shredded blob file", "blob", d, "err", err)
	}
	e.log.Info("shredded blob removed", "blob", d)
	return true, nil
}

// SweepShredded removes every shredded blob (see ShreddedBlobs) and
// returns how many it removed. DestroyKey runs it; gc should run it at
// each collection.
func (e *Engine) SweepShredded(ctx context.Context) (int, error) {
	var ds []digest.Digest
	if err := e.ShreddedBlobs(ctx, func(d digest.Digest) error { ds = append(ds, d); return nil }); err != nil {
		return 0, err
	}
	n := 0
	for _, d := range ds {
		ok, err := e.RemoveShreddedBlob(ctx, d)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// dropKey removes from the cache every data key unwrapped through key
// name and returns how many.
func (c *keyCache) dropKey(name string) int {
	canon := crypt.CanonicalKeyName(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, el := range c.items {
		parts := strings.Split(k, "\x00")
		if len(parts) == 3 && crypt.CanonicalKeyName(parts[1]) == canon {
			c.removeLocked(el)
			n++
		}
	}
	return n
}
