package auth

// The registry login tokens GetAuthorizationToken hands out (`aws ecr
// get-login-password | docker login --username AWS --password-stdin`).
//
// A token is "berth2." + base64url(payload) + "." + base64url(MAC):
//
//	payload = expiry (8 bytes, big-endian Unix seconds)
//	        | account length (1 byte) | account | user
//	MAC     = HMAC-SHA256(token key, "berth2\x00" + payload)
//
// It says what it was minted for: the account and the user (empty for an
// anonymous caller of an open registry). The version prefix lets a later
// format refuse this one by name; tokens of the first format ("berth1.",
// an expiry and a user, no account) are refused.

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/berthstore/berth/internal/vfsutil"
)

// ErrTokenKey reports an unusable login token key file.
var ErrTokenKey = errors.New("auth: bad login token key file")

// The reasons a login token is refused.
var (
	// errTokenInvalid: not a token this key minted (or malformed).
	errTokenInvalid = errors.New("not a login token of this registry")
	// errTokenExpired: past its expiry.
	errTokenExpired = errors.New("login token expired")
	// errTokenLegacy: a token of the first format (berth1), which carries
	// no account and is no longer accepted.
	errTokenLegacy = errors.New("login token of the berth1 format, which is no longer accepted: log in again (aws ecr get-login-password)")
)

const (
	// LoginUser is the user name of a login token, as on ECR.
	LoginUser = "AWS"
	// loginTokenTTL is how long a login token is good for (ECR: 12 h).
	loginTokenTTL = 12 * time.Hour
	// loginTokenPrefix starts every token (the format's version).
	loginTokenPrefix = "berth2."
	// legacyTokenPrefix starts the tokens of the first format.
	legacyTokenPrefix = "berth1."
	// tokenMACDomain separates this format's MACs from any other use of
	// the key.
	tokenMACDomain = "berth2\x00"
	tokenKeySize   = 32
	// maxTokenLen bounds a token: an account and a user name are short.
	maxTokenLen = 400
)

// loginTokens mints and checks registry login tokens, MACed
// (HMAC-SHA256) under the server's token key.
type loginTokens struct {
	key []byte
	now func() time.Time
	// macs are *macStates under key, reused: Reset restores the keyed
	// state without hashing the key again (hmac.New costs five
	// allocations and two SHA-256 blocks per token checked).
	macs sync.Pool
}

// macDomain is tokenMACDomain as the MAC is fed it: a conversion in the
// call would copy it to the heap on every check (the hash is an
// interface).
var macDomain = []byte(tokenMACDomain)

// macState is an HMAC-SHA256 under the token key with the buffers a check
// decodes a token into.
type macState struct {
	h       hash.Hash
	payload [maxTokenLen]byte
	sum     [sha256.Size]byte
}

// state returns a macState, reset.
func (t *loginTokens) state() *macState {
	st, _ := t.macs.Get().(*macState)
	if st == nil {
		return &macState{h: hmac.New(sha256.New, t.key)}
	}
	st.h.Reset()
	return st
}

// tokenClaims are what a token was minted for.
type tokenClaims struct {
	account, user string
	expires       time.Time
}

// newLoginTokens uses the key in path, creating it (32 random bytes, mode
// 0600) if it does not exist, so that tokens outlive a restart. An
// existing key file must be a regular file owned by this process's user
// and readable by nobody else (mode 0600 or stricter), as the keyring
// must. An empty path uses a key of this process only.
func newLoginTokens(path string) (*loginTokens, error) {
	t := &loginTokens{now: time.Now}
	if path == "" {
		t.key = make([]byte, tokenKeySize)
		_, _ = rand.Read(t.key)
		return t, nil
	}
	key, err := readTokenKey(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err = createTokenKey(path)
	}
	if err != nil {
		return nil, err
	}
	t.key = key
	return t, nil
}

// readTokenKey reads an existing key file, checking the file it opened
// (not the path again) for its type, owner and mode.
func readTokenKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrTokenKey, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrTokenKey, path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrTokenKey, path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v, readable beyond its owner; want 0600 (chmod 600 %s)", ErrTokenKey, path, fi.Mode().Perm(), path)
	}
	if err := checkOwner(fi); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrTokenKey, path, err)
	}
	key, err := io.ReadAll(io.LimitReader(f, tokenKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrTokenKey, path, err)
	}
	if len(key) != tokenKeySize {
		return nil, fmt.Errorf("%w: %s holds %d bytes, want %d", ErrTokenKey, path, len(key), tokenKeySize)
	}
	return key, nil
}

// createTokenKey writes a new random key to path (mode 0600), which must
// not exist.
func createTokenKey(path string) ([]byte, error) {
	key := make([]byte, tokenKeySize)
	_, _ = rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenKey, err)
	}
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The name too: a power cut would otherwise lose the key, and
		// with it every token minted under it.
		err = vfsutil.SyncDir(vfs.Default, filepath.Dir(path))
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("%w: %w", ErrTokenKey, err)
	}
	return key, nil
}

// mint returns a token for user of account ("" for an anonymous caller
// of an open registry) good until the returned time.
func (t *loginTokens) mint(account, user string) (string, time.Time) {
	exp := t.now().Add(loginTokenTTL).Truncate(time.Second)
	payload := make([]byte, 0, 9+len(account)+len(user))
	payload = binary.BigEndian.AppendUint64(payload, uint64(exp.Unix()))
	payload = append(payload, byte(len(account)))
	payload = append(payload, account...)
	payload = append(payload, user...)
	enc := base64.RawURLEncoding
	return loginTokenPrefix + enc.EncodeToString(payload) + "." + enc.EncodeToString(t.mac(payload)), exp
}

// mac is the MAC of payload.
func (t *loginTokens) mac(payload []byte) []byte {
	st := t.state()
	defer t.macs.Put(st)
	return append([]byte(nil), st.mac(payload)...)
}

// mac returns the MAC of payload, in st.sum.
func (st *macState) mac(payload []byte) []byte {
	st.h.Write(macDomain)
	st.h.Write(payload)
	return st.h.Sum(st.sum[:0])
}

// check returns what token was minted for when it is a token this key
// minted and it has not expired. The error is errTokenLegacy,
// errTokenExpired or errTokenInvalid.
func (t *loginTokens) check(token string) (tokenClaims, error) {
	return t.checkBytes([]byte(token))
}

// checkBytes is check of a token in bytes (as a request's basic
// credentials decode, without a copy on the heap); it keeps no part of
// token.
func (t *loginTokens) checkBytes(token []byte) (tokenClaims, error) {
	rest, ok := bytes.CutPrefix(token, []byte(loginTokenPrefix))
	if !ok {
		if bytes.HasPrefix(token, []byte(legacyTokenPrefix)) {
			return tokenClaims{}, errTokenLegacy
		}
		return tokenClaims{}, errTokenInvalid
	}
	if len(rest) > maxTokenLen {
		return tokenClaims{}, errTokenInvalid
	}
	enc := base64.RawURLEncoding
	p64, m64, ok := bytes.Cut(rest, []byte("."))
	if !ok || len(m64) != enc.EncodedLen(sha256.Size) {
		return tokenClaims{}, errTokenInvalid
	}
	// Decoded into reused buffers: a token is short (maxTokenLen).
	st := t.state()
	defer t.macs.Put(st)
	var src [maxTokenLen]byte
	var got [sha256.Size]byte
	n, err := enc.Decode(st.payload[:], append(src[:0], p64...))
	if err != nil || n < 9 {
		return tokenClaims{}, errTokenInvalid
	}
	payload := st.payload[:n]
	if n, err := enc.Decode(got[:], append(src[:0], m64...)); err != nil || n != sha256.Size {
		return tokenClaims{}, errTokenInvalid
	}
	if !hmac.Equal(got[:], st.mac(payload)) {
		return tokenClaims{}, errTokenInvalid
	}
	n = int(payload[8])
	if len(payload) < 9+n {
		return tokenClaims{}, errTokenInvalid
	}
	c := tokenClaims{
		expires: time.Unix(int64(binary.BigEndian.Uint64(payload)), 0),
		account: string(payload[9 : 9+n]),
		user:    string(payload[9+n:]),
	}
	if !t.now().Before(c.expires) {
		return tokenClaims{}, errTokenExpired
	}
	return c, nil
}
