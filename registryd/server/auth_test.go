package server

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
