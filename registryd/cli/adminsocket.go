package cli

// serve's admin socket (docs/registryd.md, "The admin socket").

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/berthstore/berth/registryd/internal/adminsock"
	"github.com/berthstore/berth/registryd/server"
)

// noAdminSocket is the AdminSocket value that turns the socket off.
const noAdminSocket = "none"

// adminSocketPath is the admin socket of the daemon holding the store of
// cfg: its AdminSocket, or <data>/admin.sock; ok is false when the
// socket is turned off.
func adminSocketPath(cfg *Config) (path string, ok bool) {
	switch cfg.AdminSocket {
	case noAdminSocket:
		return "", false
	case "":
		return adminsock.DefaultPath(cfg.Data), true
	}
	return cfg.AdminSocket, true
}

// serveAdminSocket listens on the admin socket of cfg (none when it is
// off) and serves srv's admin API there until ctx is done or the returned
// function is called, which waits for the socket's server to stop and
// removes the socket file.
func serveAdminSocket(ctx context.Context, cfg *Config, srv *server.Server, log *slog.Logger) (stop func(), err error) {
	path, ok := adminSocketPath(cfg)
	if !ok {
		return func() {}, nil
	}
	ln, err := adminsock.Listen(path)
	if err != nil {
		return nil, fmt.Errorf("admin socket (--admin-socket): %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeAdminSocket(ctx, ln); err != nil {
			log.Error("admin socket stopped", "path", path, "err", err)
		}
	}()
	log.Info("admin socket listening: its users administer the store", "path", path)
	return func() {
		cancel()
		<-done
	}, nil
}
