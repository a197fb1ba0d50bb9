package request

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrShuttingDown is returned to requests that would open an upload
// after shutdown began. Both APIs answer it as a retryable error.
var ErrShuttingDown = errors.New("registryd: shutting down")

// Uploads tracks the requests that hold an open engine upload (OCI
// PATCH, PUT and monolithic POST; the ECR layer upload calls), so that
// shutdown waits for them to checkpoint and close their session. The zero
// value is ready to use.
type Uploads struct {
	mu      sync.Mutex
	closing bool
	wg      sync.WaitGroup
	n       atomic.Int64
}

// Begin registers a request that is about to open an upload. It fails
// with ErrShuttingDown once Close was called. Every successful Begin
// needs one End.
func (u *Uploads) Begin() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closing {
		return ErrShuttingDown
	}
	u.wg.Add(1)
	u.n.Add(1)
	return nil
}

// End undoes Begin.
func (u *Uploads) End() {
	u.n.Add(-1)
	u.wg.Done()
}

// InProgress is the number of requests between Begin and End.
func (u *Uploads) InProgress() int64 { return u.n.Load() }

// Close refuses every Begin from now on.
func (u *Uploads) Close() {
	u.mu.Lock()
	u.closing = true
	u.mu.Unlock()
}

// Wait waits up to timeout for every request that began to end, and
// reports whether they did.
func (u *Uploads) Wait(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { u.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}
