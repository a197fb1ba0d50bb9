package engine

// Key-encryption keys: the provider that holds them, and the operations
// on them (create, rotate, disable, enable, destroy, list). See
// docs/crypto.md.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/index"
)

// KeyProvider holds key-encryption keys and wraps and unwraps data keys
// with them: the seam through which an embedder plugs in an HSM or a KMS
// (Options.KeyProvider). It is package crypt's interface; a provider that
// also implements crypt.KeyManager lets the engine create, rotate,
// disable, enable and destroy keys.
type KeyProvider = crypt.KeyProvider

// KeyState is the state of a key-encryption key.
type KeyState string

// Key states.
const (
	// KeyEnabled: the key wraps and unwraps.
	KeyEnabled KeyState = "enabled"
	// KeyDisabled: reads and pushes through the key fail with
	// ErrKeyUnavailable until it is enabled again.
	KeyDisabled KeyState = "disabled"
	// KeyDestroyed: the key's material is gone (crypto-shredding).
	KeyDestroyed KeyState = "destroyed"
	// KeyUnavailable is reported, never stored: the provider holding the
	// key cannot be reached.
	KeyUnavailable KeyState = "unavailable"
	// KeyUnknown is reported for a key that repositories name but that no
	// key provider holds.
	KeyUnknown KeyState = "unknown"
)

// KeyInfo describes one key-encryption key.
type KeyInfo struct {
	// Name is the key's name: a keyring key name or a pkcs11: URI.
	Name string `json:"name"`
	// State is the key's state.
	State KeyState `json:"state"`
	// PrimaryVersion is the version that wraps new data keys.
	PrimaryVersion uint32 `json:"primaryVersion"`
	// Versions is the number of versions the key has.
	Versions int `json:"versions"`
}

func keyInfoOf(k crypt.KeyInfo) KeyInfo {
	return KeyInfo{Name: k.Name, State: KeyState(k.State), PrimaryVersion: k.PrimaryVersion, Versions: k.Versions}
}

// DefaultKeyName is the registry's default key-encryption key: the key of
// a repository whose encryption names none (AES256, or KMS without a
// kmsKey).
const DefaultKeyName = crypt.DefaultKeyName

// KeyStatus describes one key-encryption key and its use in the store.
type KeyStatus struct {
	KeyInfo
	// Repositories is the number of repositories keyed by it.
	Repositories int `json:"repositories"`
	// Blobs is the number of blobs whose data key it wraps.
	Blobs int `json:"blobs"`
	// OnlyBlobs is the number of blobs that it alone wraps: what
	// destroying it would shred.
	OnlyBlobs int `json:"onlyBlobs"`
	// Secrets is the number of stored secrets whose data key it wraps
	// (destroying it shreds them).
	Secrets int `json:"secrets"`
	// StaleWraps is the number of its wraps (of blobs and secrets) made
	// under a version older than the primary one (a rewrap after
	// rotation is pending).
	StaleWraps int `json:"staleWraps"`
	// Rewrapping is true while a background rewrap of it runs.
	Rewrapping bool `json:"rewrapping"`
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
// KeyProvider, or the keyring file (o.KeyringPath, default
// <dir>/keyring.json), joined by a PKCS#11 provider for pkcs11: key names
// when o.PKCS11Module is set. The returned function closes what this call
// opened.
func openKeyProvider(dir string, o *Options) (crypt.KeyProvider, func() error, error) {
	if o.KeyProvider != nil {
		return o.KeyProvider, func() error { return nil }, nil
	}
	path := o.KeyringPath
	if path == "" {
		path = filepath.Join(dir, "keyring.json")
	}
	if err := checkKeyring(dir, path, o.Metadata); err != nil {
		return nil, nil, err
	}
	kr, err := crypt.OpenKeyring(path)
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

// checkKeyring refuses, before anything is written, a keyring the store
// at dir cannot use: its directory missing (an unmounted volume), or the
// file missing while the store exists already (it has an index: in dir,
// or in the PostgreSQL database metadata names), where a new keyring
// would leave every blob sealed under the old one unreadable and seal new
// ones under a key a later restore of the old keyring loses.
func checkKeyring(dir, path, metadata string) error {
	target, err := crypt.KeyringTarget(path)
	if err != nil {
		return err
	}
	if st, err := os.Stat(filepath.Dir(target)); err != nil || !st.IsDir() {
		return fmt.Errorf("%w: the directory of keyring %s (%s) does not exist: is its volume mounted?", ErrKeyringMissing, path, filepath.Dir(target))
	}
	_, err = os.Stat(target)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("engine: keyring %s: %w", path, err)
	}
	existing, err := storeExists(dir)
	if err != nil {
		return err
	}
	if existing {
		return fmt.Errorf("%w: %s has an index but keyring %s does not exist; restore the keyring (a new one would make every encrypted blob unreadable)", ErrKeyringMissing, dir, path)
	}
	if metadata != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		held, err := index.PostgresHoldsIndex(ctx, metadata)
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		if held {
			return fmt.Errorf("%w: the metadata database holds this store's index but keyring %s does not exist; restore the keyring (a new one would make every encrypted blob unreadable)", ErrKeyringMissing, path)
		}
	}
	return nil
}

// storeExists reports whether dir holds a store already: an index
// directory with something in it.
func storeExists(dir string) (bool, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "index"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("engine: %w", err)
	}
	return len(entries) > 0, nil
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
func (e *Engine) CreateKey(ctx context.Context, name string) (KeyInfo, error) {
	km, err := e.keyManager()
	if err != nil {
		return KeyInfo{}, err
	}
	if err := e.keyChangeAllowed(ctx, name); err != nil {
		return KeyInfo{}, err
	}
	if err := km.CreateKey(ctx, name); err != nil {
		return KeyInfo{}, keyOpErr(err)
	}
	e.keyringChanged(ctx, name)
	e.log.Info("key created", "key", name)
	info, err := crypt.LookupKey(ctx, e.keys, name)
	return keyInfoOf(info), keyOpErr(err)
}

// RotateKey makes a new version of key name primary and starts the
// background rewrap of every blob's wrap under an older version (no blob
// file is touched; see RewrapKey). It returns the new version.
func (e *Engine) RotateKey(ctx context.Context, name string) (uint32, error) {
	km, err := e.keyManager()
	if err != nil {
		return 0, err
	}
	if err := e.keyChangeAllowed(ctx, name); err != nil {
		return 0, err
	}
	v, err := km.RotateKey(ctx, name)
	if err != nil {
		return 0, keyOpErr(err)
	}
	e.keyringChanged(ctx, name)
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
// see SweepShredded), and so is every stored secret it wraps; repositories
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
	if gone, err := e.sweepShreddedSecrets(ctx); err != nil {
		e.log.Warn("removing shredded secrets", "key", name, "removed", len(gone), "err", err)
	} else if len(gone) > 0 {
		e.log.Info("shredded secrets removed", "key", name, "secrets", gone)
	}
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
	if err := e.keyChangeAllowed(ctx, name); err != nil {
		return err
	}
	if err := km.SetKeyState(ctx, name, state); err != nil {
		return keyOpErr(err)
	}
	e.keyringChanged(ctx, name)
	if state != crypt.KeyEnabled {
		n := e.dropDataKeys(name)
		e.log.Info("key "+string(state), "key", name, "cachedDataKeysDropped", n)
	} else {
		e.log.Info("key enabled", "key", name)
	}
	return nil
}

// keyState is the state of key name as a repository reports it.
func (e *Engine) keyState(ctx context.Context, name string) KeyState {
	info, err := crypt.LookupKey(ctx, e.keys, name)
	switch {
	case err == nil:
		return KeyState(info.State)
	case errors.Is(err, crypt.ErrKeyNotFound):
		return KeyUnknown
	}
	return KeyUnavailable
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
	add := func(info KeyInfo) *KeyStatus {
		c := crypt.CanonicalKeyName(info.Name)
		if st := byName[c]; st != nil {
			return st
		}
		byName[c] = &KeyStatus{KeyInfo: info}
		order = append(order, c)
		return byName[c]
	}
	for _, info := range infos {
		add(keyInfoOf(info))
	}
	missing := KeyUnknown
	if perr != nil {
		missing = KeyUnavailable
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
		add(KeyInfo{Name: r.kek, State: missing}).Repositories++
	}
	err = e.db.WalkBlobs(func(rec *index.Blob) error {
		distinct := 0
		for i, w := range rec.Wraps {
			st := add(KeyInfo{Name: w.KeyID, State: missing})
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
	secrets, staleSecrets, err := e.secretKeyCounts(func(c string) uint32 {
		if st := byName[c]; st != nil {
			return st.PrimaryVersion
		}
		return 0
	})
	if err != nil {
		return nil, err
	}
	for c, n := range secrets {
		st := byName[c]
		if st == nil {
			st = add(KeyInfo{Name: c, State: missing})
		}
		st.Secrets += n
		st.StaleWraps += staleSecrets[c]
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

// checkKEK makes sure the key a repository names exists and is usable
// (when encryption is on).
func (e *Engine) checkKEK(ctx context.Context, name string) error {
	if e.opts.DisableEncryption {
		return nil
	}
	k, err := crypt.LookupKey(ctx, e.keys, name)
	switch {
	case errors.Is(err, crypt.ErrKeyNotFound):
		return fmt.Errorf("%w: %w: encryption key %q: %w", ErrInvalidArgument, ErrKeyNotFound, name, err)
	case errors.Is(err, crypt.ErrInvalidKey), errors.Is(err, crypt.ErrUnsupported):
		return fmt.Errorf("%w: encryption key %q: %w", ErrInvalidArgument, name, err)
	case err != nil:
		return keyErr(err)
	case k.State == crypt.KeyDestroyed:
		return fmt.Errorf("%w: key %q", ErrKeyDestroyed, name)
	case k.State != crypt.KeyEnabled:
		return fmt.Errorf("%w: key %q is %s", ErrKeyUnavailable, name, k.State)
	}
	return nil
}
