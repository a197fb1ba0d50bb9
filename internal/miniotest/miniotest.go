// Package miniotest runs a real MinIO server for tests: on 127.0.0.1, on
// free ports, over a temporary directory, stopped when the test ends. The
// caller finds the binary (internal/testenv decides whether its absence
// skips or fails) and passes its path.
//
// MinIO is installed with
//
//	go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
//
// (.ci/install-tools.sh does it; about four minutes on two cores, cached in
// GOBIN afterwards).
package miniotest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthstore/berth/internal/testenv"
)

// InstallCommand is the command that installs the MinIO server the tests
// use.
const InstallCommand = "go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

// Credentials of the test server's root user.
const (
	AccessKey = "berthtest"
	SecretKey = "berthtest-secret-key"
)

// Server is one running MinIO server.
type Server struct {
	// Endpoint is host:port of the S3 API, on 127.0.0.1.
	Endpoint string
	// CA verifies the server's certificate when it serves TLS
	// (StartTLS); nil when it serves plain HTTP. CAFile is the same
	// certificate in PEM, for a process's SSL_CERT_FILE.
	CA     *x509.CertPool
	CAFile string

	bin, dir, console string
	log               *bytes.Buffer
	// certsDir holds public.crt and private.key (StartTLS).
	certsDir string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts the MinIO server binary bin for tb, and stops it at
// cleanup. It fails tb when the server does not come up within 30 s.
func Start(tb testing.TB, bin string) *Server {
	tb.Helper()
	s := &Server{bin: bin, dir: tb.TempDir(), Endpoint: "127.0.0.1:" + freePort(tb), console: "127.0.0.1:" + freePort(tb), log: &bytes.Buffer{}}
	if err := s.start(); err != nil {
		tb.Fatalf("miniotest: %v\n%s", err, s.log)
	}
	tb.Cleanup(func() { s.Stop() })
	return s
}

// StartTLS is Start with the S3 API on https: a self-signed certificate
// for 127.0.0.1 (Server.CA and Server.CAFile verify it), made for tb.
func StartTLS(tb testing.TB, bin string) *Server {
	tb.Helper()
	s := &Server{bin: bin, dir: tb.TempDir(), Endpoint: "127.0.0.1:" + freePort(tb), console: "127.0.0.1:" + freePort(tb), log: &bytes.Buffer{}}
	s.certsDir = filepath.Join(s.dir, "certs")
	var err error
	if s.CA, s.CAFile, err = writeCertificate(s.certsDir); err != nil {
		tb.Fatalf("miniotest: %v", err)
	}
	if err := s.start(); err != nil {
		tb.Fatalf("miniotest: %v\n%s", err, s.log)
	}
	tb.Cleanup(func() { s.Stop() })
	return s
}

// Transport is an HTTP transport that trusts the server: http's default
// transport, with the server's CA as its only root when it serves TLS.
func (s *Server) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if s.CA != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: s.CA, MinVersion: tls.VersionTLS12}
	}
	return t
}

// New starts the MinIO server binary bin over a new temporary directory,
// for a TestMain that shares one server among its tests; Close stops it
// and removes the directory.
func New(bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "miniotest-")
	if err != nil {
		return nil, err
	}
	api, err := listenPort()
	if err != nil {
		return nil, err
	}
	console, err := listenPort()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir, Endpoint: "127.0.0.1:" + api, console: "127.0.0.1:" + console, log: &bytes.Buffer{}}
	if err := s.start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("miniotest: %w\n%s", err, s.log)
	}
	return s, nil
}

// Close stops a server New started and removes its directory.
func (s *Server) Close() {
	s.Stop()
	_ = os.RemoveAll(s.dir)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	args := []string{"server", filepath.Join(s.dir, "data"), "--address", s.Endpoint, "--console-address", s.console, "--quiet"}
	scheme := "http"
	if s.certsDir != "" {
		args, scheme = append(args, "--certs-dir", s.certsDir), "https"
	}
	ready := &http.Client{Transport: s.Transport(), Timeout: 5 * time.Second}
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+AccessKey, "MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "HOME="+s.dir)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			s.cmd = nil
			return fmt.Errorf("minio exited: %v", err)
		default:
		}
		resp, err := ready.Get(scheme + "://" + s.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				go func() { <-exited }()
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return fmt.Errorf("minio not ready on %s after 30 s", s.Endpoint)
}

// Stop kills the server (SIGKILL: what a crash does); its data stays for
// Restart. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	for range 200 {
		if err := syscall.Kill(s.cmd.Process.Pid, 0); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.cmd = nil
}

// Restart starts a stopped server again over the same data and port.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		tb.Fatalf("miniotest: restart: %v\n%s", err, s.log)
	}
}

// freePort is a TCP port free on 127.0.0.1 at the time of the call.
func freePort(tb testing.TB) string {
	tb.Helper()
	p, err := listenPort()
	if err != nil {
		tb.Fatalf("miniotest: %v", err)
	}
	return p
}

// listenPort is a TCP port free on 127.0.0.1 at the time of the call.
func listenPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// Require returns the path of the minio binary, or stops tb as
// testenv.Missing does: a skip on a developer's machine without it, a
// failure under CI that names what to install.
func Require(tb testing.TB) string {
	tb.Helper()
	bin, ok := testenv.LookTool("minio")
	if !ok {
		testenv.Missing(tb, "the MinIO server (%s; .ci/install-tools.sh does it)", InstallCommand)
	}
	return bin
}
