package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/berthstore/berth/engine"
)

// instrument wraps the API with the access log and the metrics.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rt, ok := parseRoute(r.URL.EscapedPath())
		if !ok {
			rt.kind = routeUnknown
			if r.URL.Path == "/metrics" && !s.cfg.DisableMetrics {
				rt.kind = routeMetrics
			}
			if strings.HasPrefix(r.URL.Path, adminPrefix) {
				rt.kind = routeAdmin
			}
			if isECRRequest(r) {
				rt.kind = routeECR
			}
		}
		body := &countingBody{rc: r.Body}
		r.Body = body
		rec := &recorder{ResponseWriter: w}
		r = r.WithContext(withRoute(r.Context(), rt))
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
					panic(v)
				}
				// A bug must not take the daemon down; answer 500 if we can.
				s.log.Error("panic in handler", "panic", v, "method", r.Method, "path", r.URL.Path)
				if rec.status == 0 {
					writeError(rec, apiErr(CodeUnknown, "", nil))
				}
			}
			d := time.Since(start)
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			s.metrics.observe(rt.kind, r.Method, status, body.n, rec.n, d)
			if !s.cfg.DisableAccessLog {
				attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status,
					"bytes_in", body.n, "bytes_out", rec.n, "duration", d,
					"repo", rt.name, "route", string(rt.kind), "remote", r.RemoteAddr}
				if rt.kind == routeECR {
					attrs = append(attrs, "operation", truncate(strings.TrimPrefix(r.Header.Get("X-Amz-Target"), ecrTargetPrefix), 100))
				}
				s.log.Info("request", attrs...)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// serveAPI authenticates and dispatches one request.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	rt := routeFrom(r.Context())
	if rt.kind == routeMetrics {
		s.metrics.handler.ServeHTTP(w, r)
		return
	}
	if rt.kind == routeECR {
		s.serveECR(w, r)
		return
	}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	who, ok := s.authorize(w, r, rt.kind != routeAdmin)
	if !ok {
		return
	}
	if rt.kind == routeUnknown {
		writeError(w, apiErr(CodeNotFound, "no such endpoint: "+r.URL.Path, nil))
		return
	}
	if rt.kind != routeBase && rt.kind != routeCatalog && rt.kind != routeAdmin && !validName(rt.name) {
		writeError(w, apiErr(CodeNameInvalid, "invalid repository name", map[string]string{"name": truncate(rt.name, 300)}))
		return
	}
	err := s.enforceOCIPolicy(r, rt, who)
	switch {
	case err != nil:
	case rt.kind == routeAdmin:
		err = s.admin(w, r)
	case rt.kind == routeBase:
		err = s.base(w, r)
	case rt.kind == routeCatalog:
		err = s.catalog(w, r)
	case rt.kind == routeTags:
		err = s.tagsList(w, r, rt)
	case rt.kind == routeManifest:
		err = s.manifest(w, r, rt)
	case rt.kind == routeBlob:
		err = s.blob(w, r, rt)
	case rt.kind == routeUpload:
		err = s.upload(w, r, rt)
	case rt.kind == routeReferrers:
		err = s.referrers(w, r, rt)
	}
	if err != nil {
		ae := writeError(w, err)
		if ae.Code.Status >= 500 {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
}

// authorize checks credentials when authentication is on and returns who
// the request comes from (anonymous without authentication). It answers
// the 401 challenge itself and returns false when the request may not go
// on. anonymousOK lets reads through without good credentials under
// AnonymousPull.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, anonymousOK bool) (engine.Principal, bool) {
	if s.auth == nil {
		return s.principal(""), true
	}
	user, pass, ok := r.BasicAuth()
	if ok && s.auth.check(user, pass) {
		return s.principal(user), true
	}
	if ok && user == loginUser {
		if tokenUser, valid := s.tokens.check(pass); valid {
			return s.principal(tokenUser), true // a token of the ECR API's GetAuthorizationToken
		}
	}
	if anonymousOK && s.cfg.AnonymousPull && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return s.principal(""), true
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="`+s.cfg.Realm+`"`)
	writeError(w, apiErr(CodeUnauthorized, "", nil))
	return engine.Principal{}, false
}

// base answers the /v2/ version check.
func (s *Server) base(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, "GET, HEAD")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte("{}"))
	}
	return nil
}

// methodNotAllowed answers 405 with an Allow header.
func methodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return apiErr(CodeUnsupported, "method not allowed; allowed: "+allow, nil)
}

// truncate shortens s for an error detail.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
