package server

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/berthstore/berth/registryd/internal/admin"
	"github.com/berthstore/berth/registryd/internal/console"
	"github.com/berthstore/berth/registryd/internal/ecrapi"
	"github.com/berthstore/berth/registryd/internal/oci"
	"github.com/berthstore/berth/registryd/internal/request"
)

// The "route" labels of the requests that are no OCI endpoint.
const (
	routeECR     = "ecr"
	routeAdmin   = "admin"
	routeMetrics = "metrics"
	routeConsole = "console"
	routeUnknown = "unknown"
)

// dispatch sends each request to its protocol: an ECR API call (POST
// with an X-Amz-Target of the ECR API, whatever its path), the admin API
// (/admin/v1/...), /metrics (never behind authentication), the console
// (/console/, unless disabled: web is nil), and the OCI API for everything
// else (which answers NOT_FOUND for a path that is no OCI route). Each
// protocol authenticates and authorizes its requests.
func (s *Server) dispatch(ociAPI, ecrAPI, adminAPI, web http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := request.InfoFrom(r.Context())
		switch {
		case ecrapi.IsRequest(r):
			info.Route = routeECR
			ecrAPI.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, admin.Prefix):
			info.Route = routeAdmin
			adminAPI.ServeHTTP(w, r)
		case web != nil && strings.HasPrefix(r.URL.Path, console.Prefix):
			info.Route = routeConsole
			web.ServeHTTP(w, r)
		case web != nil && r.URL.Path == "/console":
			info.Route = routeConsole
			http.Redirect(w, r, console.Prefix, http.StatusMovedPermanently)
		case r.URL.Path == "/metrics" && !s.cfg.DisableMetrics:
			info.Route = routeMetrics
			s.metrics.Handler().ServeHTTP(w, r)
		default:
			ociAPI.ServeHTTP(w, r)
		}
	})
}

// instrument wraps the APIs with the access log and the metrics, gives
// each request its request.Info (with a fresh request id, answered in
// X-Request-Id), and turns a handler's panic into a 500.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := request.NewInfo(r, request.TrustedProxies(s.cfg.TrustedProxies))
		info.Route = routeUnknown
		w.Header().Set("X-Request-Id", info.RequestID)
		body := request.NewBody(r.Body)
		r.Body = body
		// The records of the request's changes are synced while the
		// changes are made; rec waits for them before the answer.
		info.DeferAuditSyncs()
		rec := &recorder{ResponseWriter: w, info: info}
		r = r.WithContext(request.WithInfo(r.Context(), info))
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
					panic(v)
				}
				// A bug must not take the daemon down; answer 500 if we can.
				s.log.Error("panic in handler", "panic", v, "method", r.Method, "path", r.URL.Path)
				if rec.status == 0 {
					oci.WriteError(rec, oci.NewError(oci.CodeUnknown, "", nil))
				}
			}
			if rec.status == 0 {
				// Nothing answered yet: the implicit 200 follows the
				// records' syncs too.
				rec.waitAudit()
			} else if err := info.WaitAuditSyncs(); err != nil {
				// A record asked for after the answer began (no handler
				// does): it is written, its sync failed.
				s.log.Error("an audit record's sync failed after the answer began", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			d := time.Since(start)
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			s.metrics.ObserveRequest(info.Route, r.Method, status, body.N(), rec.n, d)
			if !s.cfg.DisableAccessLog {
				attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status,
					"bytes_in", body.N(), "bytes_out", rec.n, "duration", d,
					"repository", info.Repository, "route", info.Route, "remote", r.RemoteAddr,
					"principal", info.PrincipalName(), "request_id", info.RequestID}
				if len(s.cfg.TrustedProxies) > 0 {
					attrs = append(attrs, "source_ip", info.SourceIP.String())
				}
				if info.Route == routeECR {
					attrs = append(attrs, "operation", info.Operation)
				}
				s.log.Info("request", attrs...)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// recorder captures the status and the bytes written, and holds the
// answer until the syncs of the request's audit records are done: a
// change is acknowledged only once its record is on the disk. When a
// sync fails, the answer is 503 (the log's failure, as when a record
// cannot be written) in place of the handler's, whose writes are then
// dropped.
type recorder struct {
	http.ResponseWriter
	info   *request.Info
	status int
	n      int64
	// refused is set when the answer became 503 for a failed sync.
	refused bool
}

// waitAudit waits for the request's audit syncs before the first byte of
// the answer, and answers 503 when one failed; it reports whether the
// handler's answer may go on.
func (r *recorder) waitAudit() bool {
	if r.refused {
		return false
	}
	if r.status != 0 {
		return true
	}
	err := r.info.WaitAuditSyncs()
	if err == nil {
		return true
	}
	r.refused = true
	h := r.ResponseWriter.Header()
	id := h.Get("X-Request-Id")
	clear(h)
	h.Set("X-Request-Id", id)
	r.status = http.StatusServiceUnavailable
	if r.info.Route == routeECR {
		ecrapi.WriteError(r.ResponseWriter, err)
	} else {
		oci.WriteError(r.ResponseWriter, err)
	}
	return false
}

func (r *recorder) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		// An informational answer (100 Continue) carries nothing.
		r.ResponseWriter.WriteHeader(code)
		return
	}
	if !r.waitAudit() {
		return
	}
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.waitAudit() {
		return 0, errAuditRefused
	}
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.n += int64(n)
	return n, err
}

// FlushError waits for the audit syncs as the first write does, then
// flushes (http.ResponseController reaches it before Unwrap).
func (r *recorder) FlushError() error {
	if !r.waitAudit() {
		return errAuditRefused
	}
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return http.NewResponseController(r.ResponseWriter).Flush()
}

// errAuditRefused is what a handler's write gets once its answer became
// the 503 of a failed audit sync.
var errAuditRefused = errors.New("server: the answer was refused: an audit record's sync failed")

// Unwrap lets http.ResponseController reach the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
