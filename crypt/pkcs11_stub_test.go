//go:build !(pkcs11 && cgo)

package crypt

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPKCS11Stub(t *testing.T) {
	_, err := OpenPKCS11(PKCS11Config{Module: "/usr/lib/softhsm/libsofthsm2.so"})
	require.ErrorIs(t, err, ErrUnsupported)
	assert.Contains(t, err.Error(), "rebuild with -tags pkcs11")
	assert.False(t, PKCS11Supported)
}
