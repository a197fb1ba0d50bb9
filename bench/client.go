package main

// A small purpose-built OCI client for load generation: the requests
// docker, crane and containerd send (HEAD then POST+PUT per blob, PUT
// manifest; GET manifest then GET blobs), over one tuned transport, with
// nothing else on the path (no auth round trips, no retries, no client
// digest re-verification of blobs, which would spend the CPU the servers
// need: the two cores are shared by client and server).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrStatus reports an unexpected HTTP status.
var ErrStatus = errors.New("bench: unexpected HTTP status")

const manifestAccept = ocispec.MediaTypeImageManifest + "," + ocispec.MediaTypeImageIndex + "," +
	"application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json"

// Client talks to one registry.
type Client struct {
	base string
	hc   *http.Client
	tr   *http.Transport
	// authorization is the Authorization header of every request ("":
	// none).
	authorization string
	// bare and manifest are the headers of the requests without a body
	// that the workloads repeat (blob GETs and HEADs; manifest GETs and
	// HEADs, with Accept): built once (setAuthorization), shared
	// read-only by every request, and sent through the transport without
	// http.Client's copy for redirects (send). A load generator that
	// shares the machine's cores with the registry should spend on a
	// header no more than writing it.
	bare, manifest http.Header
}

// NewClient returns a client for the registry at base (http://host:port)
// whose transport keeps up to conns idle connections.
func NewClient(base string, conns int) *Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
		ForceAttemptHTTP2:   false,
		// send's requests bypass http.Client's Timeout: a registry
		// that stops answering fails them here.
		ResponseHeaderTimeout: 10 * time.Minute,
	}
	c := &Client{base: strings.TrimSuffix(base, "/"), hc: &http.Client{Transport: tr, Timeout: 10 * time.Minute}, tr: tr}
	c.setAuthorization("")
	return c
}

// SetBasicAuth sends user and password (HTTP basic authentication) with
// every request: an htpasswd user's, or user AWS with a login token.
func (c *Client) SetBasicAuth(user, password string) {
	c.setAuthorization("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
}

// setAuthorization makes h the Authorization header of every request
// ("": none).
func (c *Client) setAuthorization(h string) {
	c.authorization = h
	c.bare = http.Header{}
	c.manifest = http.Header{"Accept": {manifestAccept}}
	if h != "" {
		c.bare["Authorization"] = []string{h}
		c.manifest["Authorization"] = []string{h}
	}
}

// Close drops idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, u string, body []byte, hdr map[string]string, want ...int) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c.authorization != "" {
		req.Header.Set("Authorization", c.authorization)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	return expect(resp, method, u, want)
}

// send is do for a request without a body whose headers are hdr (bare or
// manifest, never modified): straight through the transport. When the
// answer is a redirect, the request is sent again through http.Client,
// which follows it as do's requests are followed (and leaves the
// Authorization header out of a redirect to another host).
func (c *Client) send(ctx context.Context, method, u string, hdr http.Header, want ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header = hdr
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "" {
		_, _ = drain(resp)
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header = hdr.Clone()
		if resp, err = c.hc.Do(req); err != nil {
			return nil, err
		}
	}
	return expect(resp, method, u, want)
}

// expect returns resp when its status is one of want, and otherwise
// closes it and returns ErrStatus with the start of its body.
func expect(resp *http.Response, method, u string, want []int) (*http.Response, error) {
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_ = resp.Body.Close()
	return nil, fmt.Errorf("%w: %s %s: %d %s", ErrStatus, method, u, resp.StatusCode, bytes.TrimSpace(msg))
}

func drain(resp *http.Response) (int64, error) {
	n, err := io.Copy(io.Discard, resp.Body)
	cerr := resp.Body.Close()
	if err == nil {
		err = cerr
	}
	return n, err
}

// resolve turns a Location header into an absolute URL.
func (c *Client) resolve(loc string) (string, error) {
	base, err := url.Parse(c.base + "/")
	if err != nil {
		return "", err
	}
	u, err := base.Parse(loc)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// Ping is GET /v2/; any answer below 500 counts (401 too).
func (c *Client) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = drain(resp)
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%w: GET /v2/: %d", ErrStatus, resp.StatusCode)
	}
	return nil
}

// Status sends a request without a body to path and returns the
// answer's status, whatever it is (a redirect's too: it is not followed).
func (c *Client) Status(ctx context.Context, method, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header = c.bare
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	_, err = drain(resp)
	return resp.StatusCode, err
}

// PushBlob sends b to repo unless the repository already has it (HEAD),
// with a POST then a monolithic PUT. It returns the bytes sent.
func (c *Client) PushBlob(ctx context.Context, repo string, b *Blob) (int64, error) {
	resp, err := c.do(ctx, http.MethodHead, fmt.Sprintf("%s/v2/%s/blobs/%s", c.base, repo, b.Digest), nil, nil, 200, 404)
	if err != nil {
		return 0, err
	}
	_, _ = drain(resp)
	if resp.StatusCode == 200 {
		return 0, nil
	}
	resp, err = c.do(ctx, http.MethodPost, fmt.Sprintf("%s/v2/%s/blobs/uploads/", c.base, repo), nil, nil, 202)
	if err != nil {
		return 0, err
	}
	_, _ = drain(resp)
	loc, err := c.resolve(resp.Header.Get("Location"))
	if err != nil {
		return 0, err
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp, err = c.do(ctx, http.MethodPut, loc+sep+"digest="+url.QueryEscape(string(b.Digest)), b.Data,
		map[string]string{"Content-Type": "application/octet-stream"}, 201)
	if err != nil {
		return 0, err
	}
	_, _ = drain(resp)
	return int64(len(b.Data)), nil
}

// MountBlob mounts d from repository from into repo (201), or fails.
func (c *Client) MountBlob(ctx context.Context, repo, from string, d digest.Digest) error {
	resp, err := c.do(ctx, http.MethodPost, fmt.Sprintf("%s/v2/%s/blobs/uploads/?mount=%s&from=%s", c.base, repo, d, url.QueryEscape(from)), nil, nil, 201)
	if err != nil {
		return err
	}
	_, err = drain(resp)
	return err
}

// PutManifest puts a manifest under ref (a tag or its digest).
func (c *Client) PutManifest(ctx context.Context, repo, ref string, m *Manifest) error {
	resp, err := c.do(ctx, http.MethodPut, fmt.Sprintf("%s/v2/%s/manifests/%s", c.base, repo, ref), m.Data,
		map[string]string{"Content-Type": m.MediaType}, 201)
	if err != nil {
		return err
	}
	_, err = drain(resp)
	return err
}

// PushImage pushes every part of im to repo: blobs, child manifests by
// digest, the top manifest by tag, referrers by digest. It returns the
// bytes of blobs sent.
func (c *Client) PushImage(ctx context.Context, repo string, im *Image) (int64, error) {
	var sent int64
	for _, bs := range [][]*Blob{im.Blobs, im.ReferrerBlobs} {
		for _, b := range bs {
			n, err := c.PushBlob(ctx, repo, b)
			if err != nil {
				return sent, err
			}
			sent += n
		}
	}
	for _, m := range im.Children {
		if err := c.PutManifest(ctx, repo, string(m.Digest), m); err != nil {
			return sent, err
		}
	}
	if err := c.PutManifest(ctx, repo, im.Tag, im.Top); err != nil {
		return sent, err
	}
	for _, m := range im.Referrers {
		if err := c.PutManifest(ctx, repo, string(m.Digest), m); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// GetManifest fetches a manifest; it returns its bytes and media type.
func (c *Client) GetManifest(ctx context.Context, repo, ref string) ([]byte, string, error) {
	resp, err := c.send(ctx, http.MethodGet, fmt.Sprintf("%s/v2/%s/manifests/%s", c.base, repo, ref), c.manifest, 200)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return b, resp.Header.Get("Content-Type"), err
}

// HeadManifest is HEAD on a manifest.
func (c *Client) HeadManifest(ctx context.Context, repo, ref string) error {
	resp, err := c.send(ctx, http.MethodHead, fmt.Sprintf("%s/v2/%s/manifests/%s", c.base, repo, ref), c.manifest, 200)
	if err != nil {
		return err
	}
	_, err = drain(resp)
	return err
}

// GetBlob reads a blob to the end and returns its length.
func (c *Client) GetBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	resp, err := c.send(ctx, http.MethodGet, fmt.Sprintf("%s/v2/%s/blobs/%s", c.base, repo, d), c.bare, 200)
	if err != nil {
		return 0, err
	}
	return drain(resp)
}

// PullImage pulls ref from repo the way a runtime does: the manifest (and
// for an index, every child manifest), then the config and layers once
// each. It returns the blob bytes received.
func (c *Client) PullImage(ctx context.Context, repo, ref string) (int64, error) {
	body, _, err := c.GetManifest(ctx, repo, ref)
	if err != nil {
		return 0, err
	}
	var top struct {
		MediaType string               `json:"mediaType"`
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    ocispec.Descriptor   `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(body, &top); err != nil {
		return 0, fmt.Errorf("manifest %s/%s: %w", repo, ref, err)
	}
	var blobs []ocispec.Descriptor
	if len(top.Manifests) > 0 {
		for _, d := range top.Manifests {
			cb, _, err := c.GetManifest(ctx, repo, string(d.Digest))
			if err != nil {
				return 0, err
			}
			var m ocispec.Manifest
			if err := json.Unmarshal(cb, &m); err != nil {
				return 0, fmt.Errorf("manifest %s@%s: %w", repo, d.Digest, err)
			}
			blobs = append(blobs, m.Config)
			blobs = append(blobs, m.Layers...)
		}
	} else {
		blobs = append(blobs, top.Config)
		blobs = append(blobs, top.Layers...)
	}
	seen := map[digest.Digest]bool{}
	var got int64
	for _, d := range blobs {
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		n, err := c.GetBlob(ctx, repo, d.Digest)
		if err != nil {
			return got, err
		}
		if n != d.Size {
			return got, fmt.Errorf("blob %s: %d bytes, want %d", d.Digest, n, d.Size)
		}
		got += n
	}
	return got, nil
}

// ListAll pages through a listing (path is "/v2/_catalog" or
// "/v2/<name>/tags/list"), n entries a page (0: the server's default),
// following Link headers; it returns the number of entries.
func (c *Client) ListAll(ctx context.Context, path string, n int) (int, error) {
	u := c.base + path
	if n > 0 {
		u += fmt.Sprintf("?n=%d", n)
	}
	total := 0
	for pages := 0; u != "" && pages < 1_000_000; pages++ {
		resp, err := c.do(ctx, http.MethodGet, u, nil, nil, 200)
		if err != nil {
			return total, err
		}
		var page struct {
			Repositories []string `json:"repositories"`
			Tags         []string `json:"tags"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		_, _ = drain(resp)
		if err != nil {
			return total, fmt.Errorf("%s: %w", u, err)
		}
		total += len(page.Repositories) + len(page.Tags)
		u = ""
		if link := resp.Header.Get("Link"); link != "" {
			if i, j := strings.Index(link, "<"), strings.Index(link, ">"); i >= 0 && j > i {
				if u, err = c.resolve(link[i+1 : j]); err != nil {
					return total, err
				}
			}
		}
	}
	return total, nil
}
