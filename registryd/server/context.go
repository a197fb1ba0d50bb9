package server

import "context"

type routeKey struct{}

// withRoute stores the parsed route of a request in its context.
func withRoute(ctx context.Context, rt route) context.Context {
	return context.WithValue(ctx, routeKey{}, rt)
}

// routeFrom returns the route stored by withRoute.
func routeFrom(ctx context.Context) route {
	rt, _ := ctx.Value(routeKey{}).(route)
	return rt
}
