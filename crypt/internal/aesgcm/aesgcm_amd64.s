//go:build amd64 && !purego

#include "textflag.h"

// AES-256-GCM bulk routines using VAES and VPCLMULQDQ on 512-bit vectors.
//
// Each ZMM register holds four 128-bit lanes, i.e. four AES blocks; the main
// loops process 16 blocks (256 bytes) per iteration in four ZMM registers.
//
// Register roles (shared by all routines):
//   Z0-Z3    AES state: counter blocks 0-3, 4-7, 8-11, 12-15 of the iteration
//   Z4-Z7    16 ciphertext blocks, byte-reflected, being hashed (in sealAsm
//            those produced by the previous iteration)
//   Z8-Z22   AES-256 round keys 0..14, each broadcast to all four lanes
//   Z23      byte-reversal shuffle mask (reverses the 16 bytes of each lane)
//   Z24      next counters in reversed form: lane l holds counter c+l in its
//            low dword (reversing the block puts the big-endian 32-bit
//            counter there, so VPADDD implements GCM's inc32 mod 2^32)
//   Z25      the constant 4 in the low dword of each lane
//   Z26-Z28  GHASH partial products LO, HI, MID
//   Z29,Z30  temporaries
//   Z31      GHASH accumulator (lane 0; lanes 1-3 are zero)
// General purpose: AX round keys, R8 table of H powers, CX counter block,
// DX accumulator, SI source, DI destination, BX remaining byte count.
//
// GHASH representation. Blocks are byte-reversed (VPSHUFB with Z23), giving
// a 128-bit little-endian value whose bit i is the coefficient of x^(127-i).
// The carry-less product of two such values, bit k of the 256-bit result
// standing for x^(255-k), is the field product times x; the table holds the
// powers of H' = H·x^-1 (prepared in Go: in this representation x^-1 is
// the constant P below), so X·H' yields exactly X·H.
//
// Aggregated reduction: for 16 blocks X0..X15 and accumulator A,
//   A' = (A+X0)·H^16 + X1·H^15 + ... + X15·H^1,
// so the 16 products are summed unreduced (lane l of table vector j holds
// H^(16-4j-l), matching block 4j+l) and reduced once. Each 128x128 product
// a·b is computed schoolbook from 64-bit halves:
//   LO = a0·b0, HI = a1·b1, MID = a0·b1 + a1·b0,
//   product = HI·2^128 + MID·2^64 + LO.
// Reduction. In qword positions the product is LO at 0-1, MID at 1-2 and
// HI at 2-3, where position 0 holds the highest-degree coefficients (bit k
// of the 256-bit value is the coefficient of x^(255-k)) and HI is where the
// reduced result must end up. The folding step, with the constant
// P = 0xC2000000_00000000_00000000_00000001 (P.q1 has bits 57, 62, 63),
//   F(V) = swap64(V) ^ clmul(V.q0, P.q1)
// takes a 128-bit value V at positions k, k+1 and returns an equivalent
// value at positions k+1, k+2: V.q1 stays where it is (swap64 moves it to
// the low qword of the result, i.e. position k+1), and V.q0 is reduced with
// x^128 = x^7 + x^2 + x + 1 (mod the GCM polynomial): its x^0 term moves
// V.q0 down by 128 bits (swap64 puts it at position k+2) and its x^1, x^2,
// x^7 terms move it down by 127, 126 and 121 bits (the clmul by P.q1 shifts
// by 63, 62 and 57 bits, 64 bits further down). Therefore
//   result = HI ^ F(MID ^ F(LO)),
// which costs two carry-less multiplications. Reduction is linear, so it is
// done on all four lanes at once and the lanes are summed afterwards.

// Byte-reversal mask, for each of the four lanes.
DATA bswapMask<>+0x00(SB)/8, $0x08090a0b0c0d0e0f
DATA bswapMask<>+0x08(SB)/8, $0x0001020304050607
DATA bswapMask<>+0x10(SB)/8, $0x08090a0b0c0d0e0f
DATA bswapMask<>+0x18(SB)/8, $0x0001020304050607
DATA bswapMask<>+0x20(SB)/8, $0x08090a0b0c0d0e0f
DATA bswapMask<>+0x28(SB)/8, $0x0001020304050607
DATA bswapMask<>+0x30(SB)/8, $0x08090a0b0c0d0e0f
DATA bswapMask<>+0x38(SB)/8, $0x0001020304050607
GLOBL bswapMask<>(SB), RODATA|NOPTR, $64

// Reduction constant P, for each of the four lanes.
DATA gcmPoly<>+0x00(SB)/8, $0x0000000000000001
DATA gcmPoly<>+0x08(SB)/8, $0xc200000000000000
DATA gcmPoly<>+0x10(SB)/8, $0x0000000000000001
DATA gcmPoly<>+0x18(SB)/8, $0xc200000000000000
DATA gcmPoly<>+0x20(SB)/8, $0x0000000000000001
DATA gcmPoly<>+0x28(SB)/8, $0xc200000000000000
DATA gcmPoly<>+0x30(SB)/8, $0x0000000000000001
DATA gcmPoly<>+0x38(SB)/8, $0xc200000000000000
GLOBL gcmPoly<>(SB), RODATA|NOPTR, $64

// Lane offsets 0,1,2,3 added to the broadcast counter.
DATA laneInc<>+0x00(SB)/8, $0
DATA laneInc<>+0x08(SB)/8, $0
DATA laneInc<>+0x10(SB)/8, $1
DATA laneInc<>+0x18(SB)/8, $0
DATA laneInc<>+0x20(SB)/8, $2
DATA laneInc<>+0x28(SB)/8, $0
DATA laneInc<>+0x30(SB)/8, $3
DATA laneInc<>+0x38(SB)/8, $0
GLOBL laneInc<>(SB), RODATA|NOPTR, $64

// Increment by 4 in every lane.
DATA inc4<>+0x00(SB)/8, $4
DATA inc4<>+0x08(SB)/8, $0
DATA inc4<>+0x10(SB)/8, $4
DATA inc4<>+0x18(SB)/8, $0
DATA inc4<>+0x20(SB)/8, $4
DATA inc4<>+0x28(SB)/8, $0
DATA inc4<>+0x30(SB)/8, $4
DATA inc4<>+0x38(SB)/8, $0
GLOBL inc4<>(SB), RODATA|NOPTR, $64

// Broadcast the 15 round keys at AX into Z8-Z22.
#define LOAD_KEYS \
	VBROADCASTI32X4 0(AX), Z8    \
	VBROADCASTI32X4 16(AX), Z9   \
	VBROADCASTI32X4 32(AX), Z10  \
	VBROADCASTI32X4 48(AX), Z11  \
	VBROADCASTI32X4 64(AX), Z12  \
	VBROADCASTI32X4 80(AX), Z13  \
	VBROADCASTI32X4 96(AX), Z14  \
	VBROADCASTI32X4 112(AX), Z15 \
	VBROADCASTI32X4 128(AX), Z16 \
	VBROADCASTI32X4 144(AX), Z17 \
	VBROADCASTI32X4 160(AX), Z18 \
	VBROADCASTI32X4 176(AX), Z19 \
	VBROADCASTI32X4 192(AX), Z20 \
	VBROADCASTI32X4 208(AX), Z21 \
	VBROADCASTI32X4 224(AX), Z22

// Set up Z23 (mask), Z25 (increment) and Z24 (counters c..c+3, reversed)
// from the counter block at CX.
#define LOAD_CTR \
	VMOVDQU64       bswapMask<>(SB), Z23 \
	VMOVDQU64       inc4<>(SB), Z25      \
	VBROADCASTI32X4 (CX), Z24            \
	VPSHUFB         Z23, Z24, Z24        \
	VPADDD          laneInc<>(SB), Z24, Z24

// Produce the next 16 counter blocks in Z0-Z3 (in block byte order) and
// advance Z24 by 16.
#define NEXT_CTRS \
	VPSHUFB Z23, Z24, Z0 \
	VPADDD  Z25, Z24, Z24 \
	VPSHUFB Z23, Z24, Z1 \
	VPADDD  Z25, Z24, Z24 \
	VPSHUFB Z23, Z24, Z2 \
	VPADDD  Z25, Z24, Z24 \
	VPSHUFB Z23, Z24, Z3 \
	VPADDD  Z25, Z24, Z24

#define AES_ROUND(k) \
	VAESENC k, Z0, Z0 \
	VAESENC k, Z1, Z1 \
	VAESENC k, Z2, Z2 \
	VAESENC k, Z3, Z3

// Encrypt the 16 blocks in Z0-Z3 with AES-256.
#define AES_16 \
	VPXORD Z8, Z0, Z0 \
	VPXORD Z8, Z1, Z1 \
	VPXORD Z8, Z2, Z2 \
	VPXORD Z8, Z3, Z3 \
	AES_ROUND(Z9)     \
	AES_ROUND(Z10)    \
	AES_ROUND(Z11)    \
	AES_ROUND(Z12)    \
	AES_ROUND(Z13)    \
	AES_ROUND(Z14)    \
	AES_ROUND(Z15)    \
	AES_ROUND(Z16)    \
	AES_ROUND(Z17)    \
	AES_ROUND(Z18)    \
	AES_ROUND(Z19)    \
	AES_ROUND(Z20)    \
	AES_ROUND(Z21)    \
	VAESENCLAST Z22, Z0, Z0 \
	VAESENCLAST Z22, Z1, Z1 \
	VAESENCLAST Z22, Z2, Z2 \
	VAESENCLAST Z22, Z3, Z3

// XOR the key stream in Z0-Z3 with 256 bytes at SI and store them at DI.
#define XOR_STORE_16 \
	VPXORD    0(SI), Z0, Z0   \
	VPXORD    64(SI), Z1, Z1  \
	VPXORD    128(SI), Z2, Z2 \
	VPXORD    192(SI), Z3, Z3 \
	VMOVDQU64 Z0, 0(DI)       \
	VMOVDQU64 Z1, 64(DI)      \
	VMOVDQU64 Z2, 128(DI)     \
	VMOVDQU64 Z3, 192(DI)

// Load 256 bytes at SI into Z4-Z7, byte-reflected.
#define LOAD_REFLECT_16 \
	VMOVDQU64 0(SI), Z4   \
	VMOVDQU64 64(SI), Z5  \
	VMOVDQU64 128(SI), Z6 \
	VMOVDQU64 192(SI), Z7 \
	VPSHUFB   Z23, Z4, Z4 \
	VPSHUFB   Z23, Z5, Z5 \
	VPSHUFB   Z23, Z6, Z6 \
	VPSHUFB   Z23, Z7, Z7

// GHASH of 16 byte-reflected blocks in Z4-Z7 into the accumulator Z31:
//   Z31 = (Z31 + X0)·H^16 + X1·H^15 + ... + X15·H
// split into steps so that they can be interleaved with the AES rounds.
// The four lane products of each vector with the table vector at off(R8)
// (lane l of vector j holds H^(16-4j-l)) are summed into LO (Z26),
// HI (Z27) and MID (Z28); Z29 and Z30 are temporaries.

// GH_FIRST_LH/GH_FIRST_M: first vector, which also absorbs the accumulator.
#define GH_FIRST_LH \
	VPXORD     Z31, Z4, Z4           \
	VPCLMULQDQ $0x00, 0(R8), Z4, Z26 \
	VPCLMULQDQ $0x11, 0(R8), Z4, Z27

#define GH_FIRST_M \
	VPCLMULQDQ $0x01, 0(R8), Z4, Z28 \
	VPCLMULQDQ $0x10, 0(R8), Z4, Z29 \
	VPXORD     Z29, Z28, Z28

// LO ^= X.q0·T.q0 and HI ^= X.q1·T.q1 per lane, T = off(R8).
#define GH_LH(X, off) \
	VPCLMULQDQ $0x00, off(R8), X, Z29 \
	VPCLMULQDQ $0x11, off(R8), X, Z30 \
	VPXORD     Z29, Z26, Z26          \
	VPXORD     Z30, Z27, Z27

// MID ^= X.q0·T.q1 ^ X.q1·T.q0 per lane.
#define GH_M(X, off) \
	VPCLMULQDQ $0x01, off(R8), X, Z29 \
	VPCLMULQDQ $0x10, off(R8), X, Z30 \
	VPTERNLOGD $0x96, Z29, Z30, Z28

// MID ^= F(LO).
#define GH_RED1 \
	VPCLMULQDQ $0x10, gcmPoly<>(SB), Z26, Z29 \
	VPSHUFD    $0x4e, Z26, Z26                \
	VPTERNLOGD $0x96, Z29, Z26, Z28

// HI ^= F(MID); HI is now the reduced product in each lane.
#define GH_RED2 \
	VPCLMULQDQ $0x10, gcmPoly<>(SB), Z28, Z29 \
	VPSHUFD    $0x4e, Z28, Z28                \
	VPTERNLOGD $0x96, Z29, Z28, Z27

// X31 = sum of the four lanes of HI (writing X31 zeroes lanes 1-3 of Z31).
#define GH_SUM \
	VEXTRACTI64X4 $1, Z27, Y29 \
	VPXORD        Y29, Y27, Y27 \
	VEXTRACTI32X4 $1, Y27, X29 \
	VPXORD        X29, X27, X31

#define GHASH_16 \
	GH_FIRST_LH     \
	GH_FIRST_M      \
	GH_LH(Z5, 64)   \
	GH_M(Z5, 64)    \
	GH_LH(Z6, 128)  \
	GH_M(Z6, 128)   \
	GH_LH(Z7, 192)  \
	GH_M(Z7, 192)   \
	GH_RED1         \
	GH_RED2         \
	GH_SUM

// AES-256 of the counter blocks in Z0-Z3 interleaved with GHASH_16 of
// Z4-Z7; the two are independent, so their latencies overlap.
#define AES_GHASH_16 \
	VPXORD Z8, Z0, Z0 \
	VPXORD Z8, Z1, Z1 \
	VPXORD Z8, Z2, Z2 \
	VPXORD Z8, Z3, Z3 \
	AES_ROUND(Z9)     \
	GH_FIRST_LH       \
	AES_ROUND(Z10)    \
	GH_FIRST_M        \
	AES_ROUND(Z11)    \
	GH_LH(Z5, 64)     \
	AES_ROUND(Z12)    \
	GH_M(Z5, 64)      \
	AES_ROUND(Z13)    \
	GH_LH(Z6, 128)    \
	AES_ROUND(Z14)    \
	GH_M(Z6, 128)     \
	AES_ROUND(Z15)    \
	GH_LH(Z7, 192)    \
	AES_ROUND(Z16)    \
	GH_M(Z7, 192)     \
	AES_ROUND(Z17)    \
	GH_RED1           \
	AES_ROUND(Z18)    \
	GH_RED2           \
	AES_ROUND(Z19)    \
	GH_SUM            \
	AES_ROUND(Z20)    \
	AES_ROUND(Z21)    \
	VAESENCLAST Z22, Z0, Z0 \
	VAESENCLAST Z22, Z1, Z1 \
	VAESENCLAST Z22, Z2, Z2 \
	VAESENCLAST Z22, Z3, Z3

// Byte-reflect the ciphertext in Z0-Z3 into Z4-Z7.
#define REFLECT_OUT \
	VPSHUFB Z23, Z0, Z4 \
	VPSHUFB Z23, Z1, Z5 \
	VPSHUFB Z23, Z2, Z6 \
	VPSHUFB Z23, Z3, Z7

// func sealAsm(rk *[240]byte, htab *[256]byte, ctr *[16]byte, acc *[16]byte, dst, src *byte, n int)
//
// Software-pipelined: each iteration encrypts 16 new blocks while hashing
// the 16 ciphertext blocks produced by the previous iteration.
TEXT ·sealAsm(SB), NOSPLIT, $0-56
	MOVQ  rk+0(FP), AX
	MOVQ  htab+8(FP), R8
	MOVQ  ctr+16(FP), CX
	MOVQ  acc+24(FP), DX
	MOVQ  dst+32(FP), DI
	MOVQ  src+40(FP), SI
	MOVQ  n+48(FP), BX
	TESTQ BX, BX
	JZ    sealDone

	LOAD_KEYS
	LOAD_CTR
	VMOVDQU64 (DX), X31

	// First 16 blocks: encryption only.
	NEXT_CTRS
	AES_16
	XOR_STORE_16
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $256, BX
	JZ   sealLast

sealLoop:
	REFLECT_OUT // previous ciphertext, hashed below
	NEXT_CTRS
	AES_GHASH_16
	XOR_STORE_16
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $256, BX
	JNZ  sealLoop

sealLast:
	// Hash the last 16 ciphertext blocks.
	REFLECT_OUT
	GHASH_16
	VMOVDQU64 X31, (DX)
	VZEROUPPER

sealDone:
	RET

// func openAsm(rk *[240]byte, htab *[256]byte, ctr *[16]byte, acc *[16]byte, dst, src *byte, n int)
//
// Each iteration hashes 16 ciphertext blocks and decrypts them, the two
// interleaved.
TEXT ·openAsm(SB), NOSPLIT, $0-56
	MOVQ  rk+0(FP), AX
	MOVQ  htab+8(FP), R8
	MOVQ  ctr+16(FP), CX
	MOVQ  acc+24(FP), DX
	MOVQ  dst+32(FP), DI
	MOVQ  src+40(FP), SI
	MOVQ  n+48(FP), BX
	TESTQ BX, BX
	JZ    openDone

	LOAD_KEYS
	LOAD_CTR
	VMOVDQU64 (DX), X31

openLoop:
	// Load the ciphertext before anything is stored (dst may equal src).
	LOAD_REFLECT_16
	NEXT_CTRS
	AES_GHASH_16
	XOR_STORE_16
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $256, BX
	JNZ  openLoop

	VMOVDQU64 X31, (DX)
	VZEROUPPER

openDone:
	RET

// func ctrAsm(rk *[240]byte, ctr *[16]byte, dst, src *byte, n int)
TEXT ·ctrAsm(SB), NOSPLIT, $0-40
	MOVQ  rk+0(FP), AX
	MOVQ  ctr+8(FP), CX
	MOVQ  dst+16(FP), DI
	MOVQ  src+24(FP), SI
	MOVQ  n+32(FP), BX
	TESTQ BX, BX
	JZ    ctrDone

	LOAD_KEYS
	LOAD_CTR

ctrLoop:
	NEXT_CTRS
	AES_16
	XOR_STORE_16
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $256, BX
	JNZ  ctrLoop

	VZEROUPPER

ctrDone:
	RET

// func ghashAsm(htab *[256]byte, acc *[16]byte, data *byte, n int)
TEXT ·ghashAsm(SB), NOSPLIT, $0-32
	MOVQ htab+0(FP), R8
	MOVQ acc+8(FP), DX
	MOVQ data+16(FP), SI
	MOVQ n+24(FP), BX

	VMOVDQU64 bswapMask<>(SB), Z23
	VMOVDQU64 (DX), X31
	CMPQ      BX, $256
	JB        ghashSingle

ghashLoop16:
	LOAD_REFLECT_16
	GHASH_16
	ADDQ $256, SI
	SUBQ $256, BX
	CMPQ BX, $256
	JAE  ghashLoop16

ghashSingle:
	TESTQ BX, BX
	JZ    ghashDone

ghashLoop1:
	// X31 = (X31 + X)·H for one block X, with the same product and
	// reduction as GHASH_16 on a single lane; H is the last table entry.
	VMOVDQU64  (SI), X4
	VPSHUFB    X23, X4, X4
	VPXORD     X31, X4, X4
	VPCLMULQDQ $0x00, 240(R8), X4, X26
	VPCLMULQDQ $0x11, 240(R8), X4, X27
	VPCLMULQDQ $0x01, 240(R8), X4, X28
	VPCLMULQDQ $0x10, 240(R8), X4, X29
	VPXORD     X29, X28, X28
	VPCLMULQDQ $0x10, gcmPoly<>(SB), X26, X29
	VPSHUFD    $0x4e, X26, X26
	VPTERNLOGD $0x96, X29, X26, X28
	VPCLMULQDQ $0x10, gcmPoly<>(SB), X28, X29
	VPSHUFD    $0x4e, X28, X28
	VPTERNLOGD $0x96, X29, X28, X27
	VMOVDQA64  X27, X31
	ADDQ       $16, SI
	SUBQ       $16, BX
	JNZ        ghashLoop1

ghashDone:
	VMOVDQU64 X31, (DX)
	VZEROUPPER
	RET

// func subWordAsm(w uint32) uint32
//
// The AES S-box applied to each byte of w. AESENCLAST with an all-zero
// round key computes SubBytes(ShiftRows(state)); with w in all four
// columns, ShiftRows moves nothing, so every column of the result is
// SubWord(w). Constant time, no tables.
TEXT ·subWordAsm(SB), NOSPLIT, $0-12
	MOVL       w+0(FP), AX
	MOVQ       AX, X0
	PSHUFD     $0, X0, X0
	PXOR       X1, X1
	AESENCLAST X1, X0
	MOVQ       X0, AX
	MOVL       AX, ret+8(FP)
	RET

// func clmulAsm(a, b uint64) (hi, lo uint64)
//
// The 128-bit carry-less product of a and b (one PCLMULQDQ).
TEXT ·clmulAsm(SB), NOSPLIT, $0-32
	MOVQ      a+0(FP), X0
	MOVQ      b+8(FP), X1
	PCLMULQDQ $0x00, X1, X0
	MOVQ      X0, AX
	PEXTRQ    $1, X0, BX
	MOVQ      BX, hi+16(FP)
	MOVQ      AX, lo+24(FP)
	RET
