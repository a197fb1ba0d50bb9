package request

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
)

// Info is what the access log, the metrics and the audit log record of a
// request. The server puts one in the request's context before
// dispatching, with what the HTTP request says (method, path, remote
// address, user agent, TLS, a fresh request id); the protocol handler
// fills in what it learns (the OCI route and repository, the ECR
// operation).
type Info struct {
	// Route is the "route" label of the metrics: an OCI endpoint (base,
	// catalog, tags, manifest, blob, upload, referrers), admin, ecr,
	// metrics or unknown.
	Route string
	// Repository is the repository an OCI request names, if any.
	Repository string
	// Operation is the ECR operation of an ECR API call, if any.
	Operation string

	// RequestID is the request's unique id (a random UUID), answered in
	// the X-Request-Id header (and X-Amzn-RequestId on the ECR API) and
	// written in the request's audit records.
	RequestID string
	// Method and Path are the HTTP request's method and URL path.
	Method, Path string
	// RemoteAddr is the address the request came from (host:port), as
	// the connection says; UserAgent its User-Agent header; TLS whether
	// it came over TLS.
	RemoteAddr string
	UserAgent  string
	TLS        bool
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

// NewID returns a random (version 4) UUID, a request's id. The bits come
// from math/rand/v2 (ChaCha8 seeded by the runtime): an id must be
// unique, not secret, and this costs no system call per request.
func NewID() string {
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant RFC 9562
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}
