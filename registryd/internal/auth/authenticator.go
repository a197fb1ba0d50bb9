// Package auth is registryd's authentication: who a request comes from.
// Basic credentials (an htpasswd user, or user AWS with a login token of
// the ECR API's GetAuthorizationToken) authenticate the OCI and admin
// APIs; an AWS SigV4 signature with a key of the ECR credentials file
// authenticates the ECR API. Each authenticated user is an
// engine.Principal holding the identity policies the identity file gives
// it (identities.go), built once per load. The files are read at start
// and again by Reload (SIGHUP, the admin API), which swaps the whole set
// at once or keeps the old one. What a caller may then do is authz's
// question, not this package's.
package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/request"
	"github.com/berthstore/berth/registryd/internal/sigv4"
)

// ErrUnauthenticated reports a request without acceptable credentials
// where credentials are required.
var ErrUnauthenticated = errors.New("auth: credentials required")

// ErrECRClosed reports an ECR API call to a registry that requires
// authentication (an htpasswd file) and has no ECR credentials: the ECR
// API is then closed, never open.
var ErrECRClosed = errors.New("auth: this registry requires authentication and has no ECR API credentials configured (registryd --ecr-credentials)")

// ErrNoIdentityFile reports a reload of a registry whose authentication
// is off: it has no files to reload.
var ErrNoIdentityFile = errors.New("auth: authentication is off: there are no identities to reload")

// DefaultRegion is the region of the ECR API's signatures when
// Config.Region is empty.
const DefaultRegion = "us-east-1"

// Config configures an Authenticator.
type Config struct {
	// Account is the registry ID (an AWS account ID) every principal
	// belongs to.
	Account string
	// Region is the region SigV4 credential scopes must name. Default
	// DefaultRegion.
	Region string
	// HtpasswdFile, when set, requires basic authentication against this
	// htpasswd file (bcrypt entries only). Empty: no passwords.
	HtpasswdFile string
	// AuthCacheTTL is how long a successful password check is cached;
	// zero or negative: never.
	AuthCacheTTL time.Duration
	// AnonymousPull lets pulls (GET and HEAD) of the OCI API through
	// without credentials when authentication is on.
	AnonymousPull bool
	// ECRCredentialsFile holds the access keys the ECR API accepts, one
	// ACCESS_KEY_ID:SECRET_ACCESS_KEY[:USER] a line. Empty: the ECR API is
	// open without HtpasswdFile and closed with it.
	ECRCredentialsFile string
	// LoginTokenKeyFile keeps the key that signs login tokens (created if
	// missing; an existing one must be the process user's, mode 0600).
	// Empty: a key of this process only.
	LoginTokenKeyFile string
	// IdentityFile is the identity file (registryd --iam): users, groups
	// and identity policies. Empty: every authenticated user holds the
	// administrator policy. It needs authentication on.
	IdentityFile string
	// Logger receives reloads and refused tokens of an older format.
	// Default slog.Default().
	Logger *slog.Logger
}

// Authenticator answers who a request comes from. Authentication is on
// when an htpasswd or an ECR credentials file is configured; without
// either every request is an anonymous caller's.
type Authenticator struct {
	cfg           Config
	account       string
	scope         sigv4.Scope
	enabled       bool
	anonymousPull bool
	tokens        *loginTokens
	// checked are the login tokens verified already, by the header that
	// carried them.
	checked checkedTokens
	now     func() time.Time
	log     *slog.Logger

	// current is the loaded files; Reload swaps it whole.
	current  atomic.Pointer[credentials]
	reloadMu sync.Mutex
}

// credentials are the loaded files: passwords, access keys, identities,
// and the principal of every user they name, built once per load.
type credentials struct {
	passwords  *passwords      // nil: no htpasswd file
	keys       *ecrCredentials // nil: no ECR access keys
	identities *Identities
	// principals holds every user of the htpasswd file, of the access
	// keys and of the identity file.
	principals map[string]engine.Principal
	// holders are the users who hold credentials (a password or an
	// access key): the users a login token may be for.
	holders map[string]bool
}

// New reads the files cfg names and returns the Authenticator. Errors
// wrap ErrHtpasswd, ErrECRCredentials, ErrTokenKey or ErrIdentities.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Account == "" {
		return nil, errors.New("auth: no registry account")
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Authenticator{
		cfg:           cfg,
		account:       cfg.Account,
		scope:         sigv4.Scope{Region: cfg.Region, Service: sigv4.Service},
		enabled:       cfg.HtpasswdFile != "" || cfg.ECRCredentialsFile != "",
		anonymousPull: cfg.AnonymousPull,
		now:           time.Now,
		log:           cfg.Logger,
	}
	if cfg.IdentityFile != "" && !a.enabled {
		return nil, fmt.Errorf("%w: %s: identity policies need authentication (an htpasswd or an ECR credentials file): without it the registry is open to anyone", ErrIdentities, cfg.IdentityFile)
	}
	c, err := a.load()
	if err != nil {
		return nil, err
	}
	a.current.Store(c)
	t, err := newLoginTokens(cfg.LoginTokenKeyFile)
	if err != nil {
		return nil, err
	}
	a.tokens = t
	return a, nil
}

// load reads the htpasswd, access key and identity files and builds the
// principal of every user they name.
func (a *Authenticator) load() (*credentials, error) {
	c := &credentials{identities: DefaultIdentities(), principals: map[string]engine.Principal{}, holders: map[string]bool{}}
	var err error
	if a.cfg.HtpasswdFile != "" {
		if c.passwords, err = loadHtpasswd(a.cfg.HtpasswdFile, a.cfg.AuthCacheTTL); err != nil {
			return nil, err
		}
		for user := range c.passwords.users {
			c.holders[user] = true
		}
	}
	if a.cfg.ECRCredentialsFile != "" {
		if c.keys, err = loadECRCredentials(a.cfg.ECRCredentialsFile); err != nil {
			return nil, err
		}
		for _, k := range c.keys.keys {
			c.holders[k.user] = true
		}
	}
	if a.cfg.IdentityFile != "" {
		if c.identities, err = LoadIdentities(a.cfg.IdentityFile); err != nil {
			return nil, err
		}
	}
	users := map[string]bool{}
	for u := range c.holders {
		users[u] = true
	}
	for u := range c.identities.users {
		users[u] = true
	}
	for u := range users {
		p, err := c.identities.Principal(a.account, u)
		if err != nil {
			return nil, fmt.Errorf("auth: user %q: %w", u, err)
		}
		c.principals[u] = p
	}
	return c, nil
}

// Enabled reports whether authentication is on: without it every request
// is an anonymous caller's, and credentials would change nothing.
func (a *Authenticator) Enabled() bool { return a.enabled }

// Reload reads the htpasswd, access key and identity files again and, if
// all are good, swaps them in at once: a removed user stops working, a
// changed policy applies to the next request. On error the old set stays
// and the error (wrapping ErrHtpasswd, ErrECRCredentials or
// ErrIdentities) is logged and returned.
func (a *Authenticator) Reload() (IdentitySummary, error) {
	if !a.enabled {
		return IdentitySummary{}, ErrNoIdentityFile
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	c, err := a.load()
	if err != nil {
		a.log.Error("identities not reloaded: the previous ones stay in force", "err", err)
		return IdentitySummary{}, err
	}
	a.current.Store(c)
	s := c.identities.Summary()
	a.log.Info("identities reloaded", "identityFile", s.Source, "users", len(c.principals), "groups", len(s.Groups), "policies", len(s.Policies))
	return s, nil
}

// Identities returns the identity set in force.
func (a *Authenticator) Identities() *Identities { return a.current.Load().identities }

// Principal returns the principal user name holds in the identities in
// force; one the files do not name holds the policies of unlisted users.
func (a *Authenticator) Principal(name string) (engine.Principal, error) {
	if name == "" {
		return a.anonymous(), nil
	}
	c := a.current.Load()
	if p, ok := c.principals[name]; ok {
		return p, nil
	}
	return c.identities.Principal(a.account, name)
}

// Account is the account every principal belongs to.
func (a *Authenticator) Account() string { return a.account }

// anonymous is the principal of an anonymous caller.
func (a *Authenticator) anonymous() engine.Principal { return engine.Principal{Account: a.account} }

// accept records p as who r comes from (for the access log and the
// authorization seam) and returns it.
func accept(r *http.Request, p engine.Principal) (engine.Principal, error) {
	request.InfoFrom(r.Context()).SetPrincipal(p)
	return p, nil
}

// Basic authenticates a request of the OCI or admin API by its basic
// credentials: user AWS with a login token (checked first, and only as a
// token: it costs no password check), or an htpasswd user. Without
// authentication every request is an anonymous caller's.
// maybeAnonymousPull lets a GET or HEAD through anonymously when
// AnonymousPull is on (the admin API passes false). A refusal wraps
// ErrUnauthenticated.
func (a *Authenticator) Basic(r *http.Request, maybeAnonymousPull bool) (engine.Principal, error) {
	if !a.enabled {
		return accept(r, a.anonymous())
	}
	c := a.current.Load()
	h := authorizationHeader(r)
	if claims, ok := a.checked.get(h); ok {
		if p, ok := a.claimsPrincipal(c, claims); ok {
			return accept(r, p)
		}
	}
	if c.passwords != nil {
		// A password's header checked before: no decoding.
		if user, ok := c.passwords.cachedUser(h); ok {
			return accept(r, c.principals[user])
		}
	}
	var raw, dec [basicBufSize]byte
	user, pass, ok := basicAuth(h, raw[:], dec[:])
	switch {
	case ok && string(user) == LoginUser:
		if claims, ok := a.tokenClaims(pass); ok {
			if p, ok := a.claimsPrincipal(c, claims); ok {
				a.checked.put(h, claims)
				return accept(r, p)
			}
		}
	case ok && c.passwords != nil && c.passwords.check(h, user, pass):
		return accept(r, c.principals[string(user)])
	}
	if maybeAnonymousPull && a.anonymousPull && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return accept(r, a.anonymous())
	}
	return engine.Principal{}, ErrUnauthenticated
}

// tokenPrincipal returns the principal of a login token: one this
// registry minted, unexpired, for this account and a user who still holds
// credentials. Anonymous tokens (minted while authentication was off)
// are refused.
func (a *Authenticator) tokenPrincipal(c *credentials, token []byte) (engine.Principal, bool) {
	claims, ok := a.tokenClaims(token)
	if !ok {
		return engine.Principal{}, false
	}
	return a.claimsPrincipal(c, claims)
}

// tokenClaims returns what token was minted for, when this registry
// minted it and it has not expired.
func (a *Authenticator) tokenClaims(token []byte) (tokenClaims, bool) {
	claims, err := a.tokens.checkBytes(token)
	switch {
	case errors.Is(err, errTokenLegacy):
		a.log.Warn("login token refused", "reason", err.Error())
		return tokenClaims{}, false
	case err != nil:
		return tokenClaims{}, false
	}
	return claims, true
}

// claimsPrincipal returns the principal a token minted for claims
// authenticates now: refused once it expired, for another account, for
// no user (an anonymous token), or for a user who no longer holds
// credentials.
func (a *Authenticator) claimsPrincipal(c *credentials, claims tokenClaims) (engine.Principal, bool) {
	if claims.account != a.account || claims.user == "" || !c.holders[claims.user] || !a.tokens.now().Before(claims.expires) {
		return engine.Principal{}, false
	}
	return c.principals[claims.user], true
}

// SigV4Call is an ECR API call whose headers are authenticated
// (BeginSigV4) and whose body is still unread: Finish checks the
// signature over the body and answers who made the call.
type SigV4Call struct {
	a       *Authenticator
	r       *http.Request
	c       *credentials
	pending *sigv4.Pending // nil: an open ECR API
}

// BeginSigV4 authenticates what an ECR API call's headers can tell
// before its body is read: without ECR credentials the ECR API is open
// to anonymous callers only when the OCI API is (authentication off), as
// a local development registry is, and otherwise closed (ErrECRClosed);
// with them the Authorization header must parse, name this registry's
// region and the ecr service, be dated within sigv4.MaxSkew and name an
// access key the credentials file holds (errors wrap sigv4.ErrMissing,
// ErrMalformed, ErrScope, ErrExpired or ErrUnknownKey).
func (a *Authenticator) BeginSigV4(r *http.Request) (*SigV4Call, error) {
	c := a.current.Load()
	if c.keys == nil {
		if a.enabled {
			return nil, ErrECRClosed
		}
		return &SigV4Call{a: a, r: r, c: c}, nil
	}
	p, err := sigv4.Authenticate(r, a.scope, c.keys.lookup, a.now())
	if err != nil {
		return nil, err
	}
	return &SigV4Call{a: a, r: r, c: c, pending: p}, nil
}

// Finish checks the call's signature over body (errors wrap
// sigv4.ErrMalformed or ErrMismatch) and answers the access key's user.
func (s *SigV4Call) Finish(body []byte) (engine.Principal, error) {
	if s.pending == nil {
		return accept(s.r, s.a.anonymous())
	}
	id, err := s.pending.Verify(body)
	if err != nil {
		return engine.Principal{}, err
	}
	return accept(s.r, s.c.principals[s.c.keys.user(id.AccessKeyID)])
}

// MintLoginToken returns a registry login token for user of this
// registry's account ("" for an anonymous caller of an open registry)
// and when it expires: the password of user AWS on the OCI API
// (GetAuthorizationToken).
func (a *Authenticator) MintLoginToken(user string) (string, time.Time) {
	return a.tokens.mint(a.account, user)
}
