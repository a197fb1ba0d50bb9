package auth

// The registry login tokens GetAuthorizationToken hands out (`aws ecr
// get-login-password | docker login --username AWS --password-stdin`).

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// ErrTokenKey reports an unusable login token key file.
var ErrTokenKey = errors.New("auth: bad login token key file")

const (
	// LoginUser is the user name of a login token, as on ECR.
	LoginUser = "AWS"
	// loginTokenTTL is how long a login token is good for (ECR: 12 h).
	loginTokenTTL = 12 * time.Hour
	// loginTokenPrefix starts every token (a version).
	loginTokenPrefix = "berth1."
	tokenKeySize     = 32
)

// loginTokens mints and checks registry login tokens: an expiry time
// MACed (HMAC-SHA256) under the server's token key.
type loginTokens struct {
	key []byte
	now func() time.Time
}

// newLoginTokens uses the key in path, creating it (32 random bytes, mode
// 0600) if it does not exist, so that tokens outlive a restart. An empty
// path uses a key of this process only.
func newLoginTokens(path string) (*loginTokens, error) {
	t := &loginTokens{now: time.Now}
	if path == "" {
		t.key = make([]byte, tokenKeySize)
		_, _ = rand.Read(t.key)
		return t, nil
	}
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, tokenKeySize)
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
		if err != nil {
			_ = os.Remove(path)
			return nil, fmt.Errorf("%w: %w", ErrTokenKey, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenKey, err)
	}
	if len(key) != tokenKeySize {
		return nil, fmt.Errorf("%w: %s holds %d bytes, want %d", ErrTokenKey, path, len(key), tokenKeySize)
	}
	t.key = key
	return t, nil
}

// mint returns a token for user ("" for an anonymous caller of an open
// registry) good until the returned time.
func (t *loginTokens) mint(user string) (string, time.Time) {
	exp := t.now().Add(loginTokenTTL).Truncate(time.Second)
	payload := binary.BigEndian.AppendUint64(nil, uint64(exp.Unix()))
	payload = append(payload, user...)
	mac := hmac.New(sha256.New, t.key)
	mac.Write(payload)
	enc := base64.RawURLEncoding
	return loginTokenPrefix + enc.EncodeToString(payload) + "." + enc.EncodeToString(mac.Sum(nil)), exp
}

// check returns the user of token when it is one this server minted and
// it has not expired.
func (t *loginTokens) check(token string) (user string, ok bool) {
	rest, ok := strings.CutPrefix(token, loginTokenPrefix)
	if !ok || len(rest) > 200 {
		return "", false
	}
	p64, m64, ok := strings.Cut(rest, ".")
	if !ok {
		return "", false
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p64)
	got, err2 := enc.DecodeString(m64)
	if err1 != nil || err2 != nil || len(payload) < 8 {
		return "", false
	}
	mac := hmac.New(sha256.New, t.key)
	mac.Write(payload)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return "", false
	}
	if exp := int64(binary.BigEndian.Uint64(payload)); t.now().Unix() >= exp {
		return "", false
	}
	return string(payload[8:]), true
}
