package console

// The repository list: search, sort by name, size or last push, pages of
// 50, and each repository's settings at a glance. It shows what the
// catalog and DescribeRepositories show: the repositories the caller may
// ecr:DescribeRepositories, asked together (authz.Listing).

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// pageSize is the rows of a page of the repository list and of a
// repository's images.
const pageSize = 50

// repositoriesData is the repository list's.
type repositoriesData struct {
	Query, Sort      string
	Rows             []repositoryRow
	Total            int
	Page, Pages      int
	PrevURL, NextURL string
}

// repositoryRow is one repository of the list.
type repositoryRow struct {
	Name       string
	Summary    repoSummary
	Mutability string
	Key        string
	ScanOnPush bool
	Lifecycle  bool
	Tags       []engine.ResourceTag
	CreatedAt  time.Time
}

func (c *Console) repositoriesPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	ctx := r.Context()
	q := r.URL.Query()
	query := strings.TrimSpace(q.Get("q"))
	sortBy := q.Get("sort")
	switch sortBy {
	case "name", "size", "pushed":
	default:
		sortBy = "name"
	}
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)

	names, err := c.store.ListRepositories(ctx, "", 0)
	if err != nil {
		return err
	}
	if query != "" {
		lq := strings.ToLower(query)
		names = slices.DeleteFunc(names, func(n string) bool { return !strings.Contains(n, lq) })
	}
	listing := authz.NewListing(c.az, v.who, authz.DescribeRepositories)
	res := make([]authz.Resource, len(names))
	for i, n := range names {
		res[i] = authz.Repository(n)
	}
	visible, err := listing.Visible(ctx, res)
	if err != nil {
		return err
	}
	shown := names[:0]
	for i, n := range names {
		if visible[i] {
			shown = append(shown, n)
		}
	}
	if err := listing.Record(ctx, len(shown)); err != nil {
		return err
	}

	var sums map[string]repoSummary
	if sortBy != "name" {
		sums = c.summaries.get(ctx, shown, false)
		slices.SortStableFunc(shown, func(a, b string) int {
			sa, sb := sums[a], sums[b]
			if sortBy == "size" {
				return cmpDesc(sa.Size, sb.Size)
			}
			return sb.LastPush.Compare(sa.LastPush)
		})
	}
	pages := max((len(shown)+pageSize-1)/pageSize, 1)
	page = min(page, pages)
	from := (page - 1) * pageSize
	rowsOf := shown[from:min(from+pageSize, len(shown))]
	fresh := c.summaries.get(ctx, rowsOf, true)
	d := repositoriesData{Query: query, Sort: sortBy, Total: len(shown), Page: page, Pages: pages}
	for _, n := range rowsOf {
		repo, err := c.store.Repository(ctx, n)
		if err != nil {
			continue // deleted meanwhile
		}
		key := repo.Encryption.KMSKey
		if key == "" {
			key = engine.DefaultKeyName
		}
		d.Rows = append(d.Rows, repositoryRow{
			Name: n, Summary: fresh[n], Mutability: mutability(repo.TagMutability), Key: key,
			ScanOnPush: repo.ScanOnPush, Lifecycle: repo.LifecyclePolicy != "", Tags: repo.ResourceTags, CreatedAt: repo.CreatedAt,
		})
	}
	link := func(p int) string {
		u := Prefix + "repositories?sort=" + sortBy + "&page=" + strconv.Itoa(p)
		if query != "" {
			u += "&q=" + url.QueryEscape(query)
		}
		return u
	}
	if page > 1 {
		d.PrevURL = link(page - 1)
	}
	if page < pages {
		d.NextURL = link(page + 1)
	}
	c.render(w, r, v, http.StatusOK, "repositories", "Repositories", d)
	return nil
}

func cmpDesc(a, b int64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// mutability is a tag mutability setting's name ("" is MUTABLE).
func mutability(m string) string {
	if m == "" {
		return engine.TagMutable
	}
	return m
}
