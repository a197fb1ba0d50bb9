//go:build amd64 && !purego

package aesgcm

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// asmImpls are the two assembly implementations, see asmImpl.
var asmImpls = []asmImpl{
	{
		name:    ImplVAES,
		avail:   hasAsm,
		missing: "VAES, VPCLMULQDQ and AVX-512 F/BW/VL with OS support",
		new:     func(key []byte) (cipher.AEAD, error) { return newAsmForTest(key, false) },
	},
	{
		name:    ImplVAESAVX2,
		avx2:    true,
		avail:   hasAsmAVX2,
		missing: "VAES, VPCLMULQDQ and AVX2 with OS support",
		new:     func(key []byte) (cipher.AEAD, error) { return newAsmForTest(key, true) },
	},
}

// newAsmForTest returns the AVX-512 (avx2 false) or AVX2 assembly AEAD for
// a 32-byte key, whatever New would pick.
func newAsmForTest(key []byte, avx2 bool) (*gcmAsm, error) {
	std, err := newStdlib(key)
	if err != nil {
		return nil, err
	}
	return newAsm(std, key, avx2)
}

// newAsmImpl returns the assembly AEAD of impl, which must be one
// availableAsm returned, for key.
func newAsmImpl(t testing.TB, impl asmImpl, key []byte) *gcmAsm {
	t.Helper()
	require.True(t, impl.avail, "%s is not available on this CPU", impl.name)
	g, err := newAsmForTest(key, impl.avx2)
	require.NoError(t, err)
	return g
}

// sbox is the AES S-box, computed from its definition as the reference
// for subWord.
var sbox = func() (s [256]byte) {
	// Walk the multiplicative group with generator 3: p = 3^k, q = 3^-k,
	// so q is the inverse of p; apply the affine transform to q.
	p, q := byte(1), byte(1)
	for {
		p = p ^ (p << 1) ^ ((p >> 7) * 0x1b)
		q ^= q << 1
		q ^= q << 2
		q ^= q << 4
		if q&0x80 != 0 {
			q ^= 0x09
		}
		x := q ^ (q<<1 | q>>7) ^ (q<<2 | q>>6) ^ (q<<3 | q>>5) ^ (q<<4 | q>>4)
		s[p] = x ^ 0x63
		if p == 1 {
			break
		}
	}
	s[0] = 0x63
	return s
}()

func TestSbox(t *testing.T) {
	require.Equal(t, byte(0x63), sbox[0x00])
	require.Equal(t, byte(0x7c), sbox[0x01])
	require.Equal(t, byte(0xed), sbox[0x53])
	require.Equal(t, byte(0x16), sbox[0xff])
	seen := map[byte]bool{}
	for i := range 256 {
		seen[sbox[i]] = true
		// Each byte position of subWord, with other bytes around it.
		for shift := 0; shift < 32; shift += 8 {
			w := uint32(i)<<shift | uint32(byte(i*7+1))<<((shift+8)%32)
			got := subWord(w)
			require.Equal(t, sbox[i], byte(got>>shift), "byte %#x at %d", i, shift)
			require.Equal(t, sbox[byte(i*7+1)], byte(got>>((shift+8)%32)))
		}
	}
	require.Len(t, seen, 256)
}

// TestModel checks the Go model of the assembly's GHASH arithmetic (used
// for the table of powers) by computing full GCM tags with it.
func TestModel(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	std, err := cipher.NewGCM(block)
	require.NoError(t, err)
	var h [16]byte
	block.Encrypt(h[:], h[:])
	hp := hashKey(&h)
	for _, n := range []int{0, 1, 16, 33, 100} {
		nonce := make([]byte, 12)
		aad := make([]byte, n/3)
		pt := make([]byte, n)
		for i := range pt {
			pt[i] = byte(i)
		}
		want := std.Seal(nil, nonce, pt, aad)
		ct := want[:n]
		var acc [2]uint64
		absorb := func(data []byte) {
			for len(data) > 0 {
				var b [16]byte
				data = data[copy(b[:], data):]
				acc[0] ^= binary.BigEndian.Uint64(b[8:])
				acc[1] ^= binary.BigEndian.Uint64(b[:8])
				acc = gfMul(acc, hp)
			}
		}
		absorb(aad)
		absorb(ct)
		var lens [16]byte
		binary.BigEndian.PutUint64(lens[:], uint64(len(aad))*8)
		binary.BigEndian.PutUint64(lens[8:], uint64(n)*8)
		absorb(lens[:])
		var j0, tag [16]byte
		j0[15] = 1
		block.Encrypt(j0[:], j0[:])
		binary.BigEndian.PutUint64(tag[:], acc[1])
		binary.BigEndian.PutUint64(tag[8:], acc[0])
		for i := range tag {
			tag[i] ^= j0[i]
		}
		require.Equal(t, want[n:], tag[:], "n=%d", n)
	}
}

// TestKeySchedule checks the round keys by producing CTR key stream with
// the assembly and comparing it with crypto/aes.
func TestKeySchedule(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0xf0 + i*3)
	}
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	var ctr [16]byte
	for i := range 12 {
		ctr[i] = byte(i)
	}
	binary.BigEndian.PutUint32(ctr[12:], 0xfffffff8) // wraps within the 16 blocks
	for _, impl := range availableAsm(t) {
		t.Run(impl.name, func(t *testing.T) {
			g := newAsmImpl(t, impl, key) // round keys from expandKey256
			var buf [256]byte
			g.ctr(&ctr, &buf[0], &buf[0], len(buf))
			for i := range 16 {
				var c, want [16]byte
				c = ctr
				binary.BigEndian.PutUint32(c[12:], 0xfffffff8+uint32(i))
				block.Encrypt(want[:], c[:])
				require.Equal(t, want[:], buf[16*i:16*i+16], "block %d", i)
			}
		})
	}
}

// clmulRef is the carry-less product computed bit by bit.
func clmulRef(a, b uint64) (hi, lo uint64) {
	for i := range 64 {
		if b>>i&1 == 1 {
			lo ^= a << i
			if i > 0 {
				hi ^= a >> (64 - i)
			}
		}
	}
	return hi, lo
}

func TestClmul(t *testing.T) {
	cases := [][2]uint64{{0, 0}, {1, 1}, {^uint64(0), ^uint64(0)}, {1 << 63, 1 << 63}, {0xc200000000000000, 3}}
	x := uint64(0x9e3779b97f4a7c15)
	for range 1000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		cases = append(cases, [2]uint64{x, x*0x2545f4914f6cdd1d + 1})
	}
	for _, c := range cases {
		wh, wl := clmulRef(c[0], c[1])
		gh, gl := clmul(c[0], c[1])
		require.Equal(t, [2]uint64{wh, wl}, [2]uint64{gh, gl}, "%#x * %#x", c[0], c[1])
	}
}

// TestSelfTestCatchesCorruptAssembly runs the self-test on the real
// assembly with a corrupted round key or hash key table, as a bug in the
// key set-up would leave them. It fails on the first messages already
// (an empty one with additional data, a 15-byte one with 300 bytes of
// additional data, which reach H^1 and H^16), which shows that it runs
// the assembly on every length.
func TestSelfTestCatchesCorruptAssembly(t *testing.T) {
	for _, impl := range availableAsm(t) {
		for _, tc := range []struct {
			what    string
			corrupt func(g *gcmAsm)
			want    string
		}{
			{"round key", func(g *gcmAsm) { g.rk[16*7+3] ^= 0x20 }, "key 0, 1-byte message, 0 bytes of additional data: Seal: differs from crypto/cipher from byte 0 of 17"},
			{"hash key power H^1", func(g *gcmAsm) { g.htab[16*15] ^= 0x01 }, "key 0, 0-byte message, 1 bytes of additional data: Seal: differs from crypto/cipher from byte 0 of 16"},
			{"hash key power H^16", func(g *gcmAsm) { g.htab[0] ^= 0x01 }, "key 0, 15-byte message, 300 bytes of additional data: Seal: differs from crypto/cipher from byte 15 of 31"},
		} {
			t.Run(impl.name+"/"+tc.what, func(t *testing.T) {
				err := selfTest(func(key []byte) (cipher.AEAD, error) {
					g := newAsmImpl(t, impl, key)
					g.threshold = 0
					tc.corrupt(g)
					return g, nil
				})
				require.Error(t, err)
				require.Contains(t, err.Error(), tc.want)
			})
		}
	}
}
