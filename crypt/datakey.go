package crypt

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/hkdf"
)

// DataKeySize is the size of a data key in bytes.
const DataKeySize = 32

// FileIDSize is the size of a blob file's random identifier.
const FileIDSize = 16

// NonceSize is the size of a frame nonce (AES-GCM standard nonce).
const NonceSize = 12

// Overhead is the bytes a sealed frame adds: nonce plus GCM tag.
const Overhead = NonceSize + 16

// MACSize is the size of a header MAC.
const MACSize = sha256.Size

// NewDataKey returns a fresh random data key.
func NewDataKey() ([]byte, error) {
	k := make([]byte, DataKeySize)
	if _, err := io.ReadFull(rand.Reader, k); err != nil {
		return nil, fmt.Errorf("crypt: reading random data key: %w", err)
	}
	return k, nil
}

// FrameSealer seals and opens the frames of one blob file under keys
// derived from its data key. It is safe for concurrent use.
type FrameSealer struct {
	aead   cipher.AEAD // random nonces in front (newFrameAEAD)
	macKey []byte
	fileID [FileIDSize]byte
}

// NewFrameSealer derives the frame and header keys of the file fileID from
// dataKey (HKDF-SHA256, one label each) and returns a sealer.
func NewFrameSealer(dataKey []byte, fileID [FileIDSize]byte) (*FrameSealer, error) {
	if len(dataKey) != DataKeySize {
		return nil, fmt.Errorf("%w: data key of %d bytes", ErrInvalidKey, len(dataKey))
	}
	frameKey := derive(dataKey, fileID[:], "berth frame key v1")
	aead, err := newFrameAEAD(frameKey)
	if errors.Is(err, ErrInvalidSetting) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("crypt: %w", err)
	}
	return &FrameSealer{aead: aead, macKey: derive(dataKey, fileID[:], "berth header mac v1"), fileID: fileID}, nil
}

func derive(secret, salt []byte, label string) []byte {
	out := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, salt, []byte(label)), out); err != nil {
		panic("crypt: hkdf: " + err.Error()) // cannot happen for 32 bytes of SHA-256 HKDF
	}
	return out
}

// frameAD is the associated data of frame n: the file identifier, the
// frame number, the last-frame flag and the frame's codec.
func (s *FrameSealer) frameAD(buf *[FileIDSize + 10]byte, n uint64, last bool, codec byte) []byte {
	copy(buf[:], s.fileID[:])
	binary.BigEndian.PutUint64(buf[FileIDSize:], n)
	buf[FileIDSize+8] = 0
	if last {
		buf[FileIDSize+8] = 1
	}
	buf[FileIDSize+9] = codec
	return buf[:]
}

// Seal appends to dst the sealed form of frame n (a random nonce, then
// the ciphertext and tag) and returns the result. last and codec (how the
// plaintext is encoded) are bound as associated data.
func (s *FrameSealer) Seal(dst, plaintext []byte, n uint64, last bool, codec byte) ([]byte, error) {
	var ad [FileIDSize + 10]byte
	return s.aead.Seal(dst, nil, plaintext, s.frameAD(&ad, n, last, codec)), nil
}

// Open appends to dst the plaintext of sealed frame n and returns it, or
// ErrUnauthenticated if the frame was altered, moved or is not frame n
// with that last flag and codec of this file.
func (s *FrameSealer) Open(dst, sealed []byte, n uint64, last bool, codec byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: frame %d too short", ErrUnauthenticated, n)
	}
	var ad [FileIDSize + 10]byte
	out, err := s.aead.Open(dst, nil, sealed, s.frameAD(&ad, n, last, codec))
	if err != nil {
		return nil, fmt.Errorf("%w: frame %d", ErrUnauthenticated, n)
	}
	return out, nil
}

// MAC returns the HMAC-SHA256 of msg under the file's header key.
func (s *FrameSealer) MAC(msg []byte) []byte {
	m := hmac.New(sha256.New, s.macKey)
	m.Write(msg)
	return m.Sum(nil)
}

// CheckMAC reports ErrUnauthenticated unless mac is MAC(msg).
func (s *FrameSealer) CheckMAC(msg, mac []byte) error {
	if !hmac.Equal(s.MAC(msg), mac) {
		return fmt.Errorf("%w: header", ErrUnauthenticated)
	}
	return nil
}
