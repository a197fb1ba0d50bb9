//go:build amd64 && !purego

package aesgcm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The tests in this file run each assembly implementation explicitly (the
// other tests run the one New picks): every one the CPU runs (see
// availableAsm). A CPU with AVX-512 VAES runs both.

func TestAsmAllLengths(t *testing.T) {
	lengths := make([]int, 0, 4300)
	for n := 0; n <= 4200; n++ {
		lengths = append(lengths, n)
	}
	for d := -17; d <= 17; d++ {
		lengths = append(lengths, 64<<10+d)
	}
	lengths = append(lengths, 1<<20, 1<<20+17)
	aadLengths := []int{0, 1, 13, 16, 17, 255, 256, 300}
	for _, impl := range availableAsm(t) {
		t.Run(impl.name, func(t *testing.T) {
			setThreshold(t, 0)
			r := rand.New(rand.NewPCG(21, 22))
			var ours asmPair
			for i, n := range lengths {
				if i%64 == 0 {
					ours = newAsmCipher(t, impl, randBytes(r, 32))
				}
				pt := randBytes(r, n)
				for _, a := range aadLengths {
					// checkAgainstStd includes Seal and Open in place
					// (dst aliasing src exactly).
					checkAgainstStd(t, r, ours.asm, ours.std, randBytes(r, 12), randBytes(r, a), pt)
				}
			}
		})
	}
}

func TestAsmTampering(t *testing.T) {
	for _, impl := range availableAsm(t) {
		for _, th := range thresholds {
			t.Run(fmt.Sprintf("%s/threshold=%d", impl.name, th), func(t *testing.T) {
				setThreshold(t, th)
				r := rand.New(rand.NewPCG(31, uint64(th)))
				ours := newAsmCipher(t, impl, randBytes(r, 32))
				checkTampering(t, r, ours.asm, []int{1, 15, 16, 17, 255, 256, 257, 511, 512, 513, 4095, 4096, 4097, 1 << 20, 1<<20 + 17})
			})
		}
	}
}

// TestAsmCounterWrap runs the bulk routines on counter blocks whose 32-bit
// counter wraps around (which a 12-byte nonce never reaches: its counter
// starts at 2) and compares them with crypto/aes and the Go GHASH model:
// GCM increments only the last 32 bits, mod 2^32. The start counters also
// put the last counter byte at every distance from overflowing that
// matters to the AVX2 routines' fast path (see NEXT_CTRS_FAST_Y), and a
// few are random.
func TestAsmCounterWrap(t *testing.T) {
	for _, impl := range availableAsm(t) {
		t.Run(impl.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(41, 42))
			key := randBytes(r, 32)
			g := newAsmImpl(t, impl, key)
			block, err := aes.NewCipher(key)
			require.NoError(t, err)
			hp := hashKeyOf(t, key)

			var starts []uint32
			for _, back := range []uint32{0, 1, 2, 14, 15, 16, 17, 100, 239, 240, 255, 256, 257, 1000} {
				starts = append(starts, 0xffffffff-back)
			}
			for range 4 {
				starts = append(starts, r.Uint32())
			}
			for _, start := range starts {
				for _, blocks := range []int{16, 32, 80, 272} {
					n := blocks * 16
					var ctr [16]byte
					copy(ctr[:], randBytes(r, 12))
					binary.BigEndian.PutUint32(ctr[12:], start)
					ctr0 := ctr

					// Reference key stream, with inc32.
					ks := make([]byte, n)
					for i := range blocks {
						c := ctr
						binary.BigEndian.PutUint32(c[12:], start+uint32(i))
						block.Encrypt(ks[16*i:], c[:])
					}
					src := randBytes(r, n)
					want := bytes.Clone(src)
					for i := range want {
						want[i] ^= ks[i]
					}
					var acc0 [16]byte
					copy(acc0[:], randBytes(r, 16))
					what := fmt.Sprintf("counter %#x, %d blocks", start, blocks)

					// ctr
					dst := make([]byte, n)
					g.ctr(&ctr, &dst[0], &src[0], n)
					requireSame(t, want, dst, "ctr "+what)

					// seal: ciphertext want, hash of want.
					acc := acc0
					dst = make([]byte, n)
					g.seal(&ctr, &acc, &dst[0], &src[0], n)
					requireSame(t, want, dst, "seal "+what)
					require.Equal(t, modelGHASH(hp, acc0, want), acc, "seal hash %s", what)

					// seal in place.
					acc = acc0
					buf := bytes.Clone(src)
					g.seal(&ctr, &acc, &buf[0], &buf[0], n)
					requireSame(t, want, buf, "seal in place "+what)
					require.Equal(t, modelGHASH(hp, acc0, want), acc, "seal in place hash %s", what)

					// open of src: plaintext want, hash of src.
					acc = acc0
					dst = make([]byte, n)
					g.open(&ctr, &acc, &dst[0], &src[0], n)
					requireSame(t, want, dst, "open "+what)
					require.Equal(t, modelGHASH(hp, acc0, src), acc, "open hash %s", what)

					// open in place.
					acc = acc0
					buf = bytes.Clone(src)
					g.open(&ctr, &acc, &buf[0], &buf[0], n)
					requireSame(t, want, buf, "open in place "+what)
					require.Equal(t, modelGHASH(hp, acc0, src), acc, "open in place hash %s", what)

					require.Equal(t, ctr0, ctr, "the routines must not update ctr")
				}
			}
		})
	}
}

// TestAsmGHASH compares the GHASH routine with the Go model for every
// length up to 40 blocks (all tail lengths after 0, 1 and 2 whole batches).
func TestAsmGHASH(t *testing.T) {
	for _, impl := range availableAsm(t) {
		t.Run(impl.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(51, 52))
			for range 4 {
				key := randBytes(r, 32)
				g := newAsmImpl(t, impl, key)
				hp := hashKeyOf(t, key)
				for blocks := 1; blocks <= 40; blocks++ {
					data := randBytes(r, 16*blocks)
					var acc0 [16]byte
					copy(acc0[:], randBytes(r, 16))
					acc := acc0
					g.ghash(&acc, &data[0], len(data))
					require.Equal(t, modelGHASH(hp, acc0, data), acc, "%d blocks", blocks)
				}
			}
		})
	}
}

func TestAddCounter(t *testing.T) {
	ctr := [16]byte{0: 0xaa, 11: 0xbb, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xf0}
	addCounter(&ctr, 0x20)
	require.Equal(t, [16]byte{0: 0xaa, 11: 0xbb, 15: 0x10}, ctr, "inc32 wraps mod 2^32")
}

// asmPair is an assembly AEAD and the standard library's for the same key.
type asmPair struct {
	asm *gcmAsm
	std cipher.AEAD
}

func newAsmCipher(t *testing.T, impl asmImpl, key []byte) asmPair {
	t.Helper()
	g := newAsmImpl(t, impl, key)
	std, err := newStdlib(key)
	require.NoError(t, err)
	return asmPair{asm: g, std: std}
}

// hashKeyOf returns the GHASH key E(K, 0^128) of key in the assembly's
// representation (hashKey), for modelGHASH.
func hashKeyOf(t *testing.T, key []byte) [2]uint64 {
	t.Helper()
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	var h [16]byte
	block.Encrypt(h[:], h[:])
	return hashKey(&h)
}

// modelGHASH absorbs data (whole blocks) into acc with the Go model of the
// assembly's arithmetic (gfMul, hashKey), one block at a time; acc is in
// the assembly's byte-reflected form.
func modelGHASH(hp [2]uint64, acc [16]byte, data []byte) [16]byte {
	a := [2]uint64{binary.LittleEndian.Uint64(acc[:8]), binary.LittleEndian.Uint64(acc[8:])}
	for ; len(data) >= 16; data = data[16:] {
		a[0] ^= binary.BigEndian.Uint64(data[8:16])
		a[1] ^= binary.BigEndian.Uint64(data[:8])
		a = gfMul(a, hp)
	}
	var out [16]byte
	binary.LittleEndian.PutUint64(out[:8], a[0])
	binary.LittleEndian.PutUint64(out[8:], a[1])
	return out
}
