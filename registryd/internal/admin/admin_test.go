package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/auth"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/regtest"
	"github.com/berthstore/berth/registryd/internal/request"
)

// newTestAPI returns the admin API over a fresh store, with the real
// authenticator (open unless ac names an htpasswd file) and authorizer.
func newTestAPI(t testing.TB, ac auth.Config) (*API, *engine.Engine) {
	t.Helper()
	e := regtest.Engine(t)
	ac.Account = "000000000000"
	authn, err := auth.New(ac)
	require.NoError(t, err)
	az, err := authz.NewIAM(e, authz.IAMConfig{Open: ac.HtpasswdFile == "" && ac.ECRCredentialsFile == "", AnonymousPull: ac.AnonymousPull})
	require.NoError(t, err)
	a, err := New(e, authn, az, Config{Logger: regtest.Quiet()})
	require.NoError(t, err)
	return a, e
}

// push stores an image of one layer in repo under tag.
func push(t *testing.T, e *engine.Engine, repo, tag, layer string) {
	t.Helper()
	ctx := context.Background()
	config := []byte(`{"tag":"` + tag + `"}`)
	for _, b := range [][]byte{config, []byte(layer)} {
		_, err := e.PutBlob(ctx, repo, bytes.NewReader(b), digest.FromBytes(b))
		require.NoError(t, err)
	}
	m := regtest.ImageManifest(digest.FromBytes(config), digest.FromString(layer), len(config), len(layer), nil, "")
	_, err := e.PutManifest(ctx, repo, tag, "application/vnd.oci.image.manifest.v1+json", m)
	require.NoError(t, err)
}

// TestAdminAPI runs gc, fsck and lifecycle preview/apply through the
// daemon's admin API on a live store.
func TestAdminAPI(t *testing.T) {
	ctx := context.Background()
	a, e := newTestAPI(t, auth.Config{})
	push(t, e, "r", "v1", "layer one")
	push(t, e, "r", "v2", "layer two")

	// Lifecycle: keep one image tagged v*.
	policy := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	rec := regtest.Do(a, http.MethodPost, "/admin/v1/lifecycle/preview?repository=r", []byte(policy), nil)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var preview []expiry
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &preview))
	require.Len(t, preview, 1)
	assert.Equal(t, []string{"v1"}, preview[0].Tags)
	_, err := e.StatManifest(ctx, "r", "v1")
	require.NoError(t, err, "preview changes nothing")

	rec = regtest.Do(a, http.MethodPost, "/admin/v1/lifecycle/apply?repository=r", []byte(policy), nil)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	_, err = e.StatManifest(ctx, "r", "v1")
	require.ErrorIs(t, err, engine.ErrManifestUnknown)
	rec = regtest.Do(a, http.MethodPost, "/admin/v1/lifecycle/preview?repository=r", []byte(policy), nil)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.JSONEq(t, `[]`, rec.Body.String(), "nothing left to expire: an empty list, not null")

	// A dry run lists the expired image's blobs, the real run sweeps them.
	rec = regtest.Do(a, http.MethodPost, "/admin/v1/gc?dry-run=true&grace=0s", nil, nil)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var r gcReport
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &r))
	assert.True(t, r.DryRun)
	assert.Len(t, r.Plan.Blobs, 2)
	rec = regtest.Do(a, http.MethodPost, "/admin/v1/gc?grace=0s", nil, nil)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &r))
	assert.Equal(t, 2, r.BlobsSwept)

	rec = regtest.Do(a, http.MethodPost, "/admin/v1/fsck?verify=true", nil, nil)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var f fsckReport
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &f))
	assert.True(t, f.Clean(), "%+v", f.Corrupt)

	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/lifecycle/preview?repository=r", []byte(`{"rules":[]}`), nil), 400, "UNSUPPORTED")
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/lifecycle/apply", nil, nil), 400, "UNSUPPORTED")
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/lifecycle/apply?repository=r", bytes.Repeat([]byte(" "), maxPolicyBody+1), nil), 413, "SIZE_INVALID")
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/nope", nil, nil), 404, "NOT_FOUND")
	rec = regtest.Do(a, http.MethodGet, "/admin/v1/gc", nil, nil)
	regtest.RequireOCIError(t, rec, 405, "UNSUPPORTED")
	assert.Equal(t, http.MethodPost, rec.Header().Get("Allow"))
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/gc?grace=soon", nil, nil), 400, "UNSUPPORTED")
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/gc?dry-run=maybe", nil, nil), 400, "UNSUPPORTED")
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodPost, "/admin/v1/fsck?sample=2", nil, nil), 400, "UNSUPPORTED")
}

// TestAdminNeedsCredentials: anonymous pull does not open the admin API.
func TestAdminNeedsCredentials(t *testing.T) {
	file := regtest.WriteHtpasswd(t, "admin", "pw")
	a, _ := newTestAPI(t, auth.Config{HtpasswdFile: file, AnonymousPull: true})
	rec := regtest.Do(a, http.MethodPost, "/admin/v1/gc?dry-run=1", nil, nil)
	regtest.RequireOCIError(t, rec, 401, "UNAUTHORIZED")
	assert.Equal(t, `Basic realm="berth"`, rec.Header().Get("WWW-Authenticate"))
	rec = regtest.Do(a, http.MethodPost, "/admin/v1/gc?dry-run=1", nil, map[string]string{"Authorization": regtest.Basic("admin", "pw")})
	require.Equal(t, 200, rec.Code, rec.Body.String())
}

// TestEveryOperationDeclaresItsAccess: each admin operation asks the
// Authorizer about a known action before it runs.
func TestEveryOperationDeclaresItsAccess(t *testing.T) {
	a, _ := newTestAPI(t, auth.Config{})
	bodies := map[string][]byte{"templates/put": []byte(`{"prefix":"p","appliedFor":["CREATE_ON_PUSH"]}`)}
	for name, op := range operations {
		query := "?repository=r&name=r&prefix=p"
		if strings.HasPrefix(name, "secrets") {
			query = "?" + SecretName + "=ecr-pullthroughcache/x"
		}
		r, err := http.NewRequest(http.MethodPost, "http://registry"+Prefix+name+query, nil)
		require.NoError(t, err)
		access, err := op.access(a, r, bodies[name])
		require.NoError(t, err, name)
		require.NotEmpty(t, access, name)
		for _, ac := range access {
			assert.True(t, ac.Action.Known(), "%s: %s", name, ac.Action)
		}
	}
}

// TestAdminAudit: GET audit answers the records the parameters select as
// CloudTrail JSON lines, newest first unless asked otherwise; it is
// authorized as berth:ReadAuditLog (and recorded like every decision;
// a refusal is authz's test, as only an identity policy can deny it);
// bad parameters are refused before any line.
func TestAdminAudit(t *testing.T) {
	file := regtest.WriteHtpasswd(t, "admin", "pw")
	api, e := newTestAPI(t, auth.Config{HtpasswdFile: file})
	// What the server gives every request: its request.Info.
	a := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r.WithContext(request.WithInfo(r.Context(), &request.Info{Route: "admin", Method: r.Method, Path: r.URL.Path})))
	})
	cred := map[string]string{"Authorization": regtest.Basic("admin", "pw")}
	push(t, e, "r", "v1", "layer one")
	rec := regtest.Do(a, http.MethodPost, "/admin/v1/gc?dry-run=true", nil, cred)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	policy := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	rec = regtest.Do(a, http.MethodPost, "/admin/v1/lifecycle/preview?repository=r", []byte(policy), cred)
	require.Equal(t, 200, rec.Code, rec.Body.String())

	lines := func(target string) []engine.AuditRecord {
		t.Helper()
		rec := regtest.Do(a, http.MethodGet, target, nil, cred)
		require.Equal(t, 200, rec.Code, rec.Body.String())
		require.Equal(t, AuditContentType, rec.Header().Get("Content-Type"))
		var out []engine.AuditRecord
		for _, l := range bytes.Split(bytes.TrimSuffix(rec.Body.Bytes(), []byte("\n")), []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			r, err := engine.DecodeAuditRecord(l)
			require.NoError(t, err)
			if r.API == engine.AuditAPIEngine {
				continue // the push's event, recorded when the engine routes it: whenever that happens
			}
			out = append(out, r)
		}
		return out
	}
	all := lines("/admin/v1/audit")
	require.Len(t, all, 4, "gc, lifecycle preview (with its policy in the body: ecr:PutLifecyclePolicy too), and this read itself")
	assert.Equal(t, "berth:ReadAuditLog", all[0].Action, "newest first: the read is recorded before it answers")
	assert.Equal(t, "berth:CollectGarbage", all[3].Action)
	for _, r := range all {
		assert.Equal(t, engine.AuditAllow, r.Decision)
		assert.Equal(t, "admin", r.UserName)
		assert.Equal(t, engine.AuditAPIAdmin, r.API)
		assert.Contains(t, r.Statement, "administrator")
	}
	assert.Equal(t, "berth:CollectGarbage", lines("/admin/v1/audit?order=oldest&limit=1&principal=admin")[0].Action)
	got := lines("/admin/v1/audit?repository=r")
	require.Len(t, got, 2, "the preview's two questions")
	assert.Equal(t, "ecr:PutLifecyclePolicy", got[0].Action)
	assert.Equal(t, "berth:PreviewLifecycle", got[1].Action)
	assert.Equal(t, e.RepositoryARN("r"), got[1].Resource)
	assert.Len(t, lines("/admin/v1/audit?action=berth:*Lifecycle&principal=admin"), 1)
	assert.Empty(t, lines("/admin/v1/audit?decision=deny"))
	assert.Empty(t, lines("/admin/v1/audit?principal=nobody"))
	assert.Empty(t, lines("/admin/v1/audit?until=2000-01-01"))
	assert.NotEmpty(t, lines("/admin/v1/audit?since=1h&until="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))

	for _, bad := range []string{"since=yesterday", "until=-1h", "limit=-1", "limit=x", "decision=Maybe", "order=random", "since=1h&until=2h"} {
		regtest.RequireOCIError(t, regtest.Do(a, http.MethodGet, "/admin/v1/audit?"+bad, nil, cred), 400, "UNSUPPORTED")
	}
	rec = regtest.Do(a, http.MethodPost, "/admin/v1/audit", nil, cred)
	regtest.RequireOCIError(t, rec, 405, "UNSUPPORTED")
	assert.Equal(t, http.MethodGet, rec.Header().Get("Allow"))
	regtest.RequireOCIError(t, regtest.Do(a, http.MethodGet, "/admin/v1/audit", nil, nil), 401, "UNAUTHORIZED")
}

// TestParseAuditTime: RFC 3339, dates and durations back from now.
func TestParseAuditTime(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-11-20T08:30:00Z":      time.Date(2026, 11, 20, 8, 30, 0, 0, time.UTC),
		"2026-11-20T08:30:00+01:00": time.Date(2026, 11, 20, 7, 30, 0, 0, time.UTC),
		"2026-11-20":                time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		"1h":                        now.Add(-time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
		"7d":                        now.Add(-7 * 24 * time.Hour),
		"0s":                        now,
	} {
		got, err := ParseAuditTime(in, now)
		require.NoError(t, err, in)
		assert.True(t, want.Equal(got), "%s: %s, want %s", in, got, want)
	}
	for _, in := range []string{"", "yesterday", "-1h", "-2d", "1.5d", "2026-13-01", "99999999d"} {
		_, err := ParseAuditTime(in, now)
		assert.Error(t, err, in)
	}
}
