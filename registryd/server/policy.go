package server

// Repository policies on the OCI API and the ECR API: who a request comes
// from (authorize, authenticateECR) and which ECR actions it performs;
// the engine decides (engine.CheckRepositoryPolicy). docs/policies.md.

import (
	"context"
	"net/http"

	"github.com/berthstore/berth/engine"
)

// policyStore is what policy enforcement needs; *engine.Engine has it.
type policyStore interface {
	CheckRepositoryPolicy(ctx context.Context, who engine.Principal, repo, action string) error
}

var _ policyStore = (*engine.Engine)(nil)

// principal is who a request comes from: user "" is an anonymous caller.
func (s *Server) principal(user string) engine.Principal {
	return engine.Principal{Account: s.ecrAccountID(), User: user}
}

// checkRepoPolicy refuses, with an error wrapping engine.ErrAccessDenied,
// an action that repo's policy denies to who.
func (s *Server) checkRepoPolicy(ctx context.Context, who engine.Principal, repo, action string) error {
	ps, ok := s.store.(policyStore)
	if !ok {
		return nil
	}
	return ps.CheckRepositoryPolicy(ctx, who, repo, action)
}

// ociActions are the ECR actions an OCI API request performs on its
// repository (ECR's mapping of docker pull and push to IAM actions).
func ociActions(r *http.Request, rt route) []string {
	switch rt.kind {
	case routeManifest:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return []string{"ecr:BatchGetImage"}
		case http.MethodPut:
			return []string{"ecr:PutImage"}
		case http.MethodDelete:
			return []string{"ecr:BatchDeleteImage"}
		}
	case routeBlob:
		switch r.Method {
		case http.MethodGet:
			return []string{"ecr:GetDownloadUrlForLayer"}
		case http.MethodHead:
			return []string{"ecr:BatchCheckLayerAvailability"}
		case http.MethodDelete:
			return []string{"ecr:BatchDeleteImage"}
		}
	case routeUpload:
		switch r.Method {
		case http.MethodPost:
			if r.URL.Query().Get("digest") != "" {
				return []string{"ecr:InitiateLayerUpload", "ecr:CompleteLayerUpload"}
			}
			return []string{"ecr:InitiateLayerUpload"}
		case http.MethodPut:
			return []string{"ecr:CompleteLayerUpload"}
		default:
			return []string{"ecr:UploadLayerPart"}
		}
	case routeTags, routeReferrers:
		return []string{"ecr:ListImages"}
	}
	return nil
}

// enforceOCIPolicy checks an OCI API request against the policies of its
// repository and, for a cross-repository mount, of the source.
func (s *Server) enforceOCIPolicy(r *http.Request, rt route, who engine.Principal) error {
	for _, a := range ociActions(r, rt) {
		if err := s.checkRepoPolicy(r.Context(), who, rt.name, a); err != nil {
			return err
		}
	}
	if rt.kind == routeUpload && r.Method == http.MethodPost {
		if from := r.URL.Query().Get("from"); from != "" && validName(from) {
			return s.checkRepoPolicy(r.Context(), who, from, "ecr:GetDownloadUrlForLayer")
		}
	}
	return nil
}
