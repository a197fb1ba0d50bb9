// Package authz is registryd's one authorization seam: every request of
// the OCI API, every ECR API operation and every admin call asks an
// Authorizer whether who may perform an action on a resource before
// anything is done. Nothing else in registryd decides access.
//
// The actions are ECR's IAM action names (ecr:BatchGetImage,
// ecr:CreateRepository, ...), plus berth: actions for the admin API, which
// ECR does not have; the resource is one repository or the registry.
package authz

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthstore/berth/engine"
)

// Authorizer decides whether who may perform action on resource. A
// refusal is an error wrapping engine.ErrAccessDenied (DENIED on the OCI
// API, AccessDeniedException on the ECR API); another error (a store that
// cannot answer) refuses too.
type Authorizer interface {
	Authorize(ctx context.Context, who engine.Principal, action Action, resource Resource) error
}

// ErrNoAccess reports a request that asked no authorization question: a
// route or operation that names no action is refused, never let through.
var ErrNoAccess = errors.New("authz: the request names no action to authorize")

// ErrUnknownAction reports an action this package does not know: it is
// refused.
var ErrUnknownAction = errors.New("authz: unknown action")

// Access is one question for an Authorizer: action on resource.
type Access struct {
	Action   Action
	Resource Resource
}

// String is "action on resource".
func (a Access) String() string { return string(a.Action) + " on " + a.Resource.String() }

// All asks az every question in order and returns the first refusal. No
// question at all is a refusal (ErrNoAccess, wrapping
// engine.ErrAccessDenied): what names no action is a bug, not an open
// door.
func All(ctx context.Context, az Authorizer, who engine.Principal, accesses ...Access) error {
	if len(accesses) == 0 {
		return fmt.Errorf("%w: %w", engine.ErrAccessDenied, ErrNoAccess)
	}
	for _, a := range accesses {
		if err := az.Authorize(ctx, who, a.Action, a.Resource); err != nil {
			return err
		}
	}
	return nil
}

// Resource is what an action is performed on: one repository, or the
// registry as a whole (the zero value).
type Resource struct {
	repository string
}

// Registry is the registry as a whole: registry-level calls (listing
// repositories, templates, pull-through cache rules, login tokens) and
// the admin API's collection and check of the whole store.
var Registry = Resource{}

// Repository is the repository name.
func Repository(name string) Resource { return Resource{repository: name} }

// Repository returns the repository the resource names, and false for
// the registry.
func (r Resource) Repository() (string, bool) { return r.repository, r.repository != "" }

// String is "repository <name>" or "the registry".
func (r Resource) String() string {
	if r.repository == "" {
		return "the registry"
	}
	return "repository " + r.repository
}
