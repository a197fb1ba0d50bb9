package console

// The lifecycle policy editor, with the engine's preview of what the
// policy being edited would expire, side by side.

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// maxPolicyForm bounds a posted form (ECR's policies are at most 30 KiB).
const maxPolicyForm = 64 << 10

// lifecycleData is the editor's.
type lifecycleData struct {
	Repo    string
	Policy  string
	Preview previewData
	CanSave bool
	// CanPreview: the caller may ask previews.
	CanPreview bool
	Message    string
	Error      string
}

// previewData is the preview pane's.
type previewData struct {
	Asked   bool
	Error   string
	Expired []engine.Expiry
}

func previewAccess(repo string) []authz.Access {
	return []authz.Access{
		{Action: authz.StartLifecyclePolicyPreview, Resource: authz.Repository(repo)},
		{Action: authz.GetLifecyclePolicyPreview, Resource: authz.Repository(repo)},
	}
}

func (c *Console) lifecyclePage(w http.ResponseWriter, r *http.Request, v *visit) error {
	repo := r.URL.Query().Get("repo")
	if err := engine.ValidateRepositoryName(repo); err != nil {
		return err
	}
	if err := c.require(r, v, one(authz.GetLifecyclePolicy, authz.Repository(repo))); err != nil {
		return err
	}
	policy, err := c.store.GetLifecyclePolicy(r.Context(), repo)
	if err != nil && !errors.Is(err, engine.ErrLifecyclePolicyNotFound) {
		return err
	}
	d := c.lifecycleData(r, v, repo, policy)
	d.Message = v.session.takeFlash()
	c.render(w, r, v, http.StatusOK, "lifecycle", "Lifecycle policy of "+repo, d)
	return nil
}

// lifecycleData fills the editor for policy, with its preview when the
// caller may ask one.
func (c *Console) lifecycleData(r *http.Request, v *visit, repo, policy string) lifecycleData {
	d := lifecycleData{Repo: repo, Policy: policy,
		CanSave:    c.can(r, v, one(authz.PutLifecyclePolicy, authz.Repository(repo))),
		CanPreview: c.can(r, v, previewAccess(repo)),
	}
	if d.CanPreview {
		d.Preview = c.preview(r, repo, policy)
	}
	return d
}

// preview evaluates policy on repo now (nothing changes).
func (c *Console) preview(r *http.Request, repo, policy string) previewData {
	if policy == "" {
		return previewData{}
	}
	exp, err := c.store.LifecyclePreview(r.Context(), repo, policy)
	if err != nil {
		if errors.Is(err, engine.ErrInvalidArgument) || errors.Is(err, engine.ErrInvalidPolicy) {
			return previewData{Asked: true, Error: err.Error()}
		}
		_, msg := statusOf(err)
		return previewData{Asked: true, Error: msg}
	}
	return previewData{Asked: true, Expired: exp}
}

func (c *Console) saveLifecycle(w http.ResponseWriter, r *http.Request, v *visit) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxPolicyForm)
	repo := r.PostFormValue("repo")
	if err := engine.ValidateRepositoryName(repo); err != nil {
		return err
	}
	if err := c.require(r, v, one(authz.PutLifecyclePolicy, authz.Repository(repo))); err != nil {
		return err
	}
	policy := r.PostFormValue("policy")
	if err := c.store.PutLifecyclePolicy(r.Context(), repo, policy); err != nil {
		if !errors.Is(err, engine.ErrInvalidArgument) {
			return err
		}
		d := c.lifecycleData(r, v, repo, policy)
		d.Error = err.Error()
		c.render(w, r, v, http.StatusBadRequest, "lifecycle", "Lifecycle policy of "+repo, d)
		return nil
	}
	v.session.setFlash("Lifecycle policy saved.")
	http.Redirect(w, r, Prefix+"lifecycle?repo="+url.QueryEscape(repo), http.StatusSeeOther)
	return nil
}

// previewLifecycle previews the posted policy: the whole editor, or only
// the preview pane for the script (X-Console-Fragment: preview).
func (c *Console) previewLifecycle(w http.ResponseWriter, r *http.Request, v *visit) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxPolicyForm)
	repo := r.PostFormValue("repo")
	if err := engine.ValidateRepositoryName(repo); err != nil {
		return err
	}
	if err := c.require(r, v, previewAccess(repo)); err != nil {
		return err
	}
	policy := r.PostFormValue("policy")
	p := c.preview(r, repo, policy)
	if r.Header.Get("X-Console-Fragment") == "preview" {
		c.renderFragment(w, http.StatusOK, "lifecycle", "preview", p)
		return nil
	}
	d := lifecycleData{Repo: repo, Policy: policy, Preview: p, CanPreview: true,
		CanSave: c.can(r, v, one(authz.PutLifecyclePolicy, authz.Repository(repo)))}
	c.render(w, r, v, http.StatusOK, "lifecycle", "Lifecycle policy of "+repo, d)
	return nil
}
