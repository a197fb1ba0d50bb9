package ecrapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/request"
)

// call is one ECR API call being served.
type call struct {
	// who the caller is.
	who engine.Principal
	// host is the registry's host as the client addresses it; scheme is
	// http or https.
	host, scheme string
	// action is the operation's ECR action; authz decides it.
	action authz.Action
	authz  authz.Authorizer
	// operation is the operation's name, for messages.
	operation string
}

// allowed asks the Authorizer whether the caller may perform the call's
// action on repo: for the operations that act on items they list
// (DescribeRepositories leaves out what the caller may not describe).
func (c *call) allowed(ctx context.Context, repo string) error {
	return c.authz.Authorize(ctx, c.who, c.action, authz.Repository(repo))
}

// input is implemented by every operation's input: the resources the
// call acts on, validated (registryId, repository names, ARNs). The
// dispatcher authorizes the operation's action on each before the
// handler runs; an input that names none is refused.
type input interface {
	resources(g registry) ([]authz.Resource, error)
}

// validator is implemented by the inputs that check their parameters'
// constraints (ECR API reference: lengths, ranges, patterns) beyond the
// resources they name; the dispatcher calls it once the call is
// authorized, before the handler.
type validator interface {
	validate() error
}

// extraAccess is implemented by the inputs of calls that need more than
// their action on their resources: a repository or template with a KMS
// key also needs kms:CreateGrant and kms:DescribeKey on the key. The
// dispatcher authorizes it after the action.
type extraAccess interface {
	extraAccess() []authz.Access
}

// tagSetter is implemented by the inputs of the operations that set
// resource tags on the repository they name (CreateRepository,
// TagResource): their tags are the request's (aws:RequestTag/<key>,
// aws:TagKeys) in the authorization of the operation's action.
type tagSetter interface {
	requestTags() map[string]string
}

// requestTagsOf is the request tags of tags (nil for none).
func requestTagsOf(tags []Tag) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

// operation is one entry of the operation table.
type operation interface {
	// action is the operation's ECR action.
	action() authz.Action
	// serve decodes the call's body, authorizes the action on the
	// resources the input names, and runs the handler.
	serve(ctx context.Context, g registry, c *call, body []byte) (any, error)
}

// op is an operation over typed input In and output Out: handle gets a
// decoded, validated and authorized input and returns the answer.
type op[In any, PIn interface {
	*In
	input
}, Out any] struct {
	act    authz.Action
	handle func(ctx context.Context, c *call, in PIn) (*Out, error)
}

// newOp is the operation of action served by handle.
func newOp[In any, PIn interface {
	*In
	input
}, Out any](action authz.Action, handle func(ctx context.Context, c *call, in PIn) (*Out, error)) operation {
	return op[In, PIn, Out]{act: action, handle: handle}
}

func (o op[In, PIn, Out]) action() authz.Action { return o.act }

func (o op[In, PIn, Out]) serve(ctx context.Context, g registry, c *call, body []byte) (any, error) {
	in := PIn(new(In))
	if err := decodeInput(c.operation, body, in); err != nil {
		return nil, err
	}
	resources, err := in.resources(g)
	if err != nil {
		return nil, err
	}
	subj := subjectOfInput(in)
	var tags map[string]string
	if t, ok := any(in).(tagSetter); ok {
		tags = t.requestTags()
	}
	access := make([]authz.Access, len(resources))
	for i, r := range resources {
		access[i] = authz.Access{Action: o.act, Resource: r}
		if repo, ok := r.Repository(); ok {
			access[i].RequestTags = tags
			if info := request.InfoFrom(ctx); info.Repository == "" {
				info.Repository = repo // the access log names it
			}
		}
	}
	if x, ok := any(in).(extraAccess); ok && len(access) > 0 {
		access = append(access, x.extraAccess()...)
	}
	if err := authz.All(ctx, c.authz, c.who, access...); err != nil {
		return nil, g.word(err, subj)
	}
	// A repository created while serving (a layer upload or PutImage into
	// one that does not exist, created on push) is created only if the
	// caller may create it.
	ctx = authz.GuardCreation(ctx, c.authz, c.who)
	if v, ok := any(in).(validator); ok {
		if err := v.validate(); err != nil {
			return nil, err
		}
	}
	out, err := o.handle(ctx, c, in)
	if err != nil {
		return nil, g.word(err, subj)
	}
	if out == nil {
		return nil, errors.New("ecrapi: handler answered nothing")
	}
	return out, nil
}

// decodeInput decodes an operation's body (empty: {}) into in. A
// parameter in has no field for is refused (InvalidParameterException),
// not ignored: what Berth does not know it cannot act on.
func decodeInput(operation string, body []byte, in any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(in)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("data after the request's JSON object")
	}
	if err == nil {
		return nil
	}
	var ae *apiError
	if errors.As(err, &ae) { // a parameter's own check (an enum)
		return ae
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return unsupportedParameter(operation, truncate(strings.Trim(field, `"`), 100),
			"it is not one Berth knows (docs/ecr-api.md lists the parameters of each operation)")
	}
	return errorf(ecrSerialization, "request body: %v", err)
}

// repositoryRef is the part of most inputs that names one repository:
// the call acts on it.
type repositoryRef struct {
	RegistryID     string `json:"registryId,omitempty"`
	RepositoryName string `json:"repositoryName"`
}

func (r repositoryRef) resources(g registry) ([]authz.Resource, error) {
	if err := g.checkRepository(r.RegistryID, r.RepositoryName); err != nil {
		return nil, err
	}
	return []authz.Resource{authz.Repository(r.RepositoryName)}, nil
}

// registryRef is the part of an input about the registry (not one
// repository) that may name the registry's ID: the call acts on the
// registry.
type registryRef struct {
	RegistryID string `json:"registryId,omitempty"`
}

func (r registryRef) resources(g registry) ([]authz.Resource, error) {
	if err := g.checkID(r.RegistryID); err != nil {
		return nil, err
	}
	return []authz.Resource{authz.Registry}, nil
}

// onRegistry is the part of an input about the registry that has no
// registryId field (the creation template calls): the call acts on the
// registry.
type onRegistry struct{}

func (onRegistry) resources(registry) ([]authz.Resource, error) {
	return []authz.Resource{authz.Registry}, nil
}
