package aesgcm

import "testing"

func BenchmarkNew(b *testing.B) {
	key := make([]byte, 32)
	for b.Loop() {
		if _, err := New(key); err != nil {
			b.Fatal(err)
		}
	}
}
