package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/fuse"
)

var mountCommand = &Command{
	Name:    "mount",
	Summary: "mount the read-only FUSE view of a store no daemon holds (a daemon mounts its own: serve --mount)",
	Run:     mountCmd,
}

func init() { Register(mountCommand) }

// mountFlags are the view's flags (shared with serve --mount).
type mountFlags struct {
	allowOther  bool
	keepAbs     bool
	maxEntries  int
	readAheadKB int
	debug       bool
}

func (m *mountFlags) bind(fs *flag.FlagSet) {
	fs.BoolVar(&m.allowOther, "allow-other", false, "let other users use the view (file modes still apply)")
	fs.BoolVar(&m.keepAbs, "keep-absolute-symlinks", false, "show absolute symlink targets as the layers have them; the kernel then follows them on the host, out of the image (default: every link resolved inside the image)")
	fs.IntVar(&m.maxEntries, "max-layer-entries", 0, "refuse layers with more entries (0: 1,000,000)")
	fs.IntVar(&m.readAheadKB, "read-ahead-kb", 0, "bdi read_ahead_kb of the mount (0: 4096, -1: kernel default)")
	fs.BoolVar(&m.debug, "fuse-debug", false, "log every FUSE request")
}

func (m *mountFlags) options(env Env, cfg *Config) *fuse.Options {
	return &fuse.Options{
		AllowOther: m.allowOther, KeepAbsoluteSymlinks: m.keepAbs, ReadAheadKB: m.readAheadKB, Debug: m.debug,
		Layer:  engine.LayerOptions{MaxEntries: m.maxEntries},
		Logger: NewLogger(env.Stderr, cfg),
	}
}

// mountCmd runs "registryd mount --data DIR MOUNTPOINT": it mounts the
// view and serves it until SIGINT or SIGTERM, then unmounts.
func mountCmd(ctx context.Context, env Env, args []string) int {
	fs := flagSetFor(env, args, "mount", "mount --data DIR [flags] MOUNTPOINT")
	var mf mountFlags
	eng, cfg, code := openStore(env, fs, args, func(fs *flag.FlagSet, _ *Config) { mf.bind(fs) })
	if eng == nil {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(env.Stderr, "registryd mount: one MOUNTPOINT argument expected")
		fs.Usage()
		return closeStore(env, eng, exitUsage)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := fuse.Mount(ctx, eng, fs.Arg(0), mf.options(env, cfg))
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd mount:", err)
		return closeStore(env, eng, exitError)
	}
	fmt.Fprintf(env.Stderr, "registryd mount: %s mounted at %s; Ctrl-C (or SIGTERM) unmounts\n", cfg.Data, srv.Dir())
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	select {
	case <-ctx.Done():
		if err := srv.Unmount(); err != nil {
			fmt.Fprintln(env.Stderr, "registryd mount:", err)
			return closeStore(env, eng, exitError)
		}
	case <-done: // unmounted from outside (fusermount3 -u)
	}
	return closeStore(env, eng, exitOK)
}

// ServeMount mounts the live view of a store the daemon serves, for
// "registryd serve --mount DIR"; the returned function unmounts it.
func ServeMount(ctx context.Context, env Env, cfg *Config, eng *engine.Engine, dir string) (func() error, error) {
	var mf mountFlags
	srv, err := fuse.Mount(ctx, eng, dir, mf.options(env, cfg))
	if err != nil {
		return nil, err
	}
	return srv.Unmount, nil
}
