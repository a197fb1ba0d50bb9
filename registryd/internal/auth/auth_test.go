package auth

import (
	"bufio"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

func TestParseHtpasswd(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	tests := []struct {
		name string
		text string
		ok   bool
	}{
		{"bcrypt", "alice:" + string(h), true},
		{"comments and blanks", "# x\n\nalice:" + string(h) + "\n", true},
		{"md5 refused", "alice:$apr1$abc$def", false},
		{"sha1 refused", "alice:{SHA}abc", false},
		{"plain refused", "alice:secret", false},
		{"no colon", "alice", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseHtpasswd(bufio.NewScanner(strings.NewReader(tt.text)), "f", time.Minute)
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrHtpasswd)
			}
		})
	}
}

func TestAuthCache(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	a, err := parseHtpasswd(bufio.NewScanner(strings.NewReader("alice:"+string(h))), "f", time.Minute)
	require.NoError(t, err)
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	assert.False(t, a.check("alice", "wrong"))
	assert.Empty(t, a.cache, "failures are not cached")
	assert.True(t, a.check("alice", "pw"))
	assert.Len(t, a.cache, 1)
	// A cache hit needs no bcrypt: replace the hash with garbage.
	a.users["alice"] = []byte("$2a$04$invalid")
	assert.True(t, a.check("alice", "pw"))
	assert.False(t, a.check("alice", "pw2"))
	assert.False(t, a.check("bob", "pw"))
	now = now.Add(2 * time.Minute)
	assert.False(t, a.check("alice", "pw"), "expired entries are checked again")
}

func TestLoginTokens(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "token.key")
	a, err := newLoginTokens(keyFile)
	require.NoError(t, err)
	fi, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	tok, exp := a.mint("alice")
	assert.WithinDuration(t, time.Now().Add(12*time.Hour), exp, 2*time.Second)
	user, ok := a.check(tok)
	assert.True(t, ok)
	assert.Equal(t, "alice", user, "the token carries its user")
	anonTok, _ := a.mint("")
	user, ok = a.check(anonTok)
	assert.True(t, ok)
	assert.Empty(t, user)

	// The key file makes tokens outlive a restart; another key does not
	// accept them.
	again, err := newLoginTokens(keyFile)
	require.NoError(t, err)
	_, ok = again.check(tok)
	assert.True(t, ok)
	other, err := newLoginTokens("")
	require.NoError(t, err)
	_, ok = other.check(tok)
	assert.False(t, ok)

	// Expired, altered and malformed tokens are refused.
	late := *a
	late.now = func() time.Time { return time.Now().Add(12*time.Hour + time.Minute) }
	_, ok = late.check(tok)
	assert.False(t, ok)
	for _, bad := range []string{"", "berth1.", "berth1..", "berth1.x.y", tok + "A", strings.Replace(tok, "berth1.", "berth2.", 1),
		tok[:len(tok)-2], "berth1." + strings.Repeat("A", 300)} {
		_, ok := a.check(bad)
		assert.False(t, ok, "%q", bad)
	}
	// A forged expiry or user with the old MAC.
	p64, m64, _ := strings.Cut(strings.TrimPrefix(tok, "berth1."), ".")
	payload, err := base64.RawURLEncoding.DecodeString(p64)
	require.NoError(t, err)
	for _, forged := range [][]byte{append([]byte{0xff}, payload[1:]...), append(payload[:8:8], "root"...)} {
		_, ok = a.check("berth1." + base64.RawURLEncoding.EncodeToString(forged) + "." + m64)
		assert.False(t, ok)
	}

	require.NoError(t, os.WriteFile(keyFile, []byte("short"), 0o600))
	_, err = newLoginTokens(keyFile)
	require.ErrorIs(t, err, ErrTokenKey)
}

func TestLoadECRCredentials(t *testing.T) {
	tests := []struct {
		name, text string
		ok         bool
	}{
		{"two keys and a comment", "# keys\nAKIA1:secret/one\n\nAKIA2:two+secret:alice\n", true},
		{"no colon", "AKIA1\n", false},
		{"too many fields", "AKIA1:s:u:x\n", false},
		{"bad user", "AKIA1:s:al ice\n", false},
		{"empty secret", "AKIA1:\n", false},
		{"space in the key id", "AK IA:s\n", false},
		{"duplicate", "A:s\nA:t\n", false},
		{"empty file", "# nothing\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "creds")
			require.NoError(t, os.WriteFile(p, []byte(tt.text), 0o600))
			c, err := loadECRCredentials(p)
			if !tt.ok {
				require.ErrorIs(t, err, ErrECRCredentials)
				return
			}
			require.NoError(t, err)
			s, ok := c.lookup("AKIA2")
			require.True(t, ok)
			assert.Equal(t, "two+secret", s)
			assert.Equal(t, "alice", c.user("AKIA2"))
			assert.Equal(t, "AKIA1", c.user("AKIA1"), "the user defaults to the key ID")
			_, ok = c.lookup("nope")
			assert.False(t, ok)
		})
	}
	_, err := loadECRCredentials(filepath.Join(t.TempDir(), "missing"))
	require.ErrorIs(t, err, ErrECRCredentials)
}

// writeFile writes text to a file in a fresh directory and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

// TestBasic: who the basic credentials of a request name, with and
// without an htpasswd file, a login token, and anonymous pulls.
func TestBasic(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	htpasswd := writeFile(t, "htpasswd", "alice:"+string(hash)+"\n")
	open, err := New(Config{Account: "000000000000"})
	require.NoError(t, err)
	closed, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswd, AuthCacheTTL: time.Minute})
	require.NoError(t, err)
	anonPull, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswd, AnonymousPull: true})
	require.NoError(t, err)
	token, _ := closed.MintLoginToken("bob")
	foreign, _ := open.MintLoginToken("bob") // another key: not good here

	req := func(method, user, pass string) *http.Request {
		r := httptest.NewRequest(method, "/v2/", nil)
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
		return r
	}
	tests := []struct {
		name      string
		a         *Authenticator
		r         *http.Request
		anonymous bool // maybeAnonymousPull
		user      string
		ok        bool
	}{
		{"open registry", open, req(http.MethodPut, "", ""), false, "", true},
		{"password", closed, req(http.MethodGet, "alice", "pw"), true, "alice", true},
		{"wrong password", closed, req(http.MethodGet, "alice", "nope"), true, "", false},
		{"login token", closed, req(http.MethodPut, LoginUser, token), false, "bob", true},
		{"token of another key", closed, req(http.MethodGet, LoginUser, foreign), false, "", false},
		{"no credentials", closed, req(http.MethodGet, "", ""), true, "", false},
		{"anonymous pull", anonPull, req(http.MethodHead, "", ""), true, "", true},
		{"anonymous push", anonPull, req(http.MethodPost, "", ""), true, "", false},
		{"anonymous admin", anonPull, req(http.MethodGet, "", ""), false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			who, err := tt.a.Basic(tt.r, tt.anonymous)
			if !tt.ok {
				require.ErrorIs(t, err, ErrUnauthenticated)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.user, who.User)
			assert.Equal(t, "000000000000", who.Account)
		})
	}
}

// TestSigV4Modes: the ECR API is open without credentials and without an
// htpasswd file, closed with an htpasswd file and no credentials, and
// needs a signature with credentials.
func TestSigV4Modes(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	htpasswd := writeFile(t, "htpasswd", "alice:"+string(hash)+"\n")
	creds := writeFile(t, "creds", "AKIA1:secret:carol\n")
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))

	open, err := New(Config{Account: "000000000000"})
	require.NoError(t, err)
	who, err := open.SigV4(r, []byte("{}"))
	require.NoError(t, err)
	assert.Empty(t, who.User)

	closed, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswd})
	require.NoError(t, err)
	_, err = closed.SigV4(r, []byte("{}"))
	require.ErrorIs(t, err, ErrECRClosed)

	signed, err := New(Config{Account: "000000000000", ECRCredentialsFile: creds})
	require.NoError(t, err)
	_, err = signed.SigV4(r, []byte("{}"))
	require.Error(t, err, "an unsigned call is refused")
	_, err = signed.Basic(r, false)
	require.NoError(t, err, "the OCI API stays open: no htpasswd file")
}

func TestNewRefusesBadFiles(t *testing.T) {
	_, err := New(Config{Account: "000000000000", HtpasswdFile: writeFile(t, "h", "alice:plain\n")})
	require.ErrorIs(t, err, ErrHtpasswd)
	_, err = New(Config{Account: "000000000000", HtpasswdFile: filepath.Join(t.TempDir(), "missing")})
	require.ErrorIs(t, err, ErrHtpasswd)
	_, err = New(Config{Account: "000000000000", ECRCredentialsFile: writeFile(t, "c", "nocolon\n")})
	require.ErrorIs(t, err, ErrECRCredentials)
	_, err = New(Config{Account: "000000000000", LoginTokenKeyFile: writeFile(t, "k", "short")})
	require.ErrorIs(t, err, ErrTokenKey)
	_, err = New(Config{})
	require.Error(t, err)
}
