//go:build !(pkcs11 && cgo)

package crypt

import (
	"context"
	"fmt"
)

// PKCS11Supported reports whether this build can talk to a PKCS#11
// module (it needs cgo and the pkcs11 build tag).
const PKCS11Supported = false

// errNoPKCS11 explains why this build has no HSM support.
var errNoPKCS11 = fmt.Errorf("%w: built without pkcs11 support; rebuild with -tags pkcs11 (and cgo)", ErrUnsupported)

// PKCS11Provider is the hardware security module provider. This build
// has none: OpenPKCS11 always fails.
type PKCS11Provider struct{}

var _ KeyManager = (*PKCS11Provider)(nil)

// OpenPKCS11 fails in this build: it was made without the pkcs11 tag or
// without cgo.
func OpenPKCS11(cfg PKCS11Config) (*PKCS11Provider, error) { return nil, errNoPKCS11 }

// Wrap fails: no PKCS#11 support in this build.
func (p *PKCS11Provider) Wrap(ctx context.Context, keyName string, dataKey, ad []byte) (WrappedKey, error) {
	return WrappedKey{}, errNoPKCS11
}

// Unwrap fails: no PKCS#11 support in this build.
func (p *PKCS11Provider) Unwrap(ctx context.Context, w WrappedKey, ad []byte) ([]byte, error) {
	return nil, errNoPKCS11
}

// Keys fails: no PKCS#11 support in this build.
func (p *PKCS11Provider) Keys(ctx context.Context) ([]KeyInfo, error) { return nil, errNoPKCS11 }

// CreateKey fails: no PKCS#11 support in this build.
func (p *PKCS11Provider) CreateKey(ctx context.Context, name string) error { return errNoPKCS11 }

// RotateKey fails: no PKCS#11 support in this build.
func (p *PKCS11Provider) RotateKey(ctx context.Context, name string) (uint32, error) {
	return 0, errNoPKCS11
}

// SetKeyState fails: no PKCS#11 support in this build.
func (p *PKCS11Provider) SetKeyState(ctx context.Context, name string, state KeyState) error {
	return errNoPKCS11
}

// Close does nothing.
func (p *PKCS11Provider) Close() error { return nil }
