package admin

// The admin socket's API: the same operations, whose caller is the user
// of the machine at the other end of the socket (SO_PEERCRED), as the
// engine's local principal. The engine allows it everything when it is
// the daemon's user or root, and refuses it otherwise; every decision is
// audited like any other, with source "local".

import (
	"errors"
	"net/http"
	"os/user"
	"strconv"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/adminsock"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/request"
)

// NewLocal returns the admin API of the daemon's admin socket over
// store: authn is the daemon's authenticator (for the identities an
// operation reloads, lists or simulates), but the caller of each request
// is the socket's peer (adminsock.ConnContext must have put it in the
// request's context). Each dependency is required.
func NewLocal(store Store, authn Authenticator, az authz.Authorizer, cfg Config) (*API, error) {
	if authn == nil {
		return nil, errors.New("admin: NewLocal needs a store, an authenticator and an authorizer")
	}
	a, err := New(store, peerAuthenticator{authn}, az, cfg)
	if err != nil {
		return nil, err
	}
	a.local = true
	return a, nil
}

// peerAuthenticator names the caller of a request through the admin
// socket: the local user of the connection's peer.
type peerAuthenticator struct{ Authenticator }

// Basic implements Authenticator: it ignores credentials, and answers the
// peer's local principal.
func (p peerAuthenticator) Basic(r *http.Request, _ bool) (engine.Principal, error) {
	peer, err := adminsock.PeerFrom(r.Context())
	if err != nil {
		return engine.Principal{}, err
	}
	who := engine.LocalPrincipal(userName(peer.UID), peer.UID)
	info := request.InfoFrom(r.Context())
	info.Local = true
	info.SetPrincipal(who)
	return who, nil
}

// userName is the name of user uid in the user database, "" when it
// names none.
func userName(uid uint32) string {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return ""
	}
	return u.Username
}
