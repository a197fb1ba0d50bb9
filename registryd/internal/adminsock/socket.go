package adminsock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// DefaultName is the socket's file name in the store directory.
const DefaultName = "admin.sock"

// DefaultPath is the socket of the daemon holding the store at dataDir.
func DefaultPath(dataDir string) string { return filepath.Join(dataDir, DefaultName) }

// Mode is the socket file's mode: its owner's (the daemon's user) only.
const Mode fs.FileMode = 0o600

// maxPath is the longest path a sockaddr_un holds (sun_path is 108 bytes
// with its terminating NUL).
const maxPath = 107

// The errors of Listen and Dial; test them with errors.Is.
var (
	// ErrInUse reports a socket path on which a daemon answers already.
	ErrInUse = errors.New("adminsock: a daemon answers on the socket already")
	// ErrNotSocket reports a path that holds something other than a
	// socket, which Listen does not replace.
	ErrNotSocket = errors.New("adminsock: the path exists and is not a socket")
	// ErrNoDaemon reports a socket path where no daemon answers: no file,
	// or a socket left by a daemon that is gone.
	ErrNoDaemon = errors.New("adminsock: no daemon answers on the socket")
	// ErrPermission reports a socket this user may not connect to.
	ErrPermission = errors.New("adminsock: permission denied")
)

// Listener is the admin socket a daemon serves on. Close removes the
// socket file (when it is still this listener's).
type Listener struct {
	net.Listener
	path string
	info fs.FileInfo // the socket file as created, to remove only it
}

// Path is the socket's path.
func (l *Listener) Path() string { return l.path }

// Close stops listening and removes the socket file, unless another
// daemon has replaced it meanwhile.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.info) {
		if rerr := os.Remove(l.path); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// Listen creates the admin socket at path with mode 0600 from its first
// moment (it is bound in a private directory, then renamed into place), so
// that no other user can connect in between. A socket left at path by a
// daemon that is gone is replaced; one on which a daemon answers is
// refused (ErrInUse), and so is anything that is not a socket
// (ErrNotSocket).
func Listen(path string) (*Listener, error) {
	path = filepath.Clean(path)
	if err := checkReplaceable(path); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".admin-sock-")
	if err != nil {
		return nil, fmt.Errorf("adminsock: %w", err)
	}
	defer os.RemoveAll(tmp)
	bound := filepath.Join(tmp, "s")
	var ln *net.UnixListener
	err = viaShortPath(bound, func(short string) error {
		var lerr error
		ln, lerr = net.ListenUnix("unix", &net.UnixAddr{Name: short, Net: "unix"})
		return lerr
	})
	if err != nil {
		return nil, fmt.Errorf("adminsock: listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // the file moves; Close removes it at path
	fail := func(err error) (*Listener, error) {
		ln.Close()
		return nil, fmt.Errorf("adminsock: %s: %w", path, err)
	}
	if err := os.Chmod(bound, Mode); err != nil {
		return fail(err)
	}
	// Replacing a stale socket: checked again just before, so that a
	// daemon started meanwhile is not cut off.
	if err := checkReplaceable(path); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(bound, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &Listener{Listener: ln, path: path, info: fi}, nil
}

// checkReplaceable refuses a path that holds anything but a socket on
// which nothing answers.
func checkReplaceable(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("adminsock: %w", err)
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("%w: %s", ErrNotSocket, path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: %s", ErrInUse, path)
	}
	return nil
}

// Dial connects to the admin socket at path. A path with no socket, or a
// socket on which nothing listens, is ErrNoDaemon; one this user may not
// connect to, ErrPermission.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	var c net.Conn
	err := viaShortPath(path, func(short string) error {
		var d net.Dialer
		var derr error
		c, derr = d.DialContext(ctx, "unix", short)
		return derr
	})
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTSOCK):
		return nil, fmt.Errorf("%w: %s", ErrNoDaemon, path)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("%w: %s", ErrPermission, path)
	}
	return nil, fmt.Errorf("adminsock: dial %s: %w", path, err)
}

// viaShortPath calls fn with path, or, when path is too long for a
// sockaddr_un, with /proc/self/fd/N/NAME where N is path's directory,
// opened for the call.
func viaShortPath(path string, fn func(short string) error) error {
	if len(path) <= maxPath {
		return fn(path)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	short := "/proc/self/fd/" + strconv.Itoa(int(dir.Fd())) + "/" + filepath.Base(path)
	if len(short) > maxPath {
		return fmt.Errorf("socket name %q is too long", filepath.Base(path))
	}
	return fn(short)
}

// BaseURL is the URL prefix of the requests a Client sends: every request
// goes to the socket whatever its host.
const BaseURL = "http://admin.sock"

// Client returns an HTTP client whose every request goes to the admin
// socket at path.
func Client(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return Dial(ctx, path)
		},
		DisableCompression: true,
		MaxIdleConns:       1,
		IdleConnTimeout:    30 * time.Second,
	}}
}
