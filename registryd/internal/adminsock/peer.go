package adminsock

import (
	"context"
	"errors"
	"net"
)

// Peer is the process at the other end of a connection to the socket, as
// the kernel reports it when the connection was made.
type Peer struct {
	UID, GID uint32
	PID      int32
}

// ErrNoPeer reports a request that did not come through the socket, or
// whose peer the kernel could not tell.
var ErrNoPeer = errors.New("adminsock: the connection's peer is unknown")

// peerKey is the context key of a connection's peer.
type peerKey struct{}

// peerResult is a connection's peer, or why it is unknown.
type peerResult struct {
	peer Peer
	err  error
}

// ConnContext is an http.Server's ConnContext for the socket: it puts the
// connection's peer (SO_PEERCRED) in the context of its requests.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	p, err := PeerOf(c)
	return context.WithValue(ctx, peerKey{}, peerResult{p, err})
}

// PeerFrom returns the peer ConnContext found for the request's
// connection; ErrNoPeer (wrapped) when there is none.
func PeerFrom(ctx context.Context) (Peer, error) {
	r, ok := ctx.Value(peerKey{}).(peerResult)
	switch {
	case !ok:
		return Peer{}, ErrNoPeer
	case r.err != nil:
		return Peer{}, errors.Join(ErrNoPeer, r.err)
	}
	return r.peer, nil
}
