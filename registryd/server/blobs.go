package server

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
		return "", apiErr(CodeDigestInvalid, "invalid digest", map[string]string{"digest": truncate(s, 200)})
	}
	return d, nil
}

// blob serves /v2/<name>/blobs/<digest>.
func (s *Server) blob(w http.ResponseWriter, r *http.Request, rt route) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
	default:
		return methodNotAllowed(w, "GET, HEAD, DELETE")
	}
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if r.Method == http.MethodDelete {
		if err := s.store.DeleteBlob(ctx, rt.name, d); err != nil {
			return err
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	if err := s.pullThroughBlob(ctx, rt.name, d); err != nil {
		return err
	}
	h := w.Header()
	if r.Method == http.MethodHead && r.Header.Get("Range") == "" {
		desc, err := s.store.StatBlob(ctx, rt.name, d)
		if err != nil {
			return err
		}
		setBlobHeaders(h, desc.Digest)
		h.Set("Content-Length", strconv.FormatInt(desc.Size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	br, err := s.store.OpenBlob(ctx, rt.name, d)
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
		return apiErr(CodeRangeInvalid, "", map[string]any{"range": truncate(r.Header.Get("Range"), 200), "size": size})
	}
	setBlobHeaders(h, d)
	switch len(ranges) {
	case 0:
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			// The reader itself, not a section of it: io.Copy then uses
			// its WriteTo, which decodes frames ahead in parallel.
			s.copyOut(w, br, rt)
		}
	case 1:
		rg := ranges[0]
		h.Set("Content-Range", rg.contentRange(size))
		h.Set("Content-Length", strconv.FormatInt(rg.length, 10))
		w.WriteHeader(http.StatusPartialContent)
		if r.Method == http.MethodGet {
			s.copyOut(w, io.NewSectionReader(br, rg.start, rg.length), rt)
		}
	default:
		s.serveMultiRange(w, r, br, ranges, size, rt)
	}
	return nil
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
func (s *Server) copyOut(w io.Writer, r io.Reader, rt route) {
	if _, err := io.Copy(w, r); err != nil {
		s.log.Debug("blob write interrupted", "repo", rt.name, "ref", rt.ref, "err", err)
	}
}

// serveMultiRange answers several ranges as multipart/byteranges. The
// length is computed first (parts have fixed headers), so the answer has
// a Content-Length.
func (s *Server) serveMultiRange(w http.ResponseWriter, r *http.Request, br io.ReaderAt, ranges []byteRange, size int64, rt route) {
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
			s.log.Debug("blob write interrupted", "repo", rt.name, "ref", rt.ref, "err", err)
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
