// Package aesgcm provides an AES-GCM AEAD for large messages that produces
// exactly the same output as crypto/cipher's GCM (12-byte nonces, 16-byte
// tags) but, on amd64 CPUs with VAES and VPCLMULQDQ, encrypts and
// authenticates bulk data with vectorized assembly: on 512-bit vectors if
// the CPU has AVX-512 (aesgcm_amd64.s), else on 256-bit vectors with AVX2
// (aesgcm_avx2_amd64.s).
//
// Short messages, other key sizes, CPUs without the required extensions and
// builds for other architectures (or with the purego build tag) use the
// standard library implementation.
package aesgcm

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
)

const (
	gcmNonceSize = 12
	gcmTagSize   = 16
	gcmBlockSize = 16

	// gcmMaxPlaintext is the largest plaintext GCM can encrypt with a
	// 96-bit nonce: 2^32-2 blocks (the 32-bit counter starts at 2).
	gcmMaxPlaintext = ((1 << 32) - 2) * gcmBlockSize
)

// errOpen is returned by Open when the ciphertext fails authentication. It
// carries the same message as the standard library's error.
var errOpen = errors.New("cipher: message authentication failed")

// asmThreshold is the smallest plaintext length, in bytes, for which the
// assembly implementation is used; shorter messages go to the standard
// library, whose fixed per-message cost is lower (the two break even at
// about 512 bytes on Zen 4 with the AVX-512 routines, and on Zen 3 with the
// AVX2 ones). Tests set it to 0 to run the assembly on every length.
var asmThreshold = 512

// newStdlib returns crypto/cipher's AES-GCM for key.
func newStdlib(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
