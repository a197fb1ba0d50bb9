package aesgcm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// setThreshold sets asmThreshold for the duration of the test.
func setThreshold(tb testing.TB, v int) {
	old := asmThreshold
	asmThreshold = v
	tb.Cleanup(func() { asmThreshold = old })
}

// thresholds are the asmThreshold values the tests run with: 0 forces the
// assembly (where available) on every length.
var thresholds = []int{0, asmThreshold}

// asmImpl is one of the assembly implementations, for the tests and
// benchmarks that run each of them explicitly rather than the one New
// picks. asmImpls (in aesgcm_amd64_test.go, or aesgcm_other_test.go where
// there is no assembly) lists them all, available on this CPU or not.
type asmImpl struct {
	name    string // ImplVAES or ImplVAESAVX2
	avx2    bool   // the AVX2 routines rather than the AVX-512 ones
	avail   bool   // whether this CPU (and build) can run it
	missing string // what it needs, for the log
	// new returns the implementation for a 32-byte key, with asmThreshold
	// applying as for New.
	new func(key []byte) (cipher.AEAD, error)
}

// availableAsm returns the assembly implementations this CPU and build
// run, and logs the others. A path the CPU cannot run is not something the
// machine lacks to run a test (there is nothing of that path to test on
// it), so it is left out, not skipped: under CI a run shows no skips. What
// keeps a detection bug from turning real tests into nothing is
// checkDetection, which fails tb if the CPU flags the kernel reports say a
// path should be available and it is not.
func availableAsm(tb testing.TB) []asmImpl {
	tb.Helper()
	checkDetection(tb)
	var out []asmImpl
	for _, impl := range asmImpls {
		if impl.avail {
			out = append(out, impl)
		} else {
			tb.Logf("%s: not run: it needs %s, which this CPU or build lacks or GODEBUG turned off", impl.name, impl.missing)
		}
	}
	return out
}

func newPair(tb testing.TB, key []byte) (ours, std cipher.AEAD) {
	ours, err := New(key)
	require.NoError(tb, err)
	b, err := aes.NewCipher(key)
	require.NoError(tb, err)
	std, err = cipher.NewGCM(b)
	require.NoError(tb, err)
	return ours, std
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// requireSame fails with the first differing offset instead of dumping
// megabytes.
func requireSame(tb testing.TB, want, got []byte, what string) {
	tb.Helper()
	if bytes.Equal(want, got) {
		return
	}
	if len(want) != len(got) {
		tb.Fatalf("%s: length %d, want %d", what, len(got), len(want))
	}
	for i := range want {
		if want[i] != got[i] {
			tb.Fatalf("%s: first difference at byte %d of %d", what, i, len(want))
		}
	}
}

// checkAgainstStd compares every way of calling Seal and Open with the
// standard library.
func checkAgainstStd(tb testing.TB, r *rand.Rand, ours, std cipher.AEAD, nonce, aad, pt []byte) {
	tb.Helper()
	want := std.Seal(nil, nonce, pt, aad)

	requireSame(tb, want, ours.Seal(nil, nonce, pt, aad), "Seal")

	// Appending to a non-empty dst, with and without spare capacity.
	prefix := randBytes(r, 1+r.IntN(20))
	got := ours.Seal(bytes.Clone(prefix), nonce, pt, aad)
	requireSame(tb, append(bytes.Clone(prefix), want...), got, "Seal append")
	dst := make([]byte, len(prefix), len(prefix)+len(pt)+16)
	copy(dst, prefix)
	got = ours.Seal(dst, nonce, pt, aad)
	requireSame(tb, append(bytes.Clone(prefix), want...), got, "Seal append in capacity")

	// In place.
	buf := make([]byte, len(pt), len(pt)+16)
	copy(buf, pt)
	got = ours.Seal(buf[:0], nonce, buf, aad)
	requireSame(tb, want, got, "Seal in place")

	// Open of the standard library's output.
	got, err := ours.Open(nil, nonce, want, aad)
	require.NoError(tb, err)
	requireSame(tb, pt, got, "Open")

	got, err = ours.Open(bytes.Clone(prefix), nonce, want, aad)
	require.NoError(tb, err)
	requireSame(tb, append(bytes.Clone(prefix), pt...), got, "Open append")

	ct := bytes.Clone(want)
	got, err = ours.Open(ct[:0], nonce, ct, aad)
	require.NoError(tb, err)
	requireSame(tb, pt, got, "Open in place")
}

func TestAllLengths(t *testing.T) {
	switch {
	case hasAsm:
		t.Log("New uses the AVX-512 assembly")
	case hasAsmAVX2:
		t.Log("New uses the AVX2 assembly")
	default:
		t.Log("assembly implementation NOT available; testing the fallback")
	}
	lengths := make([]int, 0, 4300)
	for n := 0; n <= 4200; n++ {
		lengths = append(lengths, n)
	}
	for _, base := range []int{64 << 10} {
		for d := -17; d <= 17; d++ {
			lengths = append(lengths, base+d)
		}
	}
	lengths = append(lengths, 1<<20, 1<<20+17, 3<<20+5)

	for _, th := range thresholds {
		t.Run(fmt.Sprintf("threshold=%d", th), func(t *testing.T) {
			setThreshold(t, th)
			r := rand.New(rand.NewPCG(uint64(th), 1))
			var ours, std cipher.AEAD
			for i, n := range lengths {
				if i%16 == 0 {
					ours, std = newPair(t, randBytes(r, 32))
				}
				nonce := randBytes(r, 12)
				aad := randBytes(r, r.IntN(71))
				pt := randBytes(r, n)
				checkAgainstStd(t, r, ours, std, nonce, aad, pt)
			}
		})
	}
}

func TestAADLengths(t *testing.T) {
	setThreshold(t, 0)
	r := rand.New(rand.NewPCG(7, 7))
	ours, std := newPair(t, randBytes(r, 32))
	for _, n := range []int{0, 1, 16, 300, 4096} {
		for a := 0; a <= 600; a += 1 + a/8 {
			checkAgainstStd(t, r, ours, std, randBytes(r, 12), randBytes(r, a), randBytes(r, n))
		}
	}
}

func TestOtherKeySizes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, th := range thresholds {
		setThreshold(t, th)
		for _, ks := range []int{16, 24} {
			ours, std := newPair(t, randBytes(r, ks))
			for _, n := range []int{0, 1, 100, 5000} {
				checkAgainstStd(t, r, ours, std, randBytes(r, 12), randBytes(r, 13), randBytes(r, n))
			}
		}
	}
	for _, ks := range []int{0, 1, 15, 17, 31, 33, 64} {
		_, err := New(make([]byte, ks))
		require.Error(t, err, "key size %d", ks)
	}
}

func TestSizes(t *testing.T) {
	ours, err := New(make([]byte, 32))
	require.NoError(t, err)
	require.Equal(t, 12, ours.NonceSize())
	require.Equal(t, 16, ours.Overhead())
}

func TestBadNonce(t *testing.T) {
	for _, th := range thresholds {
		setThreshold(t, th)
		ours, _ := newPair(t, make([]byte, 32))
		for _, n := range []int{0, 8, 11, 13, 16} {
			require.Panics(t, func() { ours.Seal(nil, make([]byte, n), make([]byte, 2000), nil) })
			require.Panics(t, func() { ours.Open(nil, make([]byte, n), make([]byte, 2000), nil) })
		}
	}
}

func TestShortCiphertext(t *testing.T) {
	for _, th := range thresholds {
		setThreshold(t, th)
		ours, _ := newPair(t, make([]byte, 32))
		for n := 0; n < 16; n++ {
			out, err := ours.Open(nil, make([]byte, 12), make([]byte, n), nil)
			require.Error(t, err)
			require.Nil(t, out)
		}
	}
}

func TestTampering(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, th := range thresholds {
		t.Run(fmt.Sprintf("threshold=%d", th), func(t *testing.T) {
			setThreshold(t, th)
			ours, _ := newPair(t, randBytes(r, 32))
			checkTampering(t, r, ours, []int{0, 1, 15, 16, 17, 63, 64, 255, 256, 257, 1000, 4096, 65536 + 3, 1 << 20})
		})
	}
}

// checkTampering seals messages of the given lengths with ours and checks
// that Open rejects every modification of ciphertext, tag, additional data
// or nonce, returning nil and leaving no plaintext in dst (zeroed), both
// into a separate buffer and in place.
func checkTampering(t *testing.T, r *rand.Rand, ours cipher.AEAD, lengths []int) {
	t.Helper()
	for _, n := range lengths {
		nonce := randBytes(r, 12)
		aad := randBytes(r, 1+r.IntN(40))
		pt := randBytes(r, n)
		ct := ours.Seal(nil, nonce, pt, aad)

		expectFail := func(what string, nonce, ct, aad []byte) {
			t.Helper()
			// Into a separate buffer pre-filled with garbage.
			backing := bytes.Repeat([]byte{0xaa}, len(ct)+8)
			out, err := ours.Open(backing[:3], nonce, ct, aad)
			require.Error(t, err, "%s n=%d", what, n)
			require.Nil(t, out)
			require.Equal(t, []byte{0xaa, 0xaa, 0xaa}, backing[:3], "%s: prefix touched", what)
			require.Equal(t, make([]byte, len(ct)-16), backing[3:3+len(ct)-16],
				"%s n=%d: plaintext area not zeroed", what, n)
			// In place.
			c := bytes.Clone(ct)
			out, err = ours.Open(c[:0], nonce, c, aad)
			require.Error(t, err, "%s in place n=%d", what, n)
			require.Nil(t, out)
			require.Equal(t, make([]byte, len(ct)-16), c[:len(ct)-16],
				"%s in place n=%d: plaintext area not zeroed", what, n)
		}
		flip := func(b []byte) []byte {
			b = bytes.Clone(b)
			b[r.IntN(len(b))] ^= 1 << r.IntN(8)
			return b
		}
		if n > 0 {
			bad := bytes.Clone(ct)
			bad[r.IntN(n)] ^= 1 << r.IntN(8)
			expectFail("ciphertext", nonce, bad, aad)
			// Last byte of the message, to exercise the tail.
			bad = bytes.Clone(ct)
			bad[n-1] ^= 0x80
			expectFail("ciphertext tail", nonce, bad, aad)
		}
		bad := bytes.Clone(ct)
		bad[n+r.IntN(16)] ^= 1 << r.IntN(8)
		expectFail("tag", nonce, bad, aad)
		expectFail("aad", nonce, ct, flip(aad))
		expectFail("aad extended", nonce, ct, append(bytes.Clone(aad), 0))
		expectFail("nonce", flip(nonce), ct, aad)
		if n > 0 {
			expectFail("truncated", nonce, append(bytes.Clone(ct[:n-1]), ct[n:]...), aad)
		}

		out, err := ours.Open(nil, nonce, ct, aad)
		require.NoError(t, err)
		requireSame(t, pt, out, "untampered Open")
	}
}

// FuzzAgainstStdlib compares Seal and Open with crypto/cipher for arbitrary
// keys, nonces, additional data and messages, with the assembly (where
// available) forced on for every length: New's choice and, explicitly,
// every assembly implementation this CPU can run. The plaintext is also
// fed to Open as a (normally forged) ciphertext and all implementations
// must agree.
func FuzzAgainstStdlib(f *testing.F) {
	setThreshold(f, 0)
	f.Add(uint64(0), []byte("0123456789ab"), []byte(""), []byte(""))
	f.Add(uint64(1), []byte("nonce-nonce!"), []byte("aad"), bytes.Repeat([]byte("x"), 300))
	f.Add(uint64(2), []byte{}, make([]byte, 17), make([]byte, 4097))
	f.Add(uint64(3), make([]byte, 20), make([]byte, 64), make([]byte, 255))
	paths := availableAsm(f)
	f.Fuzz(func(t *testing.T, keySeed uint64, nonceIn, aad, pt []byte) {
		var seed [8]byte
		binary.LittleEndian.PutUint64(seed[:], keySeed)
		key := sha256.Sum256(seed[:])
		nonce := make([]byte, 12)
		copy(nonce, nonceIn)
		ours, std := newPair(t, key[:])
		impls := []cipher.AEAD{ours}
		for _, impl := range paths {
			a, err := impl.new(key[:])
			require.NoError(t, err)
			impls = append(impls, a)
		}
		wantOut, wantErr := std.Open(nil, nonce, pt, aad)
		for _, ours := range impls {
			r := rand.New(rand.NewPCG(keySeed, uint64(len(pt))))
			checkAgainstStd(t, r, ours, std, nonce, aad, pt)

			// Forged input to Open.
			gotOut, gotErr := ours.Open(nil, nonce, pt, aad)
			require.Equal(t, wantErr != nil, gotErr != nil)
			requireSame(t, wantOut, gotOut, "Open of forged input")
		}
	})
}

func benchmark(b *testing.B, open bool) {
	const size = 1 << 20
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	nonce := make([]byte, 12)
	aad := make([]byte, 13)
	pt := make([]byte, size)
	// The standard library and each assembly implementation this CPU runs
	// (the others are logged, rather than measuring the fallback).
	impls := append([]asmImpl{{name: ImplStdlib, avail: true, new: newStdlib}}, availableAsm(b)...)
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			a, err := impl.new(key)
			require.NoError(b, err)
			ct := a.Seal(nil, nonce, pt, aad)
			buf := make([]byte, 0, size+16)
			b.SetBytes(size)
			b.ResetTimer()
			for range b.N {
				if open {
					if _, err := a.Open(buf[:0], nonce, ct, aad); err != nil {
						b.Fatal(err)
					}
				} else {
					a.Seal(buf[:0], nonce, pt, aad)
				}
			}
		})
	}
}

func BenchmarkSeal1MiB(b *testing.B) { benchmark(b, false) }

func BenchmarkOpen1MiB(b *testing.B) { benchmark(b, true) }
