package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthstore/berth/engine"
)

// ReplicationFigurer is what the replication queue's metrics read.
type ReplicationFigurer interface {
	ReplicationFigures() []engine.ReplicationFigures
}

var _ ReplicationFigurer = (*engine.Engine)(nil)

// replicationCollector exports each destination's queue figures at each
// scrape.
type replicationCollector struct {
	st                                          ReplicationFigurer
	pending, failed, completed, failures, given *prometheus.Desc
}

// NewReplicationCollector returns the collector of st's replication
// queue; register it in the server's Registry.
func NewReplicationCollector(st ReplicationFigurer) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"destination"}, nil)
	}
	return &replicationCollector{
		st:        st,
		pending:   d("berth_replication_pending", "Replication jobs queued, waiting for a retry or under way: the destination's queue depth."),
		failed:    d("berth_replication_failed", "Replication jobs given up (FAILED) and kept until registryd replication retry."),
		completed: d("berth_replication_completed_total", "Replication jobs completed since start."),
		failures:  d("berth_replication_attempt_failures_total", "Replication attempts that failed since start (retried with backoff, or given up)."),
		given:     d("berth_replication_given_up_total", "Replication jobs given up (FAILED) since start."),
	}
}

// Describe implements prometheus.Collector.
func (c *replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.failed, c.completed, c.failures, c.given} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *replicationCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.st.ReplicationFigures() {
		dest := f.Destination.String()
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(f.Pending), dest)
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.GaugeValue, float64(f.Failed), dest)
		ch <- prometheus.MustNewConstMetric(c.completed, prometheus.CounterValue, float64(f.Completed), dest)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(f.Failures), dest)
		ch <- prometheus.MustNewConstMetric(c.given, prometheus.CounterValue, float64(f.GivenUp), dest)
	}
}

// Replication observes the replicator's jobs: lag and bytes per
// destination (it implements replicate.Observer).
type Replication struct {
	lag   *prometheus.HistogramVec
	bytes *prometheus.CounterVec
	jobs  *prometheus.CounterVec
}

// NewReplication registers the replicator's metrics in reg.
func NewReplication(reg *prometheus.Registry) *Replication {
	r := &Replication{
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_replication_lag_seconds",
			Help:    "Time from a push's commit to the end of its replication, by destination (completed jobs).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 20),
		}, []string{"destination"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_replication_bytes_total",
			Help: "Blob bytes sent to the destination (blobs it had or mounted are not sent).",
		}, []string{"destination"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_replication_jobs_total",
			Help: "Replication attempts by destination and result (ok, retry, failed).",
		}, []string{"destination", "result"}),
	}
	reg.MustRegister(r.lag, r.bytes, r.jobs)
	return r
}

// ObserveReplication records one finished attempt.
func (r *Replication) ObserveReplication(dest, result string, lag time.Duration, bytes int64) {
	r.jobs.WithLabelValues(dest, result).Inc()
	r.bytes.WithLabelValues(dest).Add(float64(bytes))
	if result == "ok" {
		r.lag.WithLabelValues(dest).Observe(lag.Seconds())
	}
}
