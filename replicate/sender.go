package replicate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/berthstore/berth/engine"
)

// maxReferrerDepth bounds how deep referrers of referrers are followed.
const maxReferrerDepth = 3

// blobsAtOnce is how many blobs of one image are sent at once.
const blobsAtOnce = 4

// childrenAtOnce is how many images of one index are sent at once.
const childrenAtOnce = 2

// sender sends one destination's jobs.
type sender struct {
	r      *Replicator
	d      Destination
	base   *url.URL
	source string
}

// credentialsKey carries a job's credentials in its context.
type credentialsKey struct{}

// wireError is a destination's answer that is not what was asked for.
type wireError struct {
	op     string
	status int
	body   string
}

func (w *wireError) Error() string {
	return fmt.Sprintf("%s: destination answered %d %s", w.op, w.status, strings.TrimSpace(w.body))
}

// run sends job and says how it ended, and how many blob bytes it sent.
func (s *sender) run(ctx context.Context, job *engine.ReplicationJob) (engine.ReplicationResult, int64) {
	var sent atomic.Int64
	err := s.replicate(ctx, job, &sent)
	if err == nil {
		return engine.ReplicationResult{}, sent.Load()
	}
	return classify(err), sent.Load()
}

// classify says whether err is worth retrying.
func classify(err error) engine.ReplicationResult {
	res := engine.ReplicationResult{Err: err}
	var we *wireError
	switch {
	case errors.Is(err, engine.ErrManifestUnknown), errors.Is(err, engine.ErrNameUnknown), errors.Is(err, engine.ErrBlobUnknown):
		res.Permanent, res.FailureCode = true, engine.ReplicationSourceImageMissing
	case errors.As(err, &we):
		switch {
		case we.status == http.StatusUnauthorized || we.status == http.StatusForbidden:
			res.Permanent, res.FailureCode = true, engine.ReplicationAccessDenied
		case we.status == http.StatusTooManyRequests || we.status >= 500 || we.status == http.StatusRequestTimeout:
			res.FailureCode = engine.ReplicationDestinationUnavailable
		case we.status >= 400:
			res.Permanent, res.FailureCode = true, engine.ReplicationDestinationRefused
		default:
			res.FailureCode = engine.ReplicationDestinationUnavailable
		}
	default:
		res.FailureCode = engine.ReplicationDestinationUnavailable
	}
	return res
}

// replicate sends job's image, its referrers, then its tag.
func (s *sender) replicate(ctx context.Context, job *engine.ReplicationJob, sent *atomic.Int64) error {
	e := s.r.cfg.Engine
	if s.d.Credentials != nil {
		user, pass, err := s.d.Credentials(ctx)
		if err != nil {
			return &wireError{op: "reading the destination's credentials", status: http.StatusUnauthorized, body: err.Error()}
		}
		ctx = context.WithValue(ctx, credentialsKey{}, [2]string{user, pass})
	}
	m, err := e.InspectManifest(ctx, job.Repository, string(job.Digest))
	if err != nil {
		return fmt.Errorf("source %s@%s: %w", job.Repository, job.Digest, err)
	}
	// Move the tag only to what the source's tag names now: a later push
	// of the tag has its own job, which runs after this one ends (and a
	// push between this check and the PUT puts the job again, so the tag
	// moves on to it).
	tag := job.Tag
	if tag != "" {
		cur, err := e.StatManifest(ctx, job.Repository, tag)
		if err != nil || cur.Digest != job.Digest {
			s.r.cfg.Logger.Debug("replication: the tag moved or went at the source; the destination's tag is left alone",
				"repository", job.Repository, "tag", tag, "digest", string(job.Digest))
			tag = ""
		}
	}
	return s.sendManifest(ctx, job.Repository, m, tag, 0, sent)
}

// manifestRefs is what a manifest refers to, whatever its kind.
type manifestRefs struct {
	Config    *descriptor  `json:"config"`
	Layers    []descriptor `json:"layers"`
	Blobs     []descriptor `json:"blobs"`
	Manifests []descriptor `json:"manifests"`
}

type descriptor struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	URLs   []string      `json:"urls"`
}

// sendManifest sends manifest m of repo, by tag when tag is not empty
// (else by digest), unless the destination has it (then only the tag is
// put): its children or blobs first, then it, then its referrers.
func (s *sender) sendManifest(ctx context.Context, repo string, m *engine.Manifest, tag string, depth int, sent *atomic.Int64) error {
	has, err := s.head(ctx, repo, "manifests", string(m.Digest))
	if err != nil {
		return err
	}
	ref := string(m.Digest)
	if tag != "" {
		ref = tag
	}
	if has && tag != "" {
		if err := s.putManifest(ctx, repo, tag, m); err != nil {
			return err
		}
	}
	if !has {
		var refs manifestRefs
		if err := json.Unmarshal(m.Payload, &refs); err != nil {
			return fmt.Errorf("%w: manifest %s: %v", engine.ErrManifestUnknown, m.Digest, err)
		}
		if err := s.sendChildren(ctx, repo, refs.Manifests, depth, sent); err != nil {
			return err
		}
		var blobs []descriptor
		if refs.Config != nil {
			blobs = append(blobs, *refs.Config)
		}
		blobs = append(blobs, refs.Layers...)
		blobs = append(blobs, refs.Blobs...)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(blobsAtOnce)
		seen := map[digest.Digest]bool{}
		for _, b := range blobs {
			if seen[b.Digest] || len(b.URLs) > 0 && !s.sourceHas(ctx, repo, b.Digest) {
				continue // foreign layers stay where their URLs say
			}
			seen[b.Digest] = true
			g.Go(func() error { return s.sendBlob(gctx, repo, b, sent) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		if err := s.putManifest(ctx, repo, ref, m); err != nil {
			return err
		}
	}
	if depth >= maxReferrerDepth {
		return nil
	}
	refs, err := s.r.cfg.Engine.Referrers(ctx, repo, m.Digest, "")
	if err != nil {
		return fmt.Errorf("source %s@%s referrers: %w", repo, m.Digest, err)
	}
	for _, ref := range refs {
		if ref.Status != "" && ref.Status != engine.ImageActive {
			continue
		}
		rm, err := s.r.cfg.Engine.InspectManifest(ctx, repo, string(ref.Digest))
		if errors.Is(err, engine.ErrManifestUnknown) {
			continue // deleted since
		}
		if err != nil {
			return err
		}
		if err := s.sendManifest(ctx, repo, rm, "", depth+1, sent); err != nil {
			return err
		}
	}
	return nil
}

// sendChildren sends the manifests an index lists, by digest,
// childrenAtOnce at a time (each with its blobs blobsAtOnce at a time), as
// crane copies the images of an index: a multi-platform image's platforms
// are independent until the index is put, after all of them.
func (s *sender) sendChildren(ctx context.Context, repo string, children []descriptor, depth int, sent *atomic.Int64) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(childrenAtOnce)
	seen := map[digest.Digest]bool{}
	for _, c := range children {
		if seen[c.Digest] {
			continue
		}
		seen[c.Digest] = true
		g.Go(func() error {
			cm, err := s.r.cfg.Engine.InspectManifest(gctx, repo, string(c.Digest))
			if err != nil {
				return fmt.Errorf("source %s@%s (child): %w", repo, c.Digest, err)
			}
			return s.sendManifest(gctx, repo, cm, "", depth, sent)
		})
	}
	return g.Wait()
}

func (s *sender) sourceHas(ctx context.Context, repo string, d digest.Digest) bool {
	_, err := s.r.cfg.Engine.StatBlob(ctx, repo, d)
	return err == nil
}

// sendBlob makes blob b of repo present at the destination: there
// already, mounted from another of its repositories, or uploaded in one
// streamed PUT.
func (s *sender) sendBlob(ctx context.Context, repo string, b descriptor, sent *atomic.Int64) error {
	has, err := s.head(ctx, repo, "blobs", string(b.Digest))
	if err != nil || has {
		return err
	}
	// A mount without from: the destination looks for a repository of its
	// own that holds the blob and that this identity may read.
	resp, err := s.do(ctx, http.MethodPost, s.path(repo, "blobs/uploads/")+"?mount="+url.QueryEscape(string(b.Digest)), nil, -1, "")
	if err != nil {
		return err
	}
	body0 := drain(resp)
	switch resp.StatusCode {
	case http.StatusCreated:
		return nil
	case http.StatusAccepted:
	default:
		return &wireError{op: "starting an upload of " + string(b.Digest), status: resp.StatusCode, body: body0}
	}
	loc, err := s.location(resp)
	if err != nil {
		return err
	}
	br, err := s.r.cfg.Engine.OpenBlob(ctx, repo, b.Digest)
	if err != nil {
		return fmt.Errorf("source %s@%s: %w", repo, b.Digest, err)
	}
	defer br.Close()
	size := br.Size()
	q := loc.Query()
	q.Set("digest", string(b.Digest))
	loc.RawQuery = q.Encode()
	body := &countingReader{r: io.NewSectionReader(br, 0, size), n: sent}
	resp, err = s.doURL(ctx, http.MethodPut, loc, body, size, "application/octet-stream")
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return wireErr("uploading "+string(b.Digest), resp)
	}
	drain(resp)
	return nil
}

// putManifest puts m under reference (its digest or a tag).
func (s *sender) putManifest(ctx context.Context, repo, reference string, m *engine.Manifest) error {
	resp, err := s.do(ctx, http.MethodPut, s.path(repo, "manifests/"+reference), bytes.NewReader(m.Payload), int64(len(m.Payload)), m.MediaType)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return wireErr("putting manifest "+reference, resp)
	}
	drain(resp)
	return nil
}

// head reports whether the destination has what kind/ref names.
func (s *sender) head(ctx context.Context, repo, kind, ref string) (bool, error) {
	resp, err := s.do(ctx, http.MethodHead, s.path(repo, kind+"/"+ref), nil, -1, "")
	if err != nil {
		return false, err
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, &wireError{op: "HEAD " + kind + " " + ref, status: resp.StatusCode}
}

func (s *sender) path(repo, rest string) string { return "/v2/" + repo + "/" + rest }

func (s *sender) do(ctx context.Context, method, pathAndQuery string, body io.Reader, size int64, ctype string) (*http.Response, error) {
	u, err := s.base.Parse(pathAndQuery)
	if err != nil {
		return nil, err
	}
	return s.doURL(ctx, method, u, body, size, ctype)
}

func (s *sender) doURL(ctx context.Context, method string, u *url.URL, body io.Reader, size int64, ctype string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if size >= 0 {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if method == http.MethodHead || method == http.MethodPost && body == nil {
		req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, */*")
	}
	req.Header.Set(HeaderSource, s.source)
	req.Header.Set("User-Agent", "Berth-Replication/1")
	if c, ok := ctx.Value(credentialsKey{}).([2]string); ok {
		req.SetBasicAuth(c[0], c[1])
	} else if s.d.Username != "" || s.d.Password != "" {
		req.SetBasicAuth(s.d.Username, s.d.Password)
	}
	return s.d.Client.Do(req)
}

// location resolves an upload's Location against the destination (the
// destination's own host only: a Location elsewhere is refused, so that
// credentials never go to another server).
func (s *sender) location(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, &wireError{op: "starting an upload", status: resp.StatusCode, body: "no Location"}
	}
	u, err := s.base.Parse(loc)
	if err != nil {
		return nil, &wireError{op: "starting an upload", status: resp.StatusCode, body: "bad Location " + strconv.Quote(loc)}
	}
	if u.Scheme != s.base.Scheme || u.Host != s.base.Host {
		return nil, &wireError{op: "starting an upload", status: http.StatusBadGateway, body: "Location on another server " + strconv.Quote(loc)}
	}
	return u, nil
}

// wireErr is the error of an unexpected answer, with the start of its
// body (the registry's error code and message).
func wireErr(op string, resp *http.Response) error {
	return &wireError{op: op, status: resp.StatusCode, body: drain(resp)}
}

// drain reads what is left of a body (up to 64 KiB, so that the
// connection is reused), closes it and returns its first 1 KiB.
func drain(resp *http.Response) string {
	var head bytes.Buffer
	_, _ = io.Copy(&head, io.LimitReader(resp.Body, 1<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return head.String()
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
