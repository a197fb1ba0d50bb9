// Package server is registryd's HTTP server: the composition of the OCI
// Distribution API v1.1 (registryd/internal/oci), the ECR management API
// (internal/ecrapi), the admin API (internal/admin) and /metrics over one
// Store (an *engine.Engine), with authentication (internal/auth), one
// Authorizer that every API asks (internal/authz), an access log,
// Prometheus metrics and graceful shutdown. It is importable so that
// tests, the CLI and bench start it in-process.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	// Digest algorithms the server verifies (go-digest registers none).
	_ "crypto/sha256"
	_ "crypto/sha512"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthstore/berth/registryd/internal/admin"
	"github.com/berthstore/berth/registryd/internal/auth"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/console"
	"github.com/berthstore/berth/registryd/internal/ecrapi"
	"github.com/berthstore/berth/registryd/internal/metrics"
	"github.com/berthstore/berth/registryd/internal/oci"
	"github.com/berthstore/berth/registryd/internal/pullthrough"
	"github.com/berthstore/berth/registryd/internal/request"
)

// Defaults of Config.
const (
	DefaultMaxManifestSize    = oci.DefaultMaxManifestSize
	DefaultShutdownTimeout    = 30 * time.Second
	DefaultAuthCacheTTL       = time.Minute
	DefaultRealm              = oci.DefaultRealm
	DefaultECRRegion          = ecrapi.DefaultRegion
	DefaultECRAccountID       = ecrapi.DefaultAccountID
	DefaultPullThroughRefresh = pullthrough.DefaultRefresh
)

// The errors of New for unusable files; test them with errors.Is.
var (
	// ErrHtpasswd reports an unusable htpasswd file.
	ErrHtpasswd = auth.ErrHtpasswd
	// ErrECRCredentials reports an unusable ECR credentials file.
	ErrECRCredentials = auth.ErrECRCredentials
	// ErrTokenKey reports an unusable login token key file.
	ErrTokenKey = auth.ErrTokenKey
	// ErrIdentities reports an unusable identity file.
	ErrIdentities = auth.ErrIdentities
)

// Config configures a Server. The zero value serves without
// authentication, with the defaults above.
type Config struct {
	// Logger receives the access log and errors. Default slog.Default().
	Logger *slog.Logger
	// DisableAccessLog turns the per-request log line off.
	DisableAccessLog bool
	// HtpasswdFile, when set, requires HTTP basic authentication against
	// this htpasswd file (bcrypt entries only).
	HtpasswdFile string
	// AnonymousPull lets GET and HEAD requests through without
	// credentials when authentication is on.
	AnonymousPull bool
	// Realm is the basic-auth realm. Default "berth".
	Realm string
	// AuthCacheTTL is how long a successful password check is cached.
	// Default one minute; negative disables the cache.
	AuthCacheTTL time.Duration
	// MaxManifestSize bounds a pushed manifest. Default 4 MiB.
	MaxManifestSize int64
	// ShutdownTimeout bounds the wait for in-flight requests on shutdown.
	// Default 30 s.
	ShutdownTimeout time.Duration
	// DisableMetrics removes the /metrics endpoint.
	DisableMetrics bool
	// DisableConsole removes the web console (/console/).
	DisableConsole bool
	// TLSConfig, if not nil, makes Serve speak HTTPS.
	TLSConfig *tls.Config
	// ECRCredentialsFile holds the access keys the ECR management API
	// accepts (SigV4), one ACCESS_KEY_ID:SECRET_ACCESS_KEY a line. Without
	// it the ECR API is open when basic authentication is off and closed
	// when it is on.
	ECRCredentialsFile string
	// ECRRegion and ECRAccountID are the region and registry ID the ECR
	// API answers for (in ARNs and registryId). Defaults us-east-1 and
	// 000000000000.
	ECRRegion, ECRAccountID string
	// PullThroughRefresh is how often a tag of a pull-through cache
	// repository is checked against its upstream. Default 24 h (ECR);
	// negative: at every pull.
	PullThroughRefresh time.Duration
	// LoginTokenKeyFile keeps the key that signs the login tokens of
	// GetAuthorizationToken (created if missing; an existing one must be
	// owned by the daemon's user with mode 0600), so that they outlive a
	// restart. Empty: a key of this process only.
	LoginTokenKeyFile string
	// IdentityFile is the identity file: users, groups and their identity
	// policies (docs/policies.md). Empty: every authenticated user holds
	// the administrator policy. It needs authentication on (HtpasswdFile
	// or ECRCredentialsFile). Reload reads it again.
	IdentityFile string
	// TrustedProxies are the networks of the reverse proxies whose
	// X-Forwarded-For is believed for the caller's address (aws:SourceIp,
	// the access log): the rightmost address that is not a trusted proxy.
	// None: the TCP peer is the caller.
	TrustedProxies []netip.Prefix
}

// Server serves registryd's APIs over a Store.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics.Metrics
	handler http.Handler
	// uploads tracks the requests that hold an open engine upload, so
	// that shutdown waits for them to checkpoint and close it.
	uploads *request.Uploads
	authn   *auth.Authenticator
	// fill is the pull-through cache, whose background fills Serve stops
	// when it ends.
	fill *pullthrough.Cache
	// rules lists the pull-through cache rules, whose upstreams Serve
	// greets as it starts.
	rules ecrapi.CacheRuleStore
	// localAdmin serves the admin socket (ServeAdminSocket).
	localAdmin http.Handler
}

// New returns a Server over store. It reads the htpasswd, ECR
// credentials, identity and login token key files the configuration names
// (errors wrap ErrHtpasswd, ErrECRCredentials, ErrIdentities,
// ErrTokenKey).
func New(store Store, cfg Config) (*Server, error) {
	if store == nil {
		return nil, errors.New("registryd: nil store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if cfg.AuthCacheTTL == 0 {
		cfg.AuthCacheTTL = DefaultAuthCacheTTL
	}
	if cfg.MaxManifestSize <= 0 {
		cfg.MaxManifestSize = DefaultMaxManifestSize
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.ECRAccountID == "" {
		cfg.ECRAccountID = DefaultECRAccountID
	}
	if cfg.ECRRegion == "" {
		cfg.ECRRegion = DefaultECRRegion
	}
	s := &Server{cfg: cfg, log: cfg.Logger, uploads: &request.Uploads{}}
	s.metrics = metrics.New(func() float64 { return float64(s.uploads.InProgress()) })
	s.metrics.Registry().MustRegister(metrics.NewStoreCollector(store), metrics.NewAuditCollector(store), metrics.NewEventCollector(store),
		metrics.NewReplicationCollector(store))

	authn, err := auth.New(auth.Config{
		Account:            cfg.ECRAccountID,
		Region:             cfg.ECRRegion,
		HtpasswdFile:       cfg.HtpasswdFile,
		AuthCacheTTL:       cfg.AuthCacheTTL,
		AnonymousPull:      cfg.AnonymousPull,
		ECRCredentialsFile: cfg.ECRCredentialsFile,
		LoginTokenKeyFile:  cfg.LoginTokenKeyFile,
		IdentityFile:       cfg.IdentityFile,
		Logger:             cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	s.authn = authn
	az, err := authz.NewIAM(store, authz.IAMConfig{
		Open:          !authn.Enabled(),
		AnonymousPull: cfg.AnonymousPull,
	})
	if err != nil {
		return nil, err
	}
	fill, err := pullthrough.New(store, az, pullthrough.Config{Logger: cfg.Logger, Refresh: cfg.PullThroughRefresh,
		MaxManifestSize: cfg.MaxManifestSize})
	if err != nil {
		return nil, err
	}
	s.fill = fill
	s.rules = store
	ociAPI, err := oci.New(store, authn, az, fill, s.uploads, oci.Config{
		Logger: cfg.Logger, Realm: cfg.Realm, MaxManifestSize: cfg.MaxManifestSize,
		Account: cfg.ECRAccountID, AuthenticationRequired: cfg.HtpasswdFile != ""})
	if err != nil {
		return nil, err
	}
	ecrAPI, err := ecrapi.New(store, authn, az, s.uploads, s.metrics, ecrapi.Config{
		Logger: cfg.Logger, Region: cfg.ECRRegion, AccountID: cfg.ECRAccountID, MaxManifestSize: cfg.MaxManifestSize,
		Upstreams: fill})
	if err != nil {
		return nil, err
	}
	adminAPI, err := admin.New(store, authn, az, admin.Config{Logger: cfg.Logger, Realm: cfg.Realm})
	if err != nil {
		return nil, err
	}
	var web http.Handler
	if !cfg.DisableConsole {
		c, err := console.New(store, authn, az, console.Config{Logger: cfg.Logger, Registerer: s.metrics.Registry()})
		if err != nil {
			return nil, err
		}
		web = c
	}
	s.handler = s.instrument(s.dispatch(ociAPI, ecrAPI, adminAPI, web))
	localAdmin, err := admin.NewLocal(store, authn, az, admin.Config{Logger: cfg.Logger, Realm: cfg.Realm})
	if err != nil {
		return nil, err
	}
	s.localAdmin = s.instrument(s.dispatchLocal(localAdmin))
	return s, nil
}

// ReloadIdentities reads the htpasswd, ECR credentials and identity files
// again and swaps them in at once (SIGHUP); on error the previous ones
// stay in force, and the error is logged and returned.
func (s *Server) ReloadIdentities() (auth.IdentitySummary, error) { return s.authn.Reload() }

// AuthenticationEnabled reports whether authentication is on (an htpasswd
// or an ECR credentials file): without it the registry is open.
func (s *Server) AuthenticationEnabled() bool { return s.authn.Enabled() }

// Handler returns the server's http.Handler (the APIs, the console and
// /metrics).
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsRegistry returns the server's own Prometheus registry (not the
// global one). Register further collectors here.
func (s *Server) MetricsRegistry() *prometheus.Registry { return s.metrics.Registry() }

// Serve answers requests on ln until ctx is done, then shuts down
// gracefully: it stops accepting, waits up to ShutdownTimeout for
// in-flight requests, then closes the remaining connections and waits
// for the upload requests among them to checkpoint and close their
// sessions. It does not close the store. It returns nil after a shutdown
// caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         s.cfg.TLSConfig,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// The first pull through each rule should not wait for a handshake
	// with its upstream: make them now, in the background.
	if rules, err := s.rules.PullThroughCacheRules(ctx); err == nil {
		s.fill.PrimeAll(rules)
	} else {
		s.log.Warn("pull-through: listing the rules to greet their upstreams", "err", err)
	}
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("registryd: serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	s.uploads.Close()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("shutdown timed out, closing connections", "err", err)
		_ = srv.Close()
	}
	<-errc
	// Uploads whose connection was closed see a read error, checkpoint
	// what they have and close their session; wait for that, bounded.
	if !s.uploads.Wait(s.cfg.ShutdownTimeout) {
		s.log.Error("uploads still running after shutdown timeout")
	}
	// The pull-through cache's background fills finish, or stop at the
	// shutdown timeout (what they stored stays; the next pull fetches the
	// rest), before the store closes.
	fctx, fcancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	_ = s.fill.Close(fctx)
	fcancel()
	s.log.Info("shutdown complete")
	return nil
}
