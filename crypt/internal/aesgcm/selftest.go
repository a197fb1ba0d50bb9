package aesgcm

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
)

// selfTestLengths are the plaintext lengths the self-test seals and opens
// under every key: empty, shorter than a block, around the block size,
// around the assembly's 256-byte batch and its threshold, and a long one
// with a tail. selfTestFrame is sealed under the first key only.
var selfTestLengths = []int{0, 1, 15, 16, 17, 255, 256, 257, 511, 512, 513, 4096 + 7}

// selfTestFrame is a whole frame of the default frame size (1 MiB), which
// wraps the low bytes of the counter many times. It is sealed once, with
// additional data of a frame's length, frameAADLen, and only sealed,
// opened and opened with its tag altered: the other checks run the same
// code as on the 4103-byte message, and each pass over the frame costs
// about 0.1 ms.
const (
	selfTestFrame = 1 << 20
	frameAADLen   = 26
)

// selfTestAADLengths are the additional data lengths: every vector is
// sealed without any and with one of these (a frame's associated data is
// 26 bytes; 300 crosses the assembly's 256-byte batch).
var selfTestAADLengths = []int{1, 26, 300}

// selfTest compares the AEAD newAsm returns (for a 32-byte key, with the
// assembly on every length) with crypto/cipher's. For three keys, every
// length in selfTestLengths, without and with additional data, and a new
// nonce each time (the first all zeros, the second all ones), it checks
// that Seal gives the same bytes (appending to a prefix, and in place),
// that Open returns the plaintext (into another buffer, and in place), and
// that Open refuses the ciphertext with a bit flipped in the tag, in the
// ciphertext or in the additional data. Under the first key it also seals
// selfTestFrame (see there for its checks). It returns the first
// difference, or a panic of either implementation, as an error.
//
// The vectors come from a fixed seed: the test is the same in every
// process, and a failure can be reproduced. Its buffers are allocated
// once. It takes 1.5 to 4 ms on a loaded 2-core VM, most of it on the
// frame (see docs/crypto.md).
func selfTest(newAsm func(key []byte) (cipher.AEAD, error)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	rng := rand.NewChaCha8([32]byte{'b', 'e', 'r', 't', 'h', ' ', 'a', 'e', 's', 'g', 'c', 'm'})
	random := func(b []byte) []byte {
		_, _ = rng.Read(b) // never fails
		return b
	}
	keys := [][]byte{bytes.Repeat([]byte{0xff}, 32), random(make([]byte, 32)), random(make([]byte, 32))}
	bufs := newSelfTestBuffers(selfTestFrame, slices.Max(selfTestLengths))
	fillFast(bufs.pt, rng.Uint64())
	vector := 0
	for ki, key := range keys {
		ours, err := newAsm(key)
		if err != nil {
			return fmt.Errorf("key %d: %w", ki, err)
		}
		std, err := newStdlib(key)
		if err != nil {
			return fmt.Errorf("key %d: crypto/cipher: %w", ki, err)
		}
		lengths := selfTestLengths
		if ki == 0 {
			lengths = append(lengths[:len(lengths):len(lengths)], selfTestFrame)
		}
		for li, n := range lengths {
			aads := []int{0, selfTestAADLengths[(ki+li)%len(selfTestAADLengths)]}
			if n == selfTestFrame {
				aads = []int{frameAADLen}
			}
			for _, a := range aads {
				nonce := random(make([]byte, gcmNonceSize))
				switch vector {
				case 0:
					clear(nonce)
				case 1:
					for i := range nonce {
						nonce[i] = 0xff
					}
				}
				vector++
				// Messages shorter than the frame are fresh random bytes
				// (written over the frame's first bytes, which is fine:
				// any bytes will do for it).
				pt := bufs.pt[:n]
				if n < selfTestFrame {
					random(pt)
				}
				if err := bufs.vector(ours, std, nonce, random(make([]byte, a)), pt); err != nil {
					return fmt.Errorf("key %d, %d-byte message, %d bytes of additional data: %w", ki, n, a, err)
				}
			}
		}
	}
	return nil
}

// fillFast fills b with pseudo-random bytes from seed (splitmix64): for
// the 1 MiB frame, several times faster than math/rand's ChaCha8.
func fillFast(b []byte, seed uint64) {
	var w [8]byte
	for i := 0; i < len(b); i += 8 {
		seed += 0x9e3779b97f4a7c15
		z := seed
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(w[:], z^z>>31)
		copy(b[i:], w[:])
	}
}

// selfTestBuffers are the buffers of the self-test: pt, want and got for
// messages up to the frame's length, work for the in-place and tampering
// checks, which run on shorter messages only.
type selfTestBuffers struct {
	pt, want, got, work []byte
}

// selfTestPrefix is what Seal appends to in the self-test, as crypt's
// frames have the nonce before the ciphertext.
var selfTestPrefix = []byte("0123456789ab")

func newSelfTestBuffers(frame, maxWork int) *selfTestBuffers {
	return &selfTestBuffers{
		pt:   make([]byte, frame),
		want: make([]byte, 0, frame+gcmTagSize),
		got:  make([]byte, 0, len(selfTestPrefix)+frame+gcmTagSize),
		work: make([]byte, 0, maxWork+gcmTagSize),
	}
}

// vector runs the checks of selfTest on one message, pt, which must be
// in b.pt: all of them, or if pt is longer than b.work, Seal, Open and
// Open with the tag altered.
func (b *selfTestBuffers) vector(ours, std cipher.AEAD, nonce, aad, pt []byte) error {
	n := len(pt)
	want := std.Seal(b.want[:0], nonce, pt, aad)
	refuse := func(what string, ct, aad []byte) error {
		if out, err := ours.Open(b.got[:0], nonce, ct, aad); err == nil || out != nil {
			return fmt.Errorf("Open accepted a message with a bit flipped in the %s", what)
		}
		return nil
	}

	// Seal appending to a prefix.
	got := ours.Seal(append(b.got[:0], selfTestPrefix...), nonce, pt, aad)
	if !bytes.Equal(got[:len(selfTestPrefix)], selfTestPrefix) {
		return fmt.Errorf("Seal changed the bytes before dst's length")
	}
	if err := sameBytes("Seal", want, got[len(selfTestPrefix):]); err != nil {
		return err
	}
	out, err := ours.Open(b.got[:0], nonce, want, aad)
	if err != nil {
		return fmt.Errorf("Open of crypto/cipher's ciphertext: %w", err)
	}
	if err := sameBytes("Open", pt, out); err != nil {
		return err
	}
	if n+gcmTagSize > cap(b.work) {
		want[n+5] ^= 0x10
		err := refuse("tag", want, aad)
		want[n+5] ^= 0x10
		return err
	}

	// Seal in place.
	work := append(b.work[:0], pt...)
	if err := sameBytes("Seal in place", want, ours.Seal(work[:0], nonce, work, aad)); err != nil {
		return err
	}

	// Open in place.
	work = append(b.work[:0], want...)
	out, err = ours.Open(work[:0], nonce, work, aad)
	if err != nil {
		return fmt.Errorf("Open in place of crypto/cipher's ciphertext: %w", err)
	}
	if err := sameBytes("Open in place", pt, out); err != nil {
		return err
	}

	// Tampering: a bit of the tag, of the ciphertext, of the additional
	// data, each in a copy of want.
	work = append(b.work[:0], want...)
	work[n+5] ^= 0x10
	if err := refuse("tag", work, aad); err != nil {
		return err
	}
	work[n+5] ^= 0x10
	if n > 0 {
		work[n/2] ^= 0x01
		if err := refuse("ciphertext", work, aad); err != nil {
			return err
		}
		work[n/2] ^= 0x01
	}
	if len(aad) > 0 {
		aad[len(aad)-1] ^= 0x80
		if err := refuse("additional data", work, aad); err != nil {
			return err
		}
	}
	return nil
}

// sameBytes returns an error naming the first difference between want and
// got, or nil if they are equal.
func sameBytes(what string, want, got []byte) error {
	if bytes.Equal(want, got) {
		return nil
	}
	if len(want) != len(got) {
		return fmt.Errorf("%s: %d bytes, crypto/cipher gives %d", what, len(got), len(want))
	}
	i := 0
	for want[i] == got[i] {
		i++
	}
	return fmt.Errorf("%s: differs from crypto/cipher from byte %d of %d", what, i, len(want))
}
