package index

// Telling the failures of a PostgreSQL server that is restarting, failing
// over or out of reach (which a retry a moment later may not meet) from
// those of a statement (which it would meet again).

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUnavailable reports that the metadata database could not be reached
// or dropped the connection: a restart, a failover, a network fault, no
// connection slot free. The operation may be retried a moment later
// (registryd answers 503 with Retry-After). A commit that fails so may
// have committed: what the registry commits is idempotent when repeated.
var ErrUnavailable = errors.New("index: the metadata database is unavailable")

// pgUnavailable reports whether err is a failure of the connection or of
// the server's availability rather than of the statement.
func pgUnavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // admin or crash shutdown, cannot connect now
			return true
		case pe.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		pgconn.SafeToRetry(err)
}
