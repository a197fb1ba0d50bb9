package aesgcm

import "testing"

// BenchmarkNew measures New once the choice of implementation is made:
// the first call, outside the loop, runs the self-test (BenchmarkSelfTest
// measures that).
func BenchmarkNew(b *testing.B) {
	key := make([]byte, 32)
	if _, err := New(key); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := New(key); err != nil {
			b.Fatal(err)
		}
	}
}
