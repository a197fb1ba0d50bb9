package console

// An image's scan findings (the engine's scan records), as
// DescribeImageScanFindings shows them.

import (
	"errors"
	"net/http"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// scanData is the findings page's.
type scanData struct {
	Repo, Ref string
	Scan      *engine.ImageScan
	None      bool
}

func (c *Console) scanPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	q := r.URL.Query()
	repo, ref := q.Get("repo"), q.Get("ref")
	if err := engine.ValidateRepositoryName(repo); err != nil {
		return err
	}
	if ref == "" {
		return badRequest("no image reference")
	}
	if err := c.require(r, v, one(authz.DescribeImageScanFindings, authz.Repository(repo))); err != nil {
		return err
	}
	d := scanData{Repo: repo, Ref: ref}
	s, err := c.store.ImageScan(r.Context(), repo, ref, true)
	switch {
	case errors.Is(err, engine.ErrScanNotFound):
		d.None = true
	case err != nil:
		return err
	default:
		d.Scan = s
	}
	c.render(w, r, v, http.StatusOK, "scan", "Scan findings of "+repo+":"+ref, d)
	return nil
}
