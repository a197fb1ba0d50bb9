package server

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, in a registry of its own
// so that a process (or a test) can run several servers.
type metrics struct {
	reg               *prometheus.Registry
	requests          *prometheus.CounterVec
	duration          *prometheus.HistogramVec
	bytesIn           *prometheus.CounterVec
	bytesOut          *prometheus.CounterVec
	uploadsInProgress prometheus.Gauge
	ecrCalls          *prometheus.CounterVec
	handler           http.Handler
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_http_requests_total",
			Help: "HTTP requests answered, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"route", "method"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_http_request_bytes_total",
			Help: "Request body bytes received, by route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_http_response_bytes_total",
			Help: "Response body bytes sent, by route.",
		}, []string{"route"}),
		uploadsInProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_uploads_in_progress",
			Help: "Blob upload requests (PATCH, PUT, monolithic POST) being received now.",
		}),
		ecrCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_ecr_calls_total",
			Help: "ECR management API calls answered, by operation and result (ok, or the AWS error type).",
		}, []string{"operation", "result"}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.uploadsInProgress, m.ecrCalls,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	return m
}

// observe records one answered request.
func (m *metrics) observe(route routeKind, method string, status int, in, out int64, d time.Duration) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "OTHER" // bound the label's cardinality
	}
	m.requests.WithLabelValues(string(route), method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(string(route), method).Observe(d.Seconds())
	m.bytesIn.WithLabelValues(string(route)).Add(float64(in))
	m.bytesOut.WithLabelValues(string(route)).Add(float64(out))
}

// countingBody counts the bytes read from a request body and remembers
// the first read error, so that a client's broken body is told apart from
// a store failure.
type countingBody struct {
	rc  io.ReadCloser
	n   int64
	err error
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

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

// observeECR records one ECR API call; operations Berth does not serve
// count as "unknown", to bound the label's cardinality.
func (m *metrics) observeECR(operation, result string) {
	if _, ok := ecrOps[operation]; !ok {
		operation = "unknown"
	}
	m.ecrCalls.WithLabelValues(operation, result).Inc()
}
