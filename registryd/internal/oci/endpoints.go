package oci

import (
	"net/http"

	"github.com/berthstore/berth/registryd/internal/authz"
)

// endpoint is one route of the API: its methods, and the Allow header of
// a 405 for the others.
type endpoint struct {
	allow   string
	methods map[string]method
}

// method is one method of an endpoint. access is what the request does,
// as ECR actions on resources: the dispatcher asks the Authorizer every
// one of them before serve runs, and refuses a request that names none.
// A perItem method (the catalog) has no access of its own: its handler
// asks the Authorizer about each item it would answer and answers only
// those allowed.
type method struct {
	access  func(r *http.Request, rt route) []authz.Access
	serve   func(a *API, w http.ResponseWriter, r *http.Request, rt route) error
	perItem bool
}

// The endpoints, with ECR's mapping of docker pull and push to IAM
// actions (docs/policies.md). The version check acts on the registry: it
// is what a login does (ecr:GetAuthorizationToken). The catalog lists the
// repositories the caller may ecr:DescribeRepositories, deciding each.
var (
	baseEndpoint = endpoint{allow: "GET, HEAD", methods: map[string]method{
		http.MethodGet:  {access: onRegistry(authz.GetAuthorizationToken), serve: (*API).base},
		http.MethodHead: {access: onRegistry(authz.GetAuthorizationToken), serve: (*API).base},
	}}
	catalogEndpoint = endpoint{allow: "GET, HEAD", methods: map[string]method{
		http.MethodGet:  {serve: (*API).catalog, perItem: true},
		http.MethodHead: {serve: (*API).catalog, perItem: true},
	}}
	tagsEndpoint = endpoint{allow: "GET, HEAD", methods: map[string]method{
		http.MethodGet:  {access: onRepository(authz.ListImages), serve: (*API).tagsList},
		http.MethodHead: {access: onRepository(authz.ListImages), serve: (*API).tagsList},
	}}
	referrersEndpoint = endpoint{allow: "GET, HEAD", methods: map[string]method{
		http.MethodGet:  {access: onRepository(authz.ListImages), serve: (*API).referrers},
		http.MethodHead: {access: onRepository(authz.ListImages), serve: (*API).referrers},
	}}
	manifestEndpoint = endpoint{allow: "GET, HEAD, PUT, DELETE", methods: map[string]method{
		http.MethodGet:    {access: onRepository(authz.BatchGetImage), serve: (*API).getManifest},
		http.MethodHead:   {access: onRepository(authz.BatchGetImage), serve: (*API).getManifest},
		http.MethodPut:    {access: onRepository(authz.PutImage), serve: (*API).putManifest},
		http.MethodDelete: {access: onRepository(authz.BatchDeleteImage), serve: (*API).deleteManifest},
	}}
	blobEndpoint = endpoint{allow: "GET, HEAD, DELETE", methods: map[string]method{
		http.MethodGet:    {access: onRepository(authz.GetDownloadURLForLayer), serve: (*API).getBlob},
		http.MethodHead:   {access: onRepository(authz.BatchCheckLayerAvailability), serve: (*API).getBlob},
		http.MethodDelete: {access: onRepository(authz.BatchDeleteImage), serve: (*API).deleteBlob},
	}}
	// uploadStartEndpoint is /v2/<name>/blobs/uploads/: a session, a
	// monolithic upload or a mount.
	uploadStartEndpoint = endpoint{allow: "POST", methods: map[string]method{
		http.MethodPost: {access: startUploadAccess, serve: (*API).startUpload},
	}}
	// uploadEndpoint is an upload session.
	uploadEndpoint = endpoint{allow: "GET, PATCH, PUT, DELETE", methods: map[string]method{
		http.MethodGet:    {access: onRepository(authz.UploadLayerPart), serve: (*API).uploadStatus},
		http.MethodPatch:  {access: onRepository(authz.UploadLayerPart), serve: (*API).uploadChunk},
		http.MethodPut:    {access: onRepository(authz.CompleteLayerUpload), serve: (*API).uploadFinish},
		http.MethodDelete: {access: onRepository(authz.UploadLayerPart), serve: (*API).uploadCancel},
	}}
)

// endpointOf is the endpoint of rt; nil for a path that is none.
func endpointOf(rt route) *endpoint {
	switch rt.kind {
	case routeBase:
		return &baseEndpoint
	case routeCatalog:
		return &catalogEndpoint
	case routeTags:
		return &tagsEndpoint
	case routeReferrers:
		return &referrersEndpoint
	case routeManifest:
		return &manifestEndpoint
	case routeBlob:
		return &blobEndpoint
	case routeUpload:
		if rt.ref == "" {
			return &uploadStartEndpoint
		}
		return &uploadEndpoint
	}
	return nil
}

// onRegistry is the access of a request that performs action on the
// registry.
func onRegistry(action authz.Action) func(*http.Request, route) []authz.Access {
	return func(*http.Request, route) []authz.Access {
		return []authz.Access{{Action: action, Resource: authz.Registry}}
	}
}

// onRepository is the access of a request that performs action on the
// repository it names.
func onRepository(action authz.Action) func(*http.Request, route) []authz.Access {
	return func(_ *http.Request, rt route) []authz.Access {
		return []authz.Access{{Action: action, Resource: authz.Repository(rt.name)}}
	}
}

// startUploadAccess is the access of POST .../blobs/uploads/: it starts
// an upload, and a monolithic one (?digest=) also completes it. A
// cross-repository mount's read of its source (?from=) is asked by the
// handler (mountAccess), whose refusal starts an upload instead.
func startUploadAccess(r *http.Request, rt route) []authz.Access {
	repo := authz.Repository(rt.name)
	access := []authz.Access{{Action: authz.InitiateLayerUpload, Resource: repo}}
	if r.URL.Query().Get("digest") != "" {
		access = append(access, authz.Access{Action: authz.CompleteLayerUpload, Resource: repo})
	}
	return access
}

// mountAccess is what mounting a blob from repository from reads there:
// the pull access ECR asks for a layer (ecr:GetDownloadUrlForLayer and
// ecr:BatchCheckLayerAvailability on from).
func mountAccess(from string) []authz.Access {
	src := authz.Repository(from)
	return []authz.Access{
		{Action: authz.GetDownloadURLForLayer, Resource: src},
		{Action: authz.BatchCheckLayerAvailability, Resource: src},
	}
}
