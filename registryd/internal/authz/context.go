package authz

// The request context of decisions: what the engine's AccessRequest
// carries besides who, what and where.

import (
	"context"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/request"
)

type requestTagsKey struct{}

// WithRequestTags returns ctx carrying the resource tags the request
// sets, for the questions asked with it (aws:RequestTag/<key>,
// aws:TagKeys). All does this for each Access with RequestTags; a direct
// call of Authorizer.Authorize uses it.
func WithRequestTags(ctx context.Context, tags map[string]string) context.Context {
	return context.WithValue(ctx, requestTagsKey{}, tags)
}

// requestTagsFrom returns the tags of ctx, nil without any.
func requestTagsFrom(ctx context.Context) map[string]string {
	tags, _ := ctx.Value(requestTagsKey{}).(map[string]string)
	return tags
}

type repositoryPolicyKey struct{}

// WithRepositoryPolicy returns ctx carrying a repository policy to decide
// with in place of the repository's stored one ("" for none): the
// questions asked with it are what the decision would be once the
// policy is set (ECR's SetRepositoryPolicy asks it without force, to
// refuse a policy that would lock its caller out). A policy that does
// not parse fails the question with engine.ErrInvalidArgument.
func WithRepositoryPolicy(ctx context.Context, text string) context.Context {
	return context.WithValue(ctx, repositoryPolicyKey{}, &text)
}

// withRequestContext fills req's context keys from ctx: the caller's
// address (aws:SourceIp) and TLS (aws:SecureTransport) from the
// server's request.Info, the request's tags from WithRequestTags, and the
// policy to decide with from WithRepositoryPolicy.
func withRequestContext(ctx context.Context, req *engine.AccessRequest) {
	info := request.InfoFrom(ctx)
	req.SourceIP = info.SourceIP
	req.SecureTransport = info.SecureTransport
	req.RequestTags = requestTagsFrom(ctx)
	if p, ok := ctx.Value(repositoryPolicyKey{}).(*string); ok && req.Repository != "" {
		req.RepositoryPolicy = p
	}
}
