package enginetest

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/engine"
)

// Keys is a key provider for tests: the store's own keyring file behind
// a switch. While it is down every call fails as an unreachable HSM or KMS
// does (the engine answers ErrKeyUnavailable); key management (CreateKey,
// RotateKey, ...) goes to the keyring whatever the switch.
type Keys struct {
	*crypt.Keyring
	down atomic.Bool
}

var _ engine.KeyProvider = (*Keys)(nil)

// NewKeys opens (creating it) the keyring of the store in dir, as the
// engine does by default, behind a switch that starts up. Pass it as
// Options.KeyProvider.
func NewKeys(t testing.TB, dir string) *Keys {
	t.Helper()
	kr, err := crypt.OpenKeyring(filepath.Join(dir, "keyring.json"))
	require.NoError(t, err)
	return &Keys{Keyring: kr}
}

// SetDown takes the provider away (true) or gives it back (false).
func (k *Keys) SetDown(down bool) { k.down.Store(down) }

func (k *Keys) check() error {
	if k.down.Load() {
		return fmt.Errorf("%w: the test took the key provider away", crypt.ErrUnavailable)
	}
	return nil
}

// Wrap wraps dk under key name, unless the provider is down.
func (k *Keys) Wrap(ctx context.Context, name string, dk, ad []byte) (crypt.WrappedKey, error) {
	if err := k.check(); err != nil {
		return crypt.WrappedKey{}, err
	}
	return k.Keyring.Wrap(ctx, name, dk, ad)
}

// Unwrap unwraps w, unless the provider is down.
func (k *Keys) Unwrap(ctx context.Context, w crypt.WrappedKey, ad []byte) ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	return k.Keyring.Unwrap(ctx, w, ad)
}

// Keys lists the keys, unless the provider is down.
func (k *Keys) Keys(ctx context.Context) ([]crypt.KeyInfo, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	return k.Keyring.Keys(ctx)
}
