package request

import (
	"context"
	"sync"
)

// The audit records of a request's changes are synced while the change is
// made, and the answer waits for them: a request pays the longer of the
// store's syncs and the record's, not their sum. The server turns the
// wait on (DeferAuditSyncs) for the requests whose answer goes through
// its response writer, which waits (WaitAuditSyncs) before the status
// line goes out; a request served otherwise syncs each record before it
// goes on, as a durable append does.
//
// A change that a request starts but that goes on in the background (a
// pull-through cache's fill: its import into the cache repository, and
// the repository's creation) is not acknowledged by the request's answer:
// its records' syncs go to a set of its own (WithAuditSyncs), which the
// background work waits for before its first durable commit.

// AuditSyncs are audit record syncs under way, waited for together
// before the changes they record are acknowledged. The zero value is
// ready to use; it is safe for concurrent use.
type AuditSyncs struct {
	mu    sync.Mutex
	waits []func() error
	err   error
}

// Add adds the wait of a record's sync under way.
func (s *AuditSyncs) Add(wait func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, wait)
}

// Wait waits for every sync added so far and returns the first failure
// (ErrAuditUnavailable), also on later calls.
func (s *AuditSyncs) Wait() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	waits := s.waits
	s.waits = nil
	for _, w := range waits {
		if err := w(); err != nil && s.err == nil {
			s.err = err
		}
	}
	return s.err
}

// Pending reports whether syncs are added and not yet waited for.
func (s *AuditSyncs) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waits) > 0
}

type auditSyncsKey struct{}

// WithAuditSyncs returns ctx under which the syncs of change records go
// to s: the work that makes the changes waits for s before it makes
// them durable, and the request's answer does not wait for them.
func WithAuditSyncs(ctx context.Context, s *AuditSyncs) context.Context {
	return context.WithValue(ctx, auditSyncsKey{}, s)
}

// AuditSyncsOf returns where the syncs of the change records made under
// ctx go: the set WithAuditSyncs gave, else the request's
// (DeferAuditSyncs), else nil (each record is synced before the
// authorization seam answers).
func AuditSyncsOf(ctx context.Context) *AuditSyncs {
	if s, ok := ctx.Value(auditSyncsKey{}).(*AuditSyncs); ok {
		return s
	}
	return InfoFrom(ctx).syncs
}

// DeferAuditSyncs lets the authorization seam leave the sync of this
// request's change records under way (AuditSyncsOf): the caller promises
// to call WaitAuditSyncs before any of the answer goes out.
// The server calls it before it hands the request on.
func (i *Info) DeferAuditSyncs() {
	if i.syncs == nil {
		i.syncs = &AuditSyncs{}
	}
}

// AddAuditSync adds the wait of a record's sync under way; the answer
// waits for it. It reports false, adding nothing, when the request's
// answer does not wait (the caller must wait itself).
func (i *Info) AddAuditSync(wait func() error) bool {
	if i.syncs == nil {
		return false
	}
	i.syncs.Add(wait)
	return true
}

// WaitAuditSyncs waits for every audit sync added so far and returns
// the first failure (ErrAuditUnavailable: the answer must be 503), also
// on later calls.
func (i *Info) WaitAuditSyncs() error {
	if i.syncs == nil {
		return nil
	}
	return i.syncs.Wait()
}
