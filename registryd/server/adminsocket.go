package server

// The admin socket: the admin API, and nothing else, for the users of
// this machine (docs/registryd.md, "The admin socket").

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/berthstore/berth/registryd/internal/admin"
	"github.com/berthstore/berth/registryd/internal/adminsock"
	"github.com/berthstore/berth/registryd/internal/oci"
	"github.com/berthstore/berth/registryd/internal/request"
)

// dispatchLocal sends the admin socket's requests to the admin API of
// its local users; any other path is NOT_FOUND (the socket serves no
// image, and no ECR call).
func (s *Server) dispatchLocal(adminAPI http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := request.InfoFrom(r.Context())
		info.Route, info.Local = routeAdmin, true
		if !strings.HasPrefix(r.URL.Path, admin.Prefix) {
			oci.WriteError(w, oci.NewError(oci.CodeNotFound, "the admin socket serves "+admin.Prefix+" only", nil))
			return
		}
		adminAPI.ServeHTTP(w, r)
	})
}

// ServeAdminSocket answers the admin API on ln, a unix socket (see
// adminsock.Listen), until ctx is done, then shuts down gracefully (within
// ShutdownTimeout). The caller of each request is the user at the other
// end of its connection (SO_PEERCRED), decided by the engine like any
// caller: the daemon's user and root may do everything, others nothing;
// every decision is audited with source "local". It does not close ln's
// socket file: adminsock's Listener removes it on Close, which Shutdown
// calls.
func (s *Server) ServeAdminSocket(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.localAdmin,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnContext:       adminsock.ConnContext,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("registryd: admin socket: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("admin socket shutdown timed out, closing connections", "err", err)
		_ = srv.Close()
	}
	<-errc
	return nil
}
