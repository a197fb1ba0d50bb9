package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
)

// pushedImage is an image whose manifest PUT the registry acknowledged
// (201): what must pull back bit-exact.
type pushedImage struct {
	repo, tag string
	manifest  []byte
	blobs     map[digest.Digest][]byte
}

// newTestImage makes an image of a config and layers of the given sizes,
// random bytes, for repo:tag.
func newTestImage(rng *rand.Rand, repo, tag string, layerSizes ...int) *pushedImage {
	img := &pushedImage{repo: repo, tag: tag, blobs: map[digest.Digest][]byte{}}
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Labels":{"tag":%q,"n":"%d"}}}`, tag, rng.Uint64()))
	img.blobs[digest.FromBytes(cfg)] = cfg
	var layers []any
	for _, n := range layerSizes {
		b := make([]byte, n)
		for i := 0; i < n; i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8 && i+j < n; j++ {
				b[i+j] = byte(v >> (8 * j))
			}
		}
		d := digest.FromBytes(b)
		img.blobs[d] = b
		layers = append(layers, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n})
	}
	img.manifest, _ = json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.FromBytes(cfg), "size": len(cfg)},
		"layers":        layers,
	})
	return img
}

// chunkedPusher pushes images through a load balancer as a careful OCI
// client does: each blob in chunks (POST, PATCH with Content-Range, PUT
// ?digest=), and after a failed request it asks the upload's status
// (GET) and continues from the offset the registry reports, or starts
// the upload again when the registry no longer knows it (404). The
// manifest PUT is retried until it is answered.
type chunkedPusher struct {
	c     *http.Client
	base  string // http://host:port
	chunk int

	// resumed counts failed requests after which the upload continued
	// where the registry had it; restarted, uploads started again.
	resumed, restarted, retried atomic.Int64
}

// newChunkedPusher pushes to addr in chunks of chunk bytes.
func newChunkedPusher(addr string, chunk int) *chunkedPusher {
	return &chunkedPusher{c: &http.Client{Timeout: time.Minute}, base: "http://" + addr, chunk: chunk}
}

// errUploadUnknown: the registry does not know the upload (any more).
var errUploadUnknown = errors.New("upload unknown")

// push pushes img's blobs and then its manifest; nil means the manifest
// PUT was acknowledged.
func (p *chunkedPusher) push(ctx context.Context, img *pushedImage) error {
	for d, b := range img.blobs {
		if err := p.pushBlob(ctx, img.repo, d, b); err != nil {
			return fmt.Errorf("blob %s: %w", d, err)
		}
	}
	return p.retry(ctx, func() error {
		status, _, body, err := p.do(ctx, http.MethodPut, "/v2/"+img.repo+"/manifests/"+img.tag, img.manifest,
			map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
		if err != nil {
			return err
		}
		if status != http.StatusCreated {
			return fmt.Errorf("manifest PUT: %d %s", status, body)
		}
		return nil
	})
}

// retry runs fn until it succeeds, up to 20 times, with a growing pause.
func (p *chunkedPusher) retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := range 20 {
		if err = fn(); err == nil {
			return nil
		}
		if attempt > 0 {
			p.retried.Add(1)
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		}
	}
	return err
}

// pushBlob uploads b in chunks, starting again when the upload is lost.
func (p *chunkedPusher) pushBlob(ctx context.Context, repo string, d digest.Digest, b []byte) error {
	for range 10 {
		err := p.tryBlob(ctx, repo, d, b)
		if !errors.Is(err, errUploadUnknown) {
			return err
		}
		p.restarted.Add(1)
	}
	return fmt.Errorf("upload lost 10 times in a row")
}

// tryBlob is one upload session of b; errUploadUnknown means start again.
func (p *chunkedPusher) tryBlob(ctx context.Context, repo string, d digest.Digest, b []byte) error {
	var loc string
	err := p.retry(ctx, func() error {
		status, h, body, err := p.do(ctx, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
		if err != nil {
			return err
		}
		if status != http.StatusAccepted {
			return fmt.Errorf("POST: %d %s", status, body)
		}
		loc = h.Get("Location")
		return nil
	})
	if err != nil {
		return err
	}
	off, failures := 0, 0
	for off < len(b) {
		end := min(off+p.chunk, len(b))
		status, h, _, err := p.do(ctx, http.MethodPatch, loc, b[off:end], map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, end-1),
		})
		if err == nil && status == http.StatusAccepted {
			loc, off, failures = h.Get("Location"), end, 0
			continue
		}
		if failures++; failures > 30 {
			return fmt.Errorf("PATCH failed 30 times in a row: %d %v", status, err)
		}
		// Where does the upload stand?
		at, next, err := p.status(ctx, loc)
		if err != nil {
			return err
		}
		p.resumed.Add(1)
		loc, off = next, at
	}
	return p.retry(ctx, func() error {
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		status, _, body, err := p.do(ctx, http.MethodPut, loc+sep+"digest="+d.String(), nil, nil)
		if err == nil && status == http.StatusCreated {
			return nil
		}
		// The commit may have happened before the answer was lost.
		if hs, _, _, herr := p.do(ctx, http.MethodHead, "/v2/"+repo+"/blobs/"+d.String(), nil, nil); herr == nil && hs == http.StatusOK {
			return nil
		}
		if err == nil && status == http.StatusNotFound {
			return errUploadUnknown
		}
		return fmt.Errorf("PUT: %d %s %v", status, body, err)
	})
}

// status asks where the upload at loc stands: the offset to continue
// from and its location; errUploadUnknown when the registry does not
// know it.
func (p *chunkedPusher) status(ctx context.Context, loc string) (int, string, error) {
	var at int
	var next string
	err := p.retry(ctx, func() error {
		status, h, body, err := p.do(ctx, http.MethodGet, loc, nil, nil)
		switch {
		case err != nil:
			return err
		case status == http.StatusNotFound:
			return nil
		case status != http.StatusNoContent:
			return fmt.Errorf("upload status: %d %s", status, body)
		}
		r := h.Get("Range")
		_, last, ok := strings.Cut(r, "-")
		n, perr := strconv.Atoi(last)
		if !ok || perr != nil {
			return fmt.Errorf("upload status: Range %q", r)
		}
		if n > 0 {
			at = n + 1
		}
		next = h.Get("Location")
		if next == "" {
			next = loc
		}
		return nil
	})
	if err != nil {
		return 0, "", err
	}
	if next == "" {
		return 0, "", errUploadUnknown
	}
	return at, next, nil
}

// do sends one request to the registry (path or a location it gave).
func (p *chunkedPusher) do(ctx context.Context, method, path string, body []byte, hdr map[string]string) (int, http.Header, []byte, error) {
	u := path
	if !strings.HasPrefix(u, "http") {
		u = p.base + path
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.ContentLength = int64(len(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := p.c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, b, nil
}

// verifyPulls pulls every image through addr (eight at a time) and
// returns what does not come back bit-exact (manifest by tag, every blob
// by digest).
func verifyPulls(ctx context.Context, addr string, imgs []*pushedImage) (problems []string, blobs int) {
	p := newChunkedPusher(addr, 0)
	var mu sync.Mutex
	report := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	work := make(chan *pushedImage)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for img := range work {
				status, _, body, err := p.do(ctx, http.MethodGet, "/v2/"+img.repo+"/manifests/"+img.tag, nil,
					map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"})
				if err != nil || status != http.StatusOK || !bytes.Equal(body, img.manifest) {
					report("%s:%s manifest: %d %v", img.repo, img.tag, status, err)
				}
				for d, want := range img.blobs {
					status, _, got, err := p.do(ctx, http.MethodGet, "/v2/"+img.repo+"/blobs/"+d.String(), nil, nil)
					if err != nil || status != http.StatusOK || !bytes.Equal(got, want) {
						report("%s:%s blob %s: %d %v (%d of %d bytes)", img.repo, img.tag, d, status, err, len(got), len(want))
					}
				}
			}
		}()
	}
	for _, img := range imgs {
		blobs += len(img.blobs)
		work <- img
	}
	close(work)
	wg.Wait()
	return problems, blobs
}
