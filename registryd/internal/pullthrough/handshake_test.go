package pullthrough_test

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/pullthrough"
	"github.com/berthstore/berth/registryd/internal/regtest"
)

// switchingAuth puts an authentication in front of an upstream registry
// that can change from Basic to Bearer tokens while a cache holds its
// handshake, and counts the pings (GET /v2/), the tokens handed out, and
// the connections HEAD /v2/ came on (the warming of Prime).
type switchingAuth struct {
	user, password string
	mu             sync.Mutex
	bearer         bool
	realm          string
	pings, tokens  atomic.Int32
	heads          atomic.Int32    // HEAD /v2/ requests
	warmed         map[string]bool // remote addresses of HEAD /v2/
}

func (a *switchingAuth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		bearer, realm := a.bearer, a.realm
		a.mu.Unlock()
		if r.URL.Path == "/v2/" && r.Method == http.MethodGet {
			a.pings.Add(1)
		}
		if r.URL.Path == "/v2/" && r.Method == http.MethodHead {
			a.heads.Add(1)
			a.mu.Lock()
			if a.warmed == nil {
				a.warmed = map[string]bool{}
			}
			a.warmed[r.RemoteAddr] = true
			a.mu.Unlock()
		}
		user, password, basic := r.BasicAuth()
		if r.URL.Path == "/token" {
			if !basic || user != a.user || password != a.password {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			a.tokens.Add(1)
			_, _ = w.Write([]byte(`{"token":"the-token","expires_in":300}`))
			return
		}
		ok := basic && user == a.user && password == a.password
		if bearer {
			ok = r.Header.Get("Authorization") == "Bearer the-token"
		}
		if !ok {
			if bearer {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`/token",service="upstream"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Basic realm="upstream"`)
			}
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TestHandshakeKept: a rule's upstream is greeted once (Prime), and the
// first pull through the rule makes no handshake of its own (it takes
// the kept answer, or joins the ping under way). When the upstream later
// refuses the client's credentials (it moved from Basic to Bearer
// tokens), the pull forgets the client and the kept answer, greets the
// upstream again, and succeeds: no pull fails for a handshake kept too
// long.
func TestHandshakeKept(t *testing.T) {
	ctx := context.Background()
	auth := &switchingAuth{user: "bot", password: "s3cret"}
	up := startUpstreamWith(t, auth.wrap)
	auth.realm = up.url
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd, err := up.store.PutBlob(ctx, "library/app", bytes.NewReader(cfg), "")
	require.NoError(t, err)
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cd.Digest.String() + `","size":` + strconv.Itoa(len(cfg)) + `},"layers":[]}`)
	_, err = up.store.PutManifest(ctx, "library/app", "v1", "application/vnd.oci.image.manifest.v1+json", manifest)
	require.NoError(t, err)

	e := regtest.Engine(t)
	_, _, err = e.PutSecret(ctx, "ecr-pullthroughcache/up", []byte(`{"username":"bot","accessToken":"s3cret"}`), "")
	require.NoError(t, err)
	rule, err := e.PutPullThroughCacheRule(ctx, engine.PullThroughCacheRule{ECRRepositoryPrefix: "hub", UpstreamRegistryURL: up.url,
		CredentialARN: e.SecretARN("ecr-pullthroughcache/up")})
	require.NoError(t, err)
	c := newCache(t, e, -1)
	c.Prime(&rule)
	require.Eventually(t, func() bool { return auth.pings.Load() == 1 }, 10*time.Second, time.Millisecond, "the rule's upstream greeted")
	// The warming HEADs go out at once, each on a connection of its
	// own unless another's answer came back before it started (the
	// transport then reuses that connection): how many connections they
	// opened depends on the machine's load, so only the requests are
	// asserted.
	require.Eventually(t, func() bool { return auth.heads.Load() == int32(pullthrough.WarmConnections) },
		10*time.Second, time.Millisecond, "a HEAD /v2/ for each connection to warm")
	auth.mu.Lock()
	t.Logf("%d HEAD /v2/ came on %d connections", auth.heads.Load(), len(auth.warmed))
	require.NotEmpty(t, auth.warmed)
	auth.mu.Unlock()

	m, err := c.FillManifest(ctx, anyone, "hub/library/app", "v1")
	require.NoError(t, err)
	require.NotNil(t, m)
	assert.Equal(t, int32(1), auth.pings.Load(), "the first pull makes no handshake of its own")
	require.Eventually(t, func() bool {
		_, err := e.StatManifest(ctx, "hub/library/app", "v1")
		return err == nil
	}, 10*time.Second, 5*time.Millisecond, "the image lands in the store")

	auth.mu.Lock()
	auth.bearer = true
	auth.mu.Unlock()
	m, err = c.FillManifest(ctx, anyone, "hub/library/app", "v1")
	require.NoError(t, err, "the kept handshake refused: greeted again, not failed")
	assert.Nil(t, m, "the same digest upstream: served from the store")
	assert.Equal(t, int32(2), auth.pings.Load(), "one new handshake")
	assert.Equal(t, int32(1), auth.tokens.Load(), "with a token")
}
