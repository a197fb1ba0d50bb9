package server

// Credentials of the ECR API (SigV4 access keys) and the registry login
// tokens GetAuthorizationToken hands out (`aws ecr get-login-password |
// docker login --username AWS --password-stdin`).

import (
	"bufio"
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

// ErrECRCredentials reports an unusable ECR credentials file.
var ErrECRCredentials = errors.New("registryd: bad ECR credentials file")

// ErrTokenKey reports an unusable login token key file.
var ErrTokenKey = errors.New("registryd: bad login token key file")

// ecrCredentials are the access keys the ECR API accepts: access key ID
// to secret access key.
type ecrCredentials struct {
	secrets map[string]string
}

// lookup is a sigV4Credentials.
func (c *ecrCredentials) lookup(id string) (string, bool) {
	s, ok := c.secrets[id]
	return s, ok
}

// loadECRCredentials reads a credentials file: one
// ACCESS_KEY_ID:SECRET_ACCESS_KEY a line; blank lines and lines starting
// with # are skipped.
func loadECRCredentials(path string) (*ecrCredentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrECRCredentials, err)
	}
	defer f.Close()
	c := &ecrCredentials{secrets: map[string]string{}}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		id, secret, ok := strings.Cut(l, ":")
		if !ok || id == "" || secret == "" || strings.ContainsAny(id, " \t/") {
			return nil, fmt.Errorf("%w: %s:%d: want ACCESS_KEY_ID:SECRET_ACCESS_KEY", ErrECRCredentials, path, line)
		}
		if _, dup := c.secrets[id]; dup {
			return nil, fmt.Errorf("%w: %s:%d: access key %q given twice", ErrECRCredentials, path, line, id)
		}
		c.secrets[id] = secret
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrECRCredentials, path, err)
	}
	if len(c.secrets) == 0 {
		return nil, fmt.Errorf("%w: %s holds no access key", ErrECRCredentials, path)
	}
	return c, nil
}

const (
	// loginUser is the user name of a login token, as on ECR.
	loginUser = "AWS"
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

// mint returns a token good until the returned time.
func (t *loginTokens) mint() (string, time.Time) {
	exp := t.now().Add(loginTokenTTL).Truncate(time.Second)
	var payload [8]byte
	binary.BigEndian.PutUint64(payload[:], uint64(exp.Unix()))
	mac := hmac.New(sha256.New, t.key)
	mac.Write(payload[:])
	enc := base64.RawURLEncoding
	return loginTokenPrefix + enc.EncodeToString(payload[:]) + "." + enc.EncodeToString(mac.Sum(nil)), exp
}

// valid reports whether token is one this server minted and has not
// expired.
func (t *loginTokens) valid(token string) bool {
	rest, ok := strings.CutPrefix(token, loginTokenPrefix)
	if !ok || len(rest) > 100 {
		return false
	}
	p64, m64, ok := strings.Cut(rest, ".")
	if !ok {
		return false
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p64)
	got, err2 := enc.DecodeString(m64)
	if err1 != nil || err2 != nil || len(payload) != 8 {
		return false
	}
	mac := hmac.New(sha256.New, t.key)
	mac.Write(payload)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return false
	}
	exp := int64(binary.BigEndian.Uint64(payload))
	return t.now().Unix() < exp
}
