package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/berthstore/berth/registryd/internal/admin"
	"github.com/berthstore/berth/registryd/internal/ecrapi"
	"github.com/berthstore/berth/registryd/internal/oci"
	"github.com/berthstore/berth/registryd/internal/request"
)

// The "route" labels of the requests that are no OCI endpoint.
const (
	routeECR     = "ecr"
	routeAdmin   = "admin"
	routeMetrics = "metrics"
	routeUnknown = "unknown"
)

// dispatch sends each request to its protocol: an ECR API call (POST
// with an X-Amz-Target of the ECR API, whatever its path), the admin API
// (/admin/v1/...), /metrics (never behind authentication), and the OCI
// API for everything else (which answers NOT_FOUND for a path that is no
// OCI route). Each protocol authenticates and authorizes its requests.
func (s *Server) dispatch(ociAPI, ecrAPI, adminAPI http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := request.InfoFrom(r.Context())
		switch {
		case ecrapi.IsRequest(r):
			info.Route = routeECR
			ecrAPI.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, admin.Prefix):
			info.Route = routeAdmin
			adminAPI.ServeHTTP(w, r)
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
		rec := &recorder{ResponseWriter: w}
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

// recorder captures the status and the bytes written.
type recorder struct {
	http.ResponseWriter
	status int
	n      int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
