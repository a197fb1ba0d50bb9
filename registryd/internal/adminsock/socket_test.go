package adminsock

import (
	"context"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serveOnce accepts one connection on ln and sends its peer (or error)
// on the returned channel.
func serveOnce(t *testing.T, ln net.Listener) <-chan Peer {
	t.Helper()
	out := make(chan Peer, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(out)
			return
		}
		defer c.Close()
		p, err := PeerOf(c)
		if err != nil {
			close(out)
			return
		}
		out <- p
	}()
	return out
}

func TestListenDialAndPeer(t *testing.T) {
	path := DefaultPath(t.TempDir())
	ln, err := Listen(path)
	require.NoError(t, err)
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSocket, fi.Mode().Type())
	assert.Equal(t, Mode, fi.Mode().Perm(), "0600 from the start")
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "the private directory it was bound in is gone")

	peers := serveOnce(t, ln)
	c, err := Dial(context.Background(), path)
	require.NoError(t, err)
	defer c.Close()
	p, ok := <-peers
	require.True(t, ok, "the peer is read")
	assert.Equal(t, uint32(os.Getuid()), p.UID)
	assert.Equal(t, int32(os.Getpid()), p.PID)

	// A second daemon on the same socket is refused; the first keeps it.
	_, err = Listen(path)
	require.ErrorIs(t, err, ErrInUse)

	require.NoError(t, ln.Close())
	_, err = os.Lstat(path)
	require.ErrorIs(t, err, fs.ErrNotExist, "Close removes the socket file")
	_, err = Dial(context.Background(), path)
	require.ErrorIs(t, err, ErrNoDaemon)
}

// TestListenReplacesAStaleSocket: a socket left by a daemon that is gone
// (no one listens) is replaced; a path that is not a socket is not.
func TestListenReplacesAStaleSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	stale.SetUnlinkOnClose(false)
	require.NoError(t, stale.Close()) // the file stays, no one listens
	_, err = Dial(context.Background(), path)
	require.ErrorIs(t, err, ErrNoDaemon)

	ln, err := Listen(path)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	peers := serveOnce(t, ln)
	c, err := Dial(context.Background(), path)
	require.NoError(t, err)
	c.Close()
	<-peers

	file := filepath.Join(dir, "not-a-socket")
	require.NoError(t, os.WriteFile(file, []byte("keep me"), 0o600))
	_, err = Listen(file)
	require.ErrorIs(t, err, ErrNotSocket)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(b))
}

// TestLongPath: a socket path longer than a sockaddr_un holds is bound
// and dialled through the directory's descriptor; the HTTP client reaches
// it.
func TestLongPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	require.NoError(t, os.MkdirAll(dir, 0o700))
	path := DefaultPath(dir)
	require.Greater(t, len(path), maxPath)
	ln, err := Listen(path)
	require.NoError(t, err)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := PeerFrom(r.Context())
			if err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			_, _ = w.Write([]byte("uid ok " + map[bool]string{true: "yes", false: "no"}[p.UID == uint32(os.Getuid())]))
		}),
		ConnContext:       ConnContext,
		ReadHeaderTimeout: time.Minute,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })

	resp, err := Client(path).Get(BaseURL + "/x")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b := make([]byte, 64)
	n, _ := resp.Body.Read(b)
	assert.Equal(t, "uid ok yes", string(b[:n]))
}

// TestPeerFromWithoutSocket: a request that did not come through the
// socket has no peer.
func TestPeerFromWithoutSocket(t *testing.T) {
	_, err := PeerFrom(context.Background())
	require.ErrorIs(t, err, ErrNoPeer)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_, err = PeerFrom(ConnContext(context.Background(), a))
	require.ErrorIs(t, err, ErrNoPeer)
}
