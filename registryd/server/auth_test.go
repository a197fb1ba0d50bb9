package server

import (
	"bufio"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// writeHtpasswd writes a one-user htpasswd file (bcrypt, minimum cost).
func writeHtpasswd(t *testing.T, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "htpasswd")
	require.NoError(t, os.WriteFile(p, []byte("# users\n"+user+":"+string(h)+"\n"), 0o600))
	return p
}

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

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestBasicAuthHTTP(t *testing.T) {
	file := writeHtpasswd(t, "alice", "secret")
	tests := []struct {
		name      string
		anonPull  bool
		method    string
		auth      string
		wantCode  int
		challenge bool
	}{
		{"no credentials", false, http.MethodGet, "", 401, true},
		{"bad password", false, http.MethodGet, basic("alice", "nope"), 401, true},
		{"unknown user", false, http.MethodGet, basic("bob", "secret"), 401, true},
		{"good", false, http.MethodGet, basic("alice", "secret"), 200, false},
		{"anonymous pull GET", true, http.MethodGet, "", 200, false},
		{"anonymous pull HEAD", true, http.MethodHead, "", 200, false},
		{"anonymous pull no push", true, http.MethodPost, "", 401, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestHandler(t, Config{HtpasswdFile: file, AnonymousPull: tt.anonPull})
			target := "/v2/"
			if tt.method == http.MethodPost {
				target = "/v2/a/blobs/uploads/"
			}
			hdr := map[string]string{}
			if tt.auth != "" {
				hdr["Authorization"] = tt.auth
			}
			rec := do(s.Handler(), tt.method, target, nil, hdr)
			if tt.wantCode == 401 {
				requireOCIError(t, rec, 401, "UNAUTHORIZED")
			} else {
				assert.Equal(t, tt.wantCode, rec.Code)
			}
			if tt.challenge {
				assert.Equal(t, `Basic realm="berth"`, rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestNewRejectsBadHtpasswd(t *testing.T) {
	_, err := New(nil, Config{})
	require.Error(t, err)
	p := filepath.Join(t.TempDir(), "h")
	require.NoError(t, os.WriteFile(p, []byte("alice:plain\n"), 0o600))
	_, err = New(newStore(t), Config{HtpasswdFile: p})
	require.ErrorIs(t, err, ErrHtpasswd)
	_, err = New(newStore(t), Config{HtpasswdFile: filepath.Join(t.TempDir(), "missing")})
	require.ErrorIs(t, err, ErrHtpasswd)
}
