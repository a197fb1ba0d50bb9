package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/cli"
)

// startServer runs registryd's Serve with cfg (Addr and Data filled in)
// in-process and returns its host:port. The server stops at the end of
// the test.
func startServer(t testing.TB, mutate func(*cli.Config)) string {
	t.Helper()
	addr, _ := startStoppableServer(t, mutate)
	return addr
}

// startStoppableServer is startServer with a function that stops the
// server before the test ends (idempotent; the cleanup calls it too).
func startStoppableServer(t testing.TB, mutate func(*cli.Config)) (string, func()) {
	t.Helper()
	cfg := cli.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.AccessLog = false
	cfg.LogLevel = "warn"
	if mutate != nil {
		mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- cli.Serve(ctx, &cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), ready)
	}()
	select {
	case addr := <-ready:
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				select {
				case err := <-done:
					require.NoError(t, err)
				case <-time.After(30 * time.Second):
					t.Error("server did not stop")
				}
			})
		}
		t.Cleanup(stop)
		return addr.String(), stop
	case err := <-done:
		cancel()
		require.NoError(t, err, "registryd did not start")
		t.FailNow()
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("registryd did not start in time")
	}
	return "", nil
}

// runTool runs a CLI and fails the test with its output on error.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "DOCKER_CONFIG="+t.TempDir())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %v:\n%s", name, args, out)
	return string(out)
}

// ociError is the spec's error body.
type ociError struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// httpDo sends one request and returns status, headers and body.
func httpDo(t *testing.T, method, url string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

// pushBlobHTTP pushes data into repo with a monolithic POST and returns
// the status and error body.
func pushBlobHTTP(t *testing.T, addr, repo string, data []byte) (int, ociError) {
	t.Helper()
	d := digest.FromBytes(data)
	status, _, body := httpDo(t, http.MethodPost, "http://"+addr+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data, nil)
	var e ociError
	if status >= 400 {
		require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	}
	return status, e
}

// pushImageHTTP pushes a tiny image (config + one layer, distinct per
// seed) and its manifest under tag; it returns the manifest's status,
// error body and digest.
func pushImageHTTP(t *testing.T, addr, repo, tag, seed string) (int, ociError, digest.Digest) {
	t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","seed":"` + seed + `"}`)
	layer := []byte("layer " + seed)
	for _, b := range [][]byte{cfg, layer} {
		if status, e := pushBlobHTTP(t, addr, repo, b); status != http.StatusCreated {
			return status, e, ""
		}
	}
	m, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.FromBytes(cfg), "size": len(cfg)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest.FromBytes(layer), "size": len(layer)}},
	})
	require.NoError(t, err)
	return putManifestHTTP(t, addr, repo, tag, m)
}

// putManifestHTTP puts manifest bytes under reference.
func putManifestHTTP(t *testing.T, addr, repo, ref string, m []byte) (int, ociError, digest.Digest) {
	t.Helper()
	status, _, body := httpDo(t, http.MethodPut, "http://"+addr+"/v2/"+repo+"/manifests/"+ref, m,
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	var e ociError
	if status >= 400 {
		require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	}
	return status, e, digest.FromBytes(m)
}
