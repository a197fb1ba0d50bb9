//go:build amd64 && !purego

package aesgcm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// hasAsm reports whether the CPU (and OS) support everything the AVX-512
// assembly (aesgcm_amd64.s) needs: AES-NI and PCLMULQDQ on 512-bit vectors
// (VAES, VPCLMULQDQ) and the AVX-512 foundation, byte/word and
// vector-length extensions. cpu.X86.HasAVX512* are only set when the OS
// saves the AVX-512 state. See hasAsmAVX2 for the AVX2 assembly.
var hasAsm = cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ && cpu.X86.HasAVX2 &&
	cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL &&
	cpu.X86.HasAVX512VAES && cpu.X86.HasAVX512VPCLMULQDQ

// AVX-512 assembly routines, see aesgcm_amd64.s (and aesgcm_avx2_amd64.go
// for their AVX2 variants). All lengths are in bytes.
//
// rk holds the 15 AES-256 round keys in the byte order AESENC expects.
// htab holds the hash key powers H^16, H^15, ..., H^1 (16 bytes each, in
// the byte-reflected, pre-shifted representation described at gfMul).
// ctr is the current counter block (nonce || big-endian 32-bit counter);
// the routines read it but do not update it. acc is the GHASH accumulator
// in byte-reflected form; it is read and updated.

// sealAsm encrypts n bytes (n a positive multiple of 256) of src into dst
// with AES-CTR and absorbs the resulting ciphertext into acc.
//
//go:noescape
func sealAsm(rk *[240]byte, htab *[256]byte, ctr *[16]byte, acc *[16]byte, dst, src *byte, n int)

// openAsm absorbs n bytes (n a positive multiple of 256) of ciphertext src
// into acc and decrypts it into dst with AES-CTR.
//
//go:noescape
func openAsm(rk *[240]byte, htab *[256]byte, ctr *[16]byte, acc *[16]byte, dst, src *byte, n int)

// ctrAsm XORs n bytes (n a positive multiple of 256) of src with the AES-CTR
// key stream and writes the result to dst.
//
//go:noescape
func ctrAsm(rk *[240]byte, ctr *[16]byte, dst, src *byte, n int)

// ghashAsm absorbs n bytes (n a positive multiple of 16) of data into acc.
//
//go:noescape
func ghashAsm(htab *[256]byte, acc *[16]byte, data *byte, n int)

// asmPath is the assembly path New uses when nothing turns it off (see
// Current): the AVX-512 routines (four blocks per vector) if the CPU runs
// them, else the AVX2 ones, else none ("").
var asmPath = func() string {
	switch {
	case hasAsm:
		return ImplVAES
	case hasAsmAVX2:
		return ImplVAESAVX2
	}
	return ""
}()

// newAsmPath returns the assembly AEAD of path (ImplVAES or ImplVAESAVX2)
// for the 32-byte key, using the assembly for messages of at least
// threshold bytes. The caller checks that the CPU runs path.
func newAsmPath(path string, key []byte, threshold int) (cipher.AEAD, error) {
	std, err := newStdlib(key)
	if err != nil {
		return nil, err
	}
	g, err := newAsm(std, key, path == ImplVAESAVX2)
	if err != nil {
		return nil, err
	}
	g.threshold = threshold
	return g, nil
}

// newAsm returns the assembly AEAD for the 32-byte key, using the AVX2
// routines if avx2 is set and the AVX-512 ones otherwise, with the
// threshold asmThreshold; std is the standard library's AEAD for the same
// key. The caller checks that the CPU supports the chosen routines.
func newAsm(std cipher.AEAD, key []byte, avx2 bool) (*gcmAsm, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g := &gcmAsm{std: std, block: block, avx2: avx2, threshold: asmThreshold}
	expandKey256(&g.rk, key)

	// H = E(K, 0^128), converted to the representation the assembly uses.
	var h [16]byte
	block.Encrypt(h[:], h[:])
	hp := hashKey(&h)
	clear(h[:])
	pow := hp
	for i := 15; i >= 0; i-- {
		binary.LittleEndian.PutUint64(g.htab[16*i:], pow[0])
		binary.LittleEndian.PutUint64(g.htab[16*i+8:], pow[1])
		if avx2 {
			// Karatsuba factor q0^q1 of each power, in both qwords.
			binary.LittleEndian.PutUint64(g.htab[256+16*i:], pow[0]^pow[1])
			binary.LittleEndian.PutUint64(g.htab[256+16*i+8:], pow[0]^pow[1])
		}
		pow = gfMul(pow, hp)
	}
	return g, nil
}

// gcmAsm is the AES-256-GCM AEAD backed by the assembly routines.
type gcmAsm struct {
	std   cipher.AEAD  // standard library AEAD for short messages
	block cipher.Block // for E(K, J0)
	rk    [240]byte    // AES-256 round keys
	// htab holds H^16 ... H^1 (the AVX-512 routines use only these 256
	// bytes), followed for the AVX2 routines by the Karatsuba factors of
	// the same powers (see aesgcm_avx2_amd64.go).
	htab      [512]byte
	avx2      bool // use the AVX2 routines instead of the AVX-512 ones
	threshold int  // shortest message for the assembly (asmThreshold)
}

// htab256 returns the table of powers of H the AVX-512 routines use.
func (g *gcmAsm) htab256() *[256]byte { return (*[256]byte)(g.htab[:256]) }

// seal, open, ctr and ghash call the AVX-512 or the AVX2 variant of the
// routine of the same name (sealAsm or sealAVX2, ...).

func (g *gcmAsm) seal(ctr, acc *[16]byte, dst, src *byte, n int) {
	if g.avx2 {
		sealAVX2(&g.rk, &g.htab, ctr, acc, dst, src, n)
	} else {
		sealAsm(&g.rk, g.htab256(), ctr, acc, dst, src, n)
	}
}

func (g *gcmAsm) open(ctr, acc *[16]byte, dst, src *byte, n int) {
	if g.avx2 {
		openAVX2(&g.rk, &g.htab, ctr, acc, dst, src, n)
	} else {
		openAsm(&g.rk, g.htab256(), ctr, acc, dst, src, n)
	}
}

func (g *gcmAsm) ctr(ctr *[16]byte, dst, src *byte, n int) {
	if g.avx2 {
		ctrAVX2(&g.rk, ctr, dst, src, n)
	} else {
		ctrAsm(&g.rk, ctr, dst, src, n)
	}
}

func (g *gcmAsm) ghash(acc *[16]byte, data *byte, n int) {
	if g.avx2 {
		ghashAVX2(&g.htab, acc, data, n)
	} else {
		ghashAsm(g.htab256(), acc, data, n)
	}
}

// NonceSize returns 12.
func (g *gcmAsm) NonceSize() int { return gcmNonceSize }

// Overhead returns the tag size, 16.
func (g *gcmAsm) Overhead() int { return gcmTagSize }

// Seal implements cipher.AEAD; it panics on a nonce that is not 12 bytes.
func (g *gcmAsm) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != gcmNonceSize {
		panic("crypto/cipher: incorrect nonce length given to GCM")
	}
	if uint64(len(plaintext)) > gcmMaxPlaintext {
		panic("crypto/cipher: message too large for GCM")
	}
	if len(plaintext) < g.threshold {
		return g.std.Seal(dst, nonce, plaintext, additionalData)
	}
	ret, out := sliceForAppend(dst, len(plaintext)+gcmTagSize)
	if inexactOverlap(out, plaintext) {
		panic("crypto/cipher: invalid buffer overlap of output and input")
	}
	if anyOverlap(out, additionalData) {
		panic("crypto/cipher: invalid buffer overlap of output and additional data")
	}

	var ctr, tagMask, acc [16]byte
	g.initCounter(&ctr, &tagMask, nonce)
	g.ghashPadded(&acc, additionalData)

	n := len(plaintext) &^ 255
	if n > 0 {
		g.seal(&ctr, &acc, &out[0], &plaintext[0], n)
		addCounter(&ctr, n/gcmBlockSize)
	}
	if tail := len(plaintext) - n; tail > 0 {
		var buf [256]byte
		copy(buf[:], plaintext[n:])
		g.ctr(&ctr, &buf[0], &buf[0], len(buf))
		copy(out[n:], buf[:tail])
		// GHASH the ciphertext, zero-padded to a whole block.
		clear(buf[tail:])
		g.ghash(&acc, &buf[0], (tail+gcmBlockSize-1)&^(gcmBlockSize-1))
		clear(buf[:])
	}
	g.finish(out[len(plaintext):], &acc, &tagMask, len(additionalData), len(plaintext))
	return ret
}

// Open implements cipher.AEAD. The tag is verified before Open returns; on
// failure the plaintext written to dst is zeroed and errOpen is returned.
func (g *gcmAsm) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != gcmNonceSize {
		panic("crypto/cipher: incorrect nonce length given to GCM")
	}
	if len(ciphertext) < gcmTagSize {
		return nil, errOpen
	}
	if uint64(len(ciphertext)) > gcmMaxPlaintext+gcmTagSize {
		return nil, errOpen
	}
	if len(ciphertext)-gcmTagSize < g.threshold {
		return g.std.Open(dst, nonce, ciphertext, additionalData)
	}
	tag := ciphertext[len(ciphertext)-gcmTagSize:]
	ciphertext = ciphertext[:len(ciphertext)-gcmTagSize]
	ret, out := sliceForAppend(dst, len(ciphertext))
	if inexactOverlap(out, ciphertext) {
		panic("crypto/cipher: invalid buffer overlap of output and input")
	}
	if anyOverlap(out, additionalData) {
		panic("crypto/cipher: invalid buffer overlap of output and additional data")
	}

	var ctr, tagMask, acc [16]byte
	g.initCounter(&ctr, &tagMask, nonce)
	g.ghashPadded(&acc, additionalData)

	n := len(ciphertext) &^ 255
	if n > 0 {
		g.open(&ctr, &acc, &out[0], &ciphertext[0], n)
		addCounter(&ctr, n/gcmBlockSize)
	}
	if tail := len(ciphertext) - n; tail > 0 {
		var buf [256]byte
		copy(buf[:], ciphertext[n:])
		g.ghash(&acc, &buf[0], (tail+gcmBlockSize-1)&^(gcmBlockSize-1))
		g.ctr(&ctr, &buf[0], &buf[0], len(buf))
		copy(out[n:], buf[:tail])
		clear(buf[:])
	}
	var expected [gcmTagSize]byte
	g.finish(expected[:], &acc, &tagMask, len(additionalData), len(ciphertext))
	if subtle.ConstantTimeCompare(expected[:], tag) != 1 {
		clear(out)
		return nil, errOpen
	}
	return ret, nil
}

// initCounter sets ctr to the first counter block used for the message,
// nonce || 2, and tagMask to E(K, J0) where J0 = nonce || 1.
func (g *gcmAsm) initCounter(ctr, tagMask *[16]byte, nonce []byte) {
	copy(ctr[:], nonce)
	ctr[15] = 1
	g.block.Encrypt(tagMask[:], ctr[:])
	ctr[15] = 2
}

// ghashPadded absorbs data into acc, zero-padding the last partial block.
func (g *gcmAsm) ghashPadded(acc *[16]byte, data []byte) {
	full := len(data) &^ (gcmBlockSize - 1)
	if full > 0 {
		g.ghash(acc, &data[0], full)
	}
	if len(data) > full {
		var b [gcmBlockSize]byte
		copy(b[:], data[full:])
		g.ghash(acc, &b[0], gcmBlockSize)
	}
}

// finish absorbs the length block and writes the tag,
// GHASH ^ E(K, J0), to tag.
func (g *gcmAsm) finish(tag []byte, acc, tagMask *[16]byte, aadLen, textLen int) {
	var lens [16]byte
	binary.BigEndian.PutUint64(lens[:], uint64(aadLen)*8)
	binary.BigEndian.PutUint64(lens[8:], uint64(textLen)*8)
	g.ghash(acc, &lens[0], len(lens))
	// acc is byte-reflected: its last byte is the first byte of the hash.
	for i := range gcmTagSize {
		tag[i] = acc[15-i] ^ tagMask[i]
	}
}

// addCounter adds n to the 32-bit big-endian counter in the last four bytes
// of ctr, modulo 2^32 (GCM's inc32).
func addCounter(ctr *[16]byte, n int) {
	c := binary.BigEndian.Uint32(ctr[12:])
	binary.BigEndian.PutUint32(ctr[12:], c+uint32(n))
}

// sliceForAppend extends in by n bytes, reallocating if needed, and returns
// the whole slice and the n new bytes.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return head, tail
}

// anyOverlap reports whether x and y share memory at any index.
func anyOverlap(x, y []byte) bool {
	return len(x) > 0 && len(y) > 0 &&
		uintptr(unsafe.Pointer(&x[0])) <= uintptr(unsafe.Pointer(&y[len(y)-1])) &&
		uintptr(unsafe.Pointer(&y[0])) <= uintptr(unsafe.Pointer(&x[len(x)-1]))
}

// inexactOverlap reports whether x and y share memory at any index other
// than the same one (x[i] and y[i] at the same address is allowed).
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	return anyOverlap(x, y)
}

// GHASH arithmetic used to precompute the powers of H.
//
// The assembly keeps field elements "byte-reflected": the 16 bytes of a GCM
// block are reversed, so the block is the little-endian 128-bit integer
// v = q1<<64 | q0 whose bit i is the coefficient of x^(127-i). The carry-less
// product of two such values is the bit-reflected product shifted by one;
// that shift is folded into the hash key once, by storing H' = H·x^-1 in
// this representation (computed as a 1-bit left shift of v with a
// conditional reduction, see hashKey). Then for data X and key power K',
// gfMul(X, K') is the representation of X·K, and gfMul(H'^a, H') = H'^(a+1).

// gcmPolyHi is the high qword of the reflected reduction constant
// 0xC2000000_00000000_00000000_00000001 (x^128 + x^127 + x^126 + x^121 + 1).
const gcmPolyHi = 0xc200000000000000

// hashKey converts H = E(K, 0) into the representation of H' (see above).
func hashKey(h *[16]byte) [2]uint64 {
	hi := binary.BigEndian.Uint64(h[:8])
	lo := binary.BigEndian.Uint64(h[8:])
	mask := -(hi >> 63) // all ones if the top bit is set
	hi = hi<<1 | lo>>63
	lo <<= 1
	hi ^= gcmPolyHi & mask
	lo ^= 1 & mask
	return [2]uint64{lo, hi}
}

// clmul returns the 128-bit carry-less product of a and b (PCLMULQDQ,
// constant time; see clmulAsm).
func clmul(a, b uint64) (hi, lo uint64) { return clmulAsm(a, b) }

// clmulAsm is implemented in aesgcm_amd64.s.
//
//go:noescape
func clmulAsm(a, b uint64) (hi, lo uint64)

// gfMul multiplies two field elements exactly as the assembly does:
// a schoolbook 128x128 carry-less product followed by two folding steps by
// the reduction constant. Elements are {q0, q1}.
func gfMul(a, b [2]uint64) [2]uint64 {
	loH, loL := clmul(a[0], b[0])
	hiH, hiL := clmul(a[1], b[1])
	m1H, m1L := clmul(a[0], b[1])
	m2H, m2L := clmul(a[1], b[0])
	midH, midL := m1H^m2H, m1L^m2L
	// 256-bit product HI:LO.
	l0, l1 := loL, loH^midL
	h0, h1 := hiL^midH, hiH
	for range 2 {
		// LO = swap(LO) ^ clmul(LO.q0, poly.q1)
		tH, tL := clmul(l0, gcmPolyHi)
		l0, l1 = l1^tL, l0^tH
	}
	return [2]uint64{l0 ^ h0, l1 ^ h1}
}

// subWord applies the AES S-box to each byte of w, in constant time
// (AESENCLAST, see subWordAsm).
func subWord(w uint32) uint32 { return subWordAsm(w) }

// subWordAsm is implemented in aesgcm_amd64.s.
//
//go:noescape
func subWordAsm(w uint32) uint32

// expandKey256 writes the FIPS 197 AES-256 key schedule for key to rk, each
// 32-bit word big-endian, which is the byte order AESENC uses.
func expandKey256(rk *[240]byte, key []byte) {
	var w [60]uint32
	for i := range 8 {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	rcon := uint32(1)
	for i := 8; i < 60; i++ {
		t := w[i-1]
		switch i % 8 {
		case 0:
			t = subWord(t<<8|t>>24) ^ rcon<<24
			rcon <<= 1
		case 4:
			t = subWord(t)
		}
		w[i] = w[i-8] ^ t
	}
	for i, v := range w {
		binary.BigEndian.PutUint32(rk[4*i:], v)
	}
	clear(w[:])
}
