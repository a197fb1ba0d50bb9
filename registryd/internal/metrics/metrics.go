// Package metrics holds registryd's Prometheus metrics, in a registry of
// the server's own (not the global one) so that a process, or a test, can
// run several servers: the HTTP requests by route, the ECR API calls by
// operation and result, the uploads in progress, the store's totals and
// collection counters, and the audit log's counters and health
// (docs/registryd.md lists them).
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are one server's metrics.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	ecrCalls *prometheus.CounterVec
	handler  http.Handler
}

// New returns the metrics of a server whose upload requests in progress
// uploadsInProgress counts, with the Go and process collectors.
func New(uploadsInProgress func() float64) *Metrics {
	m := &Metrics{
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
		ecrCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_ecr_calls_total",
			Help: "ECR management API calls answered, by operation and result (ok, or the AWS error type).",
		}, []string{"operation", "result"}),
	}
	uploads := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "berth_uploads_in_progress",
		Help: "Blob upload requests (PATCH, PUT, monolithic POST) being received now.",
	}, uploadsInProgress)
	m.reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, uploads, m.ecrCalls,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	return m
}

// Registry is the metrics' own Prometheus registry.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return m.handler }

// ObserveRequest records one answered request.
func (m *Metrics) ObserveRequest(route, method string, status int, in, out int64, d time.Duration) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "OTHER" // bound the label's cardinality
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
	m.bytesIn.WithLabelValues(route).Add(float64(in))
	m.bytesOut.WithLabelValues(route).Add(float64(out))
}

// ObserveECRCall records one ECR API call. The caller bounds operation
// to the operations it serves (and "unknown"), which bounds the label's
// cardinality.
func (m *Metrics) ObserveECRCall(operation, result string) {
	m.ecrCalls.WithLabelValues(operation, result).Inc()
}
