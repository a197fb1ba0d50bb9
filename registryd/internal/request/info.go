package request

import "context"

// Info is what the access log and the metrics record of a request. The
// server puts one in the request's context before dispatching; the
// protocol handler fills in what it learns (the OCI route and repository,
// the ECR operation).
type Info struct {
	// Route is the "route" label of the metrics: an OCI endpoint (base,
	// catalog, tags, manifest, blob, upload, referrers), admin, ecr,
	// metrics or unknown.
	Route string
	// Repository is the repository an OCI request names, if any.
	Repository string
	// Operation is the ECR operation of an ECR API call, if any.
	Operation string
}

type infoKey struct{}

// WithInfo returns ctx carrying info.
func WithInfo(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// InfoFrom returns the Info of ctx, or a fresh one that nothing reads
// when ctx has none (a handler served outside the server), so that
// handlers may always fill it in.
func InfoFrom(ctx context.Context) *Info {
	if info, ok := ctx.Value(infoKey{}).(*Info); ok {
		return info
	}
	return &Info{}
}
