package admin

// Repositories, live: create, describe, list and delete, authorized with
// ECR's action names (ecr:CreateRepository, and kms:CreateGrant and
// kms:DescribeKey on a KMS key, as ECR's CreateRepository asks;
// ecr:DescribeRepositories; ecr:DeleteRepository), so that one policy
// governs a repository whichever API creates or deletes it.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/oci"
)

// RepositoryStore is the role of the store that the repository
// operations drive.
type RepositoryStore interface {
	CreateRepository(ctx context.Context, name string, s engine.RepositorySettings) (*engine.Repository, error)
	Repository(ctx context.Context, name string) (*engine.Repository, error)
	ListRepositories(ctx context.Context, last string, n int) ([]string, error)
	DeleteRepository(ctx context.Context, name string, force bool) error
}

var _ RepositoryStore = (*engine.Engine)(nil)

// RepositoryParam is the repository operations' query parameter naming
// the repository.
const RepositoryParam = "name"

// listBatch is how many repository names a listing reads at a time.
const listBatch = 1000

func init() {
	addOperations(map[string]operation{
		"repositories":          {access: onRegistry(authz.DescribeRepositories), method: http.MethodGet, run: (*API).listRepositories},
		"repositories/describe": {access: onRepository(authz.DescribeRepositories), method: http.MethodGet, run: (*API).describeRepository},
		"repositories/create":   {access: creationAccess, run: (*API).createRepository},
		"repositories/delete":   {access: onRepository(authz.DeleteRepository), run: (*API).deleteRepository},
	})
}

// repositoryName is the repository the request names, validated before
// any decision is asked about it.
func repositoryName(r *http.Request) (string, error) {
	name := r.URL.Query().Get(RepositoryParam)
	if name == "" {
		return "", oci.NewError(oci.CodeInvalidArgument, RepositoryParam+" is required: the repository's name", nil)
	}
	if err := engine.ValidateRepositoryName(name); err != nil {
		return "", oci.NewError(oci.CodeNameInvalid, err.Error(), nil)
	}
	return name, nil
}

// onRepository is the access of action on the repository the name
// parameter names.
func onRepository(action authz.Action) func(*API, *http.Request, []byte) ([]authz.Access, error) {
	return func(_ *API, r *http.Request, _ []byte) ([]authz.Access, error) {
		name, err := repositoryName(r)
		if err != nil {
			return nil, err
		}
		return []authz.Access{{Action: action, Resource: authz.Repository(name)}}, nil
	}
}

// repositorySettings decodes the settings of a repository to create:
// engine.RepositorySettings as JSON, every field known (none: the
// defaults).
func repositorySettings(body []byte) (engine.RepositorySettings, error) {
	var s engine.RepositorySettings
	if len(bytes.TrimSpace(body)) == 0 {
		return s, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, oci.NewError(oci.CodeInvalidArgument, "the repository's settings are not JSON of the documented shape: "+err.Error(), nil)
	}
	return s, nil
}

// creationAccess is what creating a repository asks: ECR's
// CreateRepository access (with the settings' tags and KMS key), and the
// policy actions of the policies the settings set with it
// (ecr:PutLifecyclePolicy, ecr:SetRepositoryPolicy), which ECR's
// CreateRepository cannot set.
func creationAccess(_ *API, r *http.Request, body []byte) ([]authz.Access, error) {
	name, err := repositoryName(r)
	if err != nil {
		return nil, err
	}
	s, err := repositorySettings(body)
	if err != nil {
		return nil, err
	}
	access := authz.CreationAccess(name, s)
	if s.LifecyclePolicy != "" {
		access = append(access, authz.Access{Action: authz.PutLifecyclePolicy, Resource: authz.Repository(name)})
	}
	if s.RepositoryPolicy != "" {
		access = append(access, authz.Access{Action: authz.SetRepositoryPolicy, Resource: authz.Repository(name)})
	}
	return access, nil
}

// createRepository serves POST repositories/create?name=, the settings in
// the body.
func (a *API) createRepository(r *http.Request, body []byte) (any, error) {
	name, err := repositoryName(r)
	if err != nil {
		return nil, err
	}
	s, err := repositorySettings(body)
	if err != nil {
		return nil, err
	}
	return a.store.CreateRepository(r.Context(), name, s)
}

// describeRepository serves GET repositories/describe?name=.
func (a *API) describeRepository(r *http.Request, _ []byte) (any, error) {
	name, err := repositoryName(r)
	if err != nil {
		return nil, err
	}
	return a.store.Repository(r.Context(), name)
}

// deleteRepository serves POST repositories/delete?name=&force=.
func (a *API) deleteRepository(r *http.Request, _ []byte) (any, error) {
	name, err := repositoryName(r)
	if err != nil {
		return nil, err
	}
	force, err := boolParam(r.URL.Query().Get("force"))
	if err != nil {
		return nil, err
	}
	if err := a.store.DeleteRepository(r.Context(), name, force); err != nil {
		return nil, err
	}
	return struct {
		Name string `json:"name"`
	}{name}, nil
}

// listRepositories serves GET repositories: the names of the
// repositories the caller may describe, in order.
func (a *API) listRepositories(r *http.Request, _ []byte) (any, error) {
	ctx := r.Context()
	out := []string{}
	last := ""
	listing := authz.NewListing(a.authz, callerOf(r), authz.DescribeRepositories)
	for {
		names, err := a.store.ListRepositories(ctx, last, listBatch)
		if err != nil {
			return nil, err
		}
		resources := make([]authz.Resource, len(names))
		for i, n := range names {
			resources[i] = authz.Repository(n)
		}
		visible, err := listing.Visible(ctx, resources)
		if err != nil {
			return nil, err
		}
		for i, n := range names {
			if visible[i] {
				out = append(out, n)
			}
		}
		if len(names) < listBatch {
			if err := listing.Record(ctx, len(out)); err != nil {
				return nil, err
			}
			return out, nil
		}
		last = names[len(names)-1]
	}
}
