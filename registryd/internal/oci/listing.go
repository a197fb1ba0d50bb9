package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// maxPageSize bounds n of a tags or catalog page.
const maxPageSize = 10000

// pageParams parses n and last. n is -1 when absent.
func pageParams(q url.Values) (n int, last string, err error) {
	last = q.Get("last")
	n = -1
	if v := q.Get("n"); v != "" {
		n, err = strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, "", NewError(CodeInvalidArgument, "n must be a non-negative integer", map[string]string{"n": truncate(v, 50)})
		}
		n = min(n, maxPageSize)
	}
	return n, last, nil
}

// page fetches one page with list, asking one more than n to learn
// whether a next page exists.
func page(n int, list func(n int) ([]string, error)) (items []string, more bool, err error) {
	ask := 0
	if n >= 0 {
		ask = n + 1
	}
	items, err = list(ask)
	if err != nil {
		return nil, false, err
	}
	if n >= 0 && len(items) > n {
		return items[:n], true, nil
	}
	if items == nil {
		items = []string{}
	}
	return items, false, nil
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
	return nil
}

// nextLink sets the Link header of a paginated answer.
func nextLink(w http.ResponseWriter, path string, n int, last string) {
	q := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	w.Header().Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
}

// tagsList serves GET /v2/<name>/tags/list?n=&last=.
func (a *API) tagsList(w http.ResponseWriter, r *http.Request, rt route) error {
	n, last, err := pageParams(r.URL.Query())
	if err != nil {
		return err
	}
	tags, more, err := page(n, func(k int) ([]string, error) {
		if k == 1 && n == 0 {
			// n=0: an empty page, but a NAME_UNKNOWN still applies.
			_, err := a.listings.ListTags(r.Context(), rt.name, last, 1)
			return []string{}, err
		}
		return a.listings.ListTags(r.Context(), rt.name, last, k)
	})
	if err != nil {
		return err
	}
	if more && len(tags) > 0 {
		nextLink(w, "/v2/"+rt.name+"/tags/list", n, tags[len(tags)-1])
	}
	return writeJSON(w, r, http.StatusOK, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.name, tags})
}

// catalogBatch is how many repository names the catalog reads from the
// store at a time while it looks for the ones the caller may see.
const catalogBatch = 1000

// catalog serves GET /v2/_catalog?n=&last=: the repositories the caller
// may ecr:DescribeRepositories, each decided by the Authorizer, paged
// over that filtered list (n and last, and the Link to the next page,
// count only what the caller sees).
func (a *API) catalog(w http.ResponseWriter, r *http.Request, _ route) error {
	n, last, err := pageParams(r.URL.Query())
	if err != nil {
		return err
	}
	listing := authz.NewListing(a.authz, caller(r.Context()), authz.DescribeRepositories)
	repos, more, err := a.visibleRepositories(r.Context(), listing, last, n)
	if err != nil {
		return err
	}
	if who := caller(r.Context()); len(repos) == 0 && last == "" && who.Anonymous() && a.authn.Enabled() {
		// An anonymous caller who may see nothing is asked for
		// credentials (401 and the challenge), as for any refusal; each
		// repository hidden has its denial recorded.
		return fmt.Errorf("%w: the catalog lists nothing an anonymous caller may see", engine.ErrAccessDenied)
	}
	if err := listing.Record(r.Context(), len(repos)); err != nil {
		return err
	}
	if more && len(repos) > 0 {
		nextLink(w, "/v2/_catalog", n, repos[len(repos)-1])
	}
	return writeJSON(w, r, http.StatusOK, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

// visibleRepositories returns up to n (all when n < 0) repositories after
// last that the listing's caller may describe, and whether more follow.
func (a *API) visibleRepositories(ctx context.Context, listing *authz.Listing, last string, n int) ([]string, bool, error) {
	out := []string{}
	if n == 0 {
		return out, false, nil
	}
	cursor := last
	for {
		names, err := a.listings.ListRepositories(ctx, cursor, catalogBatch)
		if err != nil {
			return nil, false, err
		}
		// Ask about as many as the page may still take, and one more
		// (whether more follow): no question about a repository the
		// answer does not reach.
		for rest := names; len(rest) > 0; {
			ask := rest
			if n >= 0 && len(ask) > n-len(out)+1 {
				ask = ask[:n-len(out)+1]
			}
			rest = rest[len(ask):]
			resources := make([]authz.Resource, len(ask))
			for i, name := range ask {
				resources[i] = authz.Repository(name)
			}
			visible, err := listing.Visible(ctx, resources)
			if err != nil {
				return nil, false, err
			}
			for i, name := range ask {
				if !visible[i] {
					continue // not this caller's to see
				}
				if n >= 0 && len(out) == n {
					return out, true, nil
				}
				out = append(out, name)
			}
		}
		if len(names) < catalogBatch {
			return out, false, nil
		}
		cursor = names[len(names)-1]
	}
}

// ociIndexMediaType is the media type of the referrers answer.
const ociIndexMediaType = "application/vnd.oci.image.index.v1+json"

// referrers serves GET /v2/<name>/referrers/<digest>?artifactType=.
func (a *API) referrers(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	at := r.URL.Query().Get("artifactType")
	refs, err := a.listings.Referrers(r.Context(), rt.name, d, at)
	// An unknown subject, or a repository that does not exist yet, has
	// no referrers: the spec answers an empty index, not an error.
	if err != nil && !errors.Is(err, engine.ErrManifestUnknown) && !errors.Is(err, engine.ErrNameUnknown) {
		return err
	}
	if refs == nil {
		refs = []engine.Referrer{}
	}
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, r, http.StatusOK, ociIndexMediaType, struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     []engine.Referrer `json:"manifests"`
	}{2, ociIndexMediaType, refs})
}
