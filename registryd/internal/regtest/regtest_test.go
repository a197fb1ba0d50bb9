package regtest_test

import (
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/registryd/internal/regtest"
	"github.com/berthstore/berth/registryd/server"
)

// failRecorder is a testing.TB that records whether a helper failed it.
type failRecorder struct {
	testing.TB
	failed bool
}

func (f *failRecorder) Helper()               {}
func (f *failRecorder) Errorf(string, ...any) { f.failed = true }
func (f *failRecorder) FailNow()              { f.failed = true; runtime.Goexit() }

// fails reports whether check fails the test it is given.
func fails(t *testing.T, check func(tb testing.TB)) bool {
	r := &failRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	return r.failed
}

// The helpers against the real server: a blob pushed with PushBlob reads
// back, and the error checks accept the server's errors and refuse
// anything else.
func TestHelpersAgainstTheServer(t *testing.T) {
	e := regtest.Engine(t)
	s, err := server.New(e, server.Config{Logger: regtest.Quiet()})
	require.NoError(t, err)
	h := s.Handler()

	data := []byte("regtest layer")
	d := regtest.PushBlob(t, h, "team/app", data)
	assert.Equal(t, digest.FromBytes(data), d)
	rec := regtest.Do(h, http.MethodGet, "/v2/team/app/blobs/"+d.String(), nil, nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, data, rec.Body.Bytes())

	missing := regtest.Do(h, http.MethodGet, "/v2/team/app/manifests/nope", nil, nil)
	regtest.RequireOCIError(t, missing, http.StatusNotFound, "MANIFEST_UNKNOWN")
	assert.True(t, fails(t, func(tb testing.TB) {
		regtest.RequireOCIError(tb, missing, http.StatusNotFound, "BLOB_UNKNOWN")
	}), "another code")
	assert.True(t, fails(t, func(tb testing.TB) { regtest.RequireOCIError(tb, rec, http.StatusOK, "MANIFEST_UNKNOWN") }),
		"a blob is no error body")

	ecr := regtest.ECRDo(h, "DescribeRepositories", `{"repositoryNames":["absent"]}`)
	regtest.RequireECRError(t, ecr, http.StatusBadRequest, "RepositoryNotFoundException")
	assert.True(t, fails(t, func(tb testing.TB) {
		regtest.RequireECRError(tb, ecr, http.StatusBadRequest, "InvalidParameterException")
	}))
	ok := regtest.ECRDo(h, "DescribeRepositories", `{}`)
	require.Equal(t, http.StatusOK, ok.Code, ok.Body.String())
	assert.Contains(t, ok.Body.String(), `"repositoryName":"team/app"`)

	// A manifest ImageManifest writes is one the server accepts, and a
	// referrer with its subject is listed as one.
	cfg := regtest.PushBlob(t, h, "team/app", []byte("{}"))
	m := regtest.ImageManifest(cfg, d, 2, len(data), nil, "")
	put := regtest.Do(h, http.MethodPut, "/v2/team/app/manifests/v1", m,
		map[string]string{"Content-Type": ocispec.MediaTypeImageManifest})
	require.Equal(t, http.StatusCreated, put.Code, put.Body.String())
	subject := digest.FromBytes(m)
	sig := regtest.ImageManifest(cfg, d, 2, len(data), &subject, "application/vnd.test.sig")
	put = regtest.Do(h, http.MethodPut, "/v2/team/app/manifests/"+digest.FromBytes(sig).String(), sig,
		map[string]string{"Content-Type": ocispec.MediaTypeImageManifest})
	require.Equal(t, http.StatusCreated, put.Code, put.Body.String())
	refs := regtest.Do(h, http.MethodGet, "/v2/team/app/referrers/"+subject.String(), nil, nil)
	require.Equal(t, http.StatusOK, refs.Code)
	var idx ocispec.Index
	require.NoError(t, json.Unmarshal(refs.Body.Bytes(), &idx))
	require.Len(t, idx.Manifests, 1)
	assert.Equal(t, "application/vnd.test.sig", idx.Manifests[0].ArtifactType)
}

// The credentials helpers: an htpasswd file the server's bcrypt accepts,
// and a Basic header net/http decodes.
func TestCredentials(t *testing.T) {
	p := regtest.WriteHtpasswd(t, "alice", "s3cret")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	var hash string
	for _, line := range strings.Split(string(b), "\n") {
		if user, h, ok := strings.Cut(line, ":"); ok && user == "alice" {
			hash = h
		}
	}
	require.NoError(t, bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret")))
	require.Error(t, bcrypt.CompareHashAndPassword([]byte(hash), []byte("wrong")))

	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", regtest.Basic("alice", "pa:ss"))
	user, pass, ok := req.BasicAuth()
	require.True(t, ok)
	assert.Equal(t, "alice", user)
	assert.Equal(t, "pa:ss", pass)
}

// ValidHeader agrees with what net/http's client refuses to send.
func TestValidHeader(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        bool
	}{
		{"Content-Type", "application/json", true},
		{"X-Custom", "", true},
		{"X-Custom", "tab\tinside", true},
		{"", "x", false},
		{"Bad Name", "x", false},
		{"Bad:Name", "x", false},
		{"Bäd", "x", false},
		{"X", "line\r\nInjected: 1", false},
		{"X", "nul\x00", false},
		{"\xff", "x", false},
	} {
		assert.Equal(t, tc.want, regtest.ValidHeader(tc.name, tc.value), "%q: %q", tc.name, tc.value)
		req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/", nil)
		require.NoError(t, err)
		req.Header[tc.name] = []string{tc.value}
		_, err = http.DefaultTransport.RoundTrip(req)
		refused := err != nil && strings.Contains(err.Error(), "invalid header field")
		assert.Equal(t, !tc.want, refused, "%q: %q: net/http says %v", tc.name, tc.value, err)
	}
}
