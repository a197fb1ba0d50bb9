// Package auth is registryd's authentication: who a request comes from.
// Basic credentials (an htpasswd user, or user AWS with a login token of
// the ECR API's GetAuthorizationToken) authenticate the OCI and admin
// APIs; an AWS SigV4 signature with a key of the ECR credentials file
// authenticates the ECR API. What a caller may then do is authz's
// question, not this package's.
package auth

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/sigv4"
)

// ErrUnauthenticated reports a request without acceptable credentials
// where credentials are required.
var ErrUnauthenticated = errors.New("auth: credentials required")

// ErrECRClosed reports an ECR API call to a registry that requires
// authentication (an htpasswd file) and has no ECR credentials: the ECR
// API is then closed, never open.
var ErrECRClosed = errors.New("auth: this registry requires authentication and has no ECR API credentials configured (registryd --ecr-credentials)")

// Config configures an Authenticator.
type Config struct {
	// Account is the registry ID (an AWS account ID) every principal
	// belongs to.
	Account string
	// HtpasswdFile, when set, requires basic authentication against this
	// htpasswd file (bcrypt entries only). Empty: no authentication.
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
	// missing). Empty: a key of this process only.
	LoginTokenKeyFile string
}

// Authenticator answers who a request comes from.
type Authenticator struct {
	account       string
	passwords     *passwords // nil: basic authentication is off
	anonymousPull bool
	keys          *ecrCredentials // nil: no ECR access keys
	tokens        *loginTokens
	now           func() time.Time
	principals    sync.Map // user name -> engine.Principal
}

// New reads the files cfg names and returns the Authenticator. Errors
// wrap ErrHtpasswd, ErrECRCredentials or ErrTokenKey.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Account == "" {
		return nil, errors.New("auth: no registry account")
	}
	a := &Authenticator{account: cfg.Account, anonymousPull: cfg.AnonymousPull, now: time.Now}
	if cfg.HtpasswdFile != "" {
		p, err := loadHtpasswd(cfg.HtpasswdFile, cfg.AuthCacheTTL)
		if err != nil {
			return nil, err
		}
		a.passwords = p
	}
	if cfg.ECRCredentialsFile != "" {
		k, err := loadECRCredentials(cfg.ECRCredentialsFile)
		if err != nil {
			return nil, err
		}
		a.keys = k
	}
	t, err := newLoginTokens(cfg.LoginTokenKeyFile)
	if err != nil {
		return nil, err
	}
	a.tokens = t
	return a, nil
}

// administrator is the identity policy every authenticated user holds
// when the registry has no identity policies of its own: all actions on
// all resources, as before Berth had IAM (registryd says so at start).
var administrator = func() *engine.IdentityPolicies {
	p, err := engine.ParseIdentityPolicy("administrator (no identity policies configured)",
		`{"Version":"2012-10-17","Statement":[{"Sid":"Everything","Effect":"Allow","Action":"*","Resource":"*"}]}`)
	if err != nil {
		panic("auth: the administrator policy does not parse: " + err.Error()) // a programming error
	}
	return engine.NewIdentityPolicies(p)
}()

// principal is user of the registry's account; "" is an anonymous caller.
// Principals are built once per user and kept.
func (a *Authenticator) principal(user string) engine.Principal {
	if user == "" {
		return engine.Principal{Account: a.account}
	}
	if p, ok := a.principals.Load(user); ok {
		return p.(engine.Principal)
	}
	p, err := engine.NewPrincipal(a.account, "", user, administrator)
	if err != nil {
		// A name IAM does not accept (htpasswd allows more): the principal
		// keeps its name and holds no policy, so it is refused everything.
		return engine.Principal{Account: a.account, User: user}
	}
	a.principals.Store(user, p)
	return p
}

// Basic authenticates a request of the OCI or admin API by its basic
// credentials: an htpasswd user, or user AWS with a login token (whose
// user it is then). Without an htpasswd file every request is an
// anonymous caller's. maybeAnonymousPull lets a GET or HEAD through
// anonymously when AnonymousPull is on (the admin API passes false). A
// refusal wraps ErrUnauthenticated.
func (a *Authenticator) Basic(r *http.Request, maybeAnonymousPull bool) (engine.Principal, error) {
	if a.passwords == nil {
		return a.principal(""), nil
	}
	user, pass, ok := r.BasicAuth()
	if ok && a.passwords.check(user, pass) {
		return a.principal(user), nil
	}
	if ok && user == LoginUser {
		if tokenUser, valid := a.tokens.check(pass); valid {
			return a.principal(tokenUser), nil // a token of the ECR API's GetAuthorizationToken
		}
	}
	if maybeAnonymousPull && a.anonymousPull && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return a.principal(""), nil
	}
	return engine.Principal{}, ErrUnauthenticated
}

// SigV4 authenticates an ECR API call, whose body has been read into
// body, by its AWS Signature Version 4 when the registry has ECR
// credentials, and answers the key's user. Without credentials the ECR
// API is open to anonymous callers only when the OCI API is (no htpasswd
// file), as a local development registry is; otherwise the error wraps
// ErrECRClosed. A bad signature's error wraps a sigv4 sentinel
// (sigv4.ErrUnknownKey, ErrExpired, ErrMissing, ErrMalformed,
// ErrMismatch).
func (a *Authenticator) SigV4(r *http.Request, body []byte) (engine.Principal, error) {
	if a.keys == nil {
		if a.passwords != nil {
			return engine.Principal{}, ErrECRClosed
		}
		return a.principal(""), nil
	}
	id, err := sigv4.Verify(r, body, a.keys.lookup, a.now())
	if err != nil {
		return engine.Principal{}, err
	}
	return a.principal(a.keys.user(id.AccessKeyID)), nil
}

// MintLoginToken returns a registry login token for user ("" for an
// anonymous caller of an open registry) and when it expires: the password
// of user AWS on the OCI API (GetAuthorizationToken).
func (a *Authenticator) MintLoginToken(user string) (string, time.Time) {
	return a.tokens.mint(user)
}
