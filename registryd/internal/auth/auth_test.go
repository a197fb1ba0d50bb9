package auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/internal/testenv"
	"github.com/berthstore/berth/registryd/internal/request"
	"github.com/berthstore/berth/registryd/internal/sigv4"
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
		{"user AWS refused", "AWS:" + string(h), false},
		{"user name IAM refuses", "al ice:" + string(h), false},
		{"user given twice", "alice:" + string(h) + "\nalice:" + string(h), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseHtpasswd(bufio.NewScanner(strings.NewReader(tt.text)), "f", time.Minute)
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrHtpasswd)
				t.Log(err)
			}
		})
	}
}

func TestAuthCache(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	a, err := parseHtpasswd(bufio.NewScanner(strings.NewReader("alice:"+string(h))), "f", time.Minute)
	require.NoError(t, err)
	now := time.Unix(1000, 0)
	a.setClock(func() time.Time { return now })
	assert.False(t, checkPassword(a, "alice", "wrong"))
	assert.Zero(t, a.cached.Load(), "failures are not cached")
	assert.True(t, checkPassword(a, "alice", "pw"))
	assert.Equal(t, int64(1), a.cached.Load())
	// A cache hit needs no bcrypt: replace the hash with garbage.
	a.users["alice"] = []byte("$2a$04$invalid")
	assert.True(t, checkPassword(a, "alice", "pw"))
	assert.False(t, checkPassword(a, "alice", "pw2"))
	assert.False(t, checkPassword(a, "bob", "pw"))
	now = now.Add(2 * time.Minute)
	assert.False(t, checkPassword(a, "alice", "pw"), "expired entries are checked again")

	// The cache is bounded: past maxAuthCache entries it starts over.
	a.compare = func([]byte, []byte) error { return nil }
	for i := range maxAuthCache + 10 {
		require.True(t, checkPassword(a, "alice", fmt.Sprint("pw", i)))
	}
	n := 0
	a.verified.Range(func(any, any) bool { n++; return true })
	assert.LessOrEqual(t, n, maxAuthCache)
	assert.Equal(t, int64(n), a.cached.Load())
}

// checkPassword checks user and password as a request that carries them
// in its Authorization header does.
func checkPassword(a *passwords, user, password string) bool {
	return a.check(basicHeader(user, password), []byte(user), []byte(password))
}

// TestVerifiedHeaders: a password's header, once checked, authenticates
// without decoding or bcrypt, but never a header that differs from it
// (also one the keyed hash puts on its entry), never past the entry's
// expiry, never after a reload that removed the user; the cache holds
// neither the password nor the header.
func TestVerifiedHeaders(t *testing.T) {
	htpasswd := htpasswdFile(t, "alice")
	a, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswd, AuthCacheTTL: time.Minute})
	require.NoError(t, err)
	const pw = "pw" // htpasswdFile's
	r := basicRequest(http.MethodGet, "alice", pw)
	h := authorizationHeader(r)
	c := a.current.Load()
	_, ok := c.passwords.cachedUser(h)
	require.False(t, ok, "nothing checked yet")
	who, err := a.Basic(r, false)
	require.NoError(t, err)
	assert.Equal(t, "alice", who.User)
	user, ok := c.passwords.cachedUser(h)
	require.True(t, ok, "kept once checked")
	assert.Equal(t, "alice", user)

	// A cache hit needs no bcrypt: make every bcrypt fail.
	c.passwords.compare = func([]byte, []byte) error { return errors.New("no bcrypt") }
	who, err = a.Basic(r, false)
	require.NoError(t, err)
	assert.Equal(t, "alice", who.User, "served from the cache")

	// Another header for the same user is checked (and refused by the
	// failing bcrypt), also when it lands on the verified entry.
	other := basicHeader("alice", pw+"x")
	_, ok = c.passwords.cachedUser(other)
	assert.False(t, ok)
	v, _ := c.passwords.verified.Load(maphash.String(c.passwords.seed, h))
	c.passwords.verified.Store(maphash.String(c.passwords.seed, other), v)
	_, ok = c.passwords.cachedUser(other)
	assert.False(t, ok, "a header on another's entry is not that header")
	_, err = a.Basic(basicRequest(http.MethodGet, "alice", pw+"x"), false)
	require.ErrorIs(t, err, ErrUnauthenticated)

	// What the cache holds of the password: no byte string of it.
	c.passwords.verified.Range(func(_, v any) bool {
		e := v.(*verifiedHeader)
		for _, secret := range []string{pw, h, h[len("Basic "):]} {
			assert.NotContains(t, string(e.sum[:])+e.user, secret)
		}
		return true
	})

	// Expiry.
	now := time.Now()
	c.passwords.setClock(func() time.Time { return now.Add(2 * time.Minute) })
	_, ok = c.passwords.cachedUser(h)
	assert.False(t, ok, "expired")
	_, err = a.Basic(r, false)
	require.ErrorIs(t, err, ErrUnauthenticated, "checked again, with bcrypt (failing here)")
	c.passwords.setClock(time.Now)
	c.passwords.compare = bcrypt.CompareHashAndPassword

	// A reload starts with an empty cache: a removed user is refused.
	_, err = a.Basic(r, false)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(htpasswd, []byte("bob:"+strings.SplitN(mustRead(t, htpasswd), ":", 2)[1]), 0o600))
	_, err = a.Reload()
	require.NoError(t, err)
	_, err = a.Basic(r, false)
	require.ErrorIs(t, err, ErrUnauthenticated, "alice was removed")

	// A console sign-in is cached as the same credentials' requests are.
	b, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswdFile(t, "carol"), AuthCacheTTL: time.Minute})
	require.NoError(t, err)
	_, err = b.SignIn("carol", pw)
	require.NoError(t, err)
	_, ok = b.current.Load().passwords.cachedUser(basicHeader("carol", pw))
	assert.True(t, ok)
}

// TestAuthCacheOneCheckAtATime: requests that come together with the
// same credentials, none in the cache (a client's parallel downloads when
// its entry has expired), cost one bcrypt, not one each; other
// credentials are not held up by it, and a wrong password shares nothing
// with the right one.
func TestAuthCacheOneCheckAtATime(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	a, err := parseHtpasswd(bufio.NewScanner(strings.NewReader("alice:"+string(h))), "f", time.Minute)
	require.NoError(t, err)
	var calls atomic.Int32
	release := make(chan struct{})
	a.compare = func(hash, password []byte) error {
		calls.Add(1)
		if string(password) == "pw" {
			<-release
		}
		return bcrypt.CompareHashAndPassword(hash, password)
	}
	const n = 8
	var started, done sync.WaitGroup
	results := make([]bool, n)
	for i := range n {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			results[i] = checkPassword(a, "alice", "pw")
		}()
	}
	started.Wait()
	// The goroutines must be parked in the check of the first one before
	// it ends; nothing tells when they are, so give them time.
	time.Sleep(100 * time.Millisecond)
	assert.False(t, checkPassword(a, "alice", "wrong"), "another password is checked on its own, meanwhile")
	close(release)
	done.Wait()
	for i, ok := range results {
		assert.True(t, ok, "request %d", i)
	}
	assert.Equal(t, int32(2), calls.Load(), "one bcrypt for the %d requests with the right password, one for the wrong one", n)
	assert.True(t, checkPassword(a, "alice", "pw"))
	assert.Equal(t, int32(2), calls.Load(), "then the cache answers")
}

func TestLoginTokens(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "token.key")
	a, err := newLoginTokens(keyFile)
	require.NoError(t, err)
	fi, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	tok, exp := a.mint("123456789012", "alice")
	assert.True(t, strings.HasPrefix(tok, "berth2."), tok)
	assert.WithinDuration(t, time.Now().Add(12*time.Hour), exp, 2*time.Second)
	c, err := a.check(tok)
	require.NoError(t, err)
	assert.Equal(t, "alice", c.user, "the token carries its user")
	assert.Equal(t, "123456789012", c.account, "and its account")
	anonTok, _ := a.mint("123456789012", "")
	c, err = a.check(anonTok)
	require.NoError(t, err)
	assert.Empty(t, c.user)

	// The key file makes tokens outlive a restart; another key does not
	// accept them.
	again, err := newLoginTokens(keyFile)
	require.NoError(t, err)
	_, err = again.check(tok)
	require.NoError(t, err)
	other, err := newLoginTokens("")
	require.NoError(t, err)
	_, err = other.check(tok)
	require.ErrorIs(t, err, errTokenInvalid)

	// Expired, altered, malformed and first-format tokens are refused.
	late := &loginTokens{key: a.key, now: func() time.Time { return time.Now().Add(12*time.Hour + time.Minute) }}
	_, err = late.check(tok)
	require.ErrorIs(t, err, errTokenExpired)
	for _, bad := range []string{"", "berth2.", "berth2..", "berth2.x.y", tok + "A", strings.Replace(tok, "berth2.", "berth3.", 1),
		tok[:len(tok)-2], "berth2." + strings.Repeat("A", 500)} {
		_, err := a.check(bad)
		require.ErrorIs(t, err, errTokenInvalid, "%q", bad)
	}
	_, err = a.check(strings.Replace(tok, "berth2.", "berth1.", 1))
	require.ErrorIs(t, err, errTokenLegacy)
	// A forged expiry, account or user with the old MAC.
	p64, m64, _ := strings.Cut(strings.TrimPrefix(tok, "berth2."), ".")
	payload, err := base64.RawURLEncoding.DecodeString(p64)
	require.NoError(t, err)
	forgeries := [][]byte{
		append([]byte{0xff}, payload[1:]...),
		append(payload[:len(payload)-len("alice"):len(payload)-len("alice")], "root"...),
		append(append(payload[:9:9], "999999999999"...), "alice"...),
		append(payload[:8:8], 200), // an account length past the end
	}
	for _, forged := range forgeries {
		_, err = a.check("berth2." + base64.RawURLEncoding.EncodeToString(forged) + "." + m64)
		require.ErrorIs(t, err, errTokenInvalid)
	}

	require.NoError(t, os.WriteFile(keyFile, []byte("short"), 0o600))
	_, err = newLoginTokens(keyFile)
	require.ErrorIs(t, err, ErrTokenKey)
}

// TestTokenKeyFileChecked: a key file others may read, one another user
// owns, or no regular file is refused with a clear error, as the keyring
// is; a good one is used.
func TestTokenKeyFileChecked(t *testing.T) {
	key := make([]byte, tokenKeySize)
	write := func(t *testing.T, mode os.FileMode) string {
		p := filepath.Join(t.TempDir(), "token.key")
		require.NoError(t, os.WriteFile(p, key, 0o600))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644, 0o666} {
		_, err := newLoginTokens(write(t, mode))
		require.ErrorIs(t, err, ErrTokenKey, "mode %v", mode)
		require.ErrorContains(t, err, "want 0600")
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		_, err := newLoginTokens(write(t, mode))
		require.NoError(t, err, "mode %v", mode)
	}
	_, err := newLoginTokens(t.TempDir())
	require.ErrorIs(t, err, ErrTokenKey, "a directory")
	_, err = New(Config{Account: "000000000000", LoginTokenKeyFile: write(t, 0o644)})
	require.ErrorIs(t, err, ErrTokenKey)

	t.Run("owned by another user", func(t *testing.T) {
		testenv.NeedRoot(t, "giving a file to another user")
		p := write(t, 0o600)
		require.NoError(t, os.Chown(p, 4242, 4242))
		_, err := newLoginTokens(p)
		require.ErrorIs(t, err, ErrTokenKey)
		require.ErrorContains(t, err, "owned by uid 4242")
	})
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

// htpasswdFile writes an htpasswd file of users, each with password
// "pw" (bcrypt, minimum cost).
func htpasswdFile(t testing.TB, users ...string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	var b strings.Builder
	for _, u := range users {
		b.WriteString(u + ":" + string(hash) + "\n")
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o600))
	return p
}

// basicRequest is a request with basic credentials (none for user "").
func basicRequest(method, user, pass string) *http.Request {
	r := httptest.NewRequest(method, "/v2/", nil)
	if user != "" {
		r.SetBasicAuth(user, pass)
	}
	return r
}

// TestBasic: who the basic credentials of a request name, with and
// without an htpasswd file, login tokens, and anonymous pulls.
func TestBasic(t *testing.T) {
	htpasswd := htpasswdFile(t, "alice")
	creds := writeFile(t, "creds", "AKIA1:secret:carol\n")
	open, err := New(Config{Account: "000000000000"})
	require.NoError(t, err)
	closed, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswd, AuthCacheTTL: time.Minute, ECRCredentialsFile: creds})
	require.NoError(t, err)
	anonPull, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswd, AnonymousPull: true})
	require.NoError(t, err)
	otherAccount, err := New(Config{Account: "111111111111", HtpasswdFile: htpasswd})
	require.NoError(t, err)
	otherAccount.tokens = closed.tokens // the same key, another account

	carolToken, _ := closed.MintLoginToken("carol")
	aliceToken, _ := closed.MintLoginToken("alice")
	nobodyToken, _ := closed.MintLoginToken("dave") // holds no credentials
	anonToken, _ := closed.MintLoginToken("")       // minted while authentication was off
	foreign, _ := open.MintLoginToken("carol")      // another key: not good here
	accountToken, _ := otherAccount.MintLoginToken("alice")

	tests := []struct {
		name      string
		a         *Authenticator
		r         *http.Request
		anonymous bool // maybeAnonymousPull
		user      string
		ok        bool
	}{
		{"open registry", open, basicRequest(http.MethodPut, "", ""), false, "", true},
		{"open registry ignores credentials", open, basicRequest(http.MethodPut, "alice", "wrong"), false, "", true},
		{"password", closed, basicRequest(http.MethodGet, "alice", "pw"), true, "alice", true},
		{"wrong password", closed, basicRequest(http.MethodGet, "alice", "nope"), true, "", false},
		{"login token of an access key's user", closed, basicRequest(http.MethodPut, LoginUser, carolToken), false, "carol", true},
		{"login token of a password's user", closed, basicRequest(http.MethodPut, LoginUser, aliceToken), false, "alice", true},
		{"login token of a user without credentials", closed, basicRequest(http.MethodGet, LoginUser, nobodyToken), false, "", false},
		{"anonymous login token", closed, basicRequest(http.MethodGet, LoginUser, anonToken), false, "", false},
		{"login token of another account", closed, basicRequest(http.MethodGet, LoginUser, accountToken), false, "", false},
		{"login token of another key", closed, basicRequest(http.MethodGet, LoginUser, foreign), false, "", false},
		{"user AWS with a password", closed, basicRequest(http.MethodGet, LoginUser, "pw"), false, "", false},
		{"no credentials", closed, basicRequest(http.MethodGet, "", ""), true, "", false},
		{"anonymous pull", anonPull, basicRequest(http.MethodHead, "", ""), true, "", true},
		{"anonymous push", anonPull, basicRequest(http.MethodPost, "", ""), true, "", false},
		{"anonymous admin", anonPull, basicRequest(http.MethodGet, "", ""), false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := &request.Info{}
			r := tt.r.WithContext(request.WithInfo(tt.r.Context(), info))
			who, err := tt.a.Basic(r, tt.anonymous)
			if !tt.ok {
				require.ErrorIs(t, err, ErrUnauthenticated)
				assert.False(t, info.Authenticated)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.user, who.User)
			assert.Equal(t, tt.a.account, who.Account)
			assert.True(t, info.Authenticated, "the access log learns the principal")
			assert.Equal(t, who.ARN(), info.Principal.ARN())
		})
	}
}

// TestFirstFormatTokensRefused: a berth1 token is refused, with a log
// line that says why and what to do.
func TestFirstFormatTokensRefused(t *testing.T) {
	var log bytes.Buffer
	a, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswdFile(t, "alice"),
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	require.NoError(t, err)
	// A token of the first format: expiry and user, MACed without a domain.
	payload := binary.BigEndian.AppendUint64(nil, uint64(time.Now().Add(time.Hour).Unix()))
	payload = append(payload, "alice"...)
	m := hmac.New(sha256.New, a.tokens.key)
	m.Write(payload)
	old := "berth1." + base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	_, err = a.Basic(basicRequest(http.MethodGet, LoginUser, old), false)
	require.ErrorIs(t, err, ErrUnauthenticated)
	assert.Contains(t, log.String(), "berth1 format, which is no longer accepted")
	assert.Contains(t, log.String(), "get-login-password")
}

// TestLoginTokenNeedsNoPasswordCheck: a request with a login token costs
// no bcrypt: a few hundred token checks take less time than the one
// bcrypt that an unknown user's password check spends (the order of
// checks before: the password file first, for user AWS too).
func TestLoginTokenNeedsNoPasswordCheck(t *testing.T) {
	a, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswdFile(t, "alice"), AuthCacheTTL: -1})
	require.NoError(t, err)
	token, _ := a.MintLoginToken("alice")
	r := basicRequest(http.MethodGet, LoginUser, token)
	start := time.Now()
	assert.False(t, checkPassword(a.current.Load().passwords, LoginUser, token))
	oneBcrypt := time.Since(start)
	start = time.Now()
	for range 300 {
		_, err := a.Basic(r, false)
		require.NoError(t, err)
	}
	assert.Less(t, time.Since(start), oneBcrypt, "300 token checks against one bcrypt")
}

// BenchmarkLoginTokenRequest measures what authenticating a request with
// a login token costs, as registryd checked before (the htpasswd file
// first, a dummy bcrypt for the unknown user AWS, then the token), with
// the token checked whole each time (decoded, its MAC computed), and now
// (its header verified once, then found among the checked ones).
func BenchmarkLoginTokenRequest(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	require.NoError(b, err)
	htpasswd := filepath.Join(b.TempDir(), "htpasswd")
	require.NoError(b, os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600))
	a, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswd, AuthCacheTTL: time.Minute})
	require.NoError(b, err)
	token, _ := a.MintLoginToken("alice")
	r := basicRequest(http.MethodGet, LoginUser, token)
	b.Run("before=password-file-first", func(b *testing.B) {
		for b.Loop() {
			c := a.current.Load()
			user, pass, _ := r.BasicAuth()
			if checkPassword(c.passwords, user, pass) {
				b.Fatal("user AWS has no password")
			}
			if _, ok := a.tokenPrincipal(c, []byte(pass)); !ok {
				b.Fatal("token refused")
			}
		}
	})
	b.Run("token-checked-whole", func(b *testing.B) {
		c := a.current.Load()
		for b.Loop() {
			var raw, dec [basicBufSize]byte
			_, pass, _ := basicAuth(authorizationHeader(r), raw[:], dec[:])
			if _, ok := a.tokenPrincipal(c, pass); !ok {
				b.Fatal("token refused")
			}
		}
	})
	b.Run("after=token-first", func(b *testing.B) {
		for b.Loop() {
			if _, err := a.Basic(r, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSigV4Modes: the ECR API is open without credentials and without an
// htpasswd file, closed with an htpasswd file and no credentials, and
// needs a signature with credentials.
func TestSigV4Modes(t *testing.T) {
	htpasswd := htpasswdFile(t, "alice")
	creds := writeFile(t, "creds", "AKIA1:secret:carol\n")
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))

	open, err := New(Config{Account: "000000000000"})
	require.NoError(t, err)
	call, err := open.BeginSigV4(r)
	require.NoError(t, err)
	who, err := call.Finish([]byte("{}"))
	require.NoError(t, err)
	assert.Empty(t, who.User)

	closed, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswd})
	require.NoError(t, err)
	_, err = closed.BeginSigV4(r)
	require.ErrorIs(t, err, ErrECRClosed)

	signed, err := New(Config{Account: "000000000000", ECRCredentialsFile: creds})
	require.NoError(t, err)
	_, err = signed.BeginSigV4(r)
	require.ErrorIs(t, err, sigv4.ErrMissing, "an unsigned call is refused before its body is read")
	_, err = signed.Basic(r, false)
	require.ErrorIs(t, err, ErrUnauthenticated, "authentication is on: basic credentials are needed (a login token)")
	tok, _ := signed.MintLoginToken("carol")
	who, err = signed.Basic(basicRequest(http.MethodGet, LoginUser, tok), false)
	require.NoError(t, err, "a login token of an access key's user works without an htpasswd file")
	assert.Equal(t, "carol", who.User)
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
	_, err = New(Config{Account: "000000000000", HtpasswdFile: htpasswdFile(t, "alice"), IdentityFile: writeFile(t, "iam.yaml", "users: {alice: {groups: [nope]}}\n")})
	require.ErrorIs(t, err, ErrIdentities)
	_, err = New(Config{Account: "000000000000", IdentityFile: writeFile(t, "iam.yaml", "users: {alice: {}}\n")})
	require.ErrorIs(t, err, ErrIdentities, "identity policies without authentication")
	require.ErrorContains(t, err, "need authentication")
	_, err = New(Config{})
	require.Error(t, err)
}

// BenchmarkPasswordRequest measures what authenticating a request with a
// password costs once the password is in the cache of verified ones (all
// but the first request of a client in each cache period).
func BenchmarkPasswordRequest(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("a-password-of-twenty"), bcrypt.MinCost)
	require.NoError(b, err)
	htpasswd := filepath.Join(b.TempDir(), "htpasswd")
	require.NoError(b, os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600))
	a, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswd, AuthCacheTTL: time.Minute})
	require.NoError(b, err)
	r := basicRequest(http.MethodGet, "alice", "a-password-of-twenty")
	_, err = a.Basic(r, false)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Basic(r, false); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCheckedTokens: a login token's header, once verified, authenticates
// without the check, but never past the token's expiry, for a user who
// no longer holds credentials, or for a header that differs in one byte;
// passwords never enter the cache; the cache is bounded.
func TestCheckedTokens(t *testing.T) {
	htpasswd := htpasswdFile(t, "alice")
	a, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswd})
	require.NoError(t, err)
	token, _ := a.MintLoginToken("alice")
	r := basicRequest(http.MethodGet, LoginUser, token)
	require.True(t, mayCarryToken(authorizationHeader(r)), "a token's header is recognised")
	who, err := a.Basic(r, false)
	require.NoError(t, err)
	assert.Equal(t, "alice", who.User)
	_, ok := a.checked.get(authorizationHeader(r))
	require.True(t, ok, "kept once verified")
	who, err = a.Basic(r, false)
	require.NoError(t, err)
	assert.Equal(t, "alice", who.User, "and served from the cache")

	_, err = a.Basic(basicRequest(http.MethodGet, "alice", "pw"), false)
	require.NoError(t, err)
	assert.False(t, mayCarryToken(authorizationHeader(basicRequest(http.MethodGet, "alice", "pw"))))
	assert.Equal(t, 1, a.checked.len(), "a password's header is never kept")

	i := len("berth2.") + 2 // in the payload's expiry
	flip := map[byte]byte{'A': 'B'}[token[i]]
	if flip == 0 {
		flip = 'A'
	}
	altered := basicRequest(http.MethodGet, LoginUser, token[:i]+string(flip)+token[i+1:])
	_, err = a.Basic(altered, false)
	require.ErrorIs(t, err, ErrUnauthenticated, "another header is checked, and refused")

	now := time.Now()
	a.tokens.now = func() time.Time { return now.Add(12*time.Hour + time.Minute) }
	_, err = a.Basic(r, false)
	require.ErrorIs(t, err, ErrUnauthenticated, "the cached token expired")
	a.tokens.now = time.Now

	require.NoError(t, os.WriteFile(htpasswd, []byte("bob:"+strings.SplitN(mustRead(t, htpasswd), ":", 2)[1]), 0o600))
	_, err = a.Reload()
	require.NoError(t, err)
	_, err = a.Basic(r, false)
	require.ErrorIs(t, err, ErrUnauthenticated, "the cached token's user lost their credentials")

	for i := range maxAuthCache + 10 {
		a.checked.put(fmt.Sprintf("Basic %s%d", tokenHeaderPrefix, i), tokenClaims{})
	}
	assert.LessOrEqual(t, a.checked.len(), maxAuthCache, "bounded")
}
