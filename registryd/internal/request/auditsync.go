package request

import "sync"

// The audit records of a request's changes are synced while the change is
// made, and the answer waits for them: a request pays the longer of the
// store's syncs and the record's, not their sum. The server turns the
// wait on (DeferAuditSyncs) for the requests whose answer goes through
// its response writer, which waits (WaitAuditSyncs) before the status
// line goes out; a request served otherwise syncs each record before it
// goes on, as a durable append does.

// auditSyncs are the syncs a request's answer waits for.
type auditSyncs struct {
	mu    sync.Mutex
	waits []func() error
	err   error
}

// DeferAuditSyncs lets the authorization seam leave the sync of this
// request's change records under way (AddAuditSync): the caller promises
// to call WaitAuditSyncs before any of the answer goes out.
// The server calls it before it hands the request on.
func (i *Info) DeferAuditSyncs() {
	if i.syncs == nil {
		i.syncs = &auditSyncs{}
	}
}

// AuditSyncsDeferred reports whether the answer waits for the audit
// syncs (DeferAuditSyncs).
func (i *Info) AuditSyncsDeferred() bool { return i.syncs != nil }

// AddAuditSync adds the wait of a record's sync under way; the answer
// waits for it. It reports false, adding nothing, when the request's
// answer does not wait (the caller must wait itself).
func (i *Info) AddAuditSync(wait func() error) bool {
	if i.syncs == nil {
		return false
	}
	i.syncs.mu.Lock()
	defer i.syncs.mu.Unlock()
	i.syncs.waits = append(i.syncs.waits, wait)
	return true
}

// WaitAuditSyncs waits for every audit sync added so far and returns
// the first failure (ErrAuditUnavailable: the answer must be 503), also
// on later calls.
func (i *Info) WaitAuditSyncs() error {
	if i.syncs == nil {
		return nil
	}
	i.syncs.mu.Lock()
	defer i.syncs.mu.Unlock()
	waits := i.syncs.waits
	i.syncs.waits = nil
	for _, w := range waits {
		if err := w(); err != nil && i.syncs.err == nil {
			i.syncs.err = err
		}
	}
	return i.syncs.err
}

// AuditSyncsPending reports whether syncs are added and not yet waited
// for.
func (i *Info) AuditSyncsPending() bool {
	if i.syncs == nil {
		return false
	}
	i.syncs.mu.Lock()
	defer i.syncs.mu.Unlock()
	return len(i.syncs.waits) > 0
}
