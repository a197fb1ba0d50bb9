package ecrapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/internal/regtest"
)

// TestUpdateImageStorageClass drives the archive storage class through
// the ECR API: UpdateImageStorageClass both ways and its errors, the
// imageStatus filter of ListImages and DescribeImages (ACTIVE when not
// given), imageStatus and the archive times in DescribeImages, and
// BatchGetImage of an archived image.
func TestUpdateImageStorageClass(t *testing.T) {
	ctx := context.Background()
	a := newTestAPI(t)
	h := a.API
	config := a.pushBlob(t, "team/app", []byte(`{"os":"linux"}`))
	l1 := a.pushBlob(t, "team/app", []byte("layer of v1"))
	l2 := a.pushBlob(t, "team/app", []byte("layer of v2"))
	m1 := regtest.ImageManifest(config, l1, 14, 11, nil, "")
	m2 := regtest.ImageManifest(config, l2, 14, 11, nil, "")
	a.pushManifest(t, "team/app", "v1", m1)
	a.pushManifest(t, "team/app", "v2", m2)
	d1, d2 := digest.FromBytes(m1).String(), digest.FromBytes(m2).String()

	call := func(op, body string, status int, typ string) map[string]any {
		t.Helper()
		rec := ecrDo(h, op, body)
		require.Equal(t, status, rec.Code, "%s %s: %s", op, body, rec.Body.String())
		var out map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
		if typ != "" {
			require.Equal(t, typ, out["__type"], "%s %s: %s", op, body, rec.Body.String())
		}
		return out
	}
	digests := func(out map[string]any, key string) []string {
		var ds []string
		for _, x := range out[key].([]any) {
			m := x.(map[string]any)
			if d, ok := m["imageDigest"].(string); ok {
				ds = append(ds, d)
			}
		}
		return ds
	}

	out := call("UpdateImageStorageClass", `{"repositoryName":"team/app","imageId":{"imageTag":"v1"},"targetStorageClass":"ARCHIVE"}`, http.StatusOK, "")
	assert.Equal(t, map[string]any{"registryId": "000000000000", "repositoryName": "team/app",
		"imageId": map[string]any{"imageDigest": d1, "imageTag": "v1"}, "imageStatus": "ARCHIVED"}, out)

	errs := []struct {
		name, body, typ string
	}{
		{"archived already", `{"repositoryName":"team/app","imageId":{"imageDigest":"` + d1 + `"},"targetStorageClass":"ARCHIVE"}`, "ImageStorageClassUpdateNotSupportedException"},
		{"active already", `{"repositoryName":"team/app","imageId":{"imageTag":"v2"},"targetStorageClass":"STANDARD"}`, "ImageStorageClassUpdateNotSupportedException"},
		{"unknown class", `{"repositoryName":"team/app","imageId":{"imageTag":"v2"},"targetStorageClass":"GLACIER"}`, "InvalidParameterException"},
		{"no class", `{"repositoryName":"team/app","imageId":{"imageTag":"v2"}}`, "InvalidParameterException"},
		{"no imageId", `{"repositoryName":"team/app","targetStorageClass":"ARCHIVE"}`, "InvalidParameterException"},
		{"empty imageId", `{"repositoryName":"team/app","imageId":{},"targetStorageClass":"ARCHIVE"}`, "InvalidParameterException"},
		{"unknown tag", `{"repositoryName":"team/app","imageId":{"imageTag":"nope"},"targetStorageClass":"ARCHIVE"}`, "ImageNotFoundException"},
		{"tag and digest disagree", `{"repositoryName":"team/app","imageId":{"imageTag":"v2","imageDigest":"` + d1 + `"},"targetStorageClass":"ARCHIVE"}`, "ImageNotFoundException"},
		{"unknown repository", `{"repositoryName":"nope","imageId":{"imageTag":"v1"},"targetStorageClass":"ARCHIVE"}`, "RepositoryNotFoundException"},
		{"other registry", `{"registryId":"123456789012","repositoryName":"team/app","imageId":{"imageTag":"v1"},"targetStorageClass":"ARCHIVE"}`, "InvalidParameterException"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			out := call("UpdateImageStorageClass", tt.body, http.StatusBadRequest, tt.typ)
			if tt.typ == "ImageStorageClassUpdateNotSupportedException" {
				assert.Contains(t, out["message"], "The requested image storage class update is not supported.")
			}
		})
	}
	notFound := call("UpdateImageStorageClass", errs[6].body, http.StatusBadRequest, "ImageNotFoundException")
	assert.Equal(t, "The image with imageId {imageDigest:'null', imageTag:'nope'} does not exist within the repository with name 'team/app' in the registry with id '000000000000'", notFound["message"])

	// Lists: ACTIVE unless the filter says otherwise.
	for _, f := range []struct {
		filter string
		want   []string
	}{
		{``, []string{d2}},
		{`,"filter":{"imageStatus":"ACTIVE"}`, []string{d2}},
		{`,"filter":{"imageStatus":"ARCHIVED"}`, []string{d1}},
		{`,"filter":{"imageStatus":"ACTIVATING"}`, nil},
		{`,"filter":{"imageStatus":"ANY"}`, []string{d1, d2}},
		{`,"filter":{"imageStatus":"ARCHIVED","tagStatus":"UNTAGGED"}`, nil},
		{`,"filter":{"tagStatus":"TAGGED"}`, []string{d2}},
	} {
		body := `{"repositoryName":"team/app"` + f.filter + `}`
		want := append([]string{}, f.want...)
		assert.ElementsMatch(t, want, digests(call("ListImages", body, http.StatusOK, ""), "imageIds"), "ListImages %s", body)
		assert.ElementsMatch(t, want, digests(call("DescribeImages", body, http.StatusOK, ""), "imageDetails"), "DescribeImages %s", body)
	}
	call("ListImages", `{"repositoryName":"team/app","filter":{"imageStatus":"FROZEN"}}`, http.StatusBadRequest, "InvalidParameterException")
	call("DescribeImages", `{"repositoryName":"team/app","filter":{"imageStatus":"archived"}}`, http.StatusBadRequest, "InvalidParameterException")

	// The archived image is described with its status and archive time.
	out = call("DescribeImages", `{"repositoryName":"team/app","imageIds":[{"imageTag":"v1"}]}`, http.StatusOK, "")
	det := out["imageDetails"].([]any)[0].(map[string]any)
	assert.Equal(t, "ARCHIVED", det["imageStatus"])
	assert.NotNil(t, det["lastArchivedAt"])
	assert.Nil(t, det["lastActivatedAt"], "never restored")

	// BatchGetImage does not answer it.
	out = call("BatchGetImage", `{"repositoryName":"team/app","imageIds":[{"imageTag":"v1"},{"imageTag":"v2"}]}`, http.StatusOK, "")
	require.Len(t, out["images"], 1)
	fail := out["failures"].([]any)[0].(map[string]any)
	assert.Equal(t, "ImageInaccessible", fail["failureCode"])
	assert.Contains(t, fail["failureReason"], "archived")

	// Restored: ACTIVATING, then ACTIVE once its blobs are back.
	out = call("UpdateImageStorageClass", `{"repositoryName":"team/app","imageId":{"imageDigest":"`+d1+`"},"targetStorageClass":"STANDARD"}`, http.StatusOK, "")
	assert.Equal(t, "ACTIVATING", out["imageStatus"])
	require.NoError(t, a.engine.WaitTierJobs(ctx))
	out = call("DescribeImages", `{"repositoryName":"team/app","imageIds":[{"imageTag":"v1"}]}`, http.StatusOK, "")
	det = out["imageDetails"].([]any)[0].(map[string]any)
	assert.Equal(t, "ACTIVE", det["imageStatus"])
	assert.NotNil(t, det["lastActivatedAt"])
	out = call("BatchGetImage", `{"repositoryName":"team/app","imageIds":[{"imageTag":"v1"}]}`, http.StatusOK, "")
	require.Len(t, out["images"], 1)
	assert.Equal(t, string(m1), out["images"].([]any)[0].(map[string]any)["imageManifest"])
}

// TestTransitionRulesOnTheWire: PutLifecyclePolicy takes a transition
// rule, and its preview answers the action, the storage class and the
// transition counts as the ECR API reference names them.
func TestTransitionRulesOnTheWire(t *testing.T) {
	a := newTestAPI(t)
	h := a.API
	config := a.pushBlob(t, "team/app", []byte(`{"os":"linux"}`))
	for i := range 3 {
		l := a.pushBlob(t, "team/app", fmt.Appendf(nil, "layer %d", i))
		a.pushManifest(t, "team/app", fmt.Sprintf("v%d", i), regtest.ImageManifest(config, l, 14, 7, nil, ""))
	}
	policy := jsonString(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"transition","targetStorageClass":"archive"}}]}`)
	rec := ecrDo(h, "PutLifecyclePolicy", `{"repositoryName":"team/app","lifecyclePolicyText":`+policy+`}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	rec = ecrDo(h, "StartLifecyclePolicyPreview", `{"repositoryName":"team/app"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	rec = ecrDo(h, "GetLifecyclePolicyPreview", `{"repositoryName":"team/app"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var out struct {
		PreviewResults []struct {
			Action              LifecyclePolicyRuleAction `json:"action"`
			StorageClass        string                    `json:"storageClass"`
			AppliedRulePriority int                       `json:"appliedRulePriority"`
		} `json:"previewResults"`
		Summary LifecyclePolicyPreviewSummary `json:"summary"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	require.Len(t, out.PreviewResults, 2)
	for _, r := range out.PreviewResults {
		assert.Equal(t, LifecyclePolicyRuleAction{Type: "TRANSITION", TargetStorageClass: "ARCHIVE"}, r.Action)
		assert.Equal(t, "STANDARD", r.StorageClass)
		assert.Equal(t, 1, r.AppliedRulePriority)
	}
	assert.Equal(t, LifecyclePolicyPreviewSummary{ExpiringImageTotalCount: 0,
		TransitioningImageTotalCounts: []TransitioningImageTotalCount{{TargetStorageClass: "ARCHIVE", ImageTotalCount: 2}}}, out.Summary)

	// A transition without its target is refused, in the policy's words.
	bad := jsonString(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"transition"}}]}`)
	rec = ecrDo(h, "PutLifecyclePolicy", `{"repositoryName":"team/app","lifecyclePolicyText":`+bad+`}`)
	require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "targetStorageClass must be specified")
}
