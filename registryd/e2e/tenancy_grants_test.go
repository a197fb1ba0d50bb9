package e2e

// The grants of the shared registry, one row each: who does what with
// the client the request needs (go-containerregistry for pulls and
// pushes, net/http for precise OCI and admin requests, the AWS SDK for
// Go v2 for the ECR API), then the store, as the administrator sees it,
// shows what happened.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pulls checks that user pulls repo:tag with go-containerregistry: the
// image the fixture pushed, its layer read back whole and verified.
func (f *tenancy) pulls(t *testing.T, opts []remote.Option, repoTag string, want *tnImage) {
	t.Helper()
	img, err := remote.Image(f.ref(repoTag), opts...)
	require.NoError(t, err)
	d, err := img.Digest()
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	rc, err := layers[0].Uncompressed()
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err, "the layer's digest is verified as it is read")
	require.NoError(t, rc.Close())
	if want != nil {
		assert.Equal(t, want.digest.String(), d.String())
		assert.Equal(t, want.plain, b)
	}
}

// imagesOf is repo's tags and their digests, as the administrator sees
// them (DescribeImages).
func (f *tenancy) imagesOf(t *testing.T, repo string) map[string]string {
	t.Helper()
	out := map[string]string{}
	p := ecr.NewDescribeImagesPaginator(f.ecr("admin"), &ecr.DescribeImagesInput{RepositoryName: aws.String(repo)})
	for p.HasMorePages() {
		page, err := p.NextPage(tnCtx)
		require.NoError(t, err)
		for _, d := range page.ImageDetails {
			for _, tag := range d.ImageTags {
				out[tag] = aws.ToString(d.ImageDigest)
			}
			if len(d.ImageTags) == 0 {
				out["@"+aws.ToString(d.ImageDigest)] = aws.ToString(d.ImageDigest)
			}
		}
	}
	return out
}

// holds reports whether repo links blob d, as the administrator sees it.
func (f *tenancy) holds(t *testing.T, repo string, d digest.Digest) bool {
	t.Helper()
	out, err := f.ecr("admin").BatchCheckLayerAvailability(tnCtx, &ecr.BatchCheckLayerAvailabilityInput{
		RepositoryName: aws.String(repo), LayerDigests: []string{d.String()}})
	require.NoError(t, err)
	return len(out.Layers) == 1 && out.Layers[0].LayerAvailability == types.LayerAvailabilityAvailable
}

// repository is repo as the administrator sees it (nil when absent).
func (f *tenancy) repository(t *testing.T, repo string) *types.Repository {
	t.Helper()
	out, err := f.ecr("admin").DescribeRepositories(tnCtx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
	if tnIsAPIError(err, "RepositoryNotFoundException") {
		return nil
	}
	require.NoError(t, err)
	require.Len(t, out.Repositories, 1)
	return &out.Repositories[0]
}

// tagsOf is repo's resource tags as the administrator sees them.
func (f *tenancy) tagsOf(t *testing.T, repo string) map[string]string {
	t.Helper()
	r := f.repository(t, repo)
	require.NotNil(t, r, repo)
	out, err := f.ecr("admin").ListTagsForResource(tnCtx, &ecr.ListTagsForResourceInput{ResourceArn: r.RepositoryArn})
	require.NoError(t, err)
	m := map[string]string{}
	for _, tg := range out.Tags {
		m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return m
}

// uploadViaECR uploads data into repo with the ECR layer calls as c's
// user and returns its digest.
func uploadViaECR(t *testing.T, c *ecr.Client, repo string, data []byte) digest.Digest {
	t.Helper()
	up, err := c.InitiateLayerUpload(tnCtx, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String(repo)})
	require.NoError(t, err)
	_, err = c.UploadLayerPart(tnCtx, &ecr.UploadLayerPartInput{RepositoryName: aws.String(repo), UploadId: up.UploadId,
		PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(int64(len(data) - 1)), LayerPartBlob: data})
	require.NoError(t, err)
	d := digest.FromBytes(data)
	done, err := c.CompleteLayerUpload(tnCtx, &ecr.CompleteLayerUploadInput{RepositoryName: aws.String(repo), UploadId: up.UploadId,
		LayerDigests: []string{d.String()}})
	require.NoError(t, err)
	require.Equal(t, d.String(), aws.ToString(done.LayerDigest))
	return d
}

// grants are the requests that must work, in order (later rows use what
// earlier ones made).
func (f *tenancy) grants() []tnGrant {
	ociManifest := map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
	appA, appB, docs := f.images["team-a/app:v1"], f.images["team-b/app:v1"], f.images["team-b/docs:v1"]
	base := f.images["shared/base:v1"]
	lab := aws.String("team-a/lab")
	var labImage *tnImage
	var labARN *string
	expire := aws.String(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}`)
	ecrCall := func(who, what string, call func(t *testing.T, c *ecr.Client)) tnGrant {
		return tnGrant{who: who, what: what, do: func(t *testing.T, f *tenancy) { call(t, f.ecr(who)) }}
	}
	return []tnGrant{
		// Repository policy: team-a lets bob pull team-a/app.
		{"bob", "pull team-a/app:v1 (team-a's policy BobPullsApp)", func(t *testing.T, f *tenancy) {
			f.pulls(t, f.remote("bob"), "team-a/app:v1", appA)
		}},
		{"bob", "HEAD team-a/app:v1", func(t *testing.T, f *tenancy) {
			status, h, _ := f.do("bob", http.MethodHead, "/v2/team-a/app/manifests/v1", nil, nil)
			require.Equal(t, http.StatusOK, status)
			assert.Equal(t, appA.digest.String(), h.Get("Docker-Content-Digest"))
		}},
		{"bob", "GET team-a/app's layer", func(t *testing.T, f *tenancy) {
			status, _, b := f.do("bob", http.MethodGet, "/v2/team-a/app/blobs/"+appA.layer.String(), nil, nil)
			require.Equal(t, http.StatusOK, status)
			assert.Equal(t, appA.plain, b)
		}},
		ecrCall("bob", "BatchGetImage team-a/app:v1", func(t *testing.T, c *ecr.Client) {
			out, err := c.BatchGetImage(tnCtx, &ecr.BatchGetImageInput{RepositoryName: aws.String("team-a/app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
			require.NoError(t, err)
			require.Len(t, out.Images, 1)
			assert.Equal(t, string(appA.manifest), aws.ToString(out.Images[0].ImageManifest))
		}),
		ecrCall("bob", "GetDownloadUrlForLayer team-a/app", func(t *testing.T, c *ecr.Client) {
			out, err := c.GetDownloadUrlForLayer(tnCtx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: aws.String("team-a/app"), LayerDigest: aws.String(appA.layer.String())})
			require.NoError(t, err)
			assert.Contains(t, aws.ToString(out.DownloadUrl), appA.layer.String())
		}),
		ecrCall("bob", "BatchCheckLayerAvailability team-a/app", func(t *testing.T, c *ecr.Client) {
			out, err := c.BatchCheckLayerAvailability(tnCtx, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: aws.String("team-a/app"), LayerDigests: []string{appA.layer.String()}})
			require.NoError(t, err)
			require.Len(t, out.Layers, 1)
			assert.Equal(t, types.LayerAvailabilityAvailable, out.Layers[0].LayerAvailability)
		}),

		// Repository policy: team-a lets the outsider push to team-a/inbox.
		{"mallory", "push team-a/inbox:drop (team-a's policy OutsiderDropsOff)", func(t *testing.T, f *tenancy) {
			img := f.pushAs("mallory", "team-a/inbox:drop")
			assert.Equal(t, img.digest.String(), f.imagesOf(t, "team-a/inbox")["drop"])
		}},
		ecrCall("mallory", "PutImage team-a/inbox:drop-copy", func(t *testing.T, c *ecr.Client) {
			m := f.imagesOf(t, "team-a/inbox")["drop"]
			got, err := f.ecr("admin").BatchGetImage(tnCtx, &ecr.BatchGetImageInput{RepositoryName: aws.String("team-a/inbox"), ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(m)}}})
			require.NoError(t, err)
			_, err = c.PutImage(tnCtx, &ecr.PutImageInput{RepositoryName: aws.String("team-a/inbox"), ImageTag: aws.String("drop-copy"), ImageManifest: got.Images[0].ImageManifest})
			require.NoError(t, err)
			assert.Equal(t, m, f.imagesOf(t, "team-a/inbox")["drop-copy"])
		}),
		{"mallory", "monolithic blob upload into team-a/inbox", func(t *testing.T, f *tenancy) {
			data := []byte("mallory's monolithic drop")
			d := digest.FromBytes(data)
			status, _, body := f.do("mallory", http.MethodPost, "/v2/team-a/inbox/blobs/uploads/?digest="+d.String(), data, map[string]string{"Content-Type": "application/octet-stream"})
			require.Equal(t, http.StatusCreated, status, "%s", body)
			assert.True(t, f.holds(t, "team-a/inbox", d))
		}},
		ecrCall("mallory", "layer upload into team-a/inbox with the ECR API", func(t *testing.T, c *ecr.Client) {
			d := uploadViaECR(t, c, "team-a/inbox", []byte("mallory's ECR drop"))
			assert.True(t, f.holds(t, "team-a/inbox", d))
		}),

		// Identity policy: the readers group pulls team-b/*.
		{"carol", "pull team-b/app:v1 (group readers)", func(t *testing.T, f *tenancy) { f.pulls(t, f.remote("carol"), "team-b/app:v1", appB) }},
		{"carol", "pull team-b/docs:v1 (group readers)", func(t *testing.T, f *tenancy) { f.pulls(t, f.remote("carol"), "team-b/docs:v1", docs) }},
		{"carol", "list team-b/app's tags (a grant until 2999: DateLessThan aws:CurrentTime)", func(t *testing.T, f *tenancy) {
			tags, err := remote.List(f.ref("team-b/app:v1").Context(), f.remote("carol")...)
			require.NoError(t, err)
			assert.Equal(t, []string{"v1"}, tags)
		}},
		ecrCall("carol", "DescribeImages team-b/app (until 2999)", func(t *testing.T, c *ecr.Client) {
			out, err := c.DescribeImages(tnCtx, &ecr.DescribeImagesInput{RepositoryName: aws.String("team-b/app")})
			require.NoError(t, err)
			require.Len(t, out.ImageDetails, 1)
			assert.Equal(t, appB.digest.String(), aws.ToString(out.ImageDetails[0].ImageDigest))
		}),
		ecrCall("carol", "ListImages team-b/app (until 2999)", func(t *testing.T, c *ecr.Client) {
			out, err := c.ListImages(tnCtx, &ecr.ListImagesInput{RepositoryName: aws.String("team-b/app")})
			require.NoError(t, err)
			require.Len(t, out.ImageIds, 1)
		}),
		ecrCall("carol", "DescribeRepositories team-b/app from 127.0.0.1 (IpAddress aws:SourceIp)", func(t *testing.T, c *ecr.Client) {
			out, err := c.DescribeRepositories(tnCtx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"team-b/app"}})
			require.NoError(t, err)
			require.Len(t, out.Repositories, 1)
		}),

		// Conditions.
		{"alice", "pull team-b/docs:v1 (team-b's policy: Principal * with ArnEquals aws:PrincipalArn)", func(t *testing.T, f *tenancy) {
			f.pulls(t, f.remote("alice"), "team-b/docs:v1", docs)
		}},
		{"alice", "pull projects/alpha:v1 (ecr:ResourceTag/team = a)", func(t *testing.T, f *tenancy) {
			f.pulls(t, f.remote("alice"), "projects/alpha:v1", f.images["projects/alpha:v1"])
		}},
		{"bob", "pull projects/beta:v1 (ecr:ResourceTag/team = b)", func(t *testing.T, f *tenancy) {
			f.pulls(t, f.remote("bob"), "projects/beta:v1", f.images["projects/beta:v1"])
		}},
		ecrCall("alice", "DescribeImages projects/alpha (ecr:ResourceTag/team = a)", func(t *testing.T, c *ecr.Client) {
			out, err := c.DescribeImages(tnCtx, &ecr.DescribeImagesInput{RepositoryName: aws.String("projects/alpha")})
			require.NoError(t, err)
			require.Len(t, out.ImageDetails, 1)
		}),
		ecrCall("alice", "CreateRepository projects/a-tools tagged team=a (aws:RequestTag/team)", func(t *testing.T, c *ecr.Client) {
			_, err := c.CreateRepository(tnCtx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("projects/a-tools"),
				Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
			require.NoError(t, err)
			assert.Equal(t, map[string]string{"team": "a"}, f.tagsOf(t, "projects/a-tools"))
		}),
		ecrCall("alice", "TagResource projects/a-tools team=a again (aws:RequestTag/team)", func(t *testing.T, c *ecr.Client) {
			_, err := c.TagResource(tnCtx, &ecr.TagResourceInput{ResourceArn: aws.String("arn:aws:ecr:us-east-1:000000000000:repository/projects/a-tools"),
				Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
			require.NoError(t, err)
			assert.Equal(t, map[string]string{"team": "a"}, f.tagsOf(t, "projects/a-tools"))
		}),
		{"alice", "push home/alice/app:v1, made on push from the home template (repository/home/${aws:username}/*)", func(t *testing.T, f *tenancy) {
			img := f.pushAs("alice", "home/alice/app:v1")
			f.images["home/alice/app:v1"] = img
			assert.Equal(t, img.digest.String(), f.imagesOf(t, "home/alice/app")["v1"])
			assert.Equal(t, map[string]string{"kind": "home"}, f.tagsOf(t, "home/alice/app"), "the template's tags")
		}},
		ecrCall("bob", "CreateRepository home/bob/tools (${aws:username})", func(t *testing.T, c *ecr.Client) {
			_, err := c.CreateRepository(tnCtx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("home/bob/tools")})
			require.NoError(t, err)
			require.NotNil(t, f.repository(t, "home/bob/tools"))
		}),
		{"alice", "PUT team-a/app:loopback from 127.0.0.1 over TLS (aws:SourceIp, aws:SecureTransport)", func(t *testing.T, f *tenancy) {
			status, _, body := f.do("alice", http.MethodPut, "/v2/team-a/app/manifests/loopback", appA.manifest, ociManifest)
			require.Equal(t, http.StatusCreated, status, "%s", body)
			assert.Equal(t, appA.digest.String(), f.imagesOf(t, "team-a/app")["loopback"])
		}},
		// A public repository: anyone pulls shared/base, and only that.
		{"", "pull shared/base:v1 without credentials (go-containerregistry)", func(t *testing.T, f *tenancy) {
			f.pulls(t, f.remote(""), "shared/base:v1", base)
		}},
		{"", "HEAD shared/base:v1", func(t *testing.T, f *tenancy) {
			status, h, _ := f.do("", http.MethodHead, "/v2/shared/base/manifests/v1", nil, nil)
			require.Equal(t, http.StatusOK, status)
			assert.Equal(t, base.digest.String(), h.Get("Docker-Content-Digest"))
		}},
		{"", "GET shared/base's layer", func(t *testing.T, f *tenancy) {
			status, _, b := f.do("", http.MethodGet, "/v2/shared/base/blobs/"+base.layer.String(), nil, nil)
			require.Equal(t, http.StatusOK, status)
			assert.Equal(t, base.plain, b)
		}},
		{"", "list shared/base's tags", func(t *testing.T, f *tenancy) {
			tags, err := remote.List(f.ref("shared/base:v1").Context(), f.remote("")...)
			require.NoError(t, err)
			assert.Equal(t, []string{"v1"}, tags)
		}},
		{"mallory", "pull shared/base:v1 (Principal * includes authenticated callers)", func(t *testing.T, f *tenancy) {
			f.pulls(t, f.remote("mallory"), "shared/base:v1", base)
		}},
		{"frank", "pull shared/base:v1 (no identity policy; the repository's Principal * grants it)", func(t *testing.T, f *tenancy) {
			f.pulls(t, f.remote("frank"), "shared/base:v1", base)
		}},

		// A team on its own repositories: every OCI route and ECR operation.
		{"alice", "push team-a/app:v2 (go-containerregistry)", func(t *testing.T, f *tenancy) {
			img := f.pushAs("alice", "team-a/app:v2")
			f.images["team-a/app:v2"] = img
			assert.Equal(t, img.digest.String(), f.imagesOf(t, "team-a/app")["v2"])
		}},
		{"alice", "finish her upload session in team-a/app (PATCH, GET, PUT)", func(t *testing.T, f *tenancy) {
			data := []byte("alice's chunked blob")
			path := f.uploads["team-a/app"]
			status, h, body := f.do("alice", http.MethodPatch, path, data, map[string]string{"Content-Type": "application/octet-stream"})
			require.Equal(t, http.StatusAccepted, status, "%s", body)
			next := h.Get("Location")
			if i := strings.Index(next, "/v2/"); i > 0 {
				next = next[i:]
			}
			status, h, _ = f.do("alice", http.MethodGet, next, nil, nil)
			require.Equal(t, http.StatusNoContent, status)
			assert.Equal(t, "0-19", h.Get("Range"))
			sep := "?"
			if strings.Contains(next, "?") {
				sep = "&"
			}
			status, _, body = f.do("alice", http.MethodPut, next+sep+"digest="+digest.FromBytes(data).String(), nil, nil)
			require.Equal(t, http.StatusCreated, status, "%s", body)
			assert.True(t, f.holds(t, "team-a/app", digest.FromBytes(data)))
			delete(f.uploads, "team-a/app")
		}},
		{"alice", "list team-a/app's tags and referrers", func(t *testing.T, f *tenancy) {
			tags, err := remote.List(f.ref("team-a/app:v1").Context(), f.remote("alice")...)
			require.NoError(t, err)
			sort.Strings(tags)
			assert.Equal(t, []string{"loopback", "v1", "v2"}, tags)
			status, _, body := f.do("alice", http.MethodGet, "/v2/team-a/app/referrers/"+appA.digest.String(), nil, nil)
			require.Equal(t, http.StatusOK, status, "%s", body)
		}},
		{"alice", "DELETE team-a/app:v2's manifest", func(t *testing.T, f *tenancy) {
			status, _, body := f.do("alice", http.MethodDelete, "/v2/team-a/app/manifests/"+f.images["team-a/app:v2"].digest.String(), nil, nil)
			require.Equal(t, http.StatusAccepted, status, "%s", body)
			assert.NotContains(t, f.imagesOf(t, "team-a/app"), "v2")
		}},
		{"alice", "push team-a/fresh:v1, made on push from team-a's template under team-a-key (kms:CreateGrant)", func(t *testing.T, f *tenancy) {
			f.images["team-a/fresh:v1"] = f.pushAs("alice", "team-a/fresh:v1")
			r := f.repository(t, "team-a/fresh")
			require.NotNil(t, r)
			assert.Equal(t, types.EncryptionTypeKms, r.EncryptionConfiguration.EncryptionType)
			assert.Equal(t, "team-a-key", aws.ToString(r.EncryptionConfiguration.KmsKey))
		}},
		{"alice", "mount shared/base's layer into team-a/app from the public repository", func(t *testing.T, f *tenancy) {
			status, _, body := f.do("alice", http.MethodPost, "/v2/team-a/app/blobs/uploads/?mount="+base.layer.String()+"&from=shared/base", nil, nil)
			require.Equal(t, http.StatusCreated, status, "%s", body)
			assert.True(t, f.holds(t, "team-a/app", base.layer))
		}},
		{"bob", "mount shared/base's layer into team-b/app from the public repository", func(t *testing.T, f *tenancy) {
			status, _, body := f.do("bob", http.MethodPost, "/v2/team-b/app/blobs/uploads/?mount="+base.layer.String()+"&from=shared/base", nil, nil)
			require.Equal(t, http.StatusCreated, status, "%s", body)
			assert.True(t, f.holds(t, "team-b/app", base.layer))
		}},
		{"alice", "DELETE the shared layer from team-a/app: team-b/app and shared/base keep theirs", func(t *testing.T, f *tenancy) {
			status, _, body := f.do("alice", http.MethodDelete, "/v2/team-a/app/blobs/"+base.layer.String(), nil, nil)
			require.Equal(t, http.StatusAccepted, status, "%s", body)
			assert.False(t, f.holds(t, "team-a/app", base.layer))
			assert.True(t, f.holds(t, "team-b/app", base.layer))
			assert.True(t, f.holds(t, "shared/base", base.layer))
		}},
		{"alice", "push into team-a/app an artifact whose subject is team-b/app:v1 (it refers from her repository only)", func(t *testing.T, f *tenancy) {
			empty := []byte("{}")
			status, _, body := f.do("alice", http.MethodPost, "/v2/team-a/app/blobs/uploads/?digest="+digest.FromBytes(empty).String(), empty,
				map[string]string{"Content-Type": "application/octet-stream"})
			require.Equal(t, http.StatusCreated, status, "%s", body)
			m, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
				"artifactType": "application/vnd.example.signature",
				"config":       map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest.FromBytes(empty), "size": 2},
				"layers":       []any{map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest.FromBytes(empty), "size": 2}},
				"subject":      map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": appB.digest, "size": len(appB.manifest)}})
			require.NoError(t, err)
			status, _, body = f.do("alice", http.MethodPut, "/v2/team-a/app/manifests/"+digest.FromBytes(m).String(), m, ociManifest)
			require.Equal(t, http.StatusCreated, status, "%s", body)
			status, _, body = f.do("alice", http.MethodGet, "/v2/team-a/app/referrers/"+appB.digest.String(), nil, nil)
			require.Equal(t, http.StatusOK, status, "%s", body)
			assert.Contains(t, string(body), digest.FromBytes(m).String())
		}},
		ecrCall("alice", "CreateRepository team-a/lab", func(t *testing.T, c *ecr.Client) {
			out, err := c.CreateRepository(tnCtx, &ecr.CreateRepositoryInput{RepositoryName: lab})
			require.NoError(t, err)
			labARN = out.Repository.RepositoryArn
			require.NotNil(t, f.repository(t, "team-a/lab"))
		}),
		{"alice", "mount team-a/app's layer into team-a/lab from team-a/app", func(t *testing.T, f *tenancy) {
			status, h, body := f.do("alice", http.MethodPost, "/v2/team-a/lab/blobs/uploads/?mount="+appA.layer.String()+"&from=team-a/app", nil, nil)
			require.Equal(t, http.StatusCreated, status, "%s", body)
			assert.Equal(t, appA.layer.String(), h.Get("Docker-Content-Digest"))
			assert.True(t, f.holds(t, "team-a/lab", appA.layer))
		}},
		ecrCall("alice", "TagResource team-a/lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.TagResource(tnCtx, &ecr.TagResourceInput{ResourceArn: labARN, Tags: []types.Tag{{Key: aws.String("purpose"), Value: aws.String("lab")}}})
			require.NoError(t, err)
			assert.Equal(t, "lab", f.tagsOf(t, "team-a/lab")["purpose"])
		}),
		ecrCall("alice", "ListTagsForResource team-a/lab", func(t *testing.T, c *ecr.Client) {
			out, err := c.ListTagsForResource(tnCtx, &ecr.ListTagsForResourceInput{ResourceArn: labARN})
			require.NoError(t, err)
			require.Len(t, out.Tags, 1)
		}),
		ecrCall("alice", "SetRepositoryPolicy team-a/lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.SetRepositoryPolicy(tnCtx, &ecr.SetRepositoryPolicyInput{RepositoryName: lab, PolicyText: aws.String(tnPolicyBobPullsApp)})
			require.NoError(t, err)
			got, err := f.ecr("admin").GetRepositoryPolicy(tnCtx, &ecr.GetRepositoryPolicyInput{RepositoryName: lab})
			require.NoError(t, err)
			assert.Contains(t, aws.ToString(got.PolicyText), "BobPullsApp")
		}),
		ecrCall("alice", "GetRepositoryPolicy team-a/lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.GetRepositoryPolicy(tnCtx, &ecr.GetRepositoryPolicyInput{RepositoryName: lab})
			require.NoError(t, err)
		}),
		ecrCall("alice", "PutLifecyclePolicy team-a/lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.PutLifecyclePolicy(tnCtx, &ecr.PutLifecyclePolicyInput{RepositoryName: lab, LifecyclePolicyText: expire})
			require.NoError(t, err)
			_, err = f.ecr("admin").GetLifecyclePolicy(tnCtx, &ecr.GetLifecyclePolicyInput{RepositoryName: lab})
			require.NoError(t, err)
		}),
		ecrCall("alice", "GetLifecyclePolicy team-a/lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.GetLifecyclePolicy(tnCtx, &ecr.GetLifecyclePolicyInput{RepositoryName: lab})
			require.NoError(t, err)
		}),
		ecrCall("alice", "StartLifecyclePolicyPreview and GetLifecyclePolicyPreview team-a/lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.StartLifecyclePolicyPreview(tnCtx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: lab})
			require.NoError(t, err)
			_, err = c.GetLifecyclePolicyPreview(tnCtx, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: lab})
			require.NoError(t, err)
		}),
		ecrCall("alice", "PutImageScanningConfiguration team-a/lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.PutImageScanningConfiguration(tnCtx, &ecr.PutImageScanningConfigurationInput{RepositoryName: lab,
				ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: false}})
			require.NoError(t, err)
			assert.False(t, f.repository(t, "team-a/lab").ImageScanningConfiguration.ScanOnPush)
		}),
		ecrCall("alice", "PutImageTagMutability team-a/lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.PutImageTagMutability(tnCtx, &ecr.PutImageTagMutabilityInput{RepositoryName: lab, ImageTagMutability: types.ImageTagMutabilityImmutable})
			require.NoError(t, err)
			assert.Equal(t, types.ImageTagMutabilityImmutable, f.repository(t, "team-a/lab").ImageTagMutability)
		}),
		ecrCall("alice", "layer upload and PutImage into team-a/lab with the ECR API", func(t *testing.T, c *ecr.Client) {
			labImage = tnNewImage(t, "team-a/lab")
			cfg, err := labImage.img.RawConfigFile()
			require.NoError(t, err)
			uploadViaECR(t, c, "team-a/lab", cfg)
			uploadViaECR(t, c, "team-a/lab", labImage.plain)
			_, err = c.PutImage(tnCtx, &ecr.PutImageInput{RepositoryName: lab, ImageTag: aws.String("v1"), ImageManifest: aws.String(string(labImage.manifest))})
			require.NoError(t, err)
			assert.Equal(t, labImage.digest.String(), f.imagesOf(t, "team-a/lab")["v1"])
		}),
		ecrCall("alice", "ListImages team-a/lab", func(t *testing.T, c *ecr.Client) {
			out, err := c.ListImages(tnCtx, &ecr.ListImagesInput{RepositoryName: lab})
			require.NoError(t, err)
			require.Len(t, out.ImageIds, 1)
		}),
		ecrCall("alice", "DescribeImages team-a/lab", func(t *testing.T, c *ecr.Client) {
			out, err := c.DescribeImages(tnCtx, &ecr.DescribeImagesInput{RepositoryName: lab})
			require.NoError(t, err)
			require.Len(t, out.ImageDetails, 1)
		}),
		ecrCall("alice", "BatchGetImage team-a/lab:v1", func(t *testing.T, c *ecr.Client) {
			out, err := c.BatchGetImage(tnCtx, &ecr.BatchGetImageInput{RepositoryName: lab, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
			require.NoError(t, err)
			require.Len(t, out.Images, 1)
			assert.Equal(t, string(labImage.manifest), aws.ToString(out.Images[0].ImageManifest))
		}),
		ecrCall("alice", "GetDownloadUrlForLayer team-a/lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.GetDownloadUrlForLayer(tnCtx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: lab, LayerDigest: aws.String(labImage.layer.String())})
			require.NoError(t, err)
		}),
		ecrCall("alice", "BatchDeleteImage team-a/lab:v1", func(t *testing.T, c *ecr.Client) {
			out, err := c.BatchDeleteImage(tnCtx, &ecr.BatchDeleteImageInput{RepositoryName: lab, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
			require.NoError(t, err)
			require.Empty(t, out.Failures)
			assert.Empty(t, f.imagesOf(t, "team-a/lab"))
		}),
		ecrCall("alice", "DeleteLifecyclePolicy team-a/lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.DeleteLifecyclePolicy(tnCtx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: lab})
			require.NoError(t, err)
			_, err = f.ecr("admin").GetLifecyclePolicy(tnCtx, &ecr.GetLifecyclePolicyInput{RepositoryName: lab})
			assert.True(t, tnIsAPIError(err, "LifecyclePolicyNotFoundException"), "%v", err)
		}),
		ecrCall("alice", "DeleteRepositoryPolicy team-a/lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.DeleteRepositoryPolicy(tnCtx, &ecr.DeleteRepositoryPolicyInput{RepositoryName: lab})
			require.NoError(t, err)
			_, err = f.ecr("admin").GetRepositoryPolicy(tnCtx, &ecr.GetRepositoryPolicyInput{RepositoryName: lab})
			assert.True(t, tnIsAPIError(err, "RepositoryPolicyNotFoundException"), "%v", err)
		}),
		ecrCall("alice", "UntagResource team-a/lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.UntagResource(tnCtx, &ecr.UntagResourceInput{ResourceArn: labARN, TagKeys: []string{"purpose"}})
			require.NoError(t, err)
			assert.Empty(t, f.tagsOf(t, "team-a/lab"))
		}),
		ecrCall("alice", "DeleteRepository team-a/lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.DeleteRepository(tnCtx, &ecr.DeleteRepositoryInput{RepositoryName: lab, Force: true})
			require.NoError(t, err)
			assert.Nil(t, f.repository(t, "team-a/lab"))
		}),
		{"alice", "preview a lifecycle policy of her own on team-a/app (admin API)", func(t *testing.T, f *tenancy) {
			status, _, body := f.do("alice", http.MethodPost, "/admin/v1/lifecycle/preview?repository=team-a/app",
				[]byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`), nil)
			require.Equal(t, http.StatusOK, status, "%s", body)
			require.True(t, json.Valid(body), "%s", body)
		}},
		ecrCall("bob", "CreateRepository team-b/sealed under team-b-key (kms:CreateGrant, kms:DescribeKey)", func(t *testing.T, c *ecr.Client) {
			_, err := c.CreateRepository(tnCtx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("team-b/sealed"),
				EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String("team-b-key")}})
			require.NoError(t, err)
			assert.Equal(t, "team-b-key", aws.ToString(f.repository(t, "team-b/sealed").EncryptionConfiguration.KmsKey))
		}),

		// The pull-through cache: the registry policy lets the teams fill it.
		{"alice", "pull hub/library/base:v1, filling the cache (registry policy TeamsFillTheCache)", func(t *testing.T, f *tenancy) {
			f.pulls(t, f.remote("alice"), "hub/library/base:v1", nil)
			require.NotNil(t, f.repository(t, "hub/library/base"), "the cache repository was made")
			// The first pull is answered while the image is stored in the
			// background: polled (the daemon's own work; no clock serves).
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if _, ok := f.imagesOf(t, "hub/library/base")["v1"]; ok {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			assert.Contains(t, f.imagesOf(t, "hub/library/base"), "v1")
		}},
		{"bob", "pull hub/library/base:v1 from the cache", func(t *testing.T, f *tenancy) {
			f.pulls(t, f.remote("bob"), "hub/library/base:v1", nil)
		}},

		// The administrator: every registry-level call.
		ecrCall("admin", "CreateRepositoryCreationTemplate lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.CreateRepositoryCreationTemplate(tnCtx, &ecr.CreateRepositoryCreationTemplateInput{Prefix: aws.String("lab"),
				AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush}})
			require.NoError(t, err)
			assert.Contains(t, f.templatePrefixes(t), "lab")
		}),
		ecrCall("admin", "UpdateRepositoryCreationTemplate lab", func(t *testing.T, c *ecr.Client) {
			// appliedFor is optional in ECR's UpdateRepositoryCreationTemplate;
			// Berth requires it (an ECR difference, not an access question).
			_, err := c.UpdateRepositoryCreationTemplate(tnCtx, &ecr.UpdateRepositoryCreationTemplateInput{Prefix: aws.String("lab"),
				AppliedFor: []types.RCTAppliedFor{types.RCTAppliedForCreateOnPush}, Description: aws.String("the lab's repositories")})
			require.NoError(t, err)
		}),
		ecrCall("admin", "DescribeRepositoryCreationTemplates", func(t *testing.T, c *ecr.Client) {
			out, err := c.DescribeRepositoryCreationTemplates(tnCtx, &ecr.DescribeRepositoryCreationTemplatesInput{Prefixes: []string{"lab"}})
			require.NoError(t, err)
			require.Len(t, out.RepositoryCreationTemplates, 1)
			assert.Equal(t, "the lab's repositories", aws.ToString(out.RepositoryCreationTemplates[0].Description))
		}),
		ecrCall("admin", "DeleteRepositoryCreationTemplate lab", func(t *testing.T, c *ecr.Client) {
			_, err := c.DeleteRepositoryCreationTemplate(tnCtx, &ecr.DeleteRepositoryCreationTemplateInput{Prefix: aws.String("lab")})
			require.NoError(t, err)
			assert.NotContains(t, f.templatePrefixes(t), "lab")
		}),
		ecrCall("admin", "CreatePullThroughCacheRule mirror", func(t *testing.T, c *ecr.Client) {
			_, err := c.CreatePullThroughCacheRule(tnCtx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("mirror"),
				UpstreamRegistryUrl: aws.String("http://" + f.upstream)})
			require.NoError(t, err)
		}),
		ecrCall("admin", "DescribePullThroughCacheRules", func(t *testing.T, c *ecr.Client) {
			out, err := c.DescribePullThroughCacheRules(tnCtx, &ecr.DescribePullThroughCacheRulesInput{})
			require.NoError(t, err)
			var prefixes []string
			for _, r := range out.PullThroughCacheRules {
				prefixes = append(prefixes, aws.ToString(r.EcrRepositoryPrefix))
			}
			sort.Strings(prefixes)
			assert.Equal(t, []string{"hub", "hub/evil", "mirror", "team-b"}, prefixes)
		}),
		ecrCall("admin", "DeletePullThroughCacheRule mirror", func(t *testing.T, c *ecr.Client) {
			_, err := c.DeletePullThroughCacheRule(tnCtx, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("mirror")})
			require.NoError(t, err)
			out, err := c.DescribePullThroughCacheRules(tnCtx, &ecr.DescribePullThroughCacheRulesInput{})
			require.NoError(t, err)
			assert.Len(t, out.PullThroughCacheRules, 3)
		}),
		ecrCall("admin", "GetRegistryPolicy", func(t *testing.T, c *ecr.Client) {
			out, err := c.GetRegistryPolicy(tnCtx, &ecr.GetRegistryPolicyInput{})
			require.NoError(t, err)
			assert.Equal(t, tnRegistryPolicy, aws.ToString(out.PolicyText))
		}),
		ecrCall("admin", "DeleteRegistryPolicy, then PutRegistryPolicy back", func(t *testing.T, c *ecr.Client) {
			_, err := c.DeleteRegistryPolicy(tnCtx, &ecr.DeleteRegistryPolicyInput{})
			require.NoError(t, err)
			_, err = c.GetRegistryPolicy(tnCtx, &ecr.GetRegistryPolicyInput{})
			require.True(t, tnIsAPIError(err, "RegistryPolicyNotFoundException"), "%v", err)
			_, err = c.PutRegistryPolicy(tnCtx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(tnRegistryPolicy)})
			require.NoError(t, err)
			out, err := c.GetRegistryPolicy(tnCtx, &ecr.GetRegistryPolicyInput{})
			require.NoError(t, err)
			assert.Equal(t, tnRegistryPolicy, aws.ToString(out.PolicyText))
		}),
		ecrCall("admin", "DescribeRegistry", func(t *testing.T, c *ecr.Client) {
			out, err := c.DescribeRegistry(tnCtx, &ecr.DescribeRegistryInput{})
			require.NoError(t, err)
			assert.Equal(t, tnAccount, aws.ToString(out.RegistryId))
		}),
		ecrCall("admin", "GetAuthorizationToken, then pull team-b/app with the token", func(t *testing.T, c *ecr.Client) {
			out, err := c.GetAuthorizationToken(tnCtx, &ecr.GetAuthorizationTokenInput{})
			require.NoError(t, err)
			f.pulls(t, f.remoteToken(tnTokenPassword(t, out)), "team-b/app:v1", appB)
		}),
		ecrCall("admin", "DescribeRepositories (every repository)", func(t *testing.T, c *ecr.Client) {
			out, err := c.DescribeRepositories(tnCtx, &ecr.DescribeRepositoriesInput{})
			require.NoError(t, err)
			assert.GreaterOrEqual(t, len(out.Repositories), 12)
		}),
		{"admin", "list the catalog (every repository)", func(t *testing.T, f *tenancy) {
			got := f.catalog("admin")
			require.Equal(t, http.StatusOK, got.Status)
			listed := strings.Split(strings.Trim(got.Msg, "[]"), ",")
			for _, repo := range []string{"team-a/app", "team-a/secret", "team-b/app", "shared/base", "hub/library/base", "home/alice/app"} {
				assert.Contains(t, listed, repo)
			}
		}},
		{"admin", "POST /admin/v1/gc?dry-run=true", func(t *testing.T, f *tenancy) {
			status, _, body := f.do("admin", http.MethodPost, "/admin/v1/gc?dry-run=true", nil, nil)
			require.Equal(t, http.StatusOK, status, "%s", body)
			require.True(t, json.Valid(body))
		}},
		{"admin", "POST /admin/v1/fsck", func(t *testing.T, f *tenancy) {
			status, _, body := f.do("admin", http.MethodPost, "/admin/v1/fsck", nil, nil)
			require.Equal(t, http.StatusOK, status, "%s", body)
			require.True(t, json.Valid(body))
		}},
		{"admin", "POST /admin/v1/lifecycle/preview on team-b/app", func(t *testing.T, f *tenancy) {
			status, _, body := f.do("admin", http.MethodPost, "/admin/v1/lifecycle/preview?repository=team-b/app", nil, nil)
			require.Equal(t, http.StatusOK, status, "%s", body)
		}},
		{"admin", "POST /admin/v1/iam/simulate: mallory's push to team-a/inbox", func(t *testing.T, f *tenancy) {
			status, _, body := f.do("admin", http.MethodPost, "/admin/v1/iam/simulate",
				[]byte(`{"user":"mallory","action":"ecr:PutImage","repository":"team-a/inbox"}`), nil)
			require.Equal(t, http.StatusOK, status, "%s", body)
			var out struct{ Decision, Reason string }
			require.NoError(t, json.Unmarshal(body, &out))
			assert.Equal(t, "Allow", out.Decision)
			assert.Contains(t, out.Reason, "OutsiderDropsOff")
		}},
		{"admin", "POST /admin/v1/iam/reload", func(t *testing.T, f *tenancy) {
			status, _, body := f.do("admin", http.MethodPost, "/admin/v1/iam/reload", nil, nil)
			require.Equal(t, http.StatusOK, status, "%s", body)
		}},
		{"admin", "GET /admin/v1/audit", func(t *testing.T, f *tenancy) {
			status, h, body := f.do("admin", http.MethodGet, "/admin/v1/audit?limit=3", nil, nil)
			require.Equal(t, http.StatusOK, status, "%s", body)
			assert.Equal(t, "application/x-ndjson", h.Get("Content-Type"))
			assert.Len(t, bytes.Split(bytes.TrimSpace(body), []byte("\n")), 3)
		}},
	}
}

// templatePrefixes are the creation templates' prefixes, as the
// administrator sees them.
func (f *tenancy) templatePrefixes(t *testing.T) []string {
	t.Helper()
	out, err := f.ecr("admin").DescribeRepositoryCreationTemplates(tnCtx, &ecr.DescribeRepositoryCreationTemplatesInput{})
	require.NoError(t, err)
	var p []string
	for _, tp := range out.RepositoryCreationTemplates {
		p = append(p, aws.ToString(tp.Prefix))
	}
	return p
}
