package crypt

import "testing"

// BenchmarkFrameSealer seals and opens 1 MiB frames (the default frame
// size) through FrameSealer, with whatever AES-GCM it picks here.
func BenchmarkFrameSealer(b *testing.B) {
	dk := make([]byte, DataKeySize)
	s, err := NewFrameSealer(dk, [FileIDSize]byte{1})
	if err != nil {
		b.Fatal(err)
	}
	pt := make([]byte, 1<<20)
	sealed, err := s.Seal(nil, pt, 0, false, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Seal", func(b *testing.B) {
		buf := make([]byte, 0, len(sealed))
		b.SetBytes(int64(len(pt)))
		for b.Loop() {
			if _, err := s.Seal(buf[:0], pt, 0, false, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Open", func(b *testing.B) {
		buf := make([]byte, 0, len(pt))
		b.SetBytes(int64(len(pt)))
		for b.Loop() {
			if _, err := s.Open(buf[:0], sealed, 0, false, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("New", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewFrameSealer(dk, [FileIDSize]byte{1}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
