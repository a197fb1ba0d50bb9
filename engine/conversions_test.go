package engine

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/gc"
)

// TestBoundaryValues: the engine's own names for what packages gc and
// crypt define carry the same values, so converting at the boundary
// changes nothing callers can see.
func TestBoundaryValues(t *testing.T) {
	assert.Equal(t, gc.DefaultGrace, DefaultGCGrace)
	assert.Equal(t, gc.DefaultUploadTTL, DefaultUploadTTL)
	kinds := map[string]string{
		gc.KindMissingFile: FsckMissingFile, gc.KindSizeMismatch: FsckSizeMismatch, gc.KindBadBlob: FsckBadBlob,
		gc.KindDanglingBlob: FsckDanglingBlob, gc.KindDanglingChild: FsckDanglingChild, gc.KindDanglingTag: FsckDanglingTag,
		gc.KindDanglingReferrer: FsckDanglingReferrer, gc.KindDanglingLink: FsckDanglingLink, gc.KindDanglingScan: FsckDanglingScan, gc.KindUnpairedLink: FsckUnpairedLink, gc.KindNoRepository: FsckNoRepository,
		gc.KindCorruptRecord: FsckCorruptRecord, gc.KindOrphanFile: FsckOrphanFile, gc.KindOrphanUpload: FsckOrphanUpload,
	}
	for g, e := range kinds {
		assert.Equal(t, g, e)
	}
	states := map[crypt.KeyState]KeyState{
		crypt.KeyEnabled: KeyEnabled, crypt.KeyDisabled: KeyDisabled, crypt.KeyDestroyed: KeyDestroyed, crypt.KeyUnavailable: KeyUnavailable,
	}
	for c, e := range states {
		assert.Equal(t, string(c), string(e))
	}
}

// TestBoundaryJSON: the engine's report types marshal as package gc's
// did, field for field (registryd's admin API and the command line print
// them as JSON); the engine's own GCReport.LayerRecords is left out when
// zero.
func TestBoundaryJSON(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	d := digest.FromString("x")
	plan := &gc.Plan{Start: t0, Cutoff: t0.Add(-time.Hour), Manifests: 1, Links: 2, BlobRecords: 3, Marked: 4,
		Blobs:       []gc.Candidate{{Digest: d, Size: 5, StoredSize: 6, CreatedAt: t0, Repos: []string{"r"}}},
		OrphanFiles: []gc.OrphanFile{{Digest: d, StoredSize: 7}}, OrphanUploads: []string{"u"}, StaleUploads: []string{"s"},
		UploadIdleBefore: t0, MarkDuration: 8, PlanDuration: 9}
	rep := gc.Report{DryRun: true, Plan: plan, BlobsSwept: 1, BytesFreed: 2, BlobsSpared: 3, OrphanFilesRemoved: 4, OrphanBytesFreed: 5,
		OrphanUploadsRemoved: 6, UploadsExpired: 7, ShreddedBlobs: 8, Errors: 9, MarkDuration: 10, PlanDuration: 11, SweepDuration: 12, Duration: 13}
	sameJSON(t, rep, gcReportOf(rep))
	sameJSON(t, gc.Report{}, gcReportOf(gc.Report{}))
	var b1, b2 []byte
	var err error
	b1, err = json.Marshal(plan)
	require.NoError(t, err)
	b2, err = json.Marshal(gcPlanOf(plan).gc())
	require.NoError(t, err)
	assert.JSONEq(t, string(b1), string(b2), "round trip through GCPlan")

	fr := &gc.FsckReport{Repositories: 1, Manifests: 2, Tags: 3, Links: 4, BlobRecords: 5, BlobFiles: 6, Uploads: 7, Verified: 8, VerifiedBytes: 9,
		Corrupt: []gc.Finding{{Kind: gc.KindBadBlob, Repo: "r", Digest: d, Ref: "t", Detail: "x"}}, Orphans: []gc.Finding{}, Duration: 10}
	sameJSON(t, fr, fsckReportOf(fr))
	assert.Equal(t, fr.Corrupt[0].String(), fsckReportOf(fr).Corrupt[0].String())

	exp := []gc.Expiry{{Image: gc.Image{Digest: d, Tags: []string{"a"}, PushedAt: t0, LastPulledAt: t0}, Action: gc.ActionExpire,
		StorageClass: gc.StorageClassStandard, RulePriority: 2, Description: "x"},
		{Image: gc.Image{Digest: d, PushedAt: t0}, Action: gc.ActionTransition, StorageClass: gc.StorageClassStandard, RulePriority: 1},
		{Image: gc.Image{Digest: d, PushedAt: t0}, Action: gc.ActionExpire, StorageClass: gc.StorageClassArchive, RulePriority: 3}}
	// The engine's Expiry adds ECR's action and storage class to gc's.
	var plain []map[string]any
	b, err := json.Marshal(expiriesOf(exp))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &plain))
	var actions []string
	for _, m := range plain {
		actions = append(actions, fmt.Sprint(m["action"], " ", m["storageClass"]))
		delete(m, "action")
		delete(m, "storageClass")
	}
	assert.Equal(t, []string{"map[type:EXPIRE] STANDARD", "map[targetStorageClass:ARCHIVE type:TRANSITION] STANDARD", "map[type:EXPIRE] ARCHIVE"}, actions)
	want, err := json.Marshal(exp)
	require.NoError(t, err)
	got, err := json.Marshal(plain)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got))
	assert.Nil(t, expiriesOf(nil))

	info := crypt.KeyInfo{Name: "k", State: crypt.KeyDisabled, PrimaryVersion: 3, Versions: 4}
	sameJSON(t, info, keyInfoOf(info))
}

func sameJSON(t *testing.T, want, got any) {
	t.Helper()
	w, err := json.Marshal(want)
	require.NoError(t, err)
	g, err := json.Marshal(got)
	require.NoError(t, err)
	assert.Equal(t, string(w), string(g))
}
