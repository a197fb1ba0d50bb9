package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthstore/berth/engine"
)

// AuditStatuser is what the audit log's metrics read.
type AuditStatuser interface {
	AuditStatus() engine.AuditStatus
}

var _ AuditStatuser = (*engine.Engine)(nil)

// auditCollector exports the audit log's counters and health at each
// scrape (nothing when the store keeps no audit log).
type auditCollector struct {
	st                               AuditStatuser
	records, errors, healthy         *prometheus.Desc
	bytes, writes, syncs, lastErrorT *prometheus.Desc
}

// NewAuditCollector returns the collector of st's audit log; register it
// in the server's Registry.
func NewAuditCollector(st AuditStatuser) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &auditCollector{
		st:         st,
		records:    d("berth_audit_records_total", "Audit records written since start, by decision (Allow, ExplicitDeny, ImplicitDeny).", "decision"),
		errors:     d("berth_audit_write_errors_total", "Audit records that could not be written or synced since start; each refused its request (503)."),
		healthy:    d("berth_audit_healthy", "1 when the audit log writes, 0 after a write or sync failed until one succeeds again (requests are refused meanwhile)."),
		bytes:      d("berth_audit_bytes", "Bytes of the audit log's segments on disk."),
		writes:     d("berth_audit_writes_total", "write(2) calls of the audit log since start (concurrent records share one)."),
		syncs:      d("berth_audit_syncs_total", "fdatasync(2) calls of the audit log since start (denials and changes are synced; concurrent ones share one)."),
		lastErrorT: d("berth_audit_last_error_timestamp_seconds", "When the audit log last failed to write or sync (absent if never since start)."),
	}
}

// Describe implements prometheus.Collector.
func (c *auditCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.records, c.errors, c.healthy, c.bytes, c.writes, c.syncs, c.lastErrorT} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *auditCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.st.AuditStatus()
	if !s.Enabled {
		return
	}
	for decision, n := range map[engine.AuditDecision]uint64{
		engine.AuditAllow: s.Allowed, engine.AuditExplicitDeny: s.ExplicitDenied, engine.AuditImplicitDeny: s.ImplicitDenied,
	} {
		ch <- prometheus.MustNewConstMetric(c.records, prometheus.CounterValue, float64(n), string(decision))
	}
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(s.Failed))
	healthy := 0.0
	if s.Healthy {
		healthy = 1
	}
	ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, healthy)
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(s.Writes))
	ch <- prometheus.MustNewConstMetric(c.syncs, prometheus.CounterValue, float64(s.Syncs))
	if !s.LastErrorTime.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.lastErrorT, prometheus.GaugeValue, float64(s.LastErrorTime.UnixNano())/1e9)
	}
}
