//go:build amd64 && !purego

#include "textflag.h"

// AES-256-GCM bulk routines using VAES and VPCLMULQDQ on 256-bit vectors,
// for CPUs with AVX2 but without AVX-512 (e.g. AMD Zen 3). Only VEX-encoded
// instructions on Y0-Y15 are used: no EVEX, no mask registers.
//
// The algorithm is that of aesgcm_amd64.s with two 128-bit lanes (two AES
// blocks) per YMM register instead of four per ZMM register: the main loops
// still process 16 blocks (256 bytes) per iteration, now in eight YMM
// registers, and the 16 products of each GHASH batch are summed unreduced
// and reduced once. The table of hash key powers starts the same way:
// vector j (bytes 32j..32j+31) holds H^(16-2j) in lane 0 and H^(15-2j) in
// lane 1, matching blocks 2j and 2j+1 of a 256-byte batch; bytes 256-511
// hold the Karatsuba factors of the same powers (see GH_FIRST_Y). See
// aesgcm_amd64.s for the GHASH representation and the reduction.
//
// Two differences are tuned for AMD Zen 3, where VPCLMULQDQ (on one port,
// issuing every other cycle) and byte shuffles compete with VAESENC for
// execution ports while plain vector logic does not: the products use
// Karatsuba multiplication (three VPCLMULQDQ per pair of blocks instead of
// four), and the counter blocks are usually made without shuffles (see
// NEXT_CTRS_FAST_Y).
//
// Register roles:
//   Y0-Y7   AES state: counter blocks 2i, 2i+1 of the iteration in Yi
//   Y8      current round key, broadcast to both lanes
//   Y9      two ciphertext blocks, byte-reflected, being hashed
//   Y10     GHASH partial products LO
//   Y11     GHASH partial products HI
//   Y12     GHASH partial products M (Karatsuba middle terms); between
//           batches, the accumulator (lane 0; lane 1 is zero)
//   Y13     temporary
//   Y14     the counter block of the next iteration's first block, in
//           block byte order, in both lanes (see NEXT_CTRS_FAST_Y)
//   Y15     byte-reversal shuffle mask
// General purpose: AX round keys (15 x 16 bytes, broadcast when used),
// R8 table of H powers, R9 data being hashed, CX counter block, R10 the
// 32-bit counter of Y14, DX accumulator, SI source, DI destination,
// BX remaining byte count.

// Byte-reversal mask, for each of the two lanes.
DATA bswapMaskY<>+0x00(SB)/8, $0x08090a0b0c0d0e0f
DATA bswapMaskY<>+0x08(SB)/8, $0x0001020304050607
DATA bswapMaskY<>+0x10(SB)/8, $0x08090a0b0c0d0e0f
DATA bswapMaskY<>+0x18(SB)/8, $0x0001020304050607
GLOBL bswapMaskY<>(SB), RODATA|NOPTR, $32

// Reduction constant P, for each of the two lanes.
DATA gcmPolyY<>+0x00(SB)/8, $0x0000000000000001
DATA gcmPolyY<>+0x08(SB)/8, $0xc200000000000000
DATA gcmPolyY<>+0x10(SB)/8, $0x0000000000000001
DATA gcmPolyY<>+0x18(SB)/8, $0xc200000000000000
GLOBL gcmPolyY<>(SB), RODATA|NOPTR, $32

// Counter increments, one 32-byte entry per register of an iteration:
// entry i (i = 0..7) holds 2i for lane 0 and 2i+1 for lane 1, entry 8 holds
// 16 for both lanes (the next iteration). In ctrLE<> they are in the low
// dword of each lane, for reversed counter blocks, whose low dword is the
// 32-bit counter. In ctrBE<> they are in the top byte of dword 3, which in
// a counter block in block byte order is the last byte of the counter.
DATA ctrLE<>+0x000(SB)/8, $0x0
DATA ctrLE<>+0x008(SB)/8, $0x0
DATA ctrLE<>+0x010(SB)/8, $0x1
DATA ctrLE<>+0x018(SB)/8, $0x0
DATA ctrLE<>+0x020(SB)/8, $0x2
DATA ctrLE<>+0x028(SB)/8, $0x0
DATA ctrLE<>+0x030(SB)/8, $0x3
DATA ctrLE<>+0x038(SB)/8, $0x0
DATA ctrLE<>+0x040(SB)/8, $0x4
DATA ctrLE<>+0x048(SB)/8, $0x0
DATA ctrLE<>+0x050(SB)/8, $0x5
DATA ctrLE<>+0x058(SB)/8, $0x0
DATA ctrLE<>+0x060(SB)/8, $0x6
DATA ctrLE<>+0x068(SB)/8, $0x0
DATA ctrLE<>+0x070(SB)/8, $0x7
DATA ctrLE<>+0x078(SB)/8, $0x0
DATA ctrLE<>+0x080(SB)/8, $0x8
DATA ctrLE<>+0x088(SB)/8, $0x0
DATA ctrLE<>+0x090(SB)/8, $0x9
DATA ctrLE<>+0x098(SB)/8, $0x0
DATA ctrLE<>+0x0a0(SB)/8, $0xa
DATA ctrLE<>+0x0a8(SB)/8, $0x0
DATA ctrLE<>+0x0b0(SB)/8, $0xb
DATA ctrLE<>+0x0b8(SB)/8, $0x0
DATA ctrLE<>+0x0c0(SB)/8, $0xc
DATA ctrLE<>+0x0c8(SB)/8, $0x0
DATA ctrLE<>+0x0d0(SB)/8, $0xd
DATA ctrLE<>+0x0d8(SB)/8, $0x0
DATA ctrLE<>+0x0e0(SB)/8, $0xe
DATA ctrLE<>+0x0e8(SB)/8, $0x0
DATA ctrLE<>+0x0f0(SB)/8, $0xf
DATA ctrLE<>+0x0f8(SB)/8, $0x0
DATA ctrLE<>+0x100(SB)/8, $0x10
DATA ctrLE<>+0x108(SB)/8, $0x0
DATA ctrLE<>+0x110(SB)/8, $0x10
DATA ctrLE<>+0x118(SB)/8, $0x0
GLOBL ctrLE<>(SB), RODATA|NOPTR, $288

DATA ctrBE<>+0x000(SB)/8, $0x0
DATA ctrBE<>+0x008(SB)/8, $0x0
DATA ctrBE<>+0x010(SB)/8, $0x0
DATA ctrBE<>+0x018(SB)/8, $0x100000000000000
DATA ctrBE<>+0x020(SB)/8, $0x0
DATA ctrBE<>+0x028(SB)/8, $0x200000000000000
DATA ctrBE<>+0x030(SB)/8, $0x0
DATA ctrBE<>+0x038(SB)/8, $0x300000000000000
DATA ctrBE<>+0x040(SB)/8, $0x0
DATA ctrBE<>+0x048(SB)/8, $0x400000000000000
DATA ctrBE<>+0x050(SB)/8, $0x0
DATA ctrBE<>+0x058(SB)/8, $0x500000000000000
DATA ctrBE<>+0x060(SB)/8, $0x0
DATA ctrBE<>+0x068(SB)/8, $0x600000000000000
DATA ctrBE<>+0x070(SB)/8, $0x0
DATA ctrBE<>+0x078(SB)/8, $0x700000000000000
DATA ctrBE<>+0x080(SB)/8, $0x0
DATA ctrBE<>+0x088(SB)/8, $0x800000000000000
DATA ctrBE<>+0x090(SB)/8, $0x0
DATA ctrBE<>+0x098(SB)/8, $0x900000000000000
DATA ctrBE<>+0x0a0(SB)/8, $0x0
DATA ctrBE<>+0x0a8(SB)/8, $0xa00000000000000
DATA ctrBE<>+0x0b0(SB)/8, $0x0
DATA ctrBE<>+0x0b8(SB)/8, $0xb00000000000000
DATA ctrBE<>+0x0c0(SB)/8, $0x0
DATA ctrBE<>+0x0c8(SB)/8, $0xc00000000000000
DATA ctrBE<>+0x0d0(SB)/8, $0x0
DATA ctrBE<>+0x0d8(SB)/8, $0xd00000000000000
DATA ctrBE<>+0x0e0(SB)/8, $0x0
DATA ctrBE<>+0x0e8(SB)/8, $0xe00000000000000
DATA ctrBE<>+0x0f0(SB)/8, $0x0
DATA ctrBE<>+0x0f8(SB)/8, $0xf00000000000000
DATA ctrBE<>+0x100(SB)/8, $0x0
DATA ctrBE<>+0x108(SB)/8, $0x1000000000000000
DATA ctrBE<>+0x110(SB)/8, $0x0
DATA ctrBE<>+0x118(SB)/8, $0x1000000000000000
GLOBL ctrBE<>(SB), RODATA|NOPTR, $288

// Set up Y15 (mask), Y14 (the counter block at CX, in both lanes) and R10
// (its 32-bit counter).
#define LOAD_CTR_Y \
	VMOVDQU        bswapMaskY<>(SB), Y15 \
	VBROADCASTI128 (CX), Y14             \
	MOVL           12(CX), R10           \
	BSWAPL         R10

// NEXT_CTRS_FAST_Y and NEXT_CTRS_SLOW_Y produce the next 16 counter blocks
// in Y0-Y7 (in block byte order) and advance Y14 and R10 by 16.
//
// The fast variant adds the increments to the last byte of the blocks as
// they are, with no shuffles (which compete with VAESENC for an execution
// port on AMD Zen 3). That is correct only if the byte does not overflow,
// i.e. if R10B <= 0xef; the call sites check this (the counter starts at 2
// and advances by 16, so 15 of every 16 iterations take the fast path).
#define NEXT_CTRS_FAST_Y \
	VPADDD ctrBE<>+0(SB), Y14, Y0    \
	VPADDD ctrBE<>+32(SB), Y14, Y1   \
	VPADDD ctrBE<>+64(SB), Y14, Y2   \
	VPADDD ctrBE<>+96(SB), Y14, Y3   \
	VPADDD ctrBE<>+128(SB), Y14, Y4  \
	VPADDD ctrBE<>+160(SB), Y14, Y5  \
	VPADDD ctrBE<>+192(SB), Y14, Y6  \
	VPADDD ctrBE<>+224(SB), Y14, Y7  \
	VPADDD ctrBE<>+256(SB), Y14, Y14 \
	ADDL   $16, R10

// The slow variant works on the reversed blocks, where VPADDD on the low
// dword implements GCM's inc32 (mod 2^32) for any counter. Y13 is a
// temporary.
#define NEXT_CTRS_SLOW_Y \
	VPSHUFB Y15, Y14, Y13             \
	VPADDD  ctrLE<>+0(SB), Y13, Y0    \
	VPADDD  ctrLE<>+32(SB), Y13, Y1   \
	VPADDD  ctrLE<>+64(SB), Y13, Y2   \
	VPADDD  ctrLE<>+96(SB), Y13, Y3   \
	VPADDD  ctrLE<>+128(SB), Y13, Y4  \
	VPADDD  ctrLE<>+160(SB), Y13, Y5  \
	VPADDD  ctrLE<>+192(SB), Y13, Y6  \
	VPADDD  ctrLE<>+224(SB), Y13, Y7  \
	VPADDD  ctrLE<>+256(SB), Y13, Y13 \
	VPSHUFB Y15, Y0, Y0               \
	VPSHUFB Y15, Y1, Y1               \
	VPSHUFB Y15, Y2, Y2               \
	VPSHUFB Y15, Y3, Y3               \
	VPSHUFB Y15, Y4, Y4               \
	VPSHUFB Y15, Y5, Y5               \
	VPSHUFB Y15, Y6, Y6               \
	VPSHUFB Y15, Y7, Y7               \
	VPSHUFB Y15, Y13, Y14             \
	ADDL    $16, R10

// Round key 0 (AddRoundKey) on Y0-Y7.
#define AES_WHITEN_Y \
	VBROADCASTI128 0(AX), Y8 \
	VPXOR          Y8, Y0, Y0 \
	VPXOR          Y8, Y1, Y1 \
	VPXOR          Y8, Y2, Y2 \
	VPXOR          Y8, Y3, Y3 \
	VPXOR          Y8, Y4, Y4 \
	VPXOR          Y8, Y5, Y5 \
	VPXOR          Y8, Y6, Y6 \
	VPXOR          Y8, Y7, Y7

// One AES round with the round key at off(AX) on Y0-Y7.
#define AES_ROUND_Y(off) \
	VBROADCASTI128 off(AX), Y8 \
	VAESENC        Y8, Y0, Y0  \
	VAESENC        Y8, Y1, Y1  \
	VAESENC        Y8, Y2, Y2  \
	VAESENC        Y8, Y3, Y3  \
	VAESENC        Y8, Y4, Y4  \
	VAESENC        Y8, Y5, Y5  \
	VAESENC        Y8, Y6, Y6  \
	VAESENC        Y8, Y7, Y7

// The last AES round (round key 14) on Y0-Y7.
#define AES_LAST_Y \
	VBROADCASTI128 224(AX), Y8 \
	VAESENCLAST    Y8, Y0, Y0  \
	VAESENCLAST    Y8, Y1, Y1  \
	VAESENCLAST    Y8, Y2, Y2  \
	VAESENCLAST    Y8, Y3, Y3  \
	VAESENCLAST    Y8, Y4, Y4  \
	VAESENCLAST    Y8, Y5, Y5  \
	VAESENCLAST    Y8, Y6, Y6  \
	VAESENCLAST    Y8, Y7, Y7

// Encrypt the 16 blocks in Y0-Y7 with AES-256.
#define AES_16_Y \
	AES_WHITEN_Y       \
	AES_ROUND_Y(16)    \
	AES_ROUND_Y(32)    \
	AES_ROUND_Y(48)    \
	AES_ROUND_Y(64)    \
	AES_ROUND_Y(80)    \
	AES_ROUND_Y(96)    \
	AES_ROUND_Y(112)   \
	AES_ROUND_Y(128)   \
	AES_ROUND_Y(144)   \
	AES_ROUND_Y(160)   \
	AES_ROUND_Y(176)   \
	AES_ROUND_Y(192)   \
	AES_ROUND_Y(208)   \
	AES_LAST_Y

// XOR the key stream in Y0-Y7 with 256 bytes at SI and store them at DI.
#define XOR_STORE_16_Y \
	VPXOR   0(SI), Y0, Y0   \
	VPXOR   32(SI), Y1, Y1  \
	VPXOR   64(SI), Y2, Y2  \
	VPXOR   96(SI), Y3, Y3  \
	VPXOR   128(SI), Y4, Y4 \
	VPXOR   160(SI), Y5, Y5 \
	VPXOR   192(SI), Y6, Y6 \
	VPXOR   224(SI), Y7, Y7 \
	VMOVDQU Y0, 0(DI)       \
	VMOVDQU Y1, 32(DI)      \
	VMOVDQU Y2, 64(DI)      \
	VMOVDQU Y3, 96(DI)      \
	VMOVDQU Y4, 128(DI)     \
	VMOVDQU Y5, 160(DI)     \
	VMOVDQU Y6, 192(DI)     \
	VMOVDQU Y7, 224(DI)

// GHASH of the data at R9 with the table at R8, two blocks at a time,
// with Karatsuba multiplication: for a block a and key power b,
//   LO = a0·b0, HI = a1·b1, M = (a0+a1)·(b0+b1), MID = M + LO + HI,
// three carry-less multiplications instead of four. The products of the
// two (byte-reflected) blocks at off(R9) with the two powers at off(R8)
// are summed into LO (Y10), HI (Y11) and M (Y12); the factors b0+b1 are at
// 256+off(R8), each in both qwords of its lane. M is turned into MID once
// per batch, in GH_RED1_Y.

// GH_FIRST_Y: the first two blocks, which also absorb the accumulator in
// Y12 and initialize LO, HI and M.
#define GH_FIRST_Y(off) \
	VMOVDQU    off(R9), Y9                 \
	VPSHUFB    Y15, Y9, Y9                 \
	VPXOR      Y12, Y9, Y9                 \
	VPCLMULQDQ $0x00, off(R8), Y9, Y10     \
	VPCLMULQDQ $0x11, off(R8), Y9, Y11     \
	VPSHUFD    $0x4e, Y9, Y13              \
	VPXOR      Y9, Y13, Y13                \
	VPCLMULQDQ $0x00, 256+off(R8), Y13, Y12

// GH_STEP_Y: two more blocks.
#define GH_STEP_Y(off) \
	VMOVDQU    off(R9), Y9                 \
	VPSHUFB    Y15, Y9, Y9                 \
	VPCLMULQDQ $0x00, off(R8), Y9, Y13     \
	VPXOR      Y13, Y10, Y10               \
	VPCLMULQDQ $0x11, off(R8), Y9, Y13     \
	VPXOR      Y13, Y11, Y11               \
	VPSHUFD    $0x4e, Y9, Y13              \
	VPXOR      Y9, Y13, Y13                \
	VPCLMULQDQ $0x00, 256+off(R8), Y13, Y13 \
	VPXOR      Y13, Y12, Y12

// MID = M ^ LO ^ HI, then MID ^= F(LO),
// F(V) = swap64(V) ^ clmul(V.q0, P.q1).
#define GH_RED1_Y \
	VPXOR      Y10, Y12, Y12               \
	VPXOR      Y11, Y12, Y12               \
	VPCLMULQDQ $0x10, gcmPolyY<>(SB), Y10, Y13 \
	VPSHUFD    $0x4e, Y10, Y10             \
	VPXOR      Y13, Y12, Y12               \
	VPXOR      Y10, Y12, Y12

// HI ^= F(MID); HI is now the reduced product in each lane.
#define GH_RED2_Y \
	VPCLMULQDQ $0x10, gcmPolyY<>(SB), Y12, Y13 \
	VPSHUFD    $0x4e, Y12, Y12             \
	VPXOR      Y13, Y11, Y11               \
	VPXOR      Y12, Y11, Y11

// Accumulator X12 = sum of the two lanes of HI (the VEX-encoded 128-bit
// VPXOR zeroes lane 1 of Y12).
#define GH_SUM_Y \
	VEXTRACTI128 $1, Y11, X13 \
	VPXOR        X13, X11, X12

// GHASH of the 16 blocks at R9 into the accumulator Y12:
//   Y12 = (Y12 + X0)·H^16 + X1·H^15 + ... + X15·H
#define GHASH_16_Y \
	GH_FIRST_Y(0)     \
	GH_STEP_Y(32)     \
	GH_STEP_Y(64)     \
	GH_STEP_Y(96)     \
	GH_STEP_Y(128)    \
	GH_STEP_Y(160)    \
	GH_STEP_Y(192)    \
	GH_STEP_Y(224)    \
	GH_RED1_Y         \
	GH_RED2_Y         \
	GH_SUM_Y

// AES-256 of the counter blocks in Y0-Y7 interleaved with GHASH_16_Y of
// the 16 blocks at R9; the two are independent, so their latencies
// overlap.
#define AES_GHASH_16_Y \
	AES_WHITEN_Y       \
	AES_ROUND_Y(16)    \
	GH_FIRST_Y(0)      \
	AES_ROUND_Y(32)    \
	GH_STEP_Y(32)      \
	AES_ROUND_Y(48)    \
	GH_STEP_Y(64)      \
	AES_ROUND_Y(64)    \
	GH_STEP_Y(96)      \
	AES_ROUND_Y(80)    \
	GH_STEP_Y(128)     \
	AES_ROUND_Y(96)    \
	GH_STEP_Y(160)     \
	AES_ROUND_Y(112)   \
	GH_STEP_Y(192)     \
	AES_ROUND_Y(128)   \
	GH_STEP_Y(224)     \
	AES_ROUND_Y(144)   \
	GH_RED1_Y          \
	AES_ROUND_Y(160)   \
	GH_RED2_Y          \
	AES_ROUND_Y(176)   \
	GH_SUM_Y           \
	AES_ROUND_Y(192)   \
	AES_ROUND_Y(208)   \
	AES_LAST_Y

// func sealAVX2(rk *[240]byte, htab *[512]byte, ctr *[16]byte, acc *[16]byte, dst, src *byte, n int)
//
// Software-pipelined: each iteration encrypts 16 new blocks while hashing
// the 16 ciphertext blocks the previous iteration stored (read back from
// dst).
TEXT ·sealAVX2(SB), NOSPLIT, $0-56
	MOVQ  rk+0(FP), AX
	MOVQ  htab+8(FP), R8
	MOVQ  ctr+16(FP), CX
	MOVQ  acc+24(FP), DX
	MOVQ  dst+32(FP), DI
	MOVQ  src+40(FP), SI
	MOVQ  n+48(FP), BX
	TESTQ BX, BX
	JZ    sealY_done

	LOAD_CTR_Y
	VMOVDQU (DX), X12

	// First 16 blocks: encryption only.
	CMPB R10B, $0xef
	JHI  sealY_ctrSlow1
	NEXT_CTRS_FAST_Y
	JMP  sealY_ctrDone1

sealY_ctrSlow1:
	NEXT_CTRS_SLOW_Y

sealY_ctrDone1:
	AES_16_Y
	XOR_STORE_16_Y
	MOVQ DI, R9
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $256, BX
	JZ   sealY_last

sealY_loop:
	CMPB R10B, $0xef
	JHI  sealY_ctrSlow2
	NEXT_CTRS_FAST_Y
	JMP  sealY_ctrDone2

sealY_ctrSlow2:
	NEXT_CTRS_SLOW_Y

sealY_ctrDone2:
	AES_GHASH_16_Y // previous ciphertext, at R9
	XOR_STORE_16_Y
	MOVQ DI, R9
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $256, BX
	JNZ  sealY_loop

sealY_last:
	// Hash the last 16 ciphertext blocks.
	GHASH_16_Y
	VMOVDQU X12, (DX)
	VZEROUPPER

sealY_done:
	RET

// func openAVX2(rk *[240]byte, htab *[512]byte, ctr *[16]byte, acc *[16]byte, dst, src *byte, n int)
//
// Each iteration hashes 16 ciphertext blocks and decrypts them, the two
// interleaved. All loads for the hash precede the stores of the iteration,
// so dst may equal src.
TEXT ·openAVX2(SB), NOSPLIT, $0-56
	MOVQ  rk+0(FP), AX
	MOVQ  htab+8(FP), R8
	MOVQ  ctr+16(FP), CX
	MOVQ  acc+24(FP), DX
	MOVQ  dst+32(FP), DI
	MOVQ  src+40(FP), SI
	MOVQ  n+48(FP), BX
	TESTQ BX, BX
	JZ    openY_done

	LOAD_CTR_Y
	VMOVDQU (DX), X12

openY_loop:
	MOVQ SI, R9
	CMPB R10B, $0xef
	JHI  openY_ctrSlow3
	NEXT_CTRS_FAST_Y
	JMP  openY_ctrDone3

openY_ctrSlow3:
	NEXT_CTRS_SLOW_Y

openY_ctrDone3:
	AES_GHASH_16_Y
	XOR_STORE_16_Y
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $256, BX
	JNZ  openY_loop

	VMOVDQU X12, (DX)
	VZEROUPPER

openY_done:
	RET

// func ctrAVX2(rk *[240]byte, ctr *[16]byte, dst, src *byte, n int)
TEXT ·ctrAVX2(SB), NOSPLIT, $0-40
	MOVQ  rk+0(FP), AX
	MOVQ  ctr+8(FP), CX
	MOVQ  dst+16(FP), DI
	MOVQ  src+24(FP), SI
	MOVQ  n+32(FP), BX
	TESTQ BX, BX
	JZ    ctrY_done

	LOAD_CTR_Y

ctrY_loop:
	CMPB R10B, $0xef
	JHI  ctrY_ctrSlow4
	NEXT_CTRS_FAST_Y
	JMP  ctrY_ctrDone4

ctrY_ctrSlow4:
	NEXT_CTRS_SLOW_Y

ctrY_ctrDone4:
	AES_16_Y
	XOR_STORE_16_Y
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $256, BX
	JNZ  ctrY_loop

	VZEROUPPER

ctrY_done:
	RET

// func ghashAVX2(htab *[512]byte, acc *[16]byte, data *byte, n int)
//
// Whole batches of 16 blocks use GHASH_16_Y. The k < 16 remaining blocks
// are aggregated the same way with the powers H^k..H^1, which are the last
// k of the 16 powers (their Karatsuba factors 256 bytes further on):
// (A+X0)·H^k + X1·H^(k-1) + ... + X(k-1)·H, summed unreduced and reduced
// once. If k is odd, the first of them is multiplied on its own with
// 128-bit instructions (which zero lane 1 of LO, HI and M), the rest two
// at a time.
TEXT ·ghashAVX2(SB), NOSPLIT, $0-32
	MOVQ htab+0(FP), R8
	MOVQ acc+8(FP), DX
	MOVQ data+16(FP), R9
	MOVQ n+24(FP), BX

	VMOVDQU bswapMaskY<>(SB), Y15
	VMOVDQU (DX), X12
	CMPQ    BX, $256
	JB      ghashY_tail

ghashY_loop16:
	GHASH_16_Y
	ADDQ $256, R9
	SUBQ $256, BX
	CMPQ BX, $256
	JAE  ghashY_loop16

ghashY_tail:
	TESTQ BX, BX
	JZ    ghashY_done

	// R8 = address of H^k, k = BX/16.
	ADDQ  $256, R8
	SUBQ  BX, R8
	TESTQ $16, BX
	JZ    ghashY_even

	// Odd k: the first block alone, absorbing the accumulator.
	VMOVDQU    (R9), X9
	VPSHUFB    X15, X9, X9
	VPXOR      X12, X9, X9
	VPCLMULQDQ $0x00, (R8), X9, X10
	VPCLMULQDQ $0x11, (R8), X9, X11
	VPSHUFD    $0x4e, X9, X13
	VPXOR      X9, X13, X13
	VPCLMULQDQ $0x00, 256(R8), X13, X12
	ADDQ       $16, R9
	ADDQ       $16, R8
	SUBQ       $16, BX
	JZ         ghashY_reduce
	JMP        ghashY_pairs

ghashY_even:
	// Even k: the first two blocks absorb the accumulator.
	GH_FIRST_Y(0)
	ADDQ $32, R9
	ADDQ $32, R8
	SUBQ $32, BX
	JZ   ghashY_reduce

ghashY_pairs:
	GH_STEP_Y(0)
	ADDQ $32, R9
	ADDQ $32, R8
	SUBQ $32, BX
	JNZ  ghashY_pairs

ghashY_reduce:
	GH_RED1_Y
	GH_RED2_Y
	GH_SUM_Y

ghashY_done:
	VMOVDQU X12, (DX)
	VZEROUPPER
	RET

// func cpuidAsm(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuidAsm(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET
