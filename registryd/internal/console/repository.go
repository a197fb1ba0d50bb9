package console

// A repository: its settings and its images (tags, digests, platforms,
// sizes, pushed and last-pulled times, referrers), with delete and tag
// where the caller's policies allow them.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// repositoryData is the repository page's.
type repositoryData struct {
	Repo        repositoryRow
	Policy      string
	Images      []imageRow
	Page, Pages int
	PrevURL     string
	NextURL     string
	// What the caller may do, asked before the buttons are drawn.
	CanPull, CanDelete, CanTag, CanLifecycle, CanScan bool
	Message                                           string
}

// imageRow is one image of a repository.
type imageRow struct {
	engine.ImageDetail
	Platforms []string
	Index     bool
	Referrers []engine.ImageDetail
}

func (c *Console) repositoryPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	ctx := r.Context()
	name := r.URL.Query().Get("name")
	if err := engine.ValidateRepositoryName(name); err != nil {
		return err
	}
	if err := c.require(r, v, []authz.Access{
		{Action: authz.DescribeRepositories, Resource: authz.Repository(name)},
		{Action: authz.DescribeImages, Resource: authz.Repository(name)},
	}); err != nil {
		return err
	}
	repo, err := c.store.Repository(ctx, name)
	if err != nil {
		return err
	}
	imgs, err := c.store.Images(ctx, name)
	if err != nil {
		return err
	}
	d := repositoryData{
		CanPull:      c.can(r, v, pullAccess(name)),
		CanDelete:    c.can(r, v, one(authz.BatchDeleteImage, authz.Repository(name))),
		CanTag:       c.can(r, v, []authz.Access{{Action: authz.PutImage, Resource: authz.Repository(name)}, {Action: authz.BatchGetImage, Resource: authz.Repository(name)}}),
		CanLifecycle: c.can(r, v, one(authz.GetLifecyclePolicy, authz.Repository(name))),
		CanScan:      c.can(r, v, one(authz.DescribeImageScanFindings, authz.Repository(name))),
		Message:      v.session.takeFlash(),
	}
	key := repo.Encryption.KMSKey
	if key == "" {
		key = engine.DefaultKeyName
	}
	var sum repoSummary
	byParent := map[digest.Digest][]engine.ImageDetail{}
	var rows []imageRow
	for _, im := range imgs {
		if im.Subject != "" {
			byParent[im.Subject] = append(byParent[im.Subject], im)
			continue
		}
		sum.Images++
		if !isIndex(im.MediaType) {
			sum.Size += im.Size
		}
		if im.PushedAt.After(sum.LastPush) {
			sum.LastPush = im.PushedAt
		}
		rows = append(rows, imageRow{ImageDetail: im, Index: isIndex(im.MediaType)})
	}
	d.Repo = repositoryRow{Name: name, Summary: sum, Mutability: mutability(repo.TagMutability), Key: key,
		ScanOnPush: repo.ScanOnPush, Lifecycle: repo.LifecyclePolicy != "", Tags: repo.ResourceTags, CreatedAt: repo.CreatedAt}
	if d.CanLifecycle {
		d.Policy = repo.LifecyclePolicy
	}
	// Newest push first; tagged before untagged children of indexes.
	slices.SortStableFunc(rows, func(a, b imageRow) int { return b.PushedAt.Compare(a.PushedAt) })
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	d.Pages = max((len(rows)+pageSize-1)/pageSize, 1)
	d.Page = min(max(page, 1), d.Pages)
	from := (d.Page - 1) * pageSize
	rows = rows[from:min(from+pageSize, len(rows))]
	for i := range rows {
		rows[i].Referrers = byParent[rows[i].Digest]
		if d.CanPull {
			rows[i].Platforms = c.platforms(r, name, rows[i].Digest, rows[i].Index)
		}
	}
	d.Images = rows
	link := func(p int) string {
		return Prefix + "repository?name=" + url.QueryEscape(name) + "&page=" + strconv.Itoa(p)
	}
	if d.Page > 1 {
		d.PrevURL = link(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.NextURL = link(d.Page + 1)
	}
	c.render(w, r, v, http.StatusOK, "repository", name, d)
	return nil
}

// platforms reads an image's platform from its config (os/arch), or an
// index's from its manifest list; nothing when it cannot.
func (c *Console) platforms(r *http.Request, repo string, d digest.Digest, index bool) []string {
	m, err := c.store.InspectManifest(r.Context(), repo, string(d))
	if err != nil {
		return nil
	}
	if index {
		var idx struct {
			Manifests []struct {
				Platform *platform `json:"platform"`
			} `json:"manifests"`
		}
		if json.Unmarshal(m.Payload, &idx) != nil {
			return nil
		}
		var out []string
		for _, c := range idx.Manifests {
			if c.Platform != nil && c.Platform.OS != "unknown" {
				out = append(out, c.Platform.String())
			}
		}
		return out
	}
	cfg, err := c.readConfig(r, repo, m.Payload, 64<<10)
	if err != nil || cfg.OS == "" {
		return nil
	}
	return []string{cfg.platform().String()}
}

// platform is an OCI platform.
type platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

func (p platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// deleteImage deletes one image (ecr:BatchDeleteImage), by digest.
func (c *Console) deleteImage(w http.ResponseWriter, r *http.Request, v *visit) error {
	name := r.PostFormValue("repo")
	if err := engine.ValidateRepositoryName(name); err != nil {
		return err
	}
	d, err := engine.ParseDigest(r.PostFormValue("digest"))
	if err != nil {
		return err
	}
	if err := c.require(r, v, one(authz.BatchDeleteImage, authz.Repository(name))); err != nil {
		return err
	}
	if err := c.store.DeleteImage(r.Context(), name, d); err != nil {
		return err
	}
	v.session.setFlash("Deleted " + string(d) + ".")
	http.Redirect(w, r, Prefix+"repository?name="+url.QueryEscape(name), http.StatusSeeOther)
	return nil
}

// tagImage puts a tag on an image, as retagging with ECR's PutImage does
// (ecr:PutImage, and ecr:BatchGetImage to read the manifest it puts).
func (c *Console) tagImage(w http.ResponseWriter, r *http.Request, v *visit) error {
	name := r.PostFormValue("repo")
	if err := engine.ValidateRepositoryName(name); err != nil {
		return err
	}
	d, err := engine.ParseDigest(r.PostFormValue("digest"))
	if err != nil {
		return err
	}
	tag := r.PostFormValue("tag")
	if err := engine.ValidateTag(tag); err != nil {
		return err
	}
	if err := c.require(r, v, []authz.Access{
		{Action: authz.BatchGetImage, Resource: authz.Repository(name)},
		{Action: authz.PutImage, Resource: authz.Repository(name)},
	}); err != nil {
		return err
	}
	m, err := c.store.InspectManifest(r.Context(), name, string(d))
	if err != nil {
		return err
	}
	if _, err := c.store.PutManifest(r.Context(), name, tag, m.MediaType, m.Payload); err != nil {
		return err
	}
	v.session.setFlash("Tagged " + shortDigest(d) + " as " + tag + ".")
	http.Redirect(w, r, Prefix+"repository?name="+url.QueryEscape(name), http.StatusSeeOther)
	return nil
}
