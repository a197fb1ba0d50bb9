package crypt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Route sends the key names that start with Prefix (compared without
// regard to case) to Provider.
type Route struct {
	Prefix   string
	Provider KeyProvider
}

// MultiProvider routes each key name to one of several providers, so one
// engine can hold keys in its keyring and in an HSM at once: names
// starting with a route's prefix (e.g. "pkcs11:") go to that route's
// provider, every other name to the default provider.
type MultiProvider struct {
	def    KeyProvider
	routes []Route
}

var (
	_ KeyManager  = (*MultiProvider)(nil)
	_ KeyLookuper = (*MultiProvider)(nil)
	_ io.Closer   = (*MultiProvider)(nil)
)

// NewMultiProvider returns a provider that sends names matching a route
// to its provider (the first match wins) and the rest to def.
func NewMultiProvider(def KeyProvider, routes ...Route) *MultiProvider {
	return &MultiProvider{def: def, routes: routes}
}

func (m *MultiProvider) route(name string) KeyProvider {
	for _, r := range m.routes {
		if len(name) >= len(r.Prefix) && strings.EqualFold(name[:len(r.Prefix)], r.Prefix) {
			return r.Provider
		}
	}
	return m.def
}

func (m *MultiProvider) manager(name string) (KeyManager, error) {
	km, ok := m.route(name).(KeyManager)
	if !ok {
		return nil, fmt.Errorf("%w: the provider of key %q does not manage keys", ErrUnsupported, name)
	}
	return km, nil
}

// Wrap seals dataKey under the primary version of keyName.
func (m *MultiProvider) Wrap(ctx context.Context, keyName string, dataKey, ad []byte) (WrappedKey, error) {
	return m.route(keyName).Wrap(ctx, keyName, dataKey, ad)
}

// Unwrap opens w with the provider of w.KeyName.
func (m *MultiProvider) Unwrap(ctx context.Context, w WrappedKey, ad []byte) ([]byte, error) {
	return m.route(w.KeyName).Unwrap(ctx, w, ad)
}

// Keys lists the keys of every provider, by name. If a provider fails,
// the keys of the others are still returned, with its error.
func (m *MultiProvider) Keys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	var errs []error
	for _, p := range m.providers() {
		ks, err := p.Keys(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, ks...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errors.Join(errs...)
}

func (m *MultiProvider) providers() []KeyProvider {
	ps := []KeyProvider{m.def}
	for _, r := range m.routes {
		ps = append(ps, r.Provider)
	}
	return ps
}

// LookupKey describes key name, asking only its provider.
func (m *MultiProvider) LookupKey(ctx context.Context, name string) (KeyInfo, error) {
	return LookupKey(ctx, m.route(name), name)
}

// CreateKey creates key name in its provider.
func (m *MultiProvider) CreateKey(ctx context.Context, name string) error {
	km, err := m.manager(name)
	if err != nil {
		return err
	}
	return km.CreateKey(ctx, name)
}

// RotateKey rotates key name in its provider.
func (m *MultiProvider) RotateKey(ctx context.Context, name string) (uint32, error) {
	km, err := m.manager(name)
	if err != nil {
		return 0, err
	}
	return km.RotateKey(ctx, name)
}

// SetKeyState sets the state of key name in its provider.
func (m *MultiProvider) SetKeyState(ctx context.Context, name string, state KeyState) error {
	km, err := m.manager(name)
	if err != nil {
		return err
	}
	return km.SetKeyState(ctx, name, state)
}

// Close closes every provider that is an io.Closer.
func (m *MultiProvider) Close() error {
	var errs []error
	for _, p := range m.providers() {
		if c, ok := p.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// NoProvider answers every call with err: the route for key names whose
// provider is not configured (e.g. pkcs11: names with no PKCS#11 module).
type NoProvider struct{ Err error }

var _ KeyManager = NoProvider{}

// Wrap returns p.Err.
func (p NoProvider) Wrap(ctx context.Context, keyName string, dataKey, ad []byte) (WrappedKey, error) {
	return WrappedKey{}, fmt.Errorf("key %q: %w", keyName, p.Err)
}

// Unwrap returns p.Err.
func (p NoProvider) Unwrap(ctx context.Context, w WrappedKey, ad []byte) ([]byte, error) {
	return nil, fmt.Errorf("key %q: %w", w.KeyName, p.Err)
}

// Keys lists nothing: an unconfigured provider holds no keys.
func (p NoProvider) Keys(ctx context.Context) ([]KeyInfo, error) { return nil, nil }

// CreateKey returns p.Err.
func (p NoProvider) CreateKey(ctx context.Context, name string) error {
	return fmt.Errorf("key %q: %w", name, p.Err)
}

// RotateKey returns p.Err.
func (p NoProvider) RotateKey(ctx context.Context, name string) (uint32, error) {
	return 0, fmt.Errorf("key %q: %w", name, p.Err)
}

// SetKeyState returns p.Err.
func (p NoProvider) SetKeyState(ctx context.Context, name string, state KeyState) error {
	return fmt.Errorf("key %q: %w", name, p.Err)
}
