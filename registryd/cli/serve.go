package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/metrics"
	"github.com/berthstore/berth/registryd/server"
)

var serveCommand = &Command{
	Name:    "serve",
	Summary: "serve the OCI Distribution API (default)",
	Run:     runServe,
}

// loginTokenKeyFile is the file in the store directory that keeps the key
// of the ECR API's registry login tokens.
const loginTokenKeyFile = "ecr-login-token.key"

func runServe(ctx context.Context, env Env, args []string) int {
	fs := flagSetFor(env, args, "serve", "serve [flags]")
	cfg, err := parseFlags(fs, args, bindServeFlags)
	if err != nil {
		if !errors.Is(err, ErrConfig) {
			return flagExit(err)
		}
		fmt.Fprintln(env.Stderr, "registryd:", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "registryd serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(env.Stderr, "registryd:", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Serve(ctx, cfg, NewLogger(env.Stderr, cfg), nil); err != nil {
		fmt.Fprintln(env.Stderr, "registryd:", err)
		return exitError
	}
	return exitOK
}

// NewLogger builds the daemon's logger from the configuration.
func NewLogger(w io.Writer, cfg *Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Serve opens the store, applies the configured templates, serves until
// ctx is done, shuts down gracefully and closes the store. If ready is
// not nil it receives the listening address once requests are accepted.
func Serve(ctx context.Context, cfg *Config, log *slog.Logger, ready chan<- net.Addr) (err error) {
	opts, err := cfg.EngineOptions()
	if err != nil {
		return err
	}
	cfg.scheduleOptions(opts)
	opts.HoldEvents = false // the daemon routes and delivers the events
	cfg.scanOptions(opts)
	mem, merr := DecideMemoryLimit(cfg.MemoryLimit)
	mem.Apply()
	if merr != nil {
		log.Warn("no soft memory limit: the cgroup's memory limit could not be read", "err", merr)
	}
	log.Info("soft memory limit", "limit", mem.String())
	eng, err := engine.Open(cfg.Data, opts)
	if err != nil {
		return fmt.Errorf("open store %s: %w", cfg.Data, err)
	}
	defer func() {
		if cerr := eng.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close store: %w", cerr)
		}
	}()
	if err := applyTemplates(ctx, eng, cfg.Templates); err != nil {
		return err
	}
	for _, r := range cfg.PullThroughCacheRules {
		if err := recordCacheRulePut(ctx, eng, "serve", r.engineRule()); err != nil {
			return fmt.Errorf("pull-through cache rule %q: %w", r.ECRRepositoryPrefix, err)
		}
		if _, err := eng.PutPullThroughCacheRule(ctx, r.engineRule()); err != nil {
			return fmt.Errorf("pull-through cache rule %q: %w", r.ECRRepositoryPrefix, err)
		}
	}
	if cfg.Mount != "" {
		// Unmounted (deferred, so before the store closes) when serving ends.
		unmount, err := ServeMount(ctx, Env{Stderr: os.Stderr}, cfg, eng, cfg.Mount)
		if err != nil {
			return err
		}
		defer unmount()
	}
	scfg := server.Config{
		Logger:           log,
		DisableAccessLog: !cfg.AccessLog,
		HtpasswdFile:     cfg.Htpasswd,
		AnonymousPull:    cfg.AnonymousPull,
		AuthCacheTTL:     time.Duration(cfg.AuthCacheTTL),
		MaxManifestSize:  cfg.MaxManifestSize,
		ShutdownTimeout:  time.Duration(cfg.ShutdownTimeout),
		DisableMetrics:   !cfg.Metrics,
		DisableConsole:   !cfg.Console,

		ECRCredentialsFile: cfg.ECRCredentials,
		ECRRegion:          cfg.ECRRegion,
		ECRAccountID:       cfg.ECRAccountID,
		PullThroughRefresh: time.Duration(cfg.PullThroughRefresh),
		LoginTokenKeyFile:  filepath.Join(cfg.Data, loginTokenKeyFile),
		IdentityFile:       cfg.IAM,
	}
	proxies, err := cfg.trustedProxies()
	if err != nil {
		return fmt.Errorf("%w: trustedProxies: %w", ErrConfig, err)
	}
	scfg.TrustedProxies = proxies
	if cfg.AuthCacheTTL <= 0 {
		scfg.AuthCacheTTL = -1
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		scfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := server.New(eng, scfg)
	if err != nil {
		return err
	}
	warnAccess(log, cfg)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	stopSocket, err := serveAdminSocket(ctx, cfg, srv, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopSocket()
	stopReloads := reloadOnSIGHUP(ctx, srv)
	defer stopReloads()
	// Stopped (deferred, so before the store closes) when serving ends.
	stopReplication, err := startReplication(ctx, cfg, eng, metrics.NewReplication(srv.MetricsRegistry()), log)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopReplication()
	log.Info("registryd listening", "addr", ln.Addr().String(), "data", cfg.Data,
		"tls", cfg.TLSCert != "", "auth", srv.AuthenticationEnabled(), "iam", cfg.IAM, "createOnPush", cfg.CreateOnPush)
	logSchedules(log, cfg, eng)
	if ready != nil {
		ready <- ln.Addr()
	}
	return srv.Serve(ctx, ln)
}

// warnAccess says at start, at WARN, who may do what when the
// configuration leaves it wide: an open registry (no authentication), or
// authentication without an identity file (every user an administrator).
func warnAccess(log *slog.Logger, cfg *Config) {
	switch {
	case cfg.Htpasswd == "" && cfg.ECRCredentials == "":
		log.Warn("authentication is off: the registry is open to anyone who can reach it (--htpasswd, --ecr-credentials)", "addr", cfg.Addr)
	case cfg.IAM == "":
		log.Warn("no identity policies: every authenticated user is an administrator (--iam FILE gives users and groups their own policies)")
	}
}

// reloadOnSIGHUP reloads the server's identity, htpasswd and ECR
// credentials files on every SIGHUP until ctx is done or the returned
// function is called; a bad file keeps the previous ones (logged by the
// server).
func reloadOnSIGHUP(ctx context.Context, srv *server.Server) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				_, _ = srv.ReloadIdentities()
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

// applyTemplates puts the configured creation templates into the store,
// each recorded in the audit log as a change of the local operator's.
func applyTemplates(ctx context.Context, eng *engine.Engine, ts []Template) error {
	for _, t := range ts {
		if err := recordTemplatePut(ctx, eng, "serve", t.Prefix); err != nil {
			return fmt.Errorf("template %q: %w", t.Prefix, err)
		}
		if err := eng.PutCreationTemplate(ctx, t.engineTemplate()); err != nil {
			return fmt.Errorf("template %q: %w", t.Prefix, err)
		}
	}
	return nil
}

// scanOptions gives the engine the scan settings: only serve runs scans.
// Zero values take the engine's defaults.
func (c *Config) scanOptions(o *engine.Options) {
	o.ScanWorkers = c.ScanWorkers
	o.ScanQuietPeriod = time.Duration(c.ScanQuietPeriod)
	o.ScanMaxYield = time.Duration(c.ScanMaxYield)
}
