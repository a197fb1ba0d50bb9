package request

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/netip"

	"github.com/berthstore/berth/engine"
)

// Info is what the access log, the metrics and the authorization seam
// know of a request. The server puts one in the request's context before
// dispatching (NewInfo); authentication fills in the principal, and the
// protocol handler what it learns (the OCI route and repository, the ECR
// operation and the repository it names).
type Info struct {
	// Route is the "route" label of the metrics: an OCI endpoint (base,
	// catalog, tags, manifest, blob, upload, referrers), admin, ecr,
	// metrics or unknown.
	Route string
	// Repository is the repository an OCI request or an ECR operation
	// names, if any.
	Repository string
	// Operation is the ECR operation of an ECR API call, if any.
	Operation string

	// RequestID identifies the request in the access log, the audit log
	// and (ECR API) the X-Amzn-RequestId header: 32 hex digits in the
	// UUID form AWS uses.
	RequestID string
	// SourceIP is the client's address (aws:SourceIp): the TCP peer's,
	// or, when the peer is a trusted proxy, the rightmost address of
	// X-Forwarded-For that is not a trusted proxy (ClientAddr). The zero
	// Addr when it cannot be told.
	SourceIP netip.Addr
	// SecureTransport reports that the request came over TLS
	// (aws:SecureTransport).
	SecureTransport bool
	// UserAgent is the request's User-Agent header.
	UserAgent string
	// Method and Path are the HTTP request's method and URL path.
	Method, Path string

	// Local reports that the request came through the daemon's admin
	// socket: its caller is a user of this machine (the audit log's
	// source is "local", and there is no address).
	Local bool

	// Authenticated reports that authentication accepted the request:
	// Principal is then who it comes from (an anonymous caller on an
	// open registry or for an anonymous pull).
	Authenticated bool
	// Principal is who the request was authenticated as.
	Principal engine.Principal

	// syncs are the audit syncs the answer waits for (auditsync.go).
	// Nil unless the server defers them (DeferAuditSyncs).
	syncs *AuditSyncs
}

// NewInfo returns the Info of r as the server starts serving it: a fresh
// request ID, the client's address (through trusted proxies), whether it
// came over TLS and its user agent.
func NewInfo(r *http.Request, trusted TrustedProxies) *Info {
	return &Info{
		RequestID:       NewRequestID(),
		SourceIP:        ClientAddr(r, trusted),
		SecureTransport: r.TLS != nil,
		UserAgent:       r.UserAgent(),
		Method:          r.Method,
		Path:            r.URL.Path,
	}
}

// SetPrincipal records who authentication accepted the request as.
func (i *Info) SetPrincipal(p engine.Principal) {
	i.Principal, i.Authenticated = p, true
}

// PrincipalName is what the access log says of the principal: its ARN,
// "anonymous", "local:<user>" for a local user, or "" when the request was not authenticated (refused, or
// no API's).
func (i *Info) PrincipalName() string {
	switch {
	case !i.Authenticated:
		return ""
	case i.Principal.Anonymous():
		return "anonymous"
	}
	if _, local := i.Principal.Local(); local {
		return "local:" + i.Principal.User
	}
	return i.Principal.ARN()
}

// NewRequestID returns a random (version 4) UUID, a request's id, in the
// form AWS uses. The bits come from math/rand/v2 (ChaCha8 seeded by the
// runtime): an id must be unique, not secret, and this costs no system
// call per request.
func NewRequestID() string {
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
