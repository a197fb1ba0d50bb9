// Package aesgcm provides an AES-GCM AEAD for large messages that produces
// exactly the same output as crypto/cipher's GCM (12-byte nonces, 16-byte
// tags) but, on amd64 CPUs with VAES and VPCLMULQDQ, encrypts and
// authenticates bulk data with vectorized assembly: on 512-bit vectors if
// the CPU has AVX-512 (aesgcm_amd64.s), else on 256-bit vectors with AVX2
// (aesgcm_avx2_amd64.s).
//
// Short messages, other key sizes, CPUs without the required extensions and
// builds for other architectures (or with the purego build tag) use the
// standard library implementation. So does every key, whatever the CPU,
// when any of these holds (see Current):
//   - the process runs in FIPS 140-3 mode (crypto/fips140.Enabled, set by
//     GODEBUG=fips140=on or only): only the standard library's validated
//     module may do AES-GCM;
//   - the environment variable BERTH_AESGCM is "stdlib";
//   - ForceStdlib(true) was called;
//   - the start-up self-test failed: the first time an assembly path would
//     be used, it seals and opens a set of vectors with it and with
//     crypto/cipher, and any difference (or panic) turns the assembly off
//     for the life of the process, logged once with log/slog.
package aesgcm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

const (
	gcmNonceSize = 12
	gcmTagSize   = 16
	gcmBlockSize = 16

	// gcmMaxPlaintext is the largest plaintext GCM can encrypt with a
	// 96-bit nonce: 2^32-2 blocks (the 32-bit counter starts at 2).
	gcmMaxPlaintext = ((1 << 32) - 2) * gcmBlockSize
)

// The implementations Current reports.
const (
	// ImplStdlib is crypto/cipher's AES-GCM.
	ImplStdlib = "stdlib"
	// ImplVAES is the assembly on 512-bit vectors (VAES, VPCLMULQDQ and
	// AVX-512 F/BW/VL).
	ImplVAES = "vaes"
	// ImplVAESAVX2 is the assembly on 256-bit vectors (VAES, VPCLMULQDQ
	// and AVX2, VEX-encoded only).
	ImplVAESAVX2 = "vaes-avx2"
)

// EnvVar is the environment variable that can turn the assembly off:
// "stdlib" forces crypto/cipher's AES-GCM; "auto" or unset lets New choose.
// Any other value makes New and Current fail with ErrInvalidSetting. It is
// read at every call, so a change applies to AEADs made afterwards.
const EnvVar = "BERTH_AESGCM"

// ErrInvalidSetting is returned by New and Current when EnvVar holds a
// value other than "stdlib" or "auto". Package crypt returns it as
// crypt.ErrInvalidSetting, hence its message.
var ErrInvalidSetting = errors.New("crypt: invalid setting")

// errOpen is returned by Open when the ciphertext fails authentication. It
// carries the same message as the standard library's error.
var errOpen = errors.New("cipher: message authentication failed")

// asmThreshold is the smallest plaintext length, in bytes, for which the
// assembly implementation is used; shorter messages go to the standard
// library, whose fixed per-message cost is lower (the two break even at
// about 512 bytes on Zen 4 with the AVX-512 routines, and on Zen 3 with the
// AVX2 ones). An AEAD takes the value when it is made; tests set it to 0 to
// run the assembly on every length, and the self-test makes its AEADs with
// 0.
var asmThreshold = 512

// fipsEnabled reports whether the process runs in FIPS 140-3 mode. It is
// crypto/fips140.Enabled; tests replace it.
var fipsEnabled = fips140.Enabled

// forceStdlib is set by ForceStdlib.
var forceStdlib atomic.Bool

// ForceStdlib makes New return crypto/cipher's AES-GCM (on) or choose
// again as usual (off), for AEADs made afterwards; those made before keep
// their implementation. It has the effect of BERTH_AESGCM=stdlib, and
// either one suffices to turn the assembly off.
func ForceStdlib(on bool) { forceStdlib.Store(on) }

// Choice is the implementation New uses for 32-byte keys, and why.
type Choice struct {
	// Impl is ImplStdlib, ImplVAES or ImplVAESAVX2.
	Impl string
	// Reason says why, for logs: "FIPS 140-3 mode", "BERTH_AESGCM=stdlib",
	// "self-test failed: ...", and so on.
	Reason string
}

// Current returns the implementation New uses now for 32-byte keys (other
// key sizes always get the standard library's). If that is an assembly
// path whose self-test has not run yet, it runs it first.
func Current() (Choice, error) { return defaultSelector.choose() }

// New returns an AES-GCM AEAD for key (16, 24 or 32 bytes) with 12-byte
// nonces and 16-byte tags, producing exactly what
// crypto/cipher.NewGCM(aes.NewCipher(key)) produces. For 32-byte keys,
// when Current chooses an assembly path, messages of at least a threshold
// length are processed by it; everything else is handled by the standard
// library. It fails with ErrInvalidSetting if BERTH_AESGCM is invalid.
func New(key []byte) (cipher.AEAD, error) { return defaultSelector.new(key) }

// envSetting returns what EnvVar asks for: stdlib true to force the
// standard library, false to let the selector choose.
func envSetting() (stdlib bool, err error) {
	switch v := os.Getenv(EnvVar); v {
	case "", "auto":
		return false, nil
	case ImplStdlib:
		return true, nil
	default:
		return false, fmt.Errorf("%w: %s=%q: want %q (use crypto/cipher's AES-GCM) or %q (the default: the fastest implementation the CPU runs)",
			ErrInvalidSetting, EnvVar, v, ImplStdlib, "auto")
	}
}

// newStdlib returns crypto/cipher's AES-GCM for key.
func newStdlib(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
