package e2e

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/cli"
)

func TestCreateOnPushTemplates(t *testing.T) {
	teamA := cli.Template{
		Prefix:             "team-a",
		AppliedFor:         []string{engine.AppliedForCreateOnPush},
		ImageTagMutability: engine.TagImmutable,
	}
	root := cli.Template{Prefix: engine.RootPrefix, AppliedFor: []string{engine.AppliedForCreateOnPush}}
	tests := []struct {
		name         string
		createOnPush bool
		templates    []cli.Template
		repo         string
		wantStatus   int
		immutable    bool
	}{
		{"team-a prefix matches", false, []cli.Template{teamA}, "team-a/app", http.StatusCreated, true},
		{"prefix is whole components", false, []cli.Template{teamA}, "team-ab/app", http.StatusNotFound, false},
		{"ROOT catches the rest", false, []cli.Template{teamA, root}, "other/app", http.StatusCreated, false},
		{"team-a wins over ROOT", false, []cli.Template{teamA, root}, "team-a/x/y", http.StatusCreated, true},
		{"no template, ECR behaviour", false, nil, "any/app", http.StatusNotFound, false},
		{"no template, create-on-push default", true, nil, "any/app", http.StatusCreated, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startServer(t, func(c *cli.Config) {
				c.CreateOnPush = tt.createOnPush
				c.Templates = tt.templates
			})
			status, e := pushBlobHTTP(t, addr, tt.repo, []byte("some layer"))
			require.Equal(t, tt.wantStatus, status)
			if status == http.StatusNotFound {
				require.NotEmpty(t, e.Errors)
				assert.Equal(t, "NAME_UNKNOWN", e.Errors[0].Code)
				// A chunked upload and a manifest push are refused the same way.
				st, _, _ := httpDo(t, http.MethodPost, "http://"+addr+"/v2/"+tt.repo+"/blobs/uploads/", nil, nil)
				assert.Equal(t, http.StatusNotFound, st)
				return
			}
			status, _, _ = pushImageHTTP(t, addr, tt.repo, "v1", "one")
			require.Equal(t, http.StatusCreated, status)
			status, e, _ = pushImageHTTP(t, addr, tt.repo, "v1", "two")
			if tt.immutable {
				require.Equal(t, http.StatusBadRequest, status)
				assert.Equal(t, "TAG_INVALID", e.Errors[0].Code)
			} else {
				require.Equal(t, http.StatusCreated, status)
			}
			st, _, body := httpDo(t, http.MethodGet, "http://"+addr+"/v2/_catalog", nil, nil)
			require.Equal(t, http.StatusOK, st)
			assert.Contains(t, string(body), `"`+tt.repo+`"`)
		})
	}
}

func TestTagImmutabilityWithExclusions(t *testing.T) {
	addr := startServer(t, func(c *cli.Config) {
		c.CreateOnPush = false
		c.Templates = []cli.Template{{
			Prefix:             "prod",
			AppliedFor:         []string{engine.AppliedForCreateOnPush},
			ImageTagMutability: engine.TagImmutableWithExclusion,
			ImageTagMutabilityExclusionFilters: []cli.TagFilter{
				{Filter: "latest", FilterType: "WILDCARD"},
				{Filter: "dev-*", FilterType: "WILDCARD"},
			},
		}}
	})
	const repo = "prod/app"
	for _, tag := range []string{"v1", "latest", "dev-1"} {
		status, e, _ := pushImageHTTP(t, addr, repo, tag, "first")
		require.Equal(t, http.StatusCreated, status, "%s: %+v", tag, e)
	}
	tests := []struct {
		name    string
		tag     string
		seed    string
		status  int
		message string
	}{
		{"immutable tag cannot move", "v1", "second", http.StatusBadRequest,
			"The image tag 'v1' already exists in the 'prod/app' repository and cannot be overwritten because the repository is immutable."},
		{"same digest again is no overwrite", "v1", "first", http.StatusCreated, ""},
		{"latest is excluded", "latest", "second", http.StatusCreated, ""},
		{"dev-* is excluded", "dev-1", "second", http.StatusCreated, ""},
		{"new immutable tag", "v2", "second", http.StatusCreated, ""},
		{"v2 now fixed", "v2", "third", http.StatusBadRequest,
			"The image tag 'v2' already exists in the 'prod/app' repository and cannot be overwritten because the repository is immutable."},
		{"prefix not a wildcard", "xdev-1", "second", http.StatusCreated, ""},
		{"xdev-1 is immutable", "xdev-1", "third", http.StatusBadRequest,
			"The image tag 'xdev-1' already exists in the 'prod/app' repository and cannot be overwritten because the repository is immutable."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, e, d := pushImageHTTP(t, addr, repo, tt.tag, tt.seed)
			require.Equal(t, tt.status, status, "%+v", e)
			if tt.status != http.StatusCreated {
				require.Len(t, e.Errors, 1)
				assert.Equal(t, "TAG_INVALID", e.Errors[0].Code)
				assert.Equal(t, tt.message, e.Errors[0].Message)
				return
			}
			st, hdr, _ := httpDo(t, http.MethodHead, "http://"+addr+"/v2/"+repo+"/manifests/"+tt.tag, nil, nil)
			require.Equal(t, http.StatusOK, st)
			assert.Equal(t, d.String(), hdr.Get("Docker-Content-Digest"))
		})
	}
}
