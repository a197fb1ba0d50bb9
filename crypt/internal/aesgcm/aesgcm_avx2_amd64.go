//go:build amd64 && !purego

package aesgcm

import "golang.org/x/sys/cpu"

// hasAsmAVX2 reports whether the CPU (and OS) support the AVX2 variant of
// the assembly (aesgcm_avx2_amd64.s): AES-NI and PCLMULQDQ on 256-bit
// vectors (VAES, VPCLMULQDQ) with VEX encodings and AVX2. It is true on
// CPUs with the AVX-512 variant too, where New prefers that one.
//
// golang.org/x/sys/cpu reports VAES and VPCLMULQDQ (as HasAVX512VAES and
// HasAVX512VPCLMULQDQ) only when AVX-512 is usable, so the two CPUID bits
// are read here. cpu.X86.HasAVX2 is only set when the OS saves the YMM
// state (OSXSAVE, XGETBV bits 1 and 2).
var hasAsmAVX2 = cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ && cpu.X86.HasAVX &&
	cpu.X86.HasAVX2 && hasVAESAndVPCLMULQDQ()

// hasVAESAndVPCLMULQDQ reports whether CPUID.(EAX=7,ECX=0):ECX has the VAES
// (bit 9) and VPCLMULQDQ (bit 10) bits set.
func hasVAESAndVPCLMULQDQ() bool {
	if maxID, _, _, _ := cpuidAsm(0, 0); maxID < 7 {
		return false
	}
	const vaes, vpclmulqdq = 1 << 9, 1 << 10
	_, _, ecx, _ := cpuidAsm(7, 0)
	return ecx&vaes != 0 && ecx&vpclmulqdq != 0
}

// cpuidAsm executes CPUID with the given EAX and ECX.
//
//go:noescape
func cpuidAsm(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// AVX2 variants of sealAsm, openAsm, ctrAsm and ghashAsm, with the same
// arguments and results; see aesgcm_avx2_amd64.s. They use only
// VEX-encoded instructions on 256-bit (YMM) registers and need hasAsmAVX2.
//
// Their htab holds the powers H^16, ..., H^1 exactly as for the AVX-512
// routines (bytes 0-255), followed by the Karatsuba factor of each power
// in the same order (bytes 256-511): for a power with qwords q0, q1 (the
// representation described at gfMul), the 16 bytes q0^q1, q0^q1.

// sealAVX2 encrypts n bytes (n a positive multiple of 256) of src into dst
// with AES-CTR and absorbs the resulting ciphertext into acc.
//
//go:noescape
func sealAVX2(rk *[240]byte, htab *[512]byte, ctr *[16]byte, acc *[16]byte, dst, src *byte, n int)

// openAVX2 absorbs n bytes (n a positive multiple of 256) of ciphertext src
// into acc and decrypts it into dst with AES-CTR.
//
//go:noescape
func openAVX2(rk *[240]byte, htab *[512]byte, ctr *[16]byte, acc *[16]byte, dst, src *byte, n int)

// ctrAVX2 XORs n bytes (n a positive multiple of 256) of src with the
// AES-CTR key stream and writes the result to dst.
//
//go:noescape
func ctrAVX2(rk *[240]byte, ctr *[16]byte, dst, src *byte, n int)

// ghashAVX2 absorbs n bytes (n a positive multiple of 16) of data into acc.
//
//go:noescape
func ghashAVX2(htab *[512]byte, acc *[16]byte, data *byte, n int)
