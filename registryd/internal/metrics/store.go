package metrics

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthstore/berth/engine"
)

// StoreStatser is what the store metrics read.
type StoreStatser interface {
	StoreStats(ctx context.Context) (engine.StoreStats, error)
	GCStats() engine.GCStats
	TierStats() engine.TierStats
}

// storeCollector exports the store's totals and the gc and lifecycle
// counters at each scrape.
type storeCollector struct {
	st StoreStatser

	blobs, bytes, storedBytes, repos     *prometheus.Desc
	gcRuns, gcBlobs, gcBytes, gcOrphans  *prometheus.Desc
	gcUploads, gcLastDuration, lcExpired *prometheus.Desc
	lcArchived, tierBlobs, tierBytes     *prometheus.Desc
	tierJobs, tierJobErrors              *prometheus.Desc
}

var _ StoreStatser = (*engine.Engine)(nil)

// NewStoreCollector returns the collector of st's totals and counters;
// register it in the server's Registry.
func NewStoreCollector(st StoreStatser) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &storeCollector{
		st:             st,
		blobs:          d("berth_store_blobs", "Blobs stored (each once, whatever the repositories linking it)."),
		bytes:          d("berth_store_bytes", "Logical bytes of the blobs stored."),
		storedBytes:    d("berth_store_stored_bytes", "Bytes the blob files take on disk (compressed, sealed)."),
		repos:          d("berth_store_repositories", "Repositories."),
		gcRuns:         d("berth_gc_collections_total", "Garbage collections finished (dry runs excluded)."),
		gcBlobs:        d("berth_gc_blobs_swept_total", "Blobs removed by garbage collection."),
		gcBytes:        d("berth_gc_bytes_freed_total", "Stored bytes freed by garbage collection (blobs and orphan files)."),
		gcOrphans:      d("berth_gc_orphan_files_removed_total", "Orphan blob files (no record) removed by garbage collection."),
		gcUploads:      d("berth_gc_uploads_expired_total", "Idle upload sessions expired by garbage collection."),
		gcLastDuration: d("berth_gc_last_duration_seconds", "Duration of the last collection, by phase.", "phase"),
		lcExpired:      d("berth_lifecycle_images_expired_total", "Images expired by lifecycle policies, by rule priority.", "rule"),
		lcArchived:     d("berth_lifecycle_images_archived_total", "Images archived by lifecycle transition rules, by rule priority.", "rule"),
		tierBlobs:      d("berth_archive_blobs_moved_total", "Blobs moved between the tiers: to the archive tier (archive) and back (restore).", "direction"),
		tierBytes:      d("berth_archive_bytes_total", "Stored bytes of the blobs archived: freed in the hot tier (hot_freed) and written to the archive tier (archive_written).", "kind"),
		tierJobs:       d("berth_archive_jobs_done_total", "Archive and restore jobs finished."),
		tierJobErrors:  d("berth_archive_job_errors_total", "Archive and restore job failures (each is retried)."),
	}
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.blobs, c.bytes, c.storedBytes, c.repos, c.gcRuns, c.gcBlobs, c.gcBytes, c.gcOrphans, c.gcUploads, c.gcLastDuration, c.lcExpired,
		c.lcArchived, c.tierBlobs, c.tierBytes, c.tierJobs, c.tierJobErrors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s, err := c.st.StoreStats(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.blobs, prometheus.GaugeValue, float64(s.Blobs))
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes))
		ch <- prometheus.MustNewConstMetric(c.storedBytes, prometheus.GaugeValue, float64(s.StoredBytes))
		ch <- prometheus.MustNewConstMetric(c.repos, prometheus.GaugeValue, float64(s.Repositories))
	}
	g := c.st.GCStats()
	ch <- prometheus.MustNewConstMetric(c.gcRuns, prometheus.CounterValue, float64(g.Collections))
	ch <- prometheus.MustNewConstMetric(c.gcBlobs, prometheus.CounterValue, float64(g.BlobsSwept))
	ch <- prometheus.MustNewConstMetric(c.gcBytes, prometheus.CounterValue, float64(g.BytesFreed))
	ch <- prometheus.MustNewConstMetric(c.gcOrphans, prometheus.CounterValue, float64(g.OrphanFilesRemoved))
	ch <- prometheus.MustNewConstMetric(c.gcUploads, prometheus.CounterValue, float64(g.UploadsExpired))
	if r := g.Last; r != nil {
		for phase, d := range map[string]time.Duration{"mark": r.MarkDuration, "plan": r.PlanDuration, "sweep": r.SweepDuration, "total": r.Duration} {
			ch <- prometheus.MustNewConstMetric(c.gcLastDuration, prometheus.GaugeValue, d.Seconds(), phase)
		}
	}
	for rule, n := range g.ImagesExpired {
		ch <- prometheus.MustNewConstMetric(c.lcExpired, prometheus.CounterValue, float64(n), strconv.Itoa(rule))
	}
	for rule, n := range g.ImagesArchived {
		ch <- prometheus.MustNewConstMetric(c.lcArchived, prometheus.CounterValue, float64(n), strconv.Itoa(rule))
	}
	t := c.st.TierStats()
	ch <- prometheus.MustNewConstMetric(c.tierBlobs, prometheus.CounterValue, float64(t.BlobsArchived), "archive")
	ch <- prometheus.MustNewConstMetric(c.tierBlobs, prometheus.CounterValue, float64(t.BlobsRestored), "restore")
	ch <- prometheus.MustNewConstMetric(c.tierBytes, prometheus.CounterValue, float64(t.HotBytesFreed), "hot_freed")
	ch <- prometheus.MustNewConstMetric(c.tierBytes, prometheus.CounterValue, float64(t.ArchiveBytesWritten), "archive_written")
	ch <- prometheus.MustNewConstMetric(c.tierJobs, prometheus.CounterValue, float64(t.JobsDone))
	ch <- prometheus.MustNewConstMetric(c.tierJobErrors, prometheus.CounterValue, float64(t.JobErrors))
}
