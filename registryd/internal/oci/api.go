// Package oci is registryd's OCI Distribution API v1.1: the /v2/ routes
// (manifests, blobs, uploads, tags and catalog listing, referrers, Range
// reads), the spec's error codes and their mapping from engine errors.
// Every request is authenticated, then authorized (authz) for the ECR
// actions its endpoint declares, before it is served.
package oci

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/request"
)

// DefaultMaxManifestSize is the largest manifest a push may send when
// Config.MaxManifestSize is not set.
const DefaultMaxManifestSize = 4 << 20

// DefaultRealm is the basic-auth realm when Config.Realm is not set.
const DefaultRealm = "berth"

// Config configures an API.
type Config struct {
	// Logger receives errors. Default slog.Default().
	Logger *slog.Logger
	// Realm is the basic-auth realm of the 401 challenge. Default
	// DefaultRealm.
	Realm string
	// MaxManifestSize bounds a pushed manifest. Default
	// DefaultMaxManifestSize.
	MaxManifestSize int64
	// Account is the registry's account ID, that of the anonymous
	// principal. Default engine.DefaultAccount.
	Account string
	// AuthenticationRequired is true when the API checks credentials (an
	// htpasswd file): a pull without credentials of a manifest, blob or
	// tag list then goes on as the anonymous principal (a public
	// repository serves it; docs/policies.md), and a refusal of an
	// anonymous caller answers 401 with the Basic challenge so that a
	// client retries with credentials. False: the registry is open, every
	// caller is anonymous, and a refusal answers 403 DENIED.
	AuthenticationRequired bool
}

// API serves the OCI Distribution API.
type API struct {
	blobs     Blobs
	sessions  UploadSessions
	manifests Manifests
	listings  Listings
	authn     Authenticator
	authz     authz.Authorizer
	fill      Filler
	uploads   *request.Uploads

	log             *slog.Logger
	realm           string
	maxManifestSize int64
	anonymous       engine.Principal
	authRequired    bool
}

var _ http.Handler = (*API)(nil)

// New returns the OCI API over store. Each dependency is required:
// authn says who a request comes from, az whether it may do what it asks,
// fill fills pull-through cache repositories, uploads lets shutdown wait
// for the requests that hold an upload.
func New(store Store, authn Authenticator, az authz.Authorizer, fill Filler, uploads *request.Uploads, cfg Config) (*API, error) {
	if store == nil || authn == nil || az == nil || fill == nil || uploads == nil {
		return nil, errors.New("oci: New needs a store, an authenticator, an authorizer, a filler and an upload tracker")
	}
	a := &API{
		blobs: store, sessions: store, manifests: store, listings: store,
		authn: authn, authz: az, fill: fill, uploads: uploads,
		log: cfg.Logger, realm: cfg.Realm, maxManifestSize: cfg.MaxManifestSize,
		authRequired: cfg.AuthenticationRequired,
	}
	if cfg.Account == "" {
		cfg.Account = engine.DefaultAccount
	}
	anon, err := engine.NewPrincipal(cfg.Account, "", "", nil)
	if err != nil {
		return nil, err
	}
	a.anonymous = anon
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.realm == "" {
		a.realm = DefaultRealm
	}
	if a.maxManifestSize <= 0 {
		a.maxManifestSize = DefaultMaxManifestSize
	}
	return a, nil
}

// ServeHTTP authenticates a request, finds its endpoint, authorizes what
// the endpoint does and serves it. Every path that is not an OCI route
// answers NOT_FOUND (after authentication, so that it reveals nothing).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := parseRoute(r.URL.EscapedPath())
	if !ok {
		rt = route{kind: routeUnknown}
	}
	info := request.InfoFrom(r.Context())
	info.Route, info.Repository = string(rt.kind), rt.name
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if err := a.serve(w, r, rt); err != nil {
		if a.challenge(info, err) {
			Unauthorized(w, a.realm)
			a.log.Debug("anonymous request refused: credentials asked for", "method", r.Method, "path", r.URL.Path, "err", err)
			return
		}
		ae := WriteError(w, err)
		if ae.Code.Status >= 500 && !errors.Is(err, engine.ErrAuditUnavailable) { // the audit log logs its failures once
			a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			a.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
}

// serve is ServeHTTP after routing; it answers nothing itself on error.
func (a *API) serve(w http.ResponseWriter, r *http.Request, rt route) error {
	who, err := a.authn.Basic(r, true)
	if err != nil {
		if !a.anonymousMayTry(r, rt) || !validName(rt.name) {
			Unauthorized(w, a.realm)
			return nil
		}
		// A pull without credentials: the policies decide whether the
		// anonymous principal may (a public repository).
		who = a.anonymous
	}
	ep := endpointOf(rt)
	if ep == nil {
		return NewError(CodeNotFound, "no such endpoint: "+r.URL.Path, nil)
	}
	if rt.kind != routeBase && rt.kind != routeCatalog && !validName(rt.name) {
		return NewError(CodeNameInvalid, "invalid repository name", map[string]string{"name": truncate(rt.name, 300)})
	}
	m, ok := ep.methods[r.Method]
	if !ok {
		return methodNotAllowed(w, ep.allow)
	}
	ctx := r.Context()
	access := m.access
	guard := authz.GuardCreation
	if h := r.Header.Get(engine.ReplicationSourceHeader); h != "" {
		// A replicated push: what it does is ecr:ReplicateImage, which
		// only an identity granted it may do (docs/replication.md).
		src, err := replicationRequest(r, rt, h)
		if err != nil {
			return err
		}
		ctx = engine.WithReplicationSource(ctx, src)
		access = func(r *http.Request, rt route) []authz.Access { return replicationAccess(m.access(r, rt)) }
		guard = authz.GuardReplicatedCreation
	}
	// A per-item endpoint (the catalog) asks about each item it answers.
	if !m.perItem {
		if err := authz.All(ctx, a.authz, who, access(r, rt)...); err != nil {
			if who.Anonymous() && a.authRequired {
				Unauthorized(w, a.realm)
				return nil
			}
			return err
		}
	}
	// Repositories created while serving (create on push) are created
	// only if the caller may create them.
	ctx = guard(withCaller(ctx, who), a.authz, who)
	err = m.serve(a, w, r.WithContext(ctx), rt)
	if err != nil && who.Anonymous() && a.authRequired && errors.Is(err, engine.ErrAccessDenied) {
		// Refused on the way (a pull-through cache fill): credentials
		// might do.
		Unauthorized(w, a.realm)
		return nil
	}
	return err
}

// anonymousMayTry reports whether a request without acceptable
// credentials goes on as the anonymous principal: a GET or HEAD without
// any credentials of a manifest, blob or tag list, which a public
// repository serves. Wrong credentials are never taken for none.
func (a *API) anonymousMayTry(r *http.Request, rt route) bool {
	if !a.authRequired || r.Header.Get("Authorization") != "" {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch rt.kind {
	case routeManifest, routeBlob, routeTags:
		return true
	}
	return false
}

// callerKey is the context key of the request's principal.
type callerKey struct{}

// withCaller returns ctx carrying who, for handlers that ask the
// Authorizer about more than their endpoint declares (a mount's source,
// the catalog's repositories, a pull-through cache fill).
func withCaller(ctx context.Context, who engine.Principal) context.Context {
	return context.WithValue(ctx, callerKey{}, who)
}

// caller returns the principal of the request ctx belongs to.
func caller(ctx context.Context) engine.Principal {
	who, _ := ctx.Value(callerKey{}).(engine.Principal)
	return who
}

// challenge reports whether a refusal of the request is answered with
// the 401 challenge rather than 403 DENIED: an anonymous caller refused
// by authorization when authentication is on, so that a client retries
// with the credentials it has (docker, crane and the rest ask for them
// only after a 401). An authenticated caller's refusal, and any refusal
// on an open registry (where credentials change nothing), stay DENIED.
func (a *API) challenge(info *request.Info, err error) bool {
	return errors.Is(err, engine.ErrAccessDenied) && info.Authenticated && info.Principal.Anonymous() && a.authn.Enabled()
}

// base answers the /v2/ version check.
func (a *API) base(w http.ResponseWriter, r *http.Request, _ route) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte("{}"))
	}
	return nil
}

// methodNotAllowed answers 405 with an Allow header.
func methodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return NewError(CodeUnsupported, "method not allowed; allowed: "+allow, nil)
}

// truncate shortens s for an error detail.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
