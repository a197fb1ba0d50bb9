package engine

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/clock"
	"github.com/berthstore/berth/engine/internal/record"
	"github.com/berthstore/berth/index"
	"github.com/berthstore/berth/scan"
)

// rootfsLayer tars a fixture image's rootfs (scan/testdata/images).
func rootfsLayer(t testing.TB, image string) []byte {
	t.Helper()
	b, err := rootfsTar(image)
	require.NoError(t, err)
	return b
}

func rootfsTar(image string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(os.DirFS(filepath.Join("..", "scan", "testdata", "images", image, "rootfs"))); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// osvFile is a fixture advisory of scan/testdata/osv.
func osvFile(name string) string { return filepath.Join("..", "scan", "testdata", "osv", name) }

// waitScans waits until the scan queue is empty.
func waitScans(t testing.TB, e *Engine) {
	t.Helper()
	require.Eventually(t, func() bool {
		n, err := e.ScanQueue(context.Background())
		require.NoError(t, err)
		return n == 0
	}, 30*time.Second, 5*time.Millisecond, "the scan queue drains")
}

// findingLines prints findings as the fixtures' findings.txt lists them.
func findingLines(fs []scan.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s %s %s %s %s", f.Name, f.Package.Ecosystem, f.Package.Name, f.Package.Version, f.Severity))
	}
	sort.Strings(out)
	return out
}

func expectedFindings(t testing.TB, image string) []string {
	b, err := os.ReadFile(filepath.Join("..", "scan", "testdata", "images", image, "findings.txt"))
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

func scanOptions(c *clock.Manual) *Options {
	o := quietOptions()
	if c != nil {
		o.Clock = c
	}
	return o
}

// TestScanOnPush: a repository with scanOnPush queues a scan in the
// push; the scan inventories the image through its layer tables and
// reports the fixture's findings exactly; a repository without it is not
// scanned.
func TestScanOnPush(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, scanOptions(nil))
	_, err := e.ImportVulnerabilities(ctx, osvFile("transcribed"))
	require.NoError(t, err)
	_, err = e.CreateRepository(ctx, "scanned", RepositorySettings{ScanOnPush: true})
	require.NoError(t, err)
	d, _ := pushImage(t, e, "scanned", "v1", rootfsLayer(t, "debian"))
	waitScans(t, e)
	s, err := e.ImageScan(ctx, "scanned", "v1", true)
	require.NoError(t, err)
	require.Equal(t, ScanComplete, s.Status)
	require.Equal(t, d, s.Digest)
	require.Equal(t, expectedFindings(t, "debian"), findingLines(s.Findings))
	require.Equal(t, map[scan.Severity]int{scan.SeverityUndefined: 2}, s.Counts)
	require.NotNil(t, s.Inventory)
	require.Equal(t, "Debian:12", s.Inventory.OS.Ecosystem)
	require.NotZero(t, s.DatabaseVersion)

	// The scan's end is an event (ECR's EventBridge "ECR Image Scan",
	// with its counts), which the router records in the audit log.
	var events []AuditRecord
	require.Eventually(t, func() bool { // routed just after the scan's result
		events = nil
		require.NoError(t, e.AuditRecords(ctx, AuditQuery{Action: "berth:PublishEvent"}, func(r AuditRecord) error {
			if r.Parameters["detail-type"] == EventImageScan {
				events = append(events, r)
			}
			return nil
		}))
		return len(events) == 1
	}, 30*time.Second, 5*time.Millisecond)
	require.Equal(t, AuditLocal, events[0].PrincipalType)
	require.Equal(t, AuditAPIEngine, events[0].API)
	require.Equal(t, "scanned", events[0].Repository)
	require.Equal(t, map[string]string{"detail-type": EventImageScan, "image-digest": string(d), "image-tags": `["v1"]`,
		"scan-status": "COMPLETE", "finding-severity-counts": `{"UNDEFINED":2}`}, events[0].Parameters)

	pushImage(t, e, "plain", "v1", rootfsLayer(t, "debian"))
	waitScans(t, e)
	_, err = e.ImageScan(ctx, "plain", "v1", false)
	require.ErrorIs(t, err, ErrScanNotFound)

	// A registry rule scans on push what its filters match.
	_, err = e.PutRegistryScanningConfiguration(ctx, ScanningConfiguration{ScanType: ScanTypeBasic,
		Rules: []ScanningRule{{ScanFrequency: ScanFrequencyOnPush, RepositoryFilters: []ScanRepositoryFilter{{Filter: "team-*", FilterType: ScanFilterWildcard}}}}})
	require.NoError(t, err)
	pushImage(t, e, "team-a/app", "v1", rootfsLayer(t, "alpine"))
	pushImage(t, e, "other", "v1", rootfsLayer(t, "alpine"))
	waitScans(t, e)
	s, err = e.ImageScan(ctx, "team-a/app", "v1", true)
	require.NoError(t, err)
	require.Equal(t, ScanComplete, s.Status)
	_, err = e.ImageScan(ctx, "other", "v1", false)
	require.ErrorIs(t, err, ErrScanNotFound)
	rs, err := e.RepositoryScanningConfiguration(ctx, "team-a/app")
	require.NoError(t, err)
	require.Equal(t, ScanFrequencyOnPush, rs.ScanFrequency)
	require.Equal(t, []ScanRepositoryFilter{{Filter: "team-*", FilterType: ScanFilterWildcard}}, rs.AppliedScanFilters)
}

// TestManualScanLimit: one manual scan per image per 24 hours of the
// engine's clock; an image without an OS or packages is
// UNSUPPORTED_IMAGE; an index is refused.
func TestManualScanLimit(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewManual(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	e := openTestEngine(t, scanOptions(clk))
	d, payload := pushImage(t, e, "r", "v1", rootfsLayer(t, "debian"))
	_, err := e.ImageScan(ctx, "r", "v1", false)
	require.ErrorIs(t, err, ErrScanNotFound)

	s, err := e.StartImageScan(ctx, "r", "v1")
	require.NoError(t, err)
	require.Equal(t, ScanInProgress, s.Status)
	waitScans(t, e)
	s, err = e.ImageScan(ctx, "r", string(d), true)
	require.NoError(t, err)
	require.Equal(t, ScanComplete, s.Status)
	require.Empty(t, s.Findings, "no database imported: nothing matches")

	clk.Advance(23 * time.Hour)
	_, err = e.StartImageScan(ctx, "r", "v1")
	require.ErrorIs(t, err, ErrScanLimitExceeded)
	clk.Advance(time.Hour)
	_, err = e.StartImageScan(ctx, "r", "v1")
	require.NoError(t, err)
	waitScans(t, e)

	pushImage(t, e, "r", "empty", layerTar(t, false, tarEntry{name: "hello.txt", body: "hi"}))
	_, err = e.StartImageScan(ctx, "r", "empty")
	require.NoError(t, err)
	waitScans(t, e)
	s, err = e.ImageScan(ctx, "r", "empty", false)
	require.NoError(t, err)
	require.Equal(t, ScanUnsupportedImage, s.Status)

	idx := pushIndex(t, e, "r", "multi", map[digest.Digest]int{d: len(payload)})
	_, err = e.StartImageScan(ctx, "r", string(idx))
	require.ErrorIs(t, err, ErrUnsupportedImageType)
	_, err = e.StartImageScan(ctx, "r", "nope")
	require.ErrorIs(t, err, ErrManifestUnknown)
}

// TestContinuousRematch: under a CONTINUOUS_SCAN rule, an import that
// changes the database re-matches the stored inventories (no layer is
// read: the layers are deleted from the blob store first); an unchanged
// import re-matches nothing; a rollback re-matches again; a corrupt
// import is refused with a typed error and the database in use keeps
// serving.
func TestContinuousRematch(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, scanOptions(nil))
	_, err := e.PutRegistryScanningConfiguration(ctx, ScanningConfiguration{ScanType: ScanTypeEnhanced,
		Rules: []ScanningRule{{ScanFrequency: ScanFrequencyContinuous, RepositoryFilters: []ScanRepositoryFilter{{Filter: "*", FilterType: ScanFilterWildcard}}}}})
	require.NoError(t, err)
	_, err = e.PutRegistryScanningConfiguration(ctx, ScanningConfiguration{ScanType: ScanTypeBasic,
		Rules: []ScanningRule{{ScanFrequency: ScanFrequencyContinuous, RepositoryFilters: []ScanRepositoryFilter{{Filter: "*", FilterType: ScanFilterWildcard}}}}})
	require.ErrorIs(t, err, ErrInvalidArgument, "BASIC has no continuous scanning")

	layer := rootfsLayer(t, "debian")
	pushImage(t, e, "r", "v1", layer)
	waitScans(t, e)
	s, err := e.ImageScan(ctx, "r", "v1", true)
	require.NoError(t, err)
	require.Equal(t, ScanComplete, s.Status)
	require.Empty(t, s.Findings)
	// The layer and its table are gone: a re-match cannot read them.
	b := e.db.NewBatch()
	require.NoError(t, b.DeleteLayerTOC(digest.FromBytes(layer)))
	require.NoError(t, b.Commit(true))
	require.NoError(t, e.hot.Delete(ctx, digest.FromBytes(layer)))

	imp, err := e.ImportVulnerabilities(ctx, osvFile("transcribed"))
	require.NoError(t, err)
	require.True(t, imp.Changed)
	require.Equal(t, 1, imp.Rematched)
	require.Equal(t, 3, imp.Version.Records)
	waitScans(t, e)
	s, err = e.ImageScan(ctx, "r", "v1", true)
	require.NoError(t, err)
	require.Equal(t, expectedFindings(t, "debian"), findingLines(s.Findings))
	require.Equal(t, imp.Version.Version, s.DatabaseVersion)

	again, err := e.ImportVulnerabilities(ctx, osvFile("transcribed"))
	require.NoError(t, err)
	require.False(t, again.Changed)
	require.Equal(t, imp.Version.Version, again.Version.Version)

	// A corrupt file: refused, and the database in use still serves.
	dir := t.TempDir()
	bad := filepath.Join(dir, "Debian.zip")
	require.NoError(t, os.WriteFile(bad, []byte("PK\x03\x04 not a zip at all"), 0o644))
	_, err = e.ImportVulnerabilities(ctx, bad)
	require.ErrorIs(t, err, ErrVulnDataInvalid)
	require.Contains(t, err.Error(), "Debian.zip")
	invalid := filepath.Join(dir, "export.zip")
	writeZip(t, invalid, map[string]string{"DSA-1.json": `{"id":"DSA-1","modified":"2023-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"fixed":"1"}]}]}]}`})
	_, err = e.ImportVulnerabilities(ctx, invalid)
	require.ErrorIs(t, err, ErrVulnDataInvalid)
	require.Contains(t, err.Error(), "DSA-1")
	st, err := e.VulnDatabaseStatus(ctx)
	require.NoError(t, err)
	require.Equal(t, imp.Version.Version, st.Current.Version)
	s, err = e.ImageScan(ctx, "r", "v1", true)
	require.NoError(t, err)
	require.Equal(t, expectedFindings(t, "debian"), findingLines(s.Findings))
	res, err := scan.Match(ctx, s.Inventory, &vulnView{e: e, ver: st.Current.Version})
	require.NoError(t, err)
	require.Equal(t, expectedFindings(t, "debian"), findingLines(res.Findings), "the database in use still serves")

	// A second import (the Ubuntu notice too), then a rollback to the
	// first: both re-match.
	both := t.TempDir()
	copyTree(t, osvFile("transcribed"), filepath.Join(both, "transcribed"))
	copyTree(t, osvFile("ubuntu"), filepath.Join(both, "ubuntu"))
	imp2, err := e.ImportVulnerabilities(ctx, both)
	require.NoError(t, err)
	require.True(t, imp2.Changed)
	require.Equal(t, 4, imp2.Version.Records)
	waitScans(t, e)
	back, err := e.RollbackVulnDatabase(ctx)
	require.NoError(t, err)
	require.Equal(t, imp.Version.Version, back.Version)
	waitScans(t, e)
	s, err = e.ImageScan(ctx, "r", "v1", true)
	require.NoError(t, err)
	require.Equal(t, imp.Version.Version, s.DatabaseVersion)
	_, err = e.RollbackVulnDatabase(ctx)
	require.ErrorIs(t, err, ErrNoVulnDatabase)
	st, err = e.VulnDatabaseStatus(ctx)
	require.NoError(t, err)
	require.Equal(t, imp.Version.Version, st.Current.Version)
	require.Nil(t, st.Previous)
}

// TestScanRecordsGoWithTheImage: deleting an image or its repository
// deletes its scan.
func TestScanRecordsGoWithTheImage(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, scanOptions(nil))
	d, _ := pushImage(t, e, "r", "v1", rootfsLayer(t, "alpine"))
	_, err := e.StartImageScan(ctx, "r", "v1")
	require.NoError(t, err)
	waitScans(t, e)
	err = e.DeleteImage(ctx, "r", d)
	require.NoError(t, err)
	n := 0
	require.NoError(t, e.db.WalkScans(func(string, digest.Digest, []byte) error { n++; return nil }))
	require.Zero(t, n)
}

func writeZip(t testing.TB, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

func copyTree(t testing.TB, from, to string) {
	t.Helper()
	require.NoError(t, os.CopyFS(to, os.DirFS(from)))
}

// TestScanRetriedThenFailed: a scan that cannot read its image is
// retried after ScanRetryDelay times the attempts (on the engine's
// clock), and FAILED after ScanMaxAttempts runs, with the error as its
// description; the queue is empty then.
func TestScanRetriedThenFailed(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewManual(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	e := openTestEngine(t, scanOptions(clk))
	layer := rootfsLayer(t, "debian")
	d, _ := pushImage(t, e, "r", "v1", layer)
	require.NoError(t, e.hot.Delete(ctx, digest.FromBytes(layer)))
	_, err := e.StartImageScan(ctx, "r", "v1")
	require.NoError(t, err)
	attempts := func() int {
		b, err := e.db.ScanJob("r", d)
		if err != nil {
			return -1
		}
		j, err := record.DecodeScanJob(b)
		require.NoError(t, err)
		if j.LastError == "" || !j.NotBefore.After(clk.Now()) {
			return 0 // running
		}
		return j.Attempts
	}
	require.Eventually(t, func() bool { return attempts() == 1 }, 30*time.Second, 5*time.Millisecond)
	s, err := e.ImageScan(ctx, "r", "v1", false)
	require.NoError(t, err)
	require.Equal(t, ScanInProgress, s.Status)
	clk.Advance(time.Minute)
	require.Eventually(t, func() bool { return attempts() == 2 }, 30*time.Second, 5*time.Millisecond)
	clk.Advance(2 * time.Minute)
	waitScans(t, e)
	s, err = e.ImageScan(ctx, "r", "v1", false)
	require.NoError(t, err)
	require.Equal(t, ScanFailed, s.Status)
	require.NotEmpty(t, s.Description)
}

// TestContinuousRuleScansExistingImages: a continuous rule put after
// images were pushed scans those its filters match (and only images).
func TestContinuousRuleScansExistingImages(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, scanOptions(nil))
	d, payload := pushImage(t, e, "cont/a", "v1", rootfsLayer(t, "alpine"))
	pushIndex(t, e, "cont/a", "multi", map[digest.Digest]int{d: len(payload)})
	pushImage(t, e, "other", "v1", rootfsLayer(t, "alpine"))
	_, err := e.PutRegistryScanningConfiguration(ctx, ScanningConfiguration{ScanType: ScanTypeEnhanced,
		Rules: []ScanningRule{{ScanFrequency: ScanFrequencyContinuous, RepositoryFilters: []ScanRepositoryFilter{{Filter: "cont/*", FilterType: ScanFilterWildcard}}}}})
	require.NoError(t, err)
	waitScans(t, e)
	s, err := e.ImageScan(ctx, "cont/a", "v1", false)
	require.NoError(t, err)
	require.Equal(t, ScanComplete, s.Status)
	_, err = e.ImageScan(ctx, "cont/a", "multi", false)
	require.ErrorIs(t, err, ErrScanNotFound)
	_, err = e.ImageScan(ctx, "other", "v1", false)
	require.ErrorIs(t, err, ErrScanNotFound)
}

// TestScanJobOfADeletedImage: a job left for an image that is gone (a
// re-match queued as the image was deleted) is dropped with its record,
// not run for ever.
func TestScanJobOfADeletedImage(t *testing.T) {
	ctx := context.Background()
	o := scanOptions(nil)
	o.ScanWorkers = -1
	e := openTestEngine(t, o)
	d, _ := pushImage(t, e, "r", "v1", rootfsLayer(t, "alpine"))
	require.NoError(t, e.DeleteImage(ctx, "r", d))
	b := e.db.NewBatch()
	require.NoError(t, e.putScanJob(b, "r", d, "scan", record.Scan{}))
	require.NoError(t, b.Commit(true))
	require.NoError(t, e.runScanJob(ctx, "r", d))
	n, err := e.ScanQueue(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = e.db.Scan("r", d)
	require.ErrorIs(t, err, index.ErrNotFound)
}
