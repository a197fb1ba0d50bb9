package aesgcm

import (
	"crypto/cipher"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSelfTestPasses(t *testing.T) {
	require.NoError(t, selfTest(newStdlib), "crypto/cipher against itself")
	for _, impl := range availableAsm(t) {
		start := time.Now()
		err := selfTest(func(key []byte) (cipher.AEAD, error) { return newAsmPath(impl.name, key, 0) })
		require.NoError(t, err, impl.name)
		t.Logf("%s: self-test passed in %v", impl.name, time.Since(start))
	}
}

// BenchmarkSelfTest measures the self-test New runs once per process
// before it uses an assembly path.
func BenchmarkSelfTest(b *testing.B) {
	impls := append([]asmImpl{{name: ImplStdlib, avail: true, new: newStdlib}}, availableAsm(b)...)
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			newAEAD := newStdlib
			if impl.name != ImplStdlib {
				newAEAD = func(key []byte) (cipher.AEAD, error) { return newAsmPath(impl.name, key, 0) }
			}
			for b.Loop() {
				if err := selfTest(newAEAD); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// flipAt flips a bit of what Seal returns for messages of one length.
type flipAt struct {
	cipher.AEAD
	length int
}

func (f flipAt) Seal(dst, nonce, pt, aad []byte) []byte {
	out := f.AEAD.Seal(dst, nonce, pt, aad)
	if len(pt) == f.length {
		out[len(out)-gcmTagSize-1] ^= 0x04
	}
	return out
}

// tagOnly is an AEAD whose Open accepts any message that carries a tag its
// Seal made for the nonce, whatever the ciphertext and additional data.
type tagOnly struct {
	cipher.AEAD
	tags map[string]string // nonce to tag
}

func (a *tagOnly) Seal(dst, nonce, pt, aad []byte) []byte {
	out := a.AEAD.Seal(dst, nonce, pt, aad)
	a.tags[string(nonce)] = string(out[len(out)-gcmTagSize:])
	return out
}

func (a *tagOnly) Open(dst, nonce, ct, aad []byte) ([]byte, error) {
	if len(ct) >= gcmTagSize && a.tags[string(nonce)] == string(ct[len(ct)-gcmTagSize:]) {
		return append(dst, make([]byte, len(ct)-gcmTagSize)...), nil
	}
	return a.AEAD.Open(dst, nonce, ct, aad)
}

// broken is an AEAD with Seal or Open replaced.
type broken struct {
	cipher.AEAD
	seal func(a cipher.AEAD, dst, nonce, pt, aad []byte) []byte
	open func(a cipher.AEAD, dst, nonce, ct, aad []byte) ([]byte, error)
}

func (b broken) Seal(dst, nonce, pt, aad []byte) []byte {
	if b.seal != nil {
		return b.seal(b.AEAD, dst, nonce, pt, aad)
	}
	return b.AEAD.Seal(dst, nonce, pt, aad)
}

func (b broken) Open(dst, nonce, ct, aad []byte) ([]byte, error) {
	if b.open != nil {
		return b.open(b.AEAD, dst, nonce, ct, aad)
	}
	return b.AEAD.Open(dst, nonce, ct, aad)
}

// brokenCases are implementations that differ from crypto/cipher in one
// way each, built on base (the best assembly path this CPU runs, or
// crypto/cipher), and what the self-test must report for each.
func brokenCases(base func(key []byte) (cipher.AEAD, error)) []struct {
	name string
	new  func(key []byte) (cipher.AEAD, error)
	want string
} {
	wrap := func(seal func(a cipher.AEAD, dst, nonce, pt, aad []byte) []byte, open func(a cipher.AEAD, dst, nonce, ct, aad []byte) ([]byte, error)) func(key []byte) (cipher.AEAD, error) {
		return func(key []byte) (cipher.AEAD, error) {
			a, err := base(key)
			return broken{AEAD: a, seal: seal, open: open}, err
		}
	}
	return []struct {
		name string
		new  func(key []byte) (cipher.AEAD, error)
		want string
	}{
		{"one length wrong", func(key []byte) (cipher.AEAD, error) {
			a, err := base(key)
			return flipAt{AEAD: a, length: 255}, err
		}, "key 0, 255-byte message, 0 bytes of additional data: Seal: differs from crypto/cipher from byte 254 of 271"},
		{"only the 1 MiB frame wrong", func(key []byte) (cipher.AEAD, error) {
			a, err := base(key)
			return flipAt{AEAD: a, length: 1 << 20}, err
		}, "key 0, 1048576-byte message, 26 bytes of additional data: Seal: differs from crypto/cipher from byte 1048575 of 1048592"},
		{"wrong tag with additional data", wrap(func(a cipher.AEAD, dst, nonce, pt, aad []byte) []byte {
			out := a.Seal(dst, nonce, pt, aad)
			if len(aad) > 0 {
				out[len(out)-1] ^= 1
			}
			return out
		}, nil), "key 0, 0-byte message, 1 bytes of additional data: Seal: differs from crypto/cipher from byte 15 of 16"},
		{"Seal in place wrong", wrap(func(a cipher.AEAD, dst, nonce, pt, aad []byte) []byte {
			inPlace := len(dst) == 0 && len(pt) > 0 && &dst[:1][0] == &pt[0]
			out := a.Seal(dst, nonce, pt, aad)
			if inPlace {
				out[0] ^= 1
			}
			return out
		}, nil), "key 0, 1-byte message, 0 bytes of additional data: Seal in place: differs from crypto/cipher from byte 0 of 17"},
		{"Open returns wrong plaintext", nil, "key 0, 1-byte message, 0 bytes of additional data: Open: differs from crypto/cipher from byte 0 of 1"},
		{"Open in place wrong", nil, "key 0, 1-byte message, 0 bytes of additional data: Open in place: differs from crypto/cipher from byte 0 of 1"},
		{"Open accepts a forged tag", wrap(nil, func(a cipher.AEAD, dst, nonce, ct, aad []byte) ([]byte, error) {
			out, err := a.Open(dst, nonce, ct, aad)
			if err != nil && len(ct) >= gcmTagSize {
				return make([]byte, len(ct)-gcmTagSize), nil
			}
			return out, err
		}), "key 0, 0-byte message, 0 bytes of additional data: Open accepted a message with a bit flipped in the tag"},
		{"Open checks only the tag", func(key []byte) (cipher.AEAD, error) {
			a, err := base(key)
			return &tagOnly{AEAD: a, tags: map[string]string{}}, err
		}, "key 0, 0-byte message, 1 bytes of additional data: Open accepted a message with a bit flipped in the additional data"},
		{"Open of a forged ciphertext returns an error and bytes", wrap(nil, func(a cipher.AEAD, dst, nonce, ct, aad []byte) ([]byte, error) {
			out, err := a.Open(dst, nonce, ct, aad)
			if err != nil {
				return []byte{}, err
			}
			return out, err
		}), "Open accepted a message with a bit flipped in the tag"},
		{"Seal panics", wrap(func(a cipher.AEAD, dst, nonce, pt, aad []byte) []byte {
			if len(pt) == 4096+7 {
				panic("index out of range")
			}
			return a.Seal(dst, nonce, pt, aad)
		}, nil), "panic: index out of range"},
		{"Open panics", wrap(nil, func(a cipher.AEAD, dst, nonce, ct, aad []byte) ([]byte, error) {
			panic("boom")
		}), "panic: boom"},
		{"no AEAD", func(key []byte) (cipher.AEAD, error) {
			return nil, errors.New("no assembly today")
		}, "key 0: no assembly today"},
	}
}

// TestSelfTestCatchesBrokenImplementations checks that each way an
// implementation can differ from crypto/cipher fails the self-test, with
// a message that says where.
func TestSelfTestCatchesBrokenImplementations(t *testing.T) {
	bases := map[string]func(key []byte) (cipher.AEAD, error){ImplStdlib: newStdlib}
	for _, impl := range availableAsm(t) {
		bases[impl.name] = func(key []byte) (cipher.AEAD, error) { return newAsmPath(impl.name, key, 0) }
	}
	for name, base := range bases {
		cases := brokenCases(base)
		for i := range cases {
			switch cases[i].name {
			case "Open returns wrong plaintext":
				cases[i].new = func(key []byte) (cipher.AEAD, error) {
					a, err := base(key)
					return broken{AEAD: a, open: func(a cipher.AEAD, dst, nonce, ct, aad []byte) ([]byte, error) {
						inPlace := cap(dst) > 0 && len(ct) > 0 && &dst[:1][0] == &ct[0]
						out, err := a.Open(dst, nonce, ct, aad)
						if err == nil && len(out) > len(dst) && !inPlace {
							out[len(out)-1] ^= 0x80
						}
						return out, err
					}}, err
				}
			case "Open in place wrong":
				cases[i].new = func(key []byte) (cipher.AEAD, error) {
					a, err := base(key)
					return broken{AEAD: a, open: func(a cipher.AEAD, dst, nonce, ct, aad []byte) ([]byte, error) {
						inPlace := len(dst) == 0 && cap(dst) > 0 && len(ct) > gcmTagSize && &dst[:1][0] == &ct[0]
						out, err := a.Open(dst, nonce, ct, aad)
						if err == nil && inPlace {
							out[0] ^= 1
						}
						return out, err
					}}, err
				}
			}
		}
		for _, tc := range cases {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				err := selfTest(tc.new)
				require.Error(t, err)
				require.Contains(t, err.Error(), tc.want)
			})
		}
	}
}
