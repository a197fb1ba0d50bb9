//go:build !linux

package adminsock

import (
	"fmt"
	"net"
)

// PeerOf reports that this system's peer credentials are not read: every
// request through the socket is refused.
func PeerOf(net.Conn) (Peer, error) {
	return Peer{}, fmt.Errorf("%w: peer credentials are read on Linux only", ErrNoPeer)
}
