// Package pgtest runs a real PostgreSQL server for tests: initdb and
// pg_ctl over a temporary directory, listening on 127.0.0.1 on a free
// port, stopped and removed when the test ends. As root (which PostgreSQL
// refuses to run as) the server runs as the postgres user through
// runuser. The caller decides what a missing server means (internal/
// testenv: a skip on a developer's machine, a failure under CI); install
// it with `apt-get install postgresql` (.ci/install-tools.sh does it).
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berthstore/berth/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// InstallCommand installs the PostgreSQL server the tests use.
const InstallCommand = "apt-get install postgresql"

// Find returns the directory of initdb and pg_ctl: on PATH, or the newest
// of Debian's /usr/lib/postgresql/*/bin.
func Find() (string, bool) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), true
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i], true
		}
	}
	return "", false
}

// Server is one running PostgreSQL server.
type Server struct {
	// Port is its TCP port on 127.0.0.1.
	Port int

	bin, dir string
	asUser   []string // the runuser prefix as root; empty otherwise
	dbs      atomic.Int64
}

// Start initialises and starts a server with the binaries in bin, for tb;
// it is stopped and its directory removed at cleanup.
func Start(tb testing.TB, bin string) *Server {
	tb.Helper()
	s, err := New(bin)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// New initialises and starts a server with the binaries in bin (for a
// TestMain); Close stops it and removes its directory.
func New(bin string) (*Server, error) {
	reapStale(bin)
	dir, err := os.MkdirTemp("", "berth-pg-")
	if err != nil {
		return nil, err
	}
	// The owner file names this process: a later run stops the server if
	// this process died without stopping it (a test binary that panicked
	// or was killed never runs its cleanups, and pg_ctl's server outlives
	// it).
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir, Port: port}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs the postgres user (%s makes it): %w", InstallCommand, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		s.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run("initdb", "-D", data, "-A", "trust", "-U", "berth", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := s.start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// reapStale stops and removes the servers of earlier test processes that
// are gone.
func reapStale(bin string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "berth-pg-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) == nil {
			continue // alive (or not ours to judge)
		}
		s := &Server{bin: bin, dir: dir}
		if os.Geteuid() == 0 {
			s.asUser = []string{"runuser", "-u", "postgres", "--"}
		}
		s.stop()
		_ = os.RemoveAll(dir)
	}
}

// Close stops the server and removes its directory.
func (s *Server) Close() {
	s.stop()
	_ = os.RemoveAll(s.dir)
}

func (s *Server) run(name string, args ...string) ([]byte, error) {
	argv := append(append([]string(nil), s.asUser...), filepath.Join(s.bin, name))
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

func (s *Server) start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200", s.Port, s.dir)
	if out, err := s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-o", opts, "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return nil
}

func (s *Server) stop() {
	_, _ = s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
}

// Stop stops the server at once, as a crash would (no checkpoint);
// Resume starts it again over the same data and port.
func (s *Server) Stop() { s.stop() }

// Resume starts a server Stop stopped.
func (s *Server) Resume(tb testing.TB) {
	tb.Helper()
	if err := s.start(); err != nil {
		tb.Fatalf("pgtest: resume: %v", err)
	}
}

// Restart stops the server at once (as a crash would: no checkpoint) and
// starts it again over the same data and port.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.stop()
	if err := s.start(); err != nil {
		tb.Fatalf("pgtest: restart: %v", err)
	}
}

// URL is the connection string of database name.
func (s *Server) URL(name string) string {
	return fmt.Sprintf("postgres://berth@127.0.0.1:%d/%s?sslmode=disable", s.Port, name)
}

// NewDatabase creates an empty database and returns its connection
// string.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("berth_%d", s.dbs.Add(1))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return s.URL(name)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Require returns the directory of the PostgreSQL binaries (Find), or
// stops tb as testenv.Missing does: a skip on a developer's machine
// without them, a failure under CI that names what to install.
func Require(tb testing.TB) string {
	tb.Helper()
	bin, ok := Find()
	if !ok {
		testenv.Missing(tb, "PostgreSQL (%s; .ci/install-tools.sh does it)", InstallCommand)
	}
	return bin
}
