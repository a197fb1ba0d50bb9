package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

// patternReader yields n generated, incompressible-looking bytes without
// holding them: an xorshift stream.
type patternReader struct {
	left  int64
	state uint64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	i := 0
	for ; i+8 <= len(b); i += 8 {
		p.state ^= p.state << 13
		p.state ^= p.state >> 7
		p.state ^= p.state << 17
		v := p.state
		b[i], b[i+1], b[i+2], b[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
	}
	for ; i < len(b); i++ {
		b[i] = byte(i)
	}
	p.left -= int64(len(b))
	return len(b), nil
}

// vmHWM reads the peak resident set size of pid, in KiB.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestPush2GiBFlatMemory streams 2 GiB through chunked PATCH into a
// registryd child process and checks its peak RSS stays under 200 MiB.
// Skipped with -short.
func TestPush2GiBFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("2 GiB push: skipped with -short")
	}
	const (
		total     = int64(2 << 30)
		chunkSize = int64(64 << 20)
		limitKiB  = 200 << 10
	)
	dir := t.TempDir()
	bin := buildRegistryd(t)

	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", addr, "--data", filepath.Join(dir, "store"), "--access-log=false", "--log-level", "warn")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cancel()
		}
	}()
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "registryd did not start")

	resp, err := http.Post(base+"/v2/big/blob/blobs/uploads/", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	loc := base + resp.Header.Get("Location")

	src := &patternReader{left: total, state: 0x9E3779B97F4A7C15}
	h := sha256.New()
	peak := int64(0)
	for off := int64(0); off < total; off += chunkSize {
		n := min(chunkSize, total-off)
		req, err := http.NewRequest(http.MethodPatch, loc, io.TeeReader(io.LimitReader(src, n), h))
		require.NoError(t, err)
		req.ContentLength = n
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+n-1))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", body)
		require.Equal(t, fmt.Sprintf("0-%d", off+n-1), resp.Header.Get("Range"))
		loc = base + resp.Header.Get("Location")
		hwm, err := vmHWM(cmd.Process.Pid)
		require.NoError(t, err)
		peak = max(peak, hwm)
	}
	d := digest.NewDigest(digest.SHA256, h)
	req, err := http.NewRequest(http.MethodPut, loc+"?digest="+d.String(), nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	head, err := http.Head(base + "/v2/big/blob/blobs/" + d.String())
	require.NoError(t, err)
	head.Body.Close()
	require.Equal(t, strconv.FormatInt(total, 10), head.Header.Get("Content-Length"))

	hwm, err := vmHWM(cmd.Process.Pid)
	require.NoError(t, err)
	peak = max(peak, hwm)
	t.Logf("registryd peak RSS (VmHWM) after a 2 GiB chunked push: %d KiB (%.1f MiB); limit %d MiB", peak, float64(peak)/1024, limitKiB>>10)
	require.Less(t, peak, int64(limitKiB), "peak RSS above 200 MiB")
}
