package ecrapi

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/auth"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/metrics"
	"github.com/berthstore/berth/registryd/internal/regtest"
	"github.com/berthstore/berth/registryd/internal/request"
)

// testAPI is an API over a fresh store with its metrics.
type testAPI struct {
	*API
	engine  *engine.Engine
	metrics *metrics.Metrics
}

// newTestAPI returns the ECR API over a fresh store, open (no
// credentials, no htpasswd file) unless ac says otherwise.
func newTestAPI(t testing.TB, ac ...auth.Config) *testAPI {
	t.Helper()
	e := regtest.Engine(t)
	acfg := auth.Config{Account: DefaultAccountID}
	if len(ac) > 0 {
		acfg = ac[0]
	}
	authn, err := auth.New(acfg)
	require.NoError(t, err)
	az, err := authz.NewIAM(e, authz.IAMConfig{Open: acfg.HtpasswdFile == "" && acfg.ECRCredentialsFile == "", AnonymousPull: acfg.AnonymousPull})
	require.NoError(t, err)
	m := metrics.New(func() float64 { return 0 })
	a, err := New(e, authn, az, &request.Uploads{}, m, Config{Logger: regtest.Quiet()})
	require.NoError(t, err)
	return &testAPI{API: a, engine: e, metrics: m}
}

// ecrDo sends one ECR API call to h, unsigned.
func ecrDo(h http.Handler, op, body string) *httptest.ResponseRecorder {
	return regtest.ECRDo(h, op, body)
}

// scrape is the metrics' text.
func (a *testAPI) scrape() string {
	return regtest.Do(a.metrics.Handler(), http.MethodGet, "/metrics", nil, nil).Body.String()
}

// pushBlob stores data in repo.
func (a *testAPI) pushBlob(t testing.TB, repo string, data []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(data)
	_, err := a.engine.PutBlob(context.Background(), repo, bytes.NewReader(data), d)
	require.NoError(t, err)
	return d
}

// pushManifest stores manifest m in repo under ref.
func (a *testAPI) pushManifest(t testing.TB, repo, ref string, m []byte) {
	t.Helper()
	_, err := a.engine.PutManifest(context.Background(), repo, ref, "application/vnd.oci.image.manifest.v1+json", m)
	require.NoError(t, err)
}
