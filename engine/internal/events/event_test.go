package events

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	testDigest = "sha256:0c2f4d7e1b3a5968a7c6d5e4f3b2a1908172635445362718291a0b1c2d3e4f5a"
	ociImage   = "application/vnd.oci.image.manifest.v1+json"
	ociConfig  = "application/vnd.oci.image.config.v1+json"
)

var testOrigin = Origin{Account: "123456789012", Region: "eu-west-1", RepositoryARN: func(name string) string {
	return "arn:aws:ecr:eu-west-1:123456789012:repository/" + name
}}

// TestShapes: each typed detail, made into an event, is the JSON of its
// file in testdata (events in the shapes of AWS's documented examples,
// field for field), and each file decodes back to its detail.
func TestShapes(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	for _, tc := range []struct {
		file, id, time string
		detail         Detail
		detailType     string
	}{
		{"push.json", "5b0c8a64-2f7e-4d7c-9b0e-3d6f8e2a1c44", "2026-11-23T10:15:00Z", ImageAction{
			Result: ResultSuccess, RepositoryName: "team-a/api", ImageDigest: testDigest, ActionType: ActionPush,
			ImageTag: "v1.4.2", ManifestMediaType: ociImage, ArtifactMediaType: ociConfig}, ""},
		{"delete.json", "9e41d3f0-7c2b-4a18-8f65-0b7d2e9c3a16", "2026-11-23T10:20:07Z", ImageAction{
			Result: ResultSuccess, RepositoryName: "team-a/api", ImageDigest: testDigest, ActionType: ActionDelete,
			ImageTag: "v1.4.2"}, ""},
		{"archive.json", "2d7f9a10-4b6e-4c3d-a1f2-8e5b7c9d0e13", "2026-11-24T03:00:00Z", ImageAction{
			Result: ResultSuccess, RepositoryName: "team-a/api", ImageDigest: testDigest, ActionType: ActionUpdateStorageClass,
			TargetStorageClass: StorageClassArchive, ManifestMediaType: ociImage, ArtifactMediaType: ociConfig}, ""},
		{"restore-referrer.json", "6a3e1c2b-9d8f-4e7a-b6c5-4d3e2f1a0b98", "2026-11-24T04:30:12Z", ImageAction{
			Result: ResultSuccess, RepositoryName: "team-a/api",
			ImageDigest: "sha256:7a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
			ActionType:  ActionUpdateStorageClass, TargetStorageClass: StorageClassStandard,
			ManifestMediaType: ociImage, ArtifactMediaType: "application/spdx+json",
			LastActivatedAt: "2026-11-24T04:30:12.51Z"}, DetailReferrerAction},
		{"pull-through.json", "c0ffee00-1234-4abc-8def-0123456789ab", "2026-11-23T11:02:45Z", PullThroughCacheAction{
			RuleVersion: "1", SyncStatus: ResultSuccess, ECRRepositoryPrefix: "hub", RepositoryName: "hub/library/redis",
			UpstreamRegistryURL: "registry-1.docker.io", ImageTag: "7.4",
			ImageDigest: "sha256:4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796"}, ""},
		{"scan.json", "1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b", "2026-11-23T10:16:30Z", ImageScan{
			ScanStatus: ScanComplete, RepositoryName: "team-a/api", FindingSeverityCounts: map[string]int{"HIGH": 3, "LOW": 11},
			ImageDigest: testDigest}, ""},
		{"replication.json", "e7d6c5b4-a392-4817-9f6e-5d4c3b2a1908", "2026-11-23T10:18:02Z", ReplicationAction{
			Result: ResultFailed, RepositoryName: "team-a/api", ImageDigest: testDigest, SourceAccount: "123456789012",
			ActionType: ActionReplicate, SourceRegion: "us-east-1", ImageTag: "v1.4.2"}, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", tc.file))
			require.NoError(t, err)
			ev, err := testOrigin.NewEvent(tc.id, at(tc.time).Add(400*time.Millisecond), tc.detail)
			require.NoError(t, err)
			if tc.detailType != "" {
				ev.DetailType = tc.detailType
			}
			require.NoError(t, ev.Validate())
			got, err := json.Marshal(ev)
			require.NoError(t, err)
			require.JSONEq(t, string(want), string(got))

			var back Event
			require.NoError(t, json.Unmarshal(want, &back))
			require.NoError(t, back.Validate())
			d, err := back.DecodeDetail()
			require.NoError(t, err)
			if s, ok := tc.detail.(ImageScan); ok {
				s.ImageTags = []string{}
				tc.detail = s
			}
			require.Equal(t, tc.detail, d)
			require.Equal(t, tc.detail.Repository(), back.Repository())
		})
	}
}

// TestValidate: an event without what every event has is refused.
func TestValidate(t *testing.T) {
	good := func() *Event {
		ev, err := testOrigin.NewEvent("id", time.Unix(1, 0), ImageAction{Result: ResultSuccess, RepositoryName: "r", ImageDigest: testDigest, ActionType: ActionPush})
		require.NoError(t, err)
		return ev
	}
	require.NoError(t, good().Validate())
	for name, spoil := range map[string]func(*Event){
		"version":     func(e *Event) { e.Version = "1" },
		"id":          func(e *Event) { e.ID = "" },
		"detail-type": func(e *Event) { e.DetailType = "ECR Something" },
		"source":      func(e *Event) { e.Source = "aws.s3" },
		"account":     func(e *Event) { e.Account = "" },
		"time":        func(e *Event) { e.Time = Time{} },
		"detail":      func(e *Event) { e.Detail = json.RawMessage(`[1]`) },
	} {
		ev := good()
		spoil(ev)
		require.ErrorIs(t, ev.Validate(), ErrInvalid, name)
	}
}

func TestFilter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      Filter
		dt     string
		repo   string
		wanted bool
	}{
		{"zero selects all", Filter{}, DetailImageAction, "a", true},
		{"type in", Filter{DetailTypes: []string{DetailImageScan, DetailImageAction}}, DetailImageAction, "a", true},
		{"type out", Filter{DetailTypes: []string{DetailImageScan}}, DetailImageAction, "a", false},
		{"prefix in", Filter{RepositoryPrefixes: []string{"team-a/"}}, DetailImageAction, "team-a/api", true},
		{"prefix out", Filter{RepositoryPrefixes: []string{"team-a/"}}, DetailImageAction, "team-ab/api", false},
		{"plain prefix", Filter{RepositoryPrefixes: []string{"team-a"}}, DetailImageAction, "team-ab/api", true},
		{"both", Filter{DetailTypes: []string{DetailImageAction}, RepositoryPrefixes: []string{"x", "team"}}, DetailImageAction, "team/b", true},
		{"both, type out", Filter{DetailTypes: []string{DetailImageScan}, RepositoryPrefixes: []string{"team"}}, DetailImageAction, "team/b", false},
	} {
		require.Equal(t, tc.wanted, tc.f.Match(tc.dt, tc.repo), tc.name)
	}
}

// TestBackoff: the waits double from Initial up to Max, each drawn from
// [d/2, d].
func TestBackoff(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 10 * time.Second}
	for attempt, d := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		for range 100 {
			got := b.Delay(attempt)
			require.GreaterOrEqual(t, got, d/2, "attempt %d", attempt)
			require.LessOrEqual(t, got, d, "attempt %d", attempt)
		}
	}
	require.Zero(t, Backoff{}.Delay(3))
}
