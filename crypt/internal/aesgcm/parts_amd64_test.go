//go:build amd64 && !purego

package aesgcm

import "testing"

// The parts of Seal and Open on 1 MiB, for each assembly implementation
// this CPU runs.

func benchmarkParts(b *testing.B, part func(g *gcmAsm, buf []byte)) {
	buf := make([]byte, 1<<20)
	for _, impl := range availableAsm(b) {
		b.Run(impl.name, func(b *testing.B) {
			g := newAsmImpl(b, impl, make([]byte, 32))
			b.SetBytes(int64(len(buf)))
			for range b.N {
				part(g, buf)
			}
		})
	}
}

func BenchmarkPartsCTR(b *testing.B) {
	var ctr [16]byte
	benchmarkParts(b, func(g *gcmAsm, buf []byte) { g.ctr(&ctr, &buf[0], &buf[0], len(buf)) })
}

func BenchmarkPartsGHASH(b *testing.B) {
	var acc [16]byte
	benchmarkParts(b, func(g *gcmAsm, buf []byte) { g.ghash(&acc, &buf[0], len(buf)) })
}

func BenchmarkPartsSeal(b *testing.B) {
	var ctr, acc [16]byte
	benchmarkParts(b, func(g *gcmAsm, buf []byte) { g.seal(&ctr, &acc, &buf[0], &buf[0], len(buf)) })
}

func BenchmarkPartsOpen(b *testing.B) {
	var ctr, acc [16]byte
	benchmarkParts(b, func(g *gcmAsm, buf []byte) { g.open(&ctr, &acc, &buf[0], &buf[0], len(buf)) })
}
