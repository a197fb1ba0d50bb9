package oci

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/auth"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/pullthrough"
	"github.com/berthstore/berth/registryd/internal/regtest"
	"github.com/berthstore/berth/registryd/internal/request"
)

// The shared test helpers under their short names.
var (
	do              = regtest.Do
	requireOCIError = regtest.RequireOCIError
	pushBlob        = regtest.PushBlob
	imageManifest   = regtest.ImageManifest
)

// newTestAPI returns the OCI API over a fresh store, with the real
// authenticator (open unless ac names an htpasswd file), the repository
// policy authorizer and the pull-through cache.
func newTestAPI(t testing.TB, cfg Config, ac ...auth.Config) (*API, *engine.Engine) {
	t.Helper()
	e := regtest.Engine(t)
	acfg := auth.Config{Account: "000000000000"}
	if len(ac) > 0 {
		acfg = ac[0]
	}
	authn, err := auth.New(acfg)
	require.NoError(t, err)
	az, err := authz.NewIAM(e, authz.IAMConfig{Open: acfg.HtpasswdFile == "" && acfg.ECRCredentialsFile == "", AnonymousPull: acfg.AnonymousPull})
	require.NoError(t, err)
	fill, err := pullthrough.New(e, az, pullthrough.Config{Logger: regtest.Quiet()})
	require.NoError(t, err)
	if cfg.Logger == nil {
		cfg.Logger = regtest.Quiet()
	}
	cfg.AuthenticationRequired = acfg.HtpasswdFile != ""
	a, err := New(e, authn, az, fill, &request.Uploads{}, cfg)
	require.NoError(t, err)
	return a, e
}
