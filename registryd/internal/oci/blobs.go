package oci

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
)

// parseDigest parses a digest from a URL or query, answering
// DIGEST_INVALID when it is malformed or of an unsupported algorithm.
func parseDigest(s string) (digest.Digest, error) {
	d, err := engine.ParseDigest(s)
	if err != nil {
		return "", NewError(CodeDigestInvalid, "invalid digest", map[string]string{"digest": truncate(s, 200)})
	}
	return d, nil
}

// deleteBlob serves DELETE /v2/<name>/blobs/<digest>.
func (a *API) deleteBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	if err := a.blobs.DeleteBlob(r.Context(), rt.name, d); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// getBlob serves GET and HEAD /v2/<name>/blobs/<digest>, whole or by
// Range.
func (a *API) getBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if r.Header.Get("Range") == "" {
		// A whole blob that a pull-through cache lacks streams from its
		// upstream while it is stored.
		rc, size, err := a.fill.StreamBlob(ctx, caller(ctx), rt.name, d)
		if err != nil {
			return err
		}
		if rc != nil {
			a.streamUpstream(w, r, rc, size, d, rt)
			return nil
		}
	} else if err := a.fill.FillBlob(ctx, caller(ctx), rt.name, d); err != nil {
		return err
	}
	h := w.Header()
	if r.Method == http.MethodHead && r.Header.Get("Range") == "" {
		desc, err := a.blobs.StatBlob(ctx, rt.name, d)
		if err != nil {
			return err
		}
		setBlobHeaders(h, desc.Digest)
		h.Set("Content-Length", strconv.FormatInt(desc.Size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	br, err := a.blobs.OpenBlob(ctx, rt.name, d)
	if err != nil {
		return err
	}
	defer br.Close()
	size := br.Size()
	ranges, err := parseRange(r.Header.Get("Range"), size)
	if errors.Is(err, errRangeSyntax) {
		ranges, err = nil, nil // RFC 9110: ignore a Range that does not parse
	}
	if ir := r.Header.Get("If-Range"); ir != "" && ir != `"`+d.String()+`"` {
		ranges, err = nil, nil
	}
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		return NewError(CodeRangeInvalid, "", map[string]any{"range": truncate(r.Header.Get("Range"), 200), "size": size})
	}
	if coalesced, whole := coalesce(ranges, size); whole {
		ranges = nil // more than the blob asked: the blob, once
	} else {
		ranges = coalesced
	}
	setBlobHeaders(h, d)
	switch len(ranges) {
	case 0:
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			// The reader itself, not a section of it: io.Copy then uses
			// its WriteTo, which decodes frames ahead in parallel.
			a.copyOut(w, br, rt)
		}
	case 1:
		rg := ranges[0]
		h.Set("Content-Range", rg.contentRange(size))
		h.Set("Content-Length", strconv.FormatInt(rg.length, 10))
		w.WriteHeader(http.StatusPartialContent)
		if r.Method == http.MethodGet {
			a.copyOut(w, io.NewSectionReader(br, rg.start, rg.length), rt)
		}
	default:
		a.serveMultiRange(w, r, br, ranges, size, rt)
	}
	return nil
}

// streamUpstream answers a blob with the bytes a pull-through cache
// streams from its upstream. When the stream fails (the upstream's bytes
// did not match their digest, or it went away) the answer is cut short:
// the connection is aborted, so the client sees an error, never a blob
// that looks whole.
func (a *API) streamUpstream(w http.ResponseWriter, r *http.Request, rc io.ReadCloser, size int64, d digest.Digest, rt route) {
	defer rc.Close()
	h := w.Header()
	setBlobHeaders(h, d)
	if size >= 0 {
		h.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodGet {
		return
	}
	if _, err := io.CopyBuffer(flushWriter{w}, rc, make([]byte, 256<<10)); err != nil {
		a.log.Debug("pull-through: blob stream cut", "repo", rt.name, "ref", rt.ref, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// flushWriter flushes after each write, so that the bytes of a stream
// that arrive slowly reach the client as they come.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		_ = http.NewResponseController(f.w).Flush()
	}
	return n, err
}

// setBlobHeaders sets the headers common to blob answers.
func setBlobHeaders(h http.Header, d digest.Digest) {
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Accept-Ranges", "bytes")
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
}

// copyOut streams a blob section to the client. Once the status is sent
// an error can only be logged (the client sees a short body).
func (a *API) copyOut(w io.Writer, r io.Reader, rt route) {
	if _, err := io.Copy(w, r); err != nil {
		a.log.Debug("blob write interrupted", "repo", rt.name, "ref", rt.ref, "err", err)
	}
}

// serveMultiRange answers several ranges as multipart/byteranges. The
// length is computed first (parts have fixed headers), so the answer has
// a Content-Length.
func (a *API) serveMultiRange(w http.ResponseWriter, r *http.Request, br io.ReaderAt, ranges []byteRange, size int64, rt route) {
	partHeader := func(rg byteRange) textproto.MIMEHeader {
		return textproto.MIMEHeader{
			"Content-Type":  {"application/octet-stream"},
			"Content-Range": {rg.contentRange(size)},
		}
	}
	// Measure with a discarding writer that shares the boundary.
	cw := &countWriter{}
	mw := multipart.NewWriter(cw)
	for _, rg := range ranges {
		_, _ = mw.CreatePart(partHeader(rg))
		cw.n += rg.length
	}
	_ = mw.Close()
	boundary := mw.Boundary()

	h := w.Header()
	h.Set("Content-Type", "multipart/byteranges; boundary="+boundary)
	h.Set("Content-Length", strconv.FormatInt(cw.n, 10))
	w.WriteHeader(http.StatusPartialContent)
	if r.Method != http.MethodGet {
		return
	}
	mw = multipart.NewWriter(w)
	_ = mw.SetBoundary(boundary)
	for _, rg := range ranges {
		pw, err := mw.CreatePart(partHeader(rg))
		if err != nil {
			return
		}
		if _, err := io.Copy(pw, io.NewSectionReader(br, rg.start, rg.length)); err != nil {
			a.log.Debug("blob write interrupted", "repo", rt.name, "ref", rt.ref, "err", err)
			return
		}
	}
	_ = mw.Close()
}

// countWriter counts the bytes written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
