// Package admin is registryd's admin API (/admin/v1/...): the operations
// the `registryd gc|fsck|lifecycle|keys|repo|template|audit|iam` commands
// run on a store no daemon holds, for the store this daemon holds, and
// the reload of its identities. Each is a POST (a GET when it only reads)
// answering JSON, authorized with its action (berth:, kms: or ecr:)
// through the one authorization seam; errors are the OCI API's error
// JSON. It is served on the daemon's address to authenticated callers
// (New) and on its admin socket to the users of the machine (NewLocal).
// docs/registryd.md lists the operations.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/auth"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/oci"
	"github.com/berthstore/berth/registryd/internal/request"
)

// Prefix is where the admin API lives.
const Prefix = "/admin/v1/"

// maxPolicyBody bounds a lifecycle policy sent to the admin API (ECR's
// limit is 30,720 characters).
const maxPolicyBody = 64 << 10

// Authenticator answers who an admin request comes from, by its basic
// credentials, and holds the identities (*auth.Authenticator): it
// reloads and lists them, and answers a user's principal for a
// simulation.
type Authenticator interface {
	Basic(r *http.Request, maybeAnonymousPull bool) (engine.Principal, error)
	Reload() (auth.IdentitySummary, error)
	Principal(user string) (engine.Principal, error)
	Identities() *auth.Identities
	Account() string
}

// Config configures an API.
type Config struct {
	// Logger receives errors. Default slog.Default().
	Logger *slog.Logger
	// Realm is the basic-auth realm of the 401 challenge. Default
	// oci.DefaultRealm.
	Realm string
}

// API serves the admin API.
type API struct {
	store Store
	authn Authenticator
	authz authz.Authorizer
	log   *slog.Logger
	realm string
	// local is set for the admin socket's API: its callers are the
	// socket's peers, never anonymous.
	local bool
}

var _ http.Handler = (*API)(nil)

// New returns the admin API over store. Each dependency is required.
func New(store Store, authn Authenticator, az authz.Authorizer, cfg Config) (*API, error) {
	if store == nil || authn == nil || az == nil {
		return nil, errors.New("admin: New needs a store, an authenticator and an authorizer")
	}
	a := &API{store: store, authn: authn, authz: az, log: cfg.Logger, realm: cfg.Realm}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.realm == "" {
		a.realm = oci.DefaultRealm
	}
	return a, nil
}

// operation is one admin operation: its HTTP method (POST when empty),
// what it does, as actions on resources that the dispatcher authorizes
// before run (an error for a request that names no valid resource), and
// the operation itself: run, whose result is answered as JSON, or stream,
// which writes its own answer. access and run get the request's body,
// read (at most maxBody bytes, maxPolicyBody when zero) before either
// runs; run finds the caller in the request's context (callerOf).
type operation struct {
	access  func(a *API, r *http.Request, body []byte) ([]authz.Access, error)
	run     func(a *API, r *http.Request, body []byte) (any, error)
	maxBody int
	method  string
	stream  func(a *API, w http.ResponseWriter, r *http.Request) error
}

// operations are the admin API's operations, by path under Prefix. gc
// (its dry run too, which lists the store's digests and upload ids) and
// fsck act on the whole store; a lifecycle call on one repository, and
// one that brings its own policy also sets, in effect, the repository's
// lifecycle policy for the call (ecr:PutLifecyclePolicy).
var operations = map[string]operation{
	"gc":                {access: onRegistry(authz.AdminCollectGarbage), run: (*API).collectGarbage},
	"fsck":              {access: onRegistry(authz.AdminFsck), run: (*API).fsck},
	"lifecycle/preview": {access: lifecycleAccess(authz.AdminPreviewLifecycle), run: (*API).lifecyclePreview},
	"lifecycle/apply":   {access: lifecycleAccess(authz.AdminApplyLifecycle), run: (*API).lifecycleApply},
	"iam/reload":        {access: onRegistry(authz.AdminReloadIdentities), run: (*API).reloadIdentities},
	"iam/simulate":      {access: onRegistry(authz.AdminSimulatePolicy), run: (*API).simulate, maxBody: maxSimulationBody},
	"audit":             {access: onRegistry(authz.AdminReadAuditLog), method: http.MethodGet, stream: (*API).audit},
	"events":            {access: onRegistry(authz.AdminListEvents), method: http.MethodGet, stream: (*API).events},
	"events/redrive":    {access: onRegistry(authz.AdminRedriveEvents), run: (*API).redriveEvents},
}

// addOperations adds the operations of one file to the table.
func addOperations(ops map[string]operation) {
	for name, op := range ops {
		if _, dup := operations[name]; dup {
			panic("admin: operation " + name + " defined twice")
		}
		operations[name] = op
	}
}

// ServeHTTP serves the operations of the table under Prefix. With
// authentication on, a request without credentials is the anonymous
// caller's: decided (and audited) like any other, and answered with the
// 401 challenge when refused; anonymous pull does not open the admin API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if err := a.serve(w, r); err != nil {
		ae := oci.WriteError(w, err)
		if ae.Code.Status >= 500 && !errors.Is(err, engine.ErrAuditUnavailable) { // the audit log logs its failures once
			a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			a.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) error {
	who, err := a.authn.Basic(r, false)
	anonymous := false
	switch {
	case err == nil:
	case a.local:
		// A socket peer the kernel could not name: no one to decide for.
		return oci.NewError(oci.CodeDenied, "the admin socket's peer is unknown: "+err.Error(), nil)
	case r.Header.Get("Authorization") != "":
		// Wrong credentials are never taken for none.
		oci.Unauthorized(w, a.realm)
		return nil
	default:
		// No credentials: the anonymous caller, whose request is decided
		// and audited like any other, and challenged when refused.
		who, anonymous = engine.Principal{Account: a.authn.Account()}, true
		request.InfoFrom(r.Context()).SetPrincipal(who)
	}
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	op, ok := operations[name]
	method := op.method
	if method == "" {
		method = http.MethodPost
	}
	switch {
	case (!ok || r.Method != method) && anonymous:
		oci.Unauthorized(w, a.realm) // an anonymous caller learns nothing of the routes
		return nil
	case !ok:
		return oci.NewError(oci.CodeNotFound, "no such admin operation: "+name, nil)
	case r.Method != method:
		w.Header().Set("Allow", method)
		return oci.NewError(oci.CodeUnsupported, "admin operation "+name+" is a "+method+" request", nil)
	}
	limit := op.maxBody
	if limit == 0 {
		limit = maxPolicyBody
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		return oci.NewError(oci.CodeInvalidArgument, "reading the request body: "+err.Error(), nil)
	}
	if len(body) > limit {
		if anonymous {
			oci.Unauthorized(w, a.realm) // a body no operation takes: no one to decide for
			return nil
		}
		return oci.NewError(oci.CodeTooLarge, fmt.Sprintf("request body over %d bytes", limit), nil)
	}
	access, err := op.access(a, r, body)
	if err != nil {
		return err
	}
	if err := authz.All(r.Context(), a.authz, who, access...); err != nil {
		if anonymous && errors.Is(err, engine.ErrAccessDenied) {
			oci.Unauthorized(w, a.realm) // credentials might do
			return nil
		}
		return err
	}
	r = r.WithContext(context.WithValue(r.Context(), callerKey{}, who))
	if op.stream != nil {
		return op.stream(a, w, r)
	}
	out, err := op.run(a, r, body)
	if err != nil {
		return clientError(err)
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}

// callerKey is the context key of the request's principal.
type callerKey struct{}

// callerOf is who the request comes from, for the operations that ask
// about each item they answer (the listings).
func callerOf(r *http.Request) engine.Principal {
	who, _ := r.Context().Value(callerKey{}).(engine.Principal)
	return who
}

// clientError answers the engine's errors that the OCI API's table does
// not know (it has no repository creation) as client errors, with the
// engine's message; any other error as it is.
func clientError(err error) error {
	var code oci.ErrorCode
	switch {
	case errors.Is(err, engine.ErrRepositoryExists), errors.Is(err, engine.ErrRepositoryNotEmpty),
		errors.Is(err, engine.ErrTemplateExists):
		code = oci.CodeInvalidArgument
	case errors.Is(err, engine.ErrTemplateNotFound), errors.Is(err, engine.ErrLifecyclePolicyNotFound):
		code = oci.CodeNotFound
	default:
		return err
	}
	return &oci.Error{Code: code, Msg: strings.ReplaceAll(err.Error(), "engine: ", ""), Err: err}
}

// onRegistry is the access of an operation on the whole store.
func onRegistry(action authz.Action) func(*API, *http.Request, []byte) ([]authz.Access, error) {
	return func(*API, *http.Request, []byte) ([]authz.Access, error) {
		return []authz.Access{{Action: action, Resource: authz.Registry}}, nil
	}
}

// lifecycleAccess is the access of a lifecycle call on the repository its
// repository parameter names: action, and ecr:PutLifecyclePolicy too when
// the body brings a policy of its own (it runs instead of the
// repository's, as if it were set).
func lifecycleAccess(action authz.Action) func(*API, *http.Request, []byte) ([]authz.Access, error) {
	return func(_ *API, r *http.Request, body []byte) ([]authz.Access, error) {
		repo := r.URL.Query().Get("repository")
		if repo == "" {
			return nil, oci.NewError(oci.CodeInvalidArgument, "repository is required", nil)
		}
		access := []authz.Access{{Action: action, Resource: authz.Repository(repo)}}
		if policyOverride(body) != "" {
			access = append(access, authz.Access{Action: authz.PutLifecyclePolicy, Resource: authz.Repository(repo)})
		}
		return access, nil
	}
}

// policyOverride is the lifecycle policy a request's body brings, "" for
// none (the repository's own).
func policyOverride(body []byte) string { return strings.TrimSpace(string(body)) }

// collectGarbage serves POST gc?dry-run=&grace=&upload-ttl=.
func (a *API) collectGarbage(r *http.Request, _ []byte) (any, error) {
	q := r.URL.Query()
	var opts gcOptions
	var err error
	if opts.DryRun, err = boolParam(q.Get("dry-run")); err != nil {
		return nil, err
	}
	if g := q.Get("grace"); g != "" {
		if opts.Grace, err = time.ParseDuration(g); err != nil || opts.Grace < 0 {
			return nil, oci.NewError(oci.CodeInvalidArgument, "grace: want a duration such as 1h", nil)
		}
		if opts.Grace == 0 {
			opts.Grace = -1 // zero given: no grace at all
		}
	}
	if t := q.Get("upload-ttl"); t != "" {
		if opts.UploadTTL, err = time.ParseDuration(t); err != nil || opts.UploadTTL < 0 {
			return nil, oci.NewError(oci.CodeInvalidArgument, "upload-ttl: want a duration such as 24h", nil)
		}
		if opts.UploadTTL == 0 {
			opts.UploadTTL = -1 // zero given: no session expires
		}
	}
	rep, err := a.store.CollectGarbage(r.Context(), opts)
	if errors.Is(err, errGCRunning) {
		return nil, oci.NewError(oci.CodeTooManyRequests, "a collection is running", nil)
	}
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// fsck serves POST fsck?verify=&sample=.
func (a *API) fsck(r *http.Request, _ []byte) (any, error) {
	q := r.URL.Query()
	var opts fsckOptions
	var err error
	if opts.Verify, err = boolParam(q.Get("verify")); err != nil {
		return nil, err
	}
	if v := q.Get("sample"); v != "" {
		if opts.Sample, err = strconv.ParseFloat(v, 64); err != nil || opts.Sample <= 0 || opts.Sample > 1 {
			return nil, oci.NewError(oci.CodeInvalidArgument, "sample: want a fraction in (0, 1]", nil)
		}
	}
	rep, err := a.store.Fsck(r.Context(), opts)
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// lifecyclePreview serves POST lifecycle/preview?repository=, with an
// optional policy in the body.
func (a *API) lifecyclePreview(r *http.Request, body []byte) (any, error) {
	return a.lifecycle(r, body, a.store.LifecyclePreview)
}

// lifecycleApply serves POST lifecycle/apply?repository=, with an
// optional policy in the body.
func (a *API) lifecycleApply(r *http.Request, body []byte) (any, error) {
	return a.lifecycle(r, body, a.store.LifecycleApply)
}

// lifecycle runs a lifecycle policy call on the repository parameter
// with the policy in the body ("" for the repository's own).
func (a *API) lifecycle(r *http.Request, body []byte, call func(ctx context.Context, repo, policyOverride string) ([]expiry, error)) (any, error) {
	out, err := call(r.Context(), r.URL.Query().Get("repository"), policyOverride(body))
	if errors.Is(err, errInvalidPolicy) {
		return nil, oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
	}
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []expiry{}
	}
	return out, nil
}

// boolParam parses a boolean query parameter; "" is false.
func boolParam(v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, oci.NewError(oci.CodeInvalidArgument, fmt.Sprintf("%q is not a boolean", v), nil)
	}
	return b, nil
}
