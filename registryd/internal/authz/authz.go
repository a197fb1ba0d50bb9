// Package authz is registryd's one authorization seam: every request of
// the OCI API, every ECR API operation and every admin call asks an
// Authorizer whether who may perform an action on a resource before
// anything is done. Nothing else in registryd decides access.
//
// The actions are ECR's IAM action names (ecr:BatchGetImage,
// ecr:CreateRepository, ...), KMS's for keys (kms:CreateKey, ...), plus
// berth: actions for the admin API's maintenance, which ECR does not
// have; the resource is one repository, one key or the registry.
//
// A decision sees the request's context (context.go): the caller's
// address (aws:SourceIp) and whether it came over TLS
// (aws:SecureTransport) from the request.Info the server put in the
// context, and the resource tags the request sets (aws:RequestTag/<key>,
// aws:TagKeys) from the question (Access.RequestTags).
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
// cannot answer) refuses too. The request's context travels in ctx: the
// request.Info of the server (source address, TLS) and the tags the
// request sets (WithRequestTags, or Access.RequestTags through All).
type Authorizer interface {
	Authorize(ctx context.Context, who engine.Principal, action Action, resource Resource) error
}

// ErrNoAccess reports a request that asked no authorization question: a
// route or operation that names no action is refused, never let through.
var ErrNoAccess = errors.New("authz: the request names no action to authorize")

// ErrUnknownAction reports an action this package does not know: it is
// refused.
var ErrUnknownAction = errors.New("authz: unknown action")

// ErrNoResource reports a question without a resource (the zero
// Resource, or a repository without a name): it is refused.
var ErrNoResource = errors.New("authz: the question names no resource")

// Access is one question for an Authorizer: action on resource, by a
// request that sets RequestTags.
type Access struct {
	Action   Action
	Resource Resource
	// RequestTags are the resource tags the request sets on Resource
	// (aws:RequestTag/<key>, aws:TagKeys): ECR's CreateRepository and
	// TagResource tags, a creation template's tags for a repository
	// created on push. Nil for a request that sets none.
	RequestTags map[string]string
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
		actx := ctx
		if a.RequestTags != nil {
			actx = WithRequestTags(ctx, a.RequestTags)
		}
		if err := az.Authorize(actx, who, a.Action, a.Resource); err != nil {
			return err
		}
	}
	return nil
}

// Resource is what an action is performed on: one repository, one
// key-encryption key (kms: actions), one stored secret (secretsmanager:
// actions), or the registry as a whole. The zero Resource names nothing, and an Authorizer
// refuses it: a question that forgot its resource is refused, not taken
// for one about the registry.
type Resource struct {
	kind resourceKind
	// name is the repository's or the key's name.
	name string
}

type resourceKind uint8

const (
	noResource resourceKind = iota
	registryResource
	repositoryResource
	keyResource
	secretResource
)

// Registry is the registry as a whole: registry-level calls (listing
// repositories, templates, pull-through cache rules, login tokens) and
// the admin API's collection and check of the whole store.
var Registry = Resource{kind: registryResource}

// Repository is the repository name.
func Repository(name string) Resource { return Resource{kind: repositoryResource, name: name} }

// Key is the key-encryption key name (a keyring key name or a pkcs11:
// URI, as a repository's kmsKey names it).
func Key(name string) Resource { return Resource{kind: keyResource, name: name} }

// Secret is the stored secret name (the secret store of the
// pull-through cache's upstream credentials).
func Secret(name string) Resource { return Resource{kind: secretResource, name: name} }

// Secret returns the secret the resource names, and whether it names
// one.
func (r Resource) Secret() (string, bool) {
	if r.kind != secretResource {
		return "", false
	}
	return r.name, true
}

// Repository returns the repository the resource names, and whether it
// names one.
func (r Resource) Repository() (string, bool) {
	if r.kind != repositoryResource {
		return "", false
	}
	return r.name, true
}

// Key returns the key the resource names, and whether it names one.
func (r Resource) Key() (string, bool) {
	if r.kind != keyResource {
		return "", false
	}
	return r.name, true
}

// IsRegistry reports whether the resource is the registry as a whole.
func (r Resource) IsRegistry() bool { return r.kind == registryResource }

// valid reports whether the resource names something: the registry, or
// a repository or key with a name.
func (r Resource) valid() bool {
	return r.kind == registryResource || (r.kind == repositoryResource || r.kind == keyResource || r.kind == secretResource) && r.name != ""
}

// String is "repository <name>", "key <name>", "the registry", or "no
// resource".
func (r Resource) String() string {
	switch r.kind {
	case registryResource:
		return "the registry"
	case repositoryResource:
		return "repository " + r.name
	case keyResource:
		return "key " + r.name
	case secretResource:
		return "secret " + r.name
	}
	return "no resource"
}
