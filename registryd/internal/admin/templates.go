package admin

// Repository creation templates, live: put, list and delete, authorized
// with ECR's action names (ecr:CreateRepositoryCreationTemplate or
// ecr:UpdateRepositoryCreationTemplate as the prefix has a template or
// not, and kms:CreateGrant and kms:DescribeKey on a KMS key, as ECR asks
// them; ecr:DescribeRepositoryCreationTemplates;
// ecr:DeleteRepositoryCreationTemplate), on the registry ("*").

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/oci"
)

// TemplateStore is the role of the store that the template operations
// drive.
type TemplateStore interface {
	CreationTemplates(ctx context.Context) ([]engine.CreationTemplate, error)
	PutCreationTemplate(ctx context.Context, t engine.CreationTemplate) error
	DeleteCreationTemplate(ctx context.Context, prefix string) error
}

var _ TemplateStore = (*engine.Engine)(nil)

// TemplatePrefixParam is the template delete's query parameter naming
// the template's prefix.
const TemplatePrefixParam = "prefix"

func init() {
	addOperations(map[string]operation{
		"templates":        {access: onRegistry(authz.DescribeRepositoryCreationTemplates), method: http.MethodGet, run: (*API).listTemplates},
		"templates/put":    {access: templatePutAccess, run: (*API).putTemplate},
		"templates/delete": {access: onRegistry(authz.DeleteRepositoryCreationTemplate), run: (*API).deleteTemplate},
	})
}

// creationTemplate decodes a template to put: engine.CreationTemplate as
// JSON, every field known (its times are the store's to set).
func creationTemplate(body []byte) (engine.CreationTemplate, error) {
	var t engine.CreationTemplate
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return t, oci.NewError(oci.CodeInvalidArgument, "the template is not JSON of the documented shape: "+err.Error(), nil)
	}
	if !t.CreatedAt.IsZero() || !t.UpdatedAt.IsZero() {
		return t, oci.NewError(oci.CodeInvalidArgument, "createdAt and updatedAt are the store's to set", nil)
	}
	if t.Prefix == "" {
		return t, oci.NewError(oci.CodeInvalidArgument, "prefix is required", nil)
	}
	return t, nil
}

// templatePutAccess is what putting a template asks: the create action
// when no template has its prefix, else the update action; and the KMS
// key's actions when it names one.
func templatePutAccess(a *API, r *http.Request, body []byte) ([]authz.Access, error) {
	t, err := creationTemplate(body)
	if err != nil {
		return nil, err
	}
	ts, err := a.store.CreationTemplates(r.Context())
	if err != nil {
		return nil, err
	}
	action := authz.CreateRepositoryCreationTemplate
	for _, have := range ts {
		if have.Prefix == t.Prefix {
			action = authz.UpdateRepositoryCreationTemplate
		}
	}
	return append([]authz.Access{{Action: action, Resource: authz.Registry}}, authz.KeyAccess(t.Encryption.KMSKey)...), nil
}

// putTemplate serves POST templates/put, the template in the body: it
// creates or replaces the template of its prefix.
func (a *API) putTemplate(r *http.Request, body []byte) (any, error) {
	t, err := creationTemplate(body)
	if err != nil {
		return nil, err
	}
	if err := a.store.PutCreationTemplate(r.Context(), t); err != nil {
		return nil, err
	}
	return struct {
		Prefix string `json:"prefix"`
	}{t.Prefix}, nil
}

// listTemplates serves GET templates.
func (a *API) listTemplates(r *http.Request, _ []byte) (any, error) {
	ts, err := a.store.CreationTemplates(r.Context())
	if ts == nil && err == nil {
		ts = []engine.CreationTemplate{}
	}
	return ts, err
}

// deleteTemplate serves POST templates/delete?prefix=.
func (a *API) deleteTemplate(r *http.Request, _ []byte) (any, error) {
	prefix := r.URL.Query().Get(TemplatePrefixParam)
	if prefix == "" {
		return nil, oci.NewError(oci.CodeInvalidArgument, TemplatePrefixParam+" is required", nil)
	}
	if err := a.store.DeleteCreationTemplate(r.Context(), prefix); err != nil {
		return nil, err
	}
	return struct {
		Prefix string `json:"prefix"`
	}{prefix}, nil
}
