package crypt

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Keyring is the embedded KeyProvider: KEKs kept in one JSON file of mode
// 0600, created with a default key on first open. Wraps are AES-256-GCM
// with a random nonce; the associated data also binds the key name and
// version, so a wrap cannot be presented as another key's.
type Keyring struct {
	path string
	mu   sync.RWMutex
	file keyringFile
}

type keyringFile struct {
	FormatVersion int                `json:"formatVersion"`
	Keys          map[string]*kekRec `json:"keys"`
}

type kekRec struct {
	State    KeyState    `json:"state"`
	Primary  uint32      `json:"primary"`
	Versions []kekVerRec `json:"versions"`
}

type kekVerRec struct {
	Version   uint32    `json:"version"`
	Material  []byte    `json:"material,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

var _ KeyProvider = (*Keyring)(nil)

// OpenKeyring opens the keyring file at path, creating it (mode 0600,
// holding DefaultKeyName) if it does not exist. It refuses a keyring file
// readable by group or others.
func OpenKeyring(path string) (*Keyring, error) {
	k := &Keyring{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		k.file = keyringFile{FormatVersion: 1, Keys: map[string]*kekRec{}}
		if err := k.createLocked(DefaultKeyName); err != nil {
			return nil, err
		}
		return k, nil
	case err != nil:
		return nil, fmt.Errorf("crypt: keyring %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("crypt: keyring %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: keyring %s has mode %v; want 0600", ErrInvalidKey, path, st.Mode().Perm())
	}
	if err := json.Unmarshal(b, &k.file); err != nil || k.file.Keys == nil {
		return nil, fmt.Errorf("%w: keyring %s does not parse", ErrInvalidKey, path)
	}
	if k.file.FormatVersion != 1 {
		return nil, fmt.Errorf("%w: keyring %s has format version %d", ErrInvalidKey, path, k.file.FormatVersion)
	}
	return k, nil
}

// CreateKey adds a new enabled KEK with one version.
func (k *Keyring) CreateKey(ctx context.Context, name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.file.Keys[name]; ok {
		return fmt.Errorf("%w: %q", ErrKeyExists, name)
	}
	return k.createLocked(name)
}

func (k *Keyring) createLocked(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty key name", ErrInvalidKey)
	}
	rec := &kekRec{State: KeyEnabled}
	if err := addVersion(rec); err != nil {
		return err
	}
	k.file.Keys[name] = rec
	if err := k.saveLocked(); err != nil {
		delete(k.file.Keys, name)
		return err
	}
	return nil
}

func addVersion(rec *kekRec) error {
	m := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, m); err != nil {
		return fmt.Errorf("crypt: reading key material: %w", err)
	}
	v := uint32(len(rec.Versions) + 1)
	rec.Versions = append(rec.Versions, kekVerRec{Version: v, Material: m, CreatedAt: time.Now().UTC()})
	rec.Primary = v
	return nil
}

// RotateKey adds a new version to key name and makes it the primary one;
// earlier versions still unwrap what they wrapped.
func (k *Keyring) RotateKey(ctx context.Context, name string) (uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	rec, err := k.usableLocked(name)
	if err != nil {
		return 0, err
	}
	old := *rec
	old.Versions = append([]kekVerRec(nil), rec.Versions...)
	if err := addVersion(rec); err != nil {
		return 0, err
	}
	if err := k.saveLocked(); err != nil {
		*rec = old
		return 0, err
	}
	return rec.Primary, nil
}

// SetKeyState disables, re-enables or destroys a key. Destroying erases
// every version's material from the file: what only it wraps is lost.
func (k *Keyring) SetKeyState(ctx context.Context, name string, state KeyState) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	rec, ok := k.file.Keys[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrKeyNotFound, name)
	}
	if rec.State == KeyDestroyed {
		return fmt.Errorf("%w: %q", ErrKeyDestroyed, name)
	}
	switch state {
	case KeyEnabled, KeyDisabled:
		rec.State = state
	case KeyDestroyed:
		rec.State = state
		for i := range rec.Versions {
			clear(rec.Versions[i].Material)
			rec.Versions[i].Material = nil
		}
	default:
		return fmt.Errorf("%w: unknown key state %q", ErrInvalidKey, state)
	}
	return k.saveLocked()
}

// Keys lists the keyring's keys by name.
func (k *Keyring) Keys(ctx context.Context) ([]KeyInfo, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]KeyInfo, 0, len(k.file.Keys))
	for name, rec := range k.file.Keys {
		out = append(out, KeyInfo{Name: name, State: rec.State, PrimaryVersion: rec.Primary, Versions: len(rec.Versions)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (k *Keyring) usableLocked(name string) (*kekRec, error) {
	rec, ok := k.file.Keys[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrKeyNotFound, name)
	}
	switch rec.State {
	case KeyDisabled:
		return nil, fmt.Errorf("%w: %q", ErrKeyDisabled, name)
	case KeyDestroyed:
		return nil, fmt.Errorf("%w: %q", ErrKeyDestroyed, name)
	}
	return rec, nil
}

func wrapAD(name string, version uint32, ad []byte) []byte {
	out := make([]byte, 0, len(name)+len(ad)+32)
	out = append(out, "berth wrap v1\x00"...)
	out = append(out, name...)
	out = append(out, 0, byte(version>>24), byte(version>>16), byte(version>>8), byte(version))
	return append(out, ad...)
}

// gcmFor returns the AEAD of wraps under a KEK's material (newWrapAEAD):
// Seal writes a random nonce, the sealed key and the tag.
func gcmFor(material []byte) (cipher.AEAD, error) {
	a, err := newWrapAEAD(material)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return a, nil
}

// Wrap seals dataKey under the primary version of key name.
func (k *Keyring) Wrap(ctx context.Context, name string, dataKey, ad []byte) (WrappedKey, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	rec, err := k.usableLocked(name)
	if err != nil {
		return WrappedKey{}, err
	}
	v := rec.Versions[rec.Primary-1]
	aead, err := gcmFor(v.Material)
	if err != nil {
		return WrappedKey{}, err
	}
	ct := aead.Seal(make([]byte, 0, len(dataKey)+aead.Overhead()), nil, dataKey, wrapAD(name, v.Version, ad))
	return WrappedKey{KeyName: name, Version: v.Version, Ciphertext: ct}, nil
}

// Unwrap opens a wrap made by Wrap with the same ad.
func (k *Keyring) Unwrap(ctx context.Context, w WrappedKey, ad []byte) ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	rec, err := k.usableLocked(w.KeyName)
	if err != nil {
		return nil, err
	}
	if w.Version == 0 || int(w.Version) > len(rec.Versions) {
		return nil, fmt.Errorf("%w: %q version %d", ErrKeyNotFound, w.KeyName, w.Version)
	}
	aead, err := gcmFor(rec.Versions[w.Version-1].Material)
	if err != nil {
		return nil, err
	}
	if len(w.Ciphertext) < aead.Overhead() {
		return nil, fmt.Errorf("%w: wrap under %q too short", ErrUnauthenticated, w.KeyName)
	}
	dk, err := aead.Open(nil, nil, w.Ciphertext, wrapAD(w.KeyName, w.Version, ad))
	if err != nil {
		return nil, fmt.Errorf("%w: wrap under %q v%d", ErrUnauthenticated, w.KeyName, w.Version)
	}
	return dk, nil
}

// saveLocked writes the keyring atomically beside the file its path
// names: a temporary file of mode 0600 in the directory of that file
// (the path's symlinks resolved, so that a keyring linked from another
// volume is replaced there and the link stays a link), fsynced, renamed
// over the old file, then that directory fsynced. A missing directory is
// an error (an unmounted volume is not silently replaced by a new one).
func (k *Keyring) saveLocked() error {
	b, err := json.MarshalIndent(&k.file, "", "  ")
	if err != nil {
		return fmt.Errorf("crypt: encoding keyring: %w", err)
	}
	target, err := KeyringTarget(k.path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(target)
	tmp, err := os.CreateTemp(dir, ".keyring-*")
	if err != nil {
		return fmt.Errorf("crypt: keyring %s: %w", k.path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		if _, err = tmp.Write(b); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("crypt: writing keyring %s: %w", k.path, err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("crypt: keyring %s: %w", k.path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("crypt: keyring %s: syncing its directory: %w", k.path, err)
	}
	return nil
}

// syncDir fsyncs a directory, so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// maxSymlinks bounds the symlinks KeyringTarget follows (as Linux does).
const maxSymlinks = 40

// KeyringTarget returns the file a keyring at path is read from and
// written to: path with every symlink followed, the last one possibly
// dangling (a keyring not created yet). It fails when a link cannot be
// read or the chain is too long.
func KeyringTarget(path string) (string, error) {
	p := path
	for range maxSymlinks {
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) || err == nil && st.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		if err != nil {
			return "", fmt.Errorf("crypt: keyring %s: %w", path, err)
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", fmt.Errorf("crypt: keyring %s: %w", path, err)
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(p), link)
		}
		p = link
	}
	return "", fmt.Errorf("crypt: keyring %s: more than %d symlinks", path, maxSymlinks)
}
