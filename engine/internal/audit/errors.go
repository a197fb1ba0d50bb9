package audit

import "errors"

// Sentinel errors. Each error the package returns wraps one of them
// (errors.Is) with the detail: the file, the field, the cause.
var (
	// ErrClosed: the log is closed; nothing more is appended.
	ErrClosed = errors.New("audit: closed")
	// ErrInvalidRecord: Append refused a record that lacks what every
	// record must say (action, decision, principal type, API) or is too
	// large to store.
	ErrInvalidRecord = errors.New("audit: invalid record")
	// ErrWrite: the record could not be written (or, for a durable
	// append, synced) to disk. The caller refuses the request it was
	// recording; the log retries on the next append, on a fresh segment
	// when the current one is no longer trustworthy. The cause (such as
	// syscall.ENOSPC) is wrapped as well.
	ErrWrite = errors.New("audit: write failed")
	// ErrCorrupt: a line of a segment is not a record (a torn or damaged
	// line, or a file that is not Berth's). Readers skip such lines; the
	// decoder returns it.
	ErrCorrupt = errors.New("audit: corrupt record")
	// ErrLocked: another Log (in this or another process) has the
	// directory open.
	ErrLocked = errors.New("audit: directory in use")
	// ErrInvalidOptions wraps every problem Options.Validate finds.
	ErrInvalidOptions = errors.New("audit: invalid options")
	// ErrInvalidQuery: a Query that cannot be answered as written (Until
	// before Since, a negative Limit, an unknown decision or order).
	ErrInvalidQuery = errors.New("audit: invalid query")
)
