package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthstore/berth/engine"
)

// EventStatser is what the event metrics read.
type EventStatser interface {
	EventStats() engine.EventStats
}

var _ EventStatser = (*engine.Engine)(nil)

// eventCollector exports the event queue's figures and each webhook's
// at each scrape (nothing when events are off).
type eventCollector struct {
	st                                         EventStatser
	emitted, routed, queued, corrupt, auditErr *prometheus.Desc
	pending, pendingBytes, dead, deadBytes     *prometheus.Desc
	delivered, failed, deadLettered, dropped   *prometheus.Desc
	deadDropped, latency                       *prometheus.Desc
}

// NewEventCollector returns the collector of st's events; register it in
// the server's Registry.
func NewEventCollector(st EventStatser) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &eventCollector{
		st:           st,
		emitted:      d("berth_events_emitted_total", "Events queued since start (in the batch of the change each reports)."),
		routed:       d("berth_events_routed_total", "Events recorded in the audit log and handed to the webhooks since start."),
		queued:       d("berth_events_queued", "Events queued and not yet routed."),
		corrupt:      d("berth_events_corrupt_total", "Stored events or deliveries that did not decode and were removed, since start."),
		auditErr:     d("berth_events_audit_failures_total", "Routing rounds that could not record their events in the audit log (retried), since start."),
		pending:      d("berth_events_pending", "Deliveries waiting for the webhook: its queue depth.", "webhook"),
		pendingBytes: d("berth_events_pending_bytes", "Stored bytes of the webhook's queue (bounded by eventQueueMaxBytes).", "webhook"),
		dead:         d("berth_events_dead_letters", "Deliveries given up and kept (registryd events list --dead).", "webhook"),
		deadBytes:    d("berth_events_dead_letter_bytes", "Stored bytes of the webhook's dead letters.", "webhook"),
		delivered:    d("berth_events_delivered_total", "Deliveries the webhook accepted (2xx) since start.", "webhook"),
		failed:       d("berth_events_delivery_failures_total", "Delivery attempts that failed (retried with backoff) since start.", "webhook"),
		deadLettered: d("berth_events_dead_lettered_total", "Deliveries given up (attempts or age exhausted) since start.", "webhook"),
		dropped:      d("berth_events_dropped_total", "Deliveries dropped unsent because the webhook's queue was full, since start.", "webhook"),
		deadDropped:  d("berth_events_dead_letters_dropped_total", "Dead letters dropped because they were over the bound, since start.", "webhook"),
		latency:      d("berth_events_delivery_latency_seconds", "Time from an event's emission to the webhook's acceptance.", "webhook"),
	}
}

// Describe implements prometheus.Collector.
func (c *eventCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.emitted, c.routed, c.queued, c.corrupt, c.auditErr, c.pending, c.pendingBytes,
		c.dead, c.deadBytes, c.delivered, c.failed, c.deadLettered, c.dropped, c.deadDropped, c.latency} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *eventCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.st.EventStats()
	if !s.Enabled {
		return
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.emitted, s.Emitted)
	counter(c.routed, s.Routed)
	gauge(c.queued, float64(s.Unrouted))
	counter(c.corrupt, s.Corrupt)
	counter(c.auditErr, s.AuditFailures)
	for _, w := range s.Webhooks {
		gauge(c.pending, float64(w.Pending), w.Name)
		gauge(c.pendingBytes, float64(w.PendingBytes), w.Name)
		gauge(c.dead, float64(w.Dead), w.Name)
		gauge(c.deadBytes, float64(w.DeadBytes), w.Name)
		counter(c.delivered, w.Delivered, w.Name)
		counter(c.failed, w.Failed, w.Name)
		counter(c.deadLettered, w.DeadLettered, w.Name)
		counter(c.dropped, w.Dropped, w.Name)
		counter(c.deadDropped, w.DeadDropped, w.Name)
		buckets := make(map[float64]uint64, len(w.Latency.Bounds))
		for i, b := range w.Latency.Bounds {
			buckets[b] = w.Latency.Cumulative[i]
		}
		ch <- prometheus.MustNewConstHistogram(c.latency, w.Latency.Count, w.Latency.Sum, buckets, w.Name)
	}
}
