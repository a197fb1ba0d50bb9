package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/regtest"
)

// slowBody yields a few bytes, then blocks until released.
type slowBody struct {
	sent    atomic.Bool
	release chan struct{}
}

func (b *slowBody) Read(p []byte) (int, error) {
	if !b.sent.Load() {
		b.sent.Store(true)
		return copy(p, "abcd"), nil
	}
	<-b.release
	return 0, io.EOF
}

// readStore is the engine with a signal: read is closed once an upload
// the server resumed has taken at least min bytes from its request body
// and asked for more, so those bytes are in the upload (the server holds
// them and is blocked on the client's next ones).
type readStore struct {
	Store
	min  int64
	once sync.Once
	read chan struct{}
}

func (s *readStore) ResumeUpload(ctx context.Context, repo, id string) (engine.Upload, error) {
	up, err := s.Store.ResumeUpload(ctx, repo, id)
	if err != nil {
		return nil, err
	}
	return &readUpload{Upload: up, s: s}, nil
}

// readUpload counts what ReadFrom takes from its source.
type readUpload struct {
	engine.Upload
	s *readStore
}

func (u *readUpload) ReadFrom(r io.Reader) (int64, error) {
	return u.Upload.ReadFrom(&countingReader{r: r, s: u.s})
}

type countingReader struct {
	r io.Reader
	n int64
	s *readStore
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n >= c.s.min {
		c.s.once.Do(func() { close(c.s.read) })
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestGracefulShutdown(t *testing.T) {
	eng := newStore(t)
	st := &readStore{Store: eng, min: 4, read: make(chan struct{})}
	s, err := New(st, Config{ShutdownTimeout: 200 * time.Millisecond, Logger: regtest.Quiet()})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	resp, err := http.Post(base+"/v2/r/blobs/uploads/", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	loc := base + resp.Header.Get("Location")

	// A streamed PATCH that is still running when shutdown begins.
	body := &slowBody{release: make(chan struct{})}
	req, err := http.NewRequest(http.MethodPatch, loc, body)
	require.NoError(t, err)
	patchDone := make(chan struct{})
	go func() {
		defer close(patchDone)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	// Shut down once the server holds the first 4 bytes and waits for more.
	select {
	case <-st.read:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not read the first bytes of the PATCH")
	}

	cancel()
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	close(body.release) // let the client finish its (failed) request
	<-patchDone
	// The interrupted chunk was kept: the session resumes at 4 bytes.
	up, err := eng.ResumeUpload(context.Background(), "r", lastSegment(loc))
	require.NoError(t, err)
	assert.Equal(t, int64(4), up.Size())
	require.NoError(t, up.Close())
	// No new connections after shutdown.
	_, err = http.Get(base + "/v2/")
	assert.Error(t, err)
}

func lastSegment(u string) string {
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] == '/' {
			return u[i+1:]
		}
	}
	return u
}
