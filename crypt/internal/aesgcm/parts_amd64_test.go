//go:build amd64 && !purego

package aesgcm

import "testing"

func BenchmarkPartsCTR(b *testing.B) {
	var rk [240]byte
	var ctr [16]byte
	buf := make([]byte, 1<<20)
	b.SetBytes(1 << 20)
	for range b.N {
		ctrAsm(&rk, &ctr, &buf[0], &buf[0], len(buf))
	}
}

func BenchmarkPartsGHASH(b *testing.B) {
	var htab [256]byte
	var acc [16]byte
	buf := make([]byte, 1<<20)
	b.SetBytes(1 << 20)
	for range b.N {
		ghashAsm(&htab, &acc, &buf[0], len(buf))
	}
}
