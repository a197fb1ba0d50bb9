package crypt

import (
	"context"
	"fmt"
)

// KeyUnavailable is a state reported, never stored: the provider holding
// the key cannot be reached right now (see ErrUnavailable).
const KeyUnavailable KeyState = "unavailable"

// KeyManager is a KeyProvider whose keys can be created, rotated,
// disabled, re-enabled and destroyed. The Keyring, the PKCS#11 provider
// and MultiProvider implement it.
type KeyManager interface {
	KeyProvider
	// CreateKey adds a new enabled KEK with one version. A name in use
	// (or once used by a destroyed key) gives ErrKeyExists.
	CreateKey(ctx context.Context, name string) error
	// RotateKey adds a new version to the key and makes it primary; the
	// earlier versions keep unwrapping what they wrapped. It returns the
	// new version.
	RotateKey(ctx context.Context, name string) (uint32, error)
	// SetKeyState disables, re-enables or destroys a key. Destroying is
	// final: the material of every version is erased.
	SetKeyState(ctx context.Context, name string, state KeyState) error
}

// KeyLookuper is implemented by providers that describe one key without
// listing them all.
type KeyLookuper interface {
	// LookupKey describes key name, or returns ErrKeyNotFound.
	LookupKey(ctx context.Context, name string) (KeyInfo, error)
}

var (
	_ KeyManager  = (*Keyring)(nil)
	_ KeyLookuper = (*Keyring)(nil)
)

// LookupKey describes key name through p: with p's own LookupKey if it
// has one, else by listing its keys. A key p does not hold gives
// ErrKeyNotFound.
func LookupKey(ctx context.Context, p KeyProvider, name string) (KeyInfo, error) {
	if l, ok := p.(KeyLookuper); ok {
		return l.LookupKey(ctx, name)
	}
	keys, err := p.Keys(ctx)
	if err != nil {
		return KeyInfo{}, err
	}
	want := CanonicalKeyName(name)
	for _, k := range keys {
		if CanonicalKeyName(k.Name) == want {
			return k, nil
		}
	}
	return KeyInfo{}, fmt.Errorf("%w: %q", ErrKeyNotFound, name)
}

// LookupKey describes key name.
func (k *Keyring) LookupKey(ctx context.Context, name string) (KeyInfo, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	rec, ok := k.file.Keys[name]
	if !ok {
		return KeyInfo{}, fmt.Errorf("%w: %q", ErrKeyNotFound, name)
	}
	return KeyInfo{Name: name, State: rec.State, PrimaryVersion: rec.Primary, Versions: len(rec.Versions)}, nil
}

// CanonicalKeyName returns the one spelling of a key name: a pkcs11: URI
// with its attributes in a fixed order and canonical escaping; any other
// name unchanged. A malformed pkcs11: URI is returned unchanged.
func CanonicalKeyName(name string) string {
	if !IsPKCS11URI(name) {
		return name
	}
	u, err := ParsePKCS11URI(name)
	if err != nil {
		return name
	}
	return u.String()
}
