// Package crypt is Berth's envelope encryption.
//
// Nouns:
//   - data key (DEK): 32 random bytes made for one blob file. Frames of the
//     blob are sealed with AES-256-GCM under a key derived from it.
//   - key-encryption key (KEK): a named, versioned key held by a
//     KeyProvider (the local Keyring, or an HSM). A DEK is stored only
//     wrapped by a KEK (WrappedKey); the wrap binds associated data (the
//     blob's digest) so a wrap cannot be moved to another blob.
//   - FrameSealer: seals and opens the frames of one blob file; the
//     associated data of each frame binds the file's random identifier,
//     the frame number and a last-frame flag, so frames cannot be
//     reordered, moved between files or truncated away unnoticed.
//
// Every failure to authenticate is ErrUnauthenticated: the package never
// returns bytes it could not authenticate.
package crypt
