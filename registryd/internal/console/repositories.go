package console

// The repository list: search, sort by name, size or last push, pages of
// 50, and each repository's settings at a glance. It shows what the
// catalog and DescribeRepositories show: the repositories the caller may
// ecr:DescribeRepositories, asked together (authz.Listing).

import (
	"context"
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
	Query, Sort string
	Rows        []repositoryRow
	// Total and Pages are known when every name was asked about (the
	// last page, or a list shorter than a page); 0 otherwise.
	Total, Pages     int
	Page             int
	More             bool
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

	// The names in the order shown, the same for every caller (at most
	// a second old).
	names, err := c.summaries.sorted(ctx, sortBy)
	if err != nil {
		return err
	}
	if query != "" {
		lq := strings.ToLower(query)
		names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !strings.Contains(n, lq) })
	}
	// A page needs only the names up to it: ask about them a growing
	// chunk at a time, until the page and one more name (is there a
	// next page?) are found.
	listing := authz.NewListing(c.az, v.who, authz.DescribeRepositories)
	d := repositoriesData{Query: query, Sort: sortBy, Page: page}
	shown, asked, err := visibleUpTo(ctx, listing, names, page*pageSize+1)
	if err != nil {
		return err
	}
	if asked == len(names) {
		d.Total = len(shown)
		d.Pages = max((len(shown)+pageSize-1)/pageSize, 1)
		d.Page = min(d.Page, d.Pages)
	}
	from := min((d.Page-1)*pageSize, len(shown))
	rowsOf := shown[from:min(from+pageSize, len(shown))]
	d.More = len(shown) > d.Page*pageSize
	if err := listing.Record(ctx, len(rowsOf)); err != nil {
		return err
	}
	fresh := c.summaries.get(ctx, rowsOf, true)
	for i, n := range rowsOf {
		repo, err := c.store.Repository(ctx, n)
		if err != nil {
			continue // deleted meanwhile
		}
		key := repo.Encryption.KMSKey
		if key == "" {
			key = engine.DefaultKeyName
		}
		d.Rows = append(d.Rows, repositoryRow{
			Name: n, Summary: fresh[i], Mutability: mutability(repo.TagMutability), Key: key,
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
	if d.Page > 1 {
		d.PrevURL = link(d.Page - 1)
	}
	if d.More {
		d.NextURL = link(d.Page + 1)
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

// visibleUpTo asks listing about names, a growing chunk at a time, until
// want of them are visible or all were asked; it returns the visible
// ones and how many names it asked about.
func visibleUpTo(ctx context.Context, listing *authz.Listing, names []string, want int) ([]string, int, error) {
	var shown []string
	asked := 0
	chunk := 256
	for asked < len(names) && len(shown) < want {
		part := names[asked:min(asked+chunk, len(names))]
		res := make([]authz.Resource, len(part))
		for i, n := range part {
			res[i] = authz.Repository(n)
		}
		visible, err := listing.Visible(ctx, res)
		if err != nil {
			return nil, asked, err
		}
		for i, n := range part {
			if visible[i] {
				shown = append(shown, n)
			}
		}
		asked += len(part)
		chunk *= 2
	}
	return shown, asked, nil
}
