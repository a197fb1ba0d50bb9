// Package consoletest starts a real registryd (server.New over a real
// engine, served on 127.0.0.1) with users whose policies differ, and
// builds and pushes images with given files, for the console's tests in
// registryd/internal/console and registryd/e2e.
package consoletest

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/regtest"
	"github.com/berthstore/berth/registryd/server"
)

// The users of Start's registry and their password (the same for all).
const (
	// Admin may do everything.
	Admin = "admin"
	// Reader may list, describe and pull every repository, read
	// lifecycle policies and preview them, and nothing else: no delete,
	// no tag, no lifecycle policy change.
	Reader = "reader"
	// Outsider may see only the repositories under outside/.
	Outsider = "outsider"
	// Password is every user's password.
	Password = "correct horse battery staple"
)

// iamFile gives the users their policies.
const iamFile = `policies:
  admin:
    Version: "2012-10-17"
    Statement:
      - {Effect: Allow, Action: "*", Resource: "*"}
  read:
    Version: "2012-10-17"
    Statement:
      - Effect: Allow
        Action: [ecr:DescribeRepositories, ecr:DescribeImages, ecr:ListImages, ecr:BatchGetImage,
          ecr:GetDownloadUrlForLayer, ecr:GetLifecyclePolicy, ecr:StartLifecyclePolicyPreview,
          ecr:GetLifecyclePolicyPreview, ecr:DescribeImageScanFindings, ecr:DescribeRegistry,
          ecr:DescribeRepositoryCreationTemplates, ecr:DescribePullThroughCacheRules]
        Resource: "*"
  outside:
    Version: "2012-10-17"
    Statement:
      - {Effect: Allow, Action: "ecr:*", Resource: "arn:aws:ecr:*:*:repository/outside/*"}
users:
  admin: {policies: [admin]}
  reader: {policies: [read]}
  outsider: {policies: [outside]}
`

// Registry is a running registryd.
type Registry struct {
	// URL is its base, http://127.0.0.1:PORT.
	URL string
	// Host is its host:port.
	Host   string
	Engine *engine.Engine
	Server *server.Server
	stop   func()
}

// Stop stops the registry and closes its store (the test's end does it
// otherwise); the store's directory stays for another Start.
func (r *Registry) Stop() { r.stop() }

// Options shape Start's registry.
type Options struct {
	// Open runs the registry without authentication.
	Open bool
	// Dir holds the store and the identity files (default: a temporary
	// directory). A Start on the Dir of a stopped registry opens its
	// store again.
	Dir string
}

// Start runs registryd with the console over a fresh store until the
// test ends.
func Start(tb testing.TB, o Options) *Registry {
	tb.Helper()
	dir := o.Dir
	if dir == "" {
		dir = tb.TempDir()
	}
	e, err := engine.Open(filepath.Join(dir, "store"), &engine.Options{CreateOnPush: true, Logger: regtest.Quiet()})
	require.NoError(tb, err)
	cfg := server.Config{Logger: regtest.Quiet(), DisableAccessLog: true}
	if !o.Open {
		var lines []byte
		for _, u := range []string{Admin, Reader, Outsider} {
			h, err := bcrypt.GenerateFromPassword([]byte(Password), bcrypt.MinCost)
			require.NoError(tb, err)
			lines = append(lines, []byte(u+":"+string(h)+"\n")...)
		}
		cfg.HtpasswdFile = filepath.Join(dir, "htpasswd")
		require.NoError(tb, os.WriteFile(cfg.HtpasswdFile, lines, 0o600))
		cfg.IdentityFile = filepath.Join(dir, "iam.yaml")
		require.NoError(tb, os.WriteFile(cfg.IdentityFile, []byte(iamFile), 0o600))
	}
	s, err := server.New(e, cfg)
	require.NoError(tb, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				tb.Error("registryd did not stop")
			}
			_ = e.Close()
		})
	}
	tb.Cleanup(stop)
	host := ln.Addr().String()
	return &Registry{URL: "http://" + host, Host: host, Engine: e, Server: s, stop: stop}
}

// File is one entry of a layer.
type File struct {
	Name string
	// Type is a tar type flag; 0 is a regular file.
	Type     byte
	Mode     int64
	Body     []byte
	Linkname string
}

// Layer is an uncompressed layer holding files, in order.
func Layer(tb testing.TB, files []File) v1.Layer {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := f.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		hdr := &tar.Header{Name: f.Name, Typeflag: typ, Mode: mode, Linkname: f.Linkname, ModTime: time.Unix(1700000000, 0)}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(f.Body))
		}
		require.NoError(tb, tw.WriteHeader(hdr))
		if typ == tar.TypeReg {
			_, err := tw.Write(f.Body)
			require.NoError(tb, err)
		}
	}
	require.NoError(tb, tw.Close())
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	require.NoError(tb, err)
	return l
}

// Image is an image of layers (bottom first) with cfg as its config's
// history and labels.
func Image(tb testing.TB, cfg v1.Config, history []v1.History, layers ...v1.Layer) v1.Image {
	tb.Helper()
	img := empty.Image
	for i, l := range layers {
		add := mutate.Addendum{Layer: l}
		if i < len(history) {
			add.History = history[i]
		}
		var err error
		img, err = mutate.Append(img, add)
		require.NoError(tb, err)
	}
	cf, err := img.ConfigFile()
	require.NoError(tb, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(tb, err)
	return img
}

// Push pushes img to repo:tag as Admin (or anonymously on an open
// registry), with a real OCI client (go-containerregistry's remote).
func (r *Registry) Push(tb testing.TB, repo, tag string, img v1.Image) v1.Hash {
	tb.Helper()
	ref, err := name.ParseReference(r.Host+"/"+repo+":"+tag, name.Insecure)
	require.NoError(tb, err)
	opts := []remote.Option{remote.WithAuth(&authn.Basic{Username: Admin, Password: Password})}
	if !r.Server.AuthenticationEnabled() {
		opts = []remote.Option{remote.WithAuth(authn.Anonymous)}
	}
	require.NoError(tb, remote.Write(ref, img, opts...))
	d, err := img.Digest()
	require.NoError(tb, err)
	return d
}

// Get fetches url with client and returns the answer's status and body.
func Get(tb testing.TB, client *http.Client, url string) (int, string) {
	tb.Helper()
	resp, err := client.Get(url)
	require.NoError(tb, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, buf.String()
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// SignIn signs user in through the console's form and returns an HTTP
// client holding the session's cookie (it does not follow redirects).
func (r *Registry) SignIn(tb testing.TB, user string) *http.Client {
	tb.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(tb, err)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	status, body := Get(tb, c, r.URL+"/console/signin")
	require.Equal(tb, http.StatusOK, status)
	m := csrfField.FindStringSubmatch(body)
	require.NotNil(tb, m)
	resp, err := c.PostForm(r.URL+"/console/signin", url.Values{"csrf": {m[1]}, "user": {user}, "password": {Password}})
	require.NoError(tb, err)
	resp.Body.Close()
	require.Equal(tb, http.StatusSeeOther, resp.StatusCode)
	return c
}
