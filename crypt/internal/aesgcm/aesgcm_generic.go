//go:build !amd64 || purego

package aesgcm

import (
	"crypto/cipher"
	"errors"
)

// hasAsm and hasAsmAVX2 report whether the AVX-512 and the AVX2 assembly
// implementations are available. They never are on this platform or with
// the purego build tag.
const (
	hasAsm     = false
	hasAsmAVX2 = false
)

// asmPath is the assembly path New would use: none in this build.
const asmPath = ""

// newAsmPath is never called in this build (asmPath is empty).
func newAsmPath(path string, key []byte, threshold int) (cipher.AEAD, error) {
	return nil, errors.New("aesgcm: no assembly implementation " + path + " in this build")
}
