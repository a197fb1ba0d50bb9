package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/request"
)

// blobLocation is the URL of a blob.
func blobLocation(name string, d digest.Digest) string {
	return "/v2/" + name + "/blobs/" + d.String()
}

// uploadLocation is the URL of an upload session.
func uploadLocation(name, id string) string {
	return "/v2/" + name + "/blobs/uploads/" + url.PathEscape(id)
}

// answerBlobCreated answers 201 for a stored blob.
func answerBlobCreated(w http.ResponseWriter, name string, desc engine.Descriptor) {
	h := w.Header()
	h.Set("Location", blobLocation(name, desc.Digest))
	h.Set("Docker-Content-Digest", desc.Digest.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// answerUploadState answers an upload session's state with status.
func answerUploadState(w http.ResponseWriter, name string, up engine.Upload, status int) {
	h := w.Header()
	h.Set("Location", uploadLocation(name, up.ID()))
	h.Set("Docker-Upload-UUID", up.ID())
	h.Set("Range", uploadRange(up.Size()))
	h.Set("Content-Length", "0")
	h.Set("OCI-Chunk-Min-Length", "0")
	w.WriteHeader(status)
}

// uploadRange is the Range header of a session holding size bytes:
// "0-<last byte>", and "0-0" for an empty session (as distribution does).
func uploadRange(size int64) string {
	end := size - 1
	if end < 0 {
		end = 0
	}
	return fmt.Sprintf("0-%d", end)
}

// startUpload serves POST /v2/<name>/blobs/uploads/: a mount, a
// monolithic upload (?digest=) or the start of a session.
func (a *API) startUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, err := parseDigest(m)
		if err != nil {
			return err
		}
		desc, mounted, err := a.mount(ctx, rt.name, q.Get("from"), d)
		if err != nil {
			return err
		}
		if mounted {
			answerBlobCreated(w, rt.name, desc)
			return nil
		}
		// Not mountable: the spec says to answer an upload session. A
		// target that may not be created gets its NAME_UNKNOWN (or its
		// refusal) from BeginUpload.
		return a.beginSession(w, r, rt)
	}
	if ds := q.Get("digest"); ds != "" {
		d, err := parseDigest(ds)
		if err != nil {
			return err
		}
		if err := a.uploads.Begin(); err != nil {
			return err
		}
		defer a.uploads.End()
		body := request.BodyOf(r)
		desc, err := a.blobs.PutBlob(ctx, rt.name, body, d)
		if err != nil {
			return bodyError(body, err)
		}
		if cl := r.ContentLength; cl >= 0 && cl != desc.Size {
			return NewError(CodeSizeInvalid, "", map[string]int64{"contentLength": cl, "size": desc.Size})
		}
		answerBlobCreated(w, rt.name, desc)
		return nil
	}
	return a.beginSession(w, r, rt)
}

// maxMountSources bounds the repositories a mount without "from" asks
// about (each one question: pull access on it), so that one request never
// makes the server evaluate more than a few policies, whatever the number
// of repositories that hold the digest.
const maxMountSources = 16

// mount tries the cross-repository mount of d into repo: from repository
// from, or, with no from, from a repository that holds d and that the
// caller may pull from (mountAny). mounted is false, with no error,
// whenever no source can give the blob, whatever the reason: an invalid
// or unknown source, a source the caller may not pull from (the refusal is
// decided, and audited, by the Authorizer), a blob the source does not
// hold, or one its key can no longer read. The caller then uploads the
// blob: the answer (202) is the same in every case, so a mount reveals
// nothing of repositories the caller may not read.
func (a *API) mount(ctx context.Context, repo, from string, d digest.Digest) (desc engine.Descriptor, mounted bool, err error) {
	if from == "" {
		return a.mountAny(ctx, repo, d)
	}
	return a.mountFrom(ctx, repo, from, d, false)
}

// mountFrom mounts d into repo from repository from, if the caller may
// pull from it (ecr:GetDownloadUrlForLayer and
// ecr:BatchCheckLayerAvailability on from) and from's key reads d; the
// engine unwraps d's data key through from's key and wraps it under
// repo's (engine.MountBlob). A candidate of a mount without "from"
// (probing) is asked as a filter (authz.Visible: recorded,
// not synced), so that the time a refused candidate takes tells nothing
// of the repositories that hold d.
func (a *API) mountFrom(ctx context.Context, repo, from string, d digest.Digest, probing bool) (desc engine.Descriptor, mounted bool, err error) {
	if !validName(from) {
		return engine.Descriptor{}, false, nil
	}
	for _, acc := range mountAccess(from) {
		var err error
		allowed := true
		if probing {
			allowed, err = authz.Visible(ctx, a.authz, caller(ctx), acc.Action, acc.Resource)
		} else if err = a.authz.Authorize(ctx, caller(ctx), acc.Action, acc.Resource); errors.Is(err, engine.ErrAccessDenied) {
			allowed, err = false, nil
		}
		if err != nil {
			return engine.Descriptor{}, false, err
		}
		if !allowed {
			return engine.Descriptor{}, false, nil
		}
	}
	desc, err = a.blobs.MountBlob(ctx, repo, from, d)
	switch {
	case err == nil:
		return desc, true, nil
	case errors.Is(err, engine.ErrBlobUnknown):
		return engine.Descriptor{}, false, nil
	}
	return engine.Descriptor{}, false, err
}

// mountAny serves a mount without "from" (the spec's "anonymous" mount):
// it mounts d from the first repository that holds it, that the caller
// may pull from, and whose key still reads it, exactly as a mount with
// that repository as from. The sources asked are repo itself when it
// holds d, then the repositories that link d in name order (the engine's
// reverse link index), at most maxMountSources in all; each refusal is the
// Authorizer's, audited as any. A source whose key is disabled or
// destroyed is passed over, and so is one whose key cannot be reached
// right now (logged): the upload the answer then starts needs no source.
// No source at all, none the caller may read, none whose key reads d, a
// digest in no repository: 202, the same answer.
func (a *API) mountAny(ctx context.Context, repo string, d digest.Digest) (desc engine.Descriptor, mounted bool, err error) {
	sources, err := a.mountSources(ctx, repo, d)
	if err != nil {
		return engine.Descriptor{}, false, err
	}
	for _, src := range sources {
		desc, mounted, err := a.mountFrom(ctx, repo, src, d, true)
		switch {
		case errors.Is(err, engine.ErrKeyUnavailable):
			a.log.Warn("mount: a source's key is unavailable, trying the next", "repo", repo, "source", src, "digest", d, "err", err)
			continue
		case err != nil || mounted:
			return desc, mounted, err
		}
	}
	return engine.Descriptor{}, false, nil
}

// mountSources lists the candidate sources of a mount of d into repo
// without "from": repo first if it holds d already, then the other
// repositories that link d, in name order, at most maxMountSources.
func (a *API) mountSources(ctx context.Context, repo string, d digest.Digest) ([]string, error) {
	var sources []string
	_, err := a.blobs.StatBlob(ctx, repo, d)
	switch {
	case err == nil:
		sources = append(sources, repo)
	case !errors.Is(err, engine.ErrBlobUnknown) && !errors.Is(err, engine.ErrNameUnknown):
		return nil, err
	}
	err = a.blobs.LinkedRepositories(ctx, d, func(src string) error {
		if len(sources) == maxMountSources {
			return io.EOF
		}
		if src != repo {
			sources = append(sources, src)
		}
		return nil
	})
	return sources, err
}

// beginSession starts an upload session and answers 202.
func (a *API) beginSession(w http.ResponseWriter, r *http.Request, rt route) error {
	if err := a.uploads.Begin(); err != nil {
		return err
	}
	defer a.uploads.End()
	up, err := a.sessions.BeginUpload(r.Context(), rt.name)
	if err != nil {
		return err
	}
	defer a.closeUpload(up)
	answerUploadState(w, rt.name, up, http.StatusAccepted)
	return nil
}

// closeUpload releases an upload handle; the session stays resumable.
func (a *API) closeUpload(up engine.Upload) {
	if err := up.Close(); err != nil {
		a.log.Warn("closing upload", "repo", up.Repository(), "id", up.ID(), "err", err)
	}
}

// resume reopens the session of a request.
func (a *API) resume(ctx context.Context, rt route) (engine.Upload, error) {
	up, err := a.sessions.ResumeUpload(ctx, rt.name, rt.ref)
	if err != nil {
		return nil, err
	}
	return up, nil
}

// uploadStatus serves GET on a session: 204 with its Range.
func (a *API) uploadStatus(w http.ResponseWriter, r *http.Request, rt route) error {
	up, err := a.resume(r.Context(), rt)
	if err != nil {
		return err
	}
	defer a.closeUpload(up)
	answerUploadState(w, rt.name, up, http.StatusNoContent)
	return nil
}

// uploadCancel serves DELETE on a session.
func (a *API) uploadCancel(w http.ResponseWriter, r *http.Request, rt route) error {
	up, err := a.resume(r.Context(), rt)
	if err != nil {
		return err
	}
	// Cancel ends the handle too (success or not): no Close after it.
	if err := up.Cancel(r.Context()); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// appendChunk checks a chunk's Content-Range against the session and
// streams the request body into it. It does not checkpoint.
func (a *API) appendChunk(w http.ResponseWriter, r *http.Request, up engine.Upload, rt route) error {
	body := request.BodyOf(r)
	want := int64(-1)
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, length, err := parseContentRange(cr)
		if err != nil {
			return NewError(CodeBlobUploadInvalid, "malformed Content-Range", map[string]string{"contentRange": truncate(cr, 100)})
		}
		if start != up.Size() {
			h := w.Header()
			h.Set("Location", uploadLocation(rt.name, up.ID()))
			h.Set("Docker-Upload-UUID", up.ID())
			h.Set("Range", uploadRange(up.Size()))
			return &Error{Code: CodeBlobUploadRange, Detail: map[string]int64{"offset": up.Size(), "start": start}}
		}
		if r.ContentLength >= 0 && r.ContentLength != length {
			return NewError(CodeBlobUploadInvalid, "Content-Length does not match Content-Range", map[string]int64{"contentLength": r.ContentLength, "rangeLength": length})
		}
		want = length
	}
	var src io.Reader = body
	if want >= 0 {
		src = io.LimitReader(body, want)
	}
	n, err := up.ReadFrom(src)
	if err != nil {
		return bodyError(body, err)
	}
	if want >= 0 && n != want {
		return NewError(CodeBlobUploadInvalid, "body shorter than Content-Range", map[string]int64{"received": n, "rangeLength": want})
	}
	return nil
}

// bodyError blames the client when reading its body failed.
func bodyError(body *request.Body, err error) error {
	if body.Err() != nil {
		var mbe *http.MaxBytesError
		if errors.As(body.Err(), &mbe) {
			return &Error{Code: CodeTooLarge, Err: err}
		}
		return &Error{Code: CodeBlobUploadInvalid, Msg: "reading the request body failed", Err: err}
	}
	return err
}

// uploadChunk serves PATCH: a chunk (with Content-Range) or a stream.
// The session is checkpointed before the answer, and also when the body
// breaks (a client gone, or shutdown), so that it resumes where it was.
func (a *API) uploadChunk(w http.ResponseWriter, r *http.Request, rt route) error {
	if err := a.uploads.Begin(); err != nil {
		return err
	}
	defer a.uploads.End()
	ctx := r.Context()
	up, err := a.resume(ctx, rt)
	if err != nil {
		return err
	}
	defer a.closeUpload(up)
	appendErr := a.appendChunk(w, r, up, rt)
	// Checkpoint even after a failed append: the bytes that did arrive
	// are kept and the Range we answer tells the client where to resume.
	cpErr := up.Checkpoint(context.WithoutCancel(ctx))
	if appendErr != nil {
		return appendErr
	}
	if cpErr != nil {
		return cpErr
	}
	answerUploadState(w, rt.name, up, http.StatusAccepted)
	return nil
}

// uploadFinish serves PUT ?digest=: an optional last chunk, then commit.
func (a *API) uploadFinish(w http.ResponseWriter, r *http.Request, rt route) error {
	ds := r.URL.Query().Get("digest")
	if ds == "" {
		return NewError(CodeDigestInvalid, "digest query parameter required", nil)
	}
	d, err := parseDigest(ds)
	if err != nil {
		return err
	}
	if err := a.uploads.Begin(); err != nil {
		return err
	}
	defer a.uploads.End()
	ctx := r.Context()
	up, err := a.resume(ctx, rt)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			a.closeUpload(up)
		}
	}()
	if err := a.appendChunk(w, r, up, rt); err != nil {
		_ = up.Checkpoint(context.WithoutCancel(ctx))
		return err
	}
	// Commit ends the handle (success or not): no Close after it.
	committed = true
	desc, err := up.Commit(ctx, d, -1)
	if err != nil {
		return err
	}
	answerBlobCreated(w, rt.name, desc)
	return nil
}
