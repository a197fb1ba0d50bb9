// Package adminsock is the daemon's admin socket: a unix socket, mode
// 0600 from its first moment, through which the users of this machine
// reach the admin API of the daemon that holds a store (`registryd serve
// --admin-socket`, by default <data>/admin.sock), and through which the
// registryd commands find that daemon when the store is locked.
//
// Its peers are identified by the kernel (SO_PEERCRED), not by
// credentials: Peer is the connecting process's user, which the server
// puts in each request's context (ConnContext) for the admin API to take
// as the caller. Whoever may connect to the socket administers the store;
// the file's mode keeps others out, and the engine's decision refuses a
// peer that is neither the daemon's user nor root all the same.
//
// A unix socket's path is limited to 107 bytes. Longer paths (a deep
// store directory) are bound and dialled through /proc/self/fd/N/NAME,
// where N is the socket's directory opened for the call (Linux).
package adminsock
