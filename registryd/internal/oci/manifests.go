package oci

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/request"
)

// checkReference validates a manifest reference: a tag or a digest.
func checkReference(ref string) (isDigest bool, err error) {
	if strings.ContainsRune(ref, ':') {
		if _, err := parseDigest(ref); err != nil {
			return true, err
		}
		return true, nil
	}
	if !validTag(ref) {
		return false, NewError(CodeTagInvalid, "invalid tag", map[string]string{"tag": truncate(ref, 200)})
	}
	return false, nil
}

// getManifest serves GET and HEAD /v2/<name>/manifests/<reference>.
func (a *API) getManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	if _, err := checkReference(rt.ref); err != nil {
		return err
	}
	ctx := r.Context()
	upstream, err := a.fill.FillManifest(ctx, caller(ctx), rt.name, rt.ref)
	if err != nil {
		return err
	}
	h := w.Header()
	if upstream != nil {
		// A first pull through the cache: the upstream's manifest, while
		// its content is stored.
		h.Set("Content-Type", upstream.MediaType)
		h.Set("Docker-Content-Digest", upstream.Digest.String())
		h.Set("Content-Length", strconv.Itoa(len(upstream.Payload)))
		h.Set("ETag", `"`+upstream.Digest.String()+`"`)
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(upstream.Payload)
		}
		return nil
	}
	if r.Method == http.MethodHead {
		desc, err := a.manifests.StatManifest(ctx, rt.name, rt.ref)
		if err != nil {
			return err
		}
		h.Set("Content-Type", desc.MediaType)
		h.Set("Docker-Content-Digest", desc.Digest.String())
		h.Set("Content-Length", strconv.FormatInt(desc.Size, 10))
		h.Set("ETag", `"`+desc.Digest.String()+`"`)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	m, err := a.manifests.GetManifest(ctx, rt.name, rt.ref)
	if err != nil {
		return err
	}
	h.Set("Content-Type", m.MediaType)
	h.Set("Docker-Content-Digest", m.Digest.String())
	h.Set("Content-Length", strconv.Itoa(len(m.Payload)))
	h.Set("ETag", `"`+m.Digest.String()+`"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(m.Payload)
	return nil
}

// putManifest serves PUT /v2/<name>/manifests/<reference>?tag=.
func (a *API) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	if _, err := checkReference(rt.ref); err != nil {
		return err
	}
	tags := r.URL.Query()["tag"]
	for _, t := range tags {
		if !validTag(t) {
			return NewError(CodeTagInvalid, "invalid tag", map[string]string{"tag": truncate(t, 200)})
		}
	}
	limit := a.maxManifestSize
	if r.ContentLength > limit {
		return NewError(CodeTooLarge, "manifest exceeds the size limit", map[string]int64{"limit": limit, "size": r.ContentLength})
	}
	body := request.BodyOf(r)
	payload, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return &Error{Code: CodeManifestInvalid, Msg: "reading the request body failed", Err: err}
	}
	if int64(len(payload)) > limit {
		return NewError(CodeTooLarge, "manifest exceeds the size limit", map[string]int64{"limit": limit})
	}
	mediaType := r.Header.Get("Content-Type")
	if i := strings.IndexByte(mediaType, ';'); i >= 0 {
		mediaType = strings.TrimSpace(mediaType[:i])
	}
	res, err := a.manifests.PutManifest(r.Context(), rt.name, rt.ref, mediaType, payload, tags...)
	if err != nil {
		if errors.Is(err, engine.ErrTagImmutable) {
			return &Error{Code: CodeTagInvalid, Msg: immutableMessage(err, rt, tags), Err: err}
		}
		return err
	}
	h := w.Header()
	h.Set("Location", "/v2/"+rt.name+"/manifests/"+res.Digest.String())
	h.Set("Docker-Content-Digest", res.Digest.String())
	if res.Subject != "" {
		h.Set("OCI-Subject", res.Subject.String())
	}
	for _, t := range tags {
		h.Add("OCI-Tag", t)
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// immutableMessage is ECR's message for the tag that could not move: the
// engine's own sentence when it wrote one, else built from the first tag
// that the engine's error names (or the first tag pushed).
func immutableMessage(err error, rt route, tags []string) string {
	s := err.Error()
	if i := strings.Index(s, "The image tag '"); i >= 0 {
		return s[i:]
	}
	all := tags
	if _, derr := checkReference(rt.ref); derr == nil && !strings.ContainsRune(rt.ref, ':') {
		all = append([]string{rt.ref}, tags...)
	}
	tag := ""
	for _, t := range all {
		if strings.Contains(s, "'"+t+"'") || strings.Contains(s, `"`+t+`"`) || strings.Contains(s, " "+t) {
			tag = t
			break
		}
	}
	if tag == "" && len(all) > 0 {
		tag = all[0]
	}
	return immutableTagMessage(tag, rt.name)
}

// deleteManifest serves DELETE /v2/<name>/manifests/<reference>: a
// digest deletes the manifest and its tags, a tag only the tag.
func (a *API) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	isDigest, err := checkReference(rt.ref)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if isDigest {
		d, _ := parseDigest(rt.ref)
		err = a.manifests.DeleteManifest(ctx, rt.name, d)
	} else {
		err = a.manifests.DeleteTag(ctx, rt.name, rt.ref)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
