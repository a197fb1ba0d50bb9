// Package server is registryd's HTTP server: the OCI Distribution API v1.1
// and the ECR management API over a Store (an *engine.Engine), with basic
// authentication (passwords or ECR login tokens), SigV4 for the ECR API,
// an access log, Prometheus metrics and graceful shutdown. It is importable so that
// tests, gc, fuse and bench start it in-process.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	// Digest algorithms the server verifies (go-digest registers none).
	_ "crypto/sha256"
	_ "crypto/sha512"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config.
const (
	DefaultMaxManifestSize = 4 << 20
	DefaultShutdownTimeout = 30 * time.Second
	DefaultAuthCacheTTL    = time.Minute
	DefaultRealm           = "berth"
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
	// GetAuthorizationToken (created if missing), so that they outlive a
	// restart. Empty: a key of this process only.
	LoginTokenKeyFile string
}

// Server serves the OCI Distribution API over a Store.
type Server struct {
	store   Store
	cfg     Config
	log     *slog.Logger
	auth    *authenticator
	metrics *metrics
	handler http.Handler

	// ecrCreds are the ECR API's access keys (nil: none configured);
	// tokens mints and checks registry login tokens.
	ecrCreds *ecrCredentials
	tokens   *loginTokens
	// previews are the lifecycle policy previews of the ECR API, by
	// repository, with the order they were started in.
	previewMu    sync.Mutex
	previews     map[string]*lifecyclePreview
	previewOrder []string
	// pull is the pull-through cache's state; upstreamTransport carries
	// its requests to upstream registries.
	pull              pullThrough
	upstreamTransport http.RoundTripper

	// uploads tracks the requests that hold an open engine.Upload, so
	// that shutdown waits for them to checkpoint and close it.
	uploads sync.WaitGroup
	mu      sync.Mutex
	closing bool
}

// New returns a Server over store. It reads the htpasswd file if one is
// configured.
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
	s := &Server{store: store, cfg: cfg, log: cfg.Logger, metrics: newMetrics()}
	if st, ok := store.(storeStatser); ok {
		s.metrics.reg.MustRegister(newStoreCollector(st))
	}
	if cfg.HtpasswdFile != "" {
		a, err := loadHtpasswd(cfg.HtpasswdFile, cfg.AuthCacheTTL)
		if err != nil {
			return nil, err
		}
		s.auth = a
	}
	if cfg.ECRCredentialsFile != "" {
		c, err := loadECRCredentials(cfg.ECRCredentialsFile)
		if err != nil {
			return nil, err
		}
		s.ecrCreds = c
	}
	t, err := newLoginTokens(cfg.LoginTokenKeyFile)
	if err != nil {
		return nil, err
	}
	s.tokens = t
	s.upstreamTransport = newUpstreamTransport()
	s.handler = s.instrument(http.HandlerFunc(s.serveAPI))
	return s, nil
}

// Handler returns the server's http.Handler (the API and /metrics).
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsRegistry returns the server's own Prometheus registry (not the
// global one). Register store-level collectors (blobs and bytes stored)
// here.
func (s *Server) MetricsRegistry() *prometheus.Registry { return s.metrics.reg }

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
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("shutdown timed out, closing connections", "err", err)
		_ = srv.Close()
	}
	<-errc
	// Uploads whose connection was closed see a read error, checkpoint
	// what they have and close their session; wait for that, bounded.
	done := make(chan struct{})
	go func() { s.uploads.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownTimeout):
		s.log.Error("uploads still running after shutdown timeout")
	}
	s.log.Info("shutdown complete")
	return nil
}

// beginUploadRequest registers a request that holds an Upload. It fails
// once shutdown began.
func (s *Server) beginUploadRequest() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errShuttingDown
	}
	s.uploads.Add(1)
	s.metrics.uploadsInProgress.Inc()
	return nil
}

// endUploadRequest undoes beginUploadRequest.
func (s *Server) endUploadRequest() {
	s.metrics.uploadsInProgress.Dec()
	s.uploads.Done()
}
