package admin

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/adminsock"
	"github.com/berthstore/berth/registryd/internal/auth"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/regtest"
	"github.com/berthstore/berth/registryd/internal/request"
)

// twoUsers writes an htpasswd file of admin and team (password pw) and
// an identity file: admin may do everything; team may describe every
// repository but team-b's, list keys and describe team-a-key.
func twoUsers(t *testing.T) auth.Config {
	t.Helper()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	htpasswd := filepath.Join(dir, "htpasswd")
	require.NoError(t, os.WriteFile(htpasswd, []byte("admin:"+string(hash)+"\nteam:"+string(hash)+"\n"), 0o600))
	ids := filepath.Join(dir, "iam.yaml")
	require.NoError(t, os.WriteFile(ids, []byte(`
policies:
  admin: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "*", Resource: "*"}]}
  team:
    Version: "2012-10-17"
    Statement:
      - {Effect: Allow, Action: [ecr:DescribeRepositories, kms:ListKeys], Resource: "*"}
      - {Effect: Deny, Action: ecr:DescribeRepositories, Resource: "arn:aws:ecr:*:*:repository/team-b/*"}
      - {Effect: Allow, Action: kms:DescribeKey, Resource: "arn:aws:kms:*:*:key/team-a-key"}
users:
  admin: {policies: [admin]}
  team: {policies: [team]}
`), 0o600))
	return auth.Config{HtpasswdFile: htpasswd, IdentityFile: ids}
}

// TestKeyRepositoryTemplateOperations: the admin API's key, repository,
// template and identity operations, each as its action allows, listings
// filtered to what the caller may describe, errors as the OCI API's.
func TestKeyRepositoryTemplateOperations(t *testing.T) {
	a, e := newTestAPI(t, twoUsers(t))
	admin := map[string]string{"Authorization": regtest.Basic("admin", "pw")}
	team := map[string]string{"Authorization": regtest.Basic("team", "pw")}
	ok := func(method, target string, body []byte, hdr map[string]string, out any) {
		t.Helper()
		rec := regtest.Do(a, method, target, body, hdr)
		require.Equal(t, http.StatusOK, rec.Code, "%s %s: %s", method, target, rec.Body.String())
		if out != nil {
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), out))
		}
	}

	var k KeyResult
	ok(http.MethodPost, "/admin/v1/keys/create?name=team-a-key", nil, admin, &k)
	assert.Equal(t, KeyResult{Key: "team-a-key", State: engine.KeyEnabled, Version: 1}, k)
	ok(http.MethodPost, "/admin/v1/keys/create?name=other", nil, admin, nil)
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/keys/create?name=other", nil, admin), 400, "UNSUPPORTED")
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/keys/create", nil, admin), 400, "UNSUPPORTED")

	var r engine.Repository
	ok(http.MethodPost, "/admin/v1/repositories/create?name=team-a/app", []byte(`{"encryptionConfiguration":{"encryptionType":"KMS","kmsKey":"team-a-key"}}`), admin, &r)
	assert.Equal(t, "team-a/app", r.Name)
	assert.Equal(t, "team-a-key", r.Encryption.KMSKey)
	ok(http.MethodPost, "/admin/v1/repositories/create?name=team-b/app", nil, admin, nil)
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/repositories/create?name=team-b/app", nil, admin), 400, "UNSUPPORTED")
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/repositories/create?name=Bad", nil, admin), 400, "NAME_INVALID")
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/repositories/create?name=x", []byte(`{"nope":1}`), admin), 400, "UNSUPPORTED")

	var names []string
	ok(http.MethodGet, "/admin/v1/repositories", nil, admin, &names)
	assert.Equal(t, []string{"team-a/app", "team-b/app"}, names)
	ok(http.MethodGet, "/admin/v1/repositories", nil, team, &names)
	assert.Equal(t, []string{"team-a/app"}, names, "what team may describe")
	var keys []engine.KeyStatus
	ok(http.MethodGet, "/admin/v1/keys", nil, team, &keys)
	require.Len(t, keys, 1)
	assert.Equal(t, "team-a-key", keys[0].Name)
	ok(http.MethodGet, "/admin/v1/keys", nil, admin, &keys)
	assert.Len(t, keys, 3)

	ok(http.MethodPost, "/admin/v1/keys/rotate?name=team-a-key&wait=true", nil, admin, &k)
	assert.Equal(t, uint32(2), k.Version)
	ok(http.MethodPost, "/admin/v1/keys/disable?name=team-a-key", nil, admin, &k)
	assert.Equal(t, engine.KeyDisabled, k.State)
	ok(http.MethodGet, "/admin/v1/repositories/describe?name=team-a/app", nil, team, &r)
	assert.Equal(t, engine.KeyDisabled, r.KeyState)
	ok(http.MethodPost, "/admin/v1/keys/enable?name=team-a-key", nil, admin, nil)
	ok(http.MethodPost, "/admin/v1/keys/destroy?name=other", nil, admin, &k)
	assert.Equal(t, engine.KeyDestroyed, k.State)
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/keys/create?name=k", nil, team), 403, "DENIED")
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/repositories/delete?name=team-a/app", nil, team), 403, "DENIED")

	tpl := []byte(`{"prefix":"team-a","appliedFor":["CREATE_ON_PUSH"],"imageTagMutability":"IMMUTABLE"}`)
	ok(http.MethodPost, "/admin/v1/templates/put", tpl, admin, nil)
	ok(http.MethodPost, "/admin/v1/templates/put", tpl, admin, nil)
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/templates/put", []byte(`{"prefix":"x","appliedFor":["CREATE_ON_PUSH"],"createdAt":"2020-01-01T00:00:00Z"}`), admin), 400, "UNSUPPORTED")
	var ts []engine.CreationTemplate
	ok(http.MethodGet, "/admin/v1/templates", nil, admin, &ts)
	require.Len(t, ts, 1)
	assert.Equal(t, engine.TagImmutable, ts[0].TagMutability)
	ok(http.MethodPost, "/admin/v1/templates/delete?prefix=team-a", nil, admin, nil)
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/templates/delete?prefix=team-a", nil, admin), 404, "NOT_FOUND")

	ok(http.MethodPost, "/admin/v1/repositories/delete?name=team-b/app", nil, admin, nil)
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodGet, "/admin/v1/repositories/describe?name=team-b/app", nil, admin), 404, "NAME_UNKNOWN")

	var ids auth.IdentitySummary
	ok(http.MethodGet, "/admin/v1/iam/identities", nil, admin, &ids)
	require.Len(t, ids.Users, 2)
	assert.Equal(t, "admin", ids.Users[0].Name)

	// The template puts are recorded as a create, then an update.
	var actions []string
	require.NoError(t, e.AuditRecords(t.Context(), engine.AuditQuery{Action: "ecr:*RepositoryCreationTemplate", OldestFirst: true}, func(r engine.AuditRecord) error {
		actions = append(actions, r.Action)
		return nil
	}))
	assert.Equal(t, []string{"ecr:CreateRepositoryCreationTemplate", "ecr:UpdateRepositoryCreationTemplate", "ecr:DeleteRepositoryCreationTemplate", "ecr:DeleteRepositoryCreationTemplate"}, actions)
}

// TestAnonymousAdminCallsAreDecided: a call without credentials is the
// anonymous caller's, decided and recorded, and answered with the
// challenge; wrong credentials are refused before any decision.
func TestAnonymousAdminCallsAreDecided(t *testing.T) {
	a, e := newTestAPI(t, twoUsers(t))
	rec := regtest.Do(a, http.MethodPost, "/admin/v1/keys/create?name=k", nil, nil)
	regtest.RequireOCIError(t, rec, 401, "UNAUTHORIZED")
	rec = regtest.Do(a, http.MethodPost, "/admin/v1/keys/create?name=k", nil, map[string]string{"Authorization": regtest.Basic("admin", "wrong")})
	regtest.RequireOCIError(t, rec, 401, "UNAUTHORIZED")
	var recs []engine.AuditRecord
	require.NoError(t, e.AuditRecords(t.Context(), engine.AuditQuery{}, func(r engine.AuditRecord) error {
		recs = append(recs, r)
		return nil
	}))
	require.Len(t, recs, 1, "the anonymous call only")
	assert.Equal(t, engine.AuditAnonymous, recs[0].PrincipalType)
	assert.Equal(t, "kms:CreateKey", recs[0].Action)
	assert.Equal(t, engine.AuditImplicitDeny, recs[0].Decision)
	keys, err := e.Keys(t.Context())
	require.NoError(t, err)
	assert.Len(t, keys, 1, "nothing made")
}

// TestLocalAPI: the admin socket's API takes the connection's peer as the
// caller (here this process's user, allowed), recorded as Local from
// "local"; a request without a peer is refused.
func TestLocalAPI(t *testing.T) {
	e := regtest.Engine(t)
	cfg := twoUsers(t)
	cfg.Account = "000000000000"
	authn, err := auth.New(cfg)
	require.NoError(t, err)
	az, err := authz.NewIAM(e, authz.IAMConfig{})
	require.NoError(t, err)
	a, err := NewLocal(e, authn, az, Config{Logger: regtest.Quiet()})
	require.NoError(t, err)

	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/keys/create?name=k", nil, nil), 403, "DENIED")

	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	f := os.NewFile(uintptr(fds[0]), "peer")
	defer f.Close()
	defer syscall.Close(fds[1])
	c, err := net.FileConn(f)
	require.NoError(t, err)
	defer c.Close()
	ctx := adminsock.ConnContext(t.Context(), c)
	info := &request.Info{RequestID: request.NewRequestID()}
	req := httptest.NewRequest(http.MethodPost, "/admin/v1/keys/create?name=k", nil).WithContext(request.WithInfo(ctx, info))
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.True(t, info.Local)
	var recs []engine.AuditRecord
	require.NoError(t, e.AuditRecords(t.Context(), engine.AuditQuery{Action: "kms:CreateKey"}, func(r engine.AuditRecord) error {
		recs = append(recs, r)
		return nil
	}))
	require.Len(t, recs, 1)
	assert.Equal(t, engine.AuditLocal, recs[0].PrincipalType)
	assert.Equal(t, "local", recs[0].SourceIP)
	assert.Equal(t, engine.AuditAllow, recs[0].Decision)
	assert.Contains(t, recs[0].Statement, "through the daemon's admin socket")
}
