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
	Schedules() []engine.ScheduleInfo
}

// storeCollector exports the store's totals and the gc and lifecycle
// counters at each scrape.
type storeCollector struct {
	st StoreStatser

	blobs, bytes, storedBytes, repos     *prometheus.Desc
	gcRuns, gcBlobs, gcBytes, gcOrphans  *prometheus.Desc
	gcUploads, gcLastDuration, lcExpired *prometheus.Desc
	tierBlobs, tierBytes                 *prometheus.Desc
	tierJobs, tierJobErrors              *prometheus.Desc

	gcRunsByResult, gcLastRun          *prometheus.Desc
	lcRuns, lcArchived                 *prometheus.Desc
	lcLastRun, lcLastDuration, nextRun *prometheus.Desc

	dbRoundTrips, dbStatements, dbOps *prometheus.Desc
}

// MetadataStatser is what the metadata database's counters read; a
// StoreStatser that is one (the engine) exports them when its metadata
// is in PostgreSQL.
type MetadataStatser interface {
	MetadataStats() engine.MetadataStats
}

var _ MetadataStatser = (*engine.Engine)(nil)

// runResults are the results every run counter exports, zero included,
// so that a rate over them is defined before the first of each.
var runResults = []engine.RunResult{engine.RunOK, engine.RunFailed, engine.RunSkipped}

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
		tierBlobs:      d("berth_archive_blobs_moved_total", "Blobs moved between the tiers: to the archive tier (archive) and back (restore).", "direction"),
		tierBytes:      d("berth_archive_bytes_total", "Stored bytes of the blobs archived: freed in the hot tier (hot_freed) and written to the archive tier (archive_written).", "kind"),
		tierJobs:       d("berth_archive_jobs_done_total", "Archive and restore jobs finished."),
		tierJobErrors:  d("berth_archive_job_errors_total", "Archive and restore job failures (each is retried)."),

		gcRunsByResult: d("berth_gc_runs_total", "Garbage collections by result: ok, failed, or skipped (a scheduled one fell due while another ran).", "result"),
		gcLastRun:      d("berth_gc_last_run_timestamp_seconds", "When the last collection that ended (ok or failed) started (absent before the first)."),
		lcRuns:         d("berth_lifecycle_runs_total", "Scheduled lifecycle runs (every repository with a policy) by result: ok, failed, or skipped (fell due while the previous one ran).", "result"),
		lcArchived:     d("berth_lifecycle_images_archived_total", "Images lifecycle transition rules moved to the archive storage class, by rule priority.", "rule"),
		lcLastRun:      d("berth_lifecycle_last_run_timestamp_seconds", "When the last scheduled lifecycle run that ended started (absent before the first)."),
		lcLastDuration: d("berth_lifecycle_last_run_duration_seconds", "How long the last scheduled lifecycle run that ended took."),
		nextRun:        d("berth_schedule_next_run_timestamp_seconds", "When the next run of each schedule (lifecycle, gc) is due; absent for a schedule that is off.", "schedule"),

		dbRoundTrips: d("berth_metadata_db_round_trips_total", "Round trips to the metadata database (PostgreSQL; absent on pebble): point reads, BEGIN, COMMIT, ROLLBACK, iterator pages, a commit's pipelined writes."),
		dbStatements: d("berth_metadata_db_statements_total", "SQL statements sent to the metadata database (PostgreSQL; absent on pebble), BEGIN and COMMIT included."),
		dbOps:        d("berth_metadata_db_operations_total", "Index operations on the metadata database (PostgreSQL; absent on pebble) by kind: get (point read), iterator (range read), page (a range read's fetch), commit, commit_retry (after a serialization failure or deadlock).", "op"),
	}
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.blobs, c.bytes, c.storedBytes, c.repos, c.gcRuns, c.gcBlobs, c.gcBytes, c.gcOrphans, c.gcUploads, c.gcLastDuration, c.lcExpired,
		c.tierBlobs, c.tierBytes, c.tierJobs, c.tierJobErrors,
		c.gcRunsByResult, c.gcLastRun, c.lcRuns, c.lcArchived, c.lcLastRun, c.lcLastDuration, c.nextRun,
		c.dbRoundTrips, c.dbStatements, c.dbOps} {
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
	for _, r := range runResults {
		ch <- prometheus.MustNewConstMetric(c.gcRunsByResult, prometheus.CounterValue, float64(g.GCRuns[r]), string(r))
		ch <- prometheus.MustNewConstMetric(c.lcRuns, prometheus.CounterValue, float64(g.LifecycleRuns[r]), string(r))
	}
	if !g.LastGCRun.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.gcLastRun, prometheus.GaugeValue, seconds(g.LastGCRun))
	}
	if r := g.LastLifecycleRun; r != nil {
		ch <- prometheus.MustNewConstMetric(c.lcLastRun, prometheus.GaugeValue, seconds(r.Started))
		ch <- prometheus.MustNewConstMetric(c.lcLastDuration, prometheus.GaugeValue, r.Duration.Seconds())
	}
	for _, s := range c.st.Schedules() {
		ch <- prometheus.MustNewConstMetric(c.nextRun, prometheus.GaugeValue, seconds(s.NextRun), s.Name)
	}
	if ms, ok := c.st.(MetadataStatser); ok {
		if m := ms.MetadataStats(); m.Postgres {
			ch <- prometheus.MustNewConstMetric(c.dbRoundTrips, prometheus.CounterValue, float64(m.RoundTrips))
			ch <- prometheus.MustNewConstMetric(c.dbStatements, prometheus.CounterValue, float64(m.Statements))
			for op, n := range map[string]int64{"get": m.Gets, "iterator": m.Iterators, "page": m.Pages, "commit": m.Commits, "commit_retry": m.CommitRetries} {
				ch <- prometheus.MustNewConstMetric(c.dbOps, prometheus.CounterValue, float64(n), op)
			}
		}
	}
}

// seconds is t as Unix seconds with a fraction.
func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
