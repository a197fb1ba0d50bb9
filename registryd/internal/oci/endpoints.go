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
type method struct {
	access func(r *http.Request, rt route) []authz.Access
	serve  func(a *API, w http.ResponseWriter, r *http.Request, rt route) error
}

// The endpoints, with ECR's mapping of docker pull and push to IAM
// actions (docs/policies.md). The version check and the catalog act on
// the registry: the version check is what a login does
// (ecr:GetAuthorizationToken), the catalog lists repositories
// (ecr:DescribeRepositories).
var (
	baseEndpoint = endpoint{allow: "GET, HEAD", methods: map[string]method{
		http.MethodGet:  {onRegistry(authz.GetAuthorizationToken), (*API).base},
		http.MethodHead: {onRegistry(authz.GetAuthorizationToken), (*API).base},
	}}
	catalogEndpoint = endpoint{allow: "GET, HEAD", methods: map[string]method{
		http.MethodGet:  {onRegistry(authz.DescribeRepositories), (*API).catalog},
		http.MethodHead: {onRegistry(authz.DescribeRepositories), (*API).catalog},
	}}
	tagsEndpoint = endpoint{allow: "GET, HEAD", methods: map[string]method{
		http.MethodGet:  {onRepository(authz.ListImages), (*API).tagsList},
		http.MethodHead: {onRepository(authz.ListImages), (*API).tagsList},
	}}
	referrersEndpoint = endpoint{allow: "GET, HEAD", methods: map[string]method{
		http.MethodGet:  {onRepository(authz.ListImages), (*API).referrers},
		http.MethodHead: {onRepository(authz.ListImages), (*API).referrers},
	}}
	manifestEndpoint = endpoint{allow: "GET, HEAD, PUT, DELETE", methods: map[string]method{
		http.MethodGet:    {onRepository(authz.BatchGetImage), (*API).getManifest},
		http.MethodHead:   {onRepository(authz.BatchGetImage), (*API).getManifest},
		http.MethodPut:    {onRepository(authz.PutImage), (*API).putManifest},
		http.MethodDelete: {onRepository(authz.BatchDeleteImage), (*API).deleteManifest},
	}}
	blobEndpoint = endpoint{allow: "GET, HEAD, DELETE", methods: map[string]method{
		http.MethodGet:    {onRepository(authz.GetDownloadURLForLayer), (*API).getBlob},
		http.MethodHead:   {onRepository(authz.BatchCheckLayerAvailability), (*API).getBlob},
		http.MethodDelete: {onRepository(authz.BatchDeleteImage), (*API).deleteBlob},
	}}
	// uploadStartEndpoint is /v2/<name>/blobs/uploads/: a session, a
	// monolithic upload or a mount.
	uploadStartEndpoint = endpoint{allow: "POST", methods: map[string]method{
		http.MethodPost: {startUploadAccess, (*API).startUpload},
	}}
	// uploadEndpoint is an upload session.
	uploadEndpoint = endpoint{allow: "GET, PATCH, PUT, DELETE", methods: map[string]method{
		http.MethodGet:    {onRepository(authz.UploadLayerPart), (*API).uploadStatus},
		http.MethodPatch:  {onRepository(authz.UploadLayerPart), (*API).uploadChunk},
		http.MethodPut:    {onRepository(authz.CompleteLayerUpload), (*API).uploadFinish},
		http.MethodDelete: {onRepository(authz.UploadLayerPart), (*API).uploadCancel},
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
// an upload, a monolithic one (?digest=) also completes it, and a
// cross-repository mount (?from=) also reads the source repository.
func startUploadAccess(r *http.Request, rt route) []authz.Access {
	repo := authz.Repository(rt.name)
	q := r.URL.Query()
	access := []authz.Access{{Action: authz.InitiateLayerUpload, Resource: repo}}
	if q.Get("digest") != "" {
		access = append(access, authz.Access{Action: authz.CompleteLayerUpload, Resource: repo})
	}
	if from := q.Get("from"); from != "" && validName(from) {
		access = append(access, authz.Access{Action: authz.GetDownloadURLForLayer, Resource: authz.Repository(from)})
	}
	return access
}
