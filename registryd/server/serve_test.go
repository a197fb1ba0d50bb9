package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

func TestGracefulShutdown(t *testing.T) {
	s, st := newTestHandler(t, Config{ShutdownTimeout: 200 * time.Millisecond})
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
	require.Eventually(t, func() bool { return body.sent.Load() }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond)

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
	up, err := st.ResumeUpload(context.Background(), "r", lastSegment(loc))
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
