package record

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestScanRecords: each scanning record round-trips, is written at its
// version, and a newer version or an unknown field is refused.
func TestScanRecords(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 5, time.UTC)
	s := Scan{Status: "COMPLETE", Description: "done", StartedAt: at, CompletedAt: at.Add(time.Second), Database: 3,
		Inventory: json.RawMessage(`{"packages":[]}`), Findings: json.RawMessage(`[]`), Counts: map[string]int{"HIGH": 1}}
	b, err := EncodeScan(s)
	require.NoError(t, err)
	require.Contains(t, string(b), `"version":1`)
	require.NotContains(t, string(b), "manualAt", "zero times are left out")
	got, err := DecodeScan(b)
	require.NoError(t, err)
	require.Equal(t, s, got)

	j := ScanJob{Kind: "rematch", QueuedAt: at, Attempts: 2, LastError: "x"}
	b, err = EncodeScanJob(j)
	require.NoError(t, err)
	gj, err := DecodeScanJob(b)
	require.NoError(t, err)
	require.Equal(t, j, gj)

	d := VulnDatabase{Current: &VulnVersion{Version: 2, ImportedAt: at, Source: "/x", Digest: "sha256:00", Records: 5, Ecosystems: map[string]int{"Go": 5}}, Next: 3}
	b, err = EncodeVulnDatabase(d)
	require.NoError(t, err)
	gd, err := DecodeVulnDatabase(b)
	require.NoError(t, err)
	require.Equal(t, d, gd)

	c := ScanningConfiguration{ScanType: "ENHANCED", Rules: []ScanningRule{{Frequency: "CONTINUOUS_SCAN", Filters: []ScanFilter{{Filter: "*", Type: "WILDCARD"}}}}, UpdatedAt: at}
	b, err = EncodeScanningConfiguration(c)
	require.NoError(t, err)
	gc, err := DecodeScanningConfiguration(b)
	require.NoError(t, err)
	require.Equal(t, c, gc)

	_, err = DecodeScan([]byte(`{"version":2,"status":"COMPLETE"}`))
	require.ErrorIs(t, err, ErrVersion)
	_, err = DecodeScan([]byte(`{"status":"COMPLETE"}`))
	require.ErrorIs(t, err, ErrVersion, "scan records always had a version")
	_, err = DecodeScanJob([]byte(`{"version":1,"kind":"scan","queuedAt":"2026-11-23T10:00:00Z","extra":1}`))
	require.Error(t, err)
}
