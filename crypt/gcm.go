package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"crypto/rand"
	"errors"

	"github.com/berthstore/berth/crypt/internal/aesgcm"
)

// UseStdlibAESGCM makes the frame sealers made from now on use
// crypto/cipher's AES-GCM (on) instead of Berth's assembly
// implementation, or lets them choose again (off); sealers made before
// keep theirs. The environment variable BERTH_AESGCM=stdlib does the same
// for the whole process, and either one suffices. Both are for ruling the
// assembly out (when diagnosing, or by policy): the output is the same
// bytes either way, and FIPS 140-3 mode turns the assembly off by itself.
func UseStdlibAESGCM(on bool) { aesgcm.ForceStdlib(on) }

// AESGCMImplementation returns the AES-GCM implementation NewFrameSealer
// uses now, for logs: "stdlib" (crypto/cipher), "vaes" (assembly on
// AVX-512 registers) or "vaes-avx2" (on AVX2 registers), and why. It
// fails if BERTH_AESGCM holds something other than "stdlib" or "auto".
// It fails with ErrInvalidSetting if BERTH_AESGCM holds something other
// than "stdlib" or "auto". The first call on a CPU with an assembly path
// runs its self-test against crypto/cipher (2 to 4 ms), which
// NewFrameSealer would run otherwise.
func AESGCMImplementation() (impl, reason string, err error) {
	c, err := aesgcm.Current()
	if err != nil {
		return "", "", err // ErrInvalidSetting
	}
	if fipsEnabled() {
		return c.Impl, "FIPS 140-3 mode: crypto/cipher.NewGCMWithRandomNonce", nil
	}
	return c.Impl, c.Reason, nil
}

// fipsEnabled reports whether the process runs in FIPS 140-3 mode
// (GODEBUG=fips140=on or only). It is crypto/fips140.Enabled; tests
// replace it.
var fipsEnabled = fips140.Enabled

// errOpen is what randomNonceAEAD.Open returns for a message too short to
// hold a nonce; the callers turn every failure into ErrUnauthenticated.
var errOpen = errors.New("crypt: message authentication failed")

// newFrameAEAD returns the AEAD frames are sealed with (see
// randomNonceAEAD): Berth's AES-GCM (crypt/internal/aesgcm, which picks
// the assembly or crypto/cipher) with a random nonce, or in FIPS 140-3
// mode crypto/cipher.NewGCMWithRandomNonce, which writes the same layout.
func newFrameAEAD(key []byte) (cipher.AEAD, error) {
	if fipsEnabled() {
		// An invalid BERTH_AESGCM is refused in FIPS mode too.
		if _, err := aesgcm.Current(); err != nil {
			return nil, err
		}
		return newFIPSGCM(key)
	}
	a, err := aesgcm.New(key)
	if err != nil {
		return nil, err
	}
	return randomNonceAEAD{a}, nil
}

// newWrapAEAD returns the AEAD the keyring wraps data keys with: the
// standard library's AES-GCM with a random nonce (randomNonceAEAD), in
// FIPS 140-3 mode crypto/cipher.NewGCMWithRandomNonce.
func newWrapAEAD(key []byte) (cipher.AEAD, error) {
	if fipsEnabled() {
		return newFIPSGCM(key)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return randomNonceAEAD{a}, nil
}

// newFIPSGCM returns crypto/cipher.NewGCMWithRandomNonce for key: the
// AES-GCM service of the Go FIPS 140-3 module that is approved for
// encryption (the nonce comes from the module's DRBG), and the only one
// fips140=only allows.
func newFIPSGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// randomNonceAEAD is AES-GCM (gcm: 12-byte nonces, 16-byte tags) with a
// fresh random nonce for each message, written in front of the
// ciphertext: Seal produces nonce ‖ ciphertext ‖ tag, Open takes it. That
// is the layout of frames and wraps, and exactly what
// crypto/cipher.NewGCMWithRandomNonce produces, so either reads what the
// other wrote. Like that one, its NonceSize is 0, its Overhead 28, and the
// nonce argument must be empty. The output must not overlap the input.
type randomNonceAEAD struct {
	gcm cipher.AEAD
}

var _ cipher.AEAD = randomNonceAEAD{}

// NonceSize returns 0: Seal chooses the nonce.
func (a randomNonceAEAD) NonceSize() int { return 0 }

// Overhead returns the nonce and tag sizes, 28.
func (a randomNonceAEAD) Overhead() int { return NonceSize + a.gcm.Overhead() }

// Seal appends a random nonce, then the sealed plaintext and tag, to dst.
func (a randomNonceAEAD) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != 0 {
		panic("crypt: nonce given to an AEAD that chooses its own")
	}
	start := len(dst)
	dst = append(dst, make([]byte, NonceSize)...)
	n := dst[start:]
	rand.Read(n) // never returns an error: it crashes the program if it cannot read
	return a.gcm.Seal(dst, n, plaintext, additionalData)
}

// Open appends to dst the plaintext of sealed, a nonce followed by a
// ciphertext and tag.
func (a randomNonceAEAD) Open(dst, nonce, sealed, additionalData []byte) ([]byte, error) {
	if len(nonce) != 0 {
		panic("crypt: nonce given to an AEAD that chooses its own")
	}
	if len(sealed) < NonceSize {
		return nil, errOpen
	}
	return a.gcm.Open(dst, sealed[:NonceSize], sealed[NonceSize:], additionalData)
}
