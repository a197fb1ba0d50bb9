package pullthrough

// Blob flights: one upstream fetch of one blob of one cache repository,
// shared by every pull that asks for it while it runs. The upstream's
// bytes are written to a spool file (unlinked at once) as they arrive,
// and hashed; each pull reads the spool at its own pace, and so does the
// store (PutCachedBlob, which verifies the digest again). A reader gets
// the blob's last byte only once the whole blob matched its digest (and
// the size the upstream announced): on a mismatch, or a failure upstream,
// its read fails instead, so the answer it streams is cut short and the
// client's own digest check fails too; the store drops what it wrote.
//
// The cache repository is created, with the authority of a pull, only
// once the upstream has answered (a blob it does not have creates
// nothing); the store starts writing once one pull has made sure of it.
// A flight outlives the pulls that started it (the cache fills either
// way), up to maxFetch; when every pull left before any could make sure
// of the repository, it stops.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/request"
)

// spoolBuffer is the size of the reads from upstream.
const spoolBuffer = 256 << 10

// flightTable holds the flights under way, by repository and digest.
type flightTable struct {
	mu sync.Mutex
	m  map[string]*flight
}

func (t *flightTable) init() { t.m = map[string]*flight{} }

// flight is one upstream fetch of blob d into repo.
type flight struct {
	c    *Cache
	key  string
	repo string
	d    digest.Digest

	mu   sync.Mutex
	cond *sync.Cond
	// spool holds the bytes fetched so far (n of them); nil until the
	// upstream answered.
	spool *os.File
	n     int64
	// size is the blob's size as the upstream announced it, -1 when it
	// did not; headers is true once the upstream answered (or failed).
	size    int64
	headers bool
	// done is true once the fetch ended: err nil when the bytes matched
	// the digest, else why not.
	done bool
	err  error
	// ready is true once a pull made sure the cache repository exists
	// (the store may write); pulls counts the pulls reading; abandoned is
	// set when the last pull left before ready. refs counts every holder
	// of the spool (the fetch, the store, the pulls): the last one closes
	// it.
	ready     bool
	pulls     int
	refs      int
	abandoned bool
	cancel    context.CancelFunc
	// storedCh is closed when the store's copy is written (or failed,
	// storeErr).
	storedCh chan struct{}
	storeErr error
	// created is true when a pull of this flight created the repository
	// (a failed fill removes it again).
	created bool
	// records are the audit syncs of the pulls' records of this fill
	// (fillContext): the store's copy waits for them.
	records []*request.AuditSyncs
	// wanted is set once a pull asks for the bytes (or fillHeadStart
	// passed): the upstream's body is read only then.
	wanted bool
	// served is set once a pull's reader returned the blob's first bytes
	// (or storeHeadStart passed): the store's copy starts only then, so
	// that its work does not delay the first bytes of the pull.
	served bool
}

// storeHeadStart is how long the store's copy of a blob waits for the
// pull reading it to get its first bytes before it starts anyway.
const storeHeadStart = 100 * time.Millisecond

// joinFlight returns a reader of blob d of repo from upstream: the
// flight under way, or a new one (enterFlight), once the upstream
// answered and the cache repository is made sure of (awaitAnswer). A
// pull wants the bytes now; the background copy of an image (want false)
// only asks the upstream, and its flights read the upstream's body once
// a pull joins them, or after fillHeadStart: a pull's first bytes do not
// wait for the copies of other blobs. Its errors are errNotFound,
// ErrUpstreamAuth, ErrUpstream, the repository's creation refused, or
// engine.ErrNotPullThroughCache.
func (c *Cache) joinFlight(ctx context.Context, rule *engine.PullThroughCacheRule, repo string, d digest.Digest, want bool) (*flightReader, int64, error) {
	r, err := c.enterFlight(ctx, rule, repo, d, want)
	if err != nil {
		return nil, 0, err
	}
	size, err := r.awaitAnswer(ctx)
	if err != nil {
		r.Close()
		return nil, 0, err
	}
	return r, size, nil
}

// enterFlight joins the flight of blob d of repo, starting it (its
// request upstream goes out at once) when none is under way, and returns
// the reader that holds it: close it to leave. It does not wait.
func (c *Cache) enterFlight(ctx context.Context, rule *engine.PullThroughCacheRule, repo string, d digest.Digest, want bool) (*flightReader, error) {
	key := repo + "\x00" + string(d)
	c.flights.mu.Lock()
	f := c.flights.m[key]
	if f == nil {
		f = &flight{c: c, key: key, repo: repo, d: d, size: -1, storedCh: make(chan struct{}), refs: 1} // the fetch's
		f.cond = sync.NewCond(&f.mu)
		if !c.goBackground(ctx, func(fctx context.Context) { f.run(fctx, rule) }) {
			c.flights.mu.Unlock()
			return nil, fmt.Errorf("%w: the registry is shutting down", ErrUpstream)
		}
		c.flights.m[key] = f
	}
	f.mu.Lock()
	f.refs++
	f.pulls++
	if s := request.AuditSyncsOf(ctx); s != nil {
		f.records = append(f.records, s)
	}
	if want && !f.wanted {
		f.wanted = true
		f.cond.Broadcast()
	}
	f.mu.Unlock()
	c.flights.mu.Unlock()
	return &flightReader{f: f, ctx: ctx, pull: true}, nil
}

// awaitAnswer waits for the upstream's answer to r's flight, then makes
// sure of the cache repository with the authority ctx carries
// (authz.GuardCreation), and returns the blob's size as the upstream
// announced it. On an error the caller closes r.
func (r *flightReader) awaitAnswer(ctx context.Context) (int64, error) {
	f := r.f
	stop := context.AfterFunc(ctx, f.wake)
	defer stop()
	f.mu.Lock()
	for !f.headers && ctx.Err() == nil {
		f.cond.Wait()
	}
	headers, size, ferr := f.headers, f.size, f.err
	f.mu.Unlock()
	switch {
	case !headers:
		return 0, ctx.Err()
	case ferr != nil:
		return 0, ferr
	}
	created, err := f.c.store.EnsureCacheRepository(ctx, f.repo)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	f.ready = true
	f.created = f.created || created
	f.cond.Broadcast()
	f.mu.Unlock()
	return size, nil
}

// wake wakes every waiter of f (a context ended).
func (f *flight) wake() {
	f.mu.Lock()
	f.cond.Broadcast()
	f.mu.Unlock()
}

// run is the fetch: upstream into the spool, then (once a pull made
// sure of the repository) into the store.
func (f *flight) run(ctx context.Context, rule *engine.PullThroughCacheRule) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer f.release(false) // the fetch's hold on the spool, once out of the table
	defer f.c.flights.remove(f)
	f.mu.Lock()
	f.cancel = cancel
	abandoned := f.abandoned
	f.mu.Unlock()
	if abandoned {
		f.finish(context.Canceled, true)
		close(f.storedCh)
		return
	}
	// The spool file is made while the upstream is asked: neither waits
	// for the other on the way to the first bytes.
	type made struct {
		f   *os.File
		err error
	}
	spoolCh := make(chan made, 1)
	go func() {
		sp, err := newSpool(f.c.spoolDir)
		spoolCh <- made{sp, err}
	}()
	body, size, err := f.open(ctx, rule)
	sp := <-spoolCh
	if err == nil {
		err = sp.err
	}
	if err != nil {
		if sp.f != nil {
			sp.f.Close()
		}
		if body != nil {
			body.Close()
		}
		f.finish(err, true)
		close(f.storedCh)
		return
	}
	defer body.Close()
	spool := sp.f
	f.mu.Lock()
	f.spool, f.size, f.headers = spool, size, true
	f.refs++ // the store's reader
	f.cond.Broadcast()
	f.mu.Unlock()
	// Let the pulls woken run now: a goroutine that keeps copying would
	// hold its core until the scheduler preempts it, 10 ms later.
	runtime.Gosched()
	go f.store(ctx)
	f.awaitWanted(ctx)
	f.finish(f.copy(ctx, body), false)
	<-f.storedCh
}

// awaitWanted waits until a pull wants the bytes, or fillHeadStart
// passed, or the fetch ends.
func (f *flight) awaitWanted(ctx context.Context) {
	t := time.AfterFunc(fillHeadStart, func() {
		f.mu.Lock()
		f.wanted = true
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer t.Stop()
	stop := context.AfterFunc(ctx, f.wake)
	defer stop()
	f.mu.Lock()
	for !f.wanted && !f.abandoned && ctx.Err() == nil {
		f.cond.Wait()
	}
	f.mu.Unlock()
}

// open asks the upstream for the blob and returns its body and announced
// size (-1 when it did not say).
func (f *flight) open(ctx context.Context, rule *engine.PullThroughCacheRule) (io.ReadCloser, int64, error) {
	var resp *http.Response
	err := f.c.withUpstream(ctx, rule, f.repo, func(up *upstream) (err error) {
		resp, err = up.get(ctx, "blobs/"+string(f.d), "")
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return resp.Body, resp.ContentLength, nil
}

// newSpool makes an anonymous spool file in dir.
func newSpool(dir string) (*os.File, error) {
	sp, err := os.CreateTemp(dir, "berth-pullthrough-*")
	if err != nil {
		return nil, fmt.Errorf("pullthrough: spool: %w", err)
	}
	if err := os.Remove(sp.Name()); err != nil {
		sp.Close()
		return nil, fmt.Errorf("pullthrough: spool: %w", err)
	}
	return sp, nil
}

// copy reads the upstream's body into the spool, hashing it, and
// returns nil once it ended with exactly the blob's bytes.
func (f *flight) copy(ctx context.Context, body io.Reader) error {
	var h hash.Hash
	switch f.d.Algorithm() {
	case digest.SHA256:
		h = sha256.New()
	default:
		if !f.d.Algorithm().Available() {
			return fmt.Errorf("%w: blob %s: digest algorithm not supported", ErrUpstream, f.d)
		}
		h = f.d.Algorithm().Hash()
	}
	buf := make([]byte, spoolBuffer)
	f.mu.Lock()
	size := f.size
	f.mu.Unlock()
	var n int64
	for {
		k, rerr := body.Read(buf)
		if k > 0 {
			if size >= 0 && n+int64(k) > size {
				return fmt.Errorf("%w: blob %s: more bytes than the %d the upstream announced", ErrUpstream, f.d, size)
			}
			h.Write(buf[:k])
			if _, err := f.spool.WriteAt(buf[:k], n); err != nil {
				return fmt.Errorf("pullthrough: spool of %s: %w", f.d, err)
			}
			n += int64(k)
			f.mu.Lock()
			f.n = n
			f.cond.Broadcast()
			f.mu.Unlock()
			runtime.Gosched() // the readers woken take the bytes now (above)
		}
		if rerr == io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
			break
		}
		if rerr != nil {
			return fmt.Errorf("%w: blob %s: %v", ErrUpstream, f.d, rerr)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%w: blob %s: %d bytes, the upstream announced %d", ErrUpstream, f.d, n, size)
	}
	if got := digest.NewDigest(f.d.Algorithm(), h); got != f.d {
		return fmt.Errorf("%w: blob %s: the upstream's bytes are %s", ErrUpstream, f.d, got)
	}
	return nil
}

// finish records the fetch's end; headers marks a failure before the
// upstream answered.
func (f *flight) finish(err error, headers bool) {
	f.mu.Lock()
	f.done, f.err = true, err
	if headers {
		f.headers = true
	}
	f.cond.Broadcast()
	f.mu.Unlock()
	if err != nil && !errors.Is(err, errNotFound) && !errors.Is(err, context.Canceled) && !f.c.stopping() {
		f.c.log.Warn("pull-through: blob fetch failed", "repository", f.repo, "digest", f.d, "err", err)
	}
}

// store writes the blob into the store once a pull made sure of the
// repository, reading the spool as the pulls do (so a blob that fails
// its digest is never stored: PutCachedBlob checks it again), and
// records the outcome.
func (f *flight) store(ctx context.Context) {
	defer close(f.storedCh)
	r := &flightReader{f: f, ctx: ctx}
	defer r.Close()
	headStart := time.AfterFunc(storeHeadStart, func() {
		f.mu.Lock()
		f.served = true
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer headStart.Stop()
	f.mu.Lock()
	for (!f.ready || !f.served && !f.done) && !f.abandoned && ctx.Err() == nil {
		f.cond.Wait()
	}
	ready, records := f.ready, f.records
	f.mu.Unlock()
	if !ready {
		f.storeErr = fmt.Errorf("%w: every pull of %s left before the repository was made", context.Canceled, f.d)
		return
	}
	for _, s := range records {
		if err := s.Wait(); err != nil {
			f.storeErr = err
			f.mu.Lock()
			created := f.created
			f.mu.Unlock()
			f.c.log.Warn("pull-through: the audit records of a fill could not be synced; the blob is not stored", "repository", f.repo, "digest", f.d, "err", err)
			f.c.undoCreation(ctx, f.repo, created)
			return
		}
	}
	// A repository removed meanwhile is not made again by the flight: no
	// pull's authority is at hand.
	sctx := engine.WithCreationCheck(ctx, func(context.Context, engine.RepositoryCreation) error {
		return fmt.Errorf("%w: the cache repository %s went away during the fill", engine.ErrNotPullThroughCache, f.repo)
	})
	_, err := f.c.store.PutCachedBlob(sctx, f.repo, r, f.d)
	f.storeErr = err
	f.mu.Lock()
	fetchErr, created := f.err, f.created
	f.mu.Unlock()
	switch {
	case err == nil:
		f.c.log.Debug("pull-through: blob cached", "repository", f.repo, "digest", f.d)
	case fetchErr != nil || errors.Is(err, engine.ErrNotPullThroughCache):
		f.c.undoCreation(ctx, f.repo, created)
	default:
		f.c.log.Warn("pull-through: storing a blob fetched upstream failed", "repository", f.repo, "digest", f.d, "err", err)
		f.c.undoCreation(ctx, f.repo, created)
	}
}

// remove takes f out of the table once its fetch and store ended: from
// then on the store answers (or a new flight starts).
func (t *flightTable) remove(f *flight) {
	t.mu.Lock()
	if t.m[f.key] == f {
		delete(t.m, f.key)
	}
	t.mu.Unlock()
}

// release drops one holder of f's spool (a pull's reader when pull);
// the last one closes it, and the last pull leaving before any made
// sure of the repository abandons the flight.
func (f *flight) release(pull bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pull {
		f.pulls--
		if f.pulls == 0 && !f.ready {
			f.abandoned = true
			if f.cancel != nil {
				f.cancel()
			}
			f.cond.Broadcast()
		}
	}
	f.refs--
	if f.refs == 0 && f.spool != nil {
		f.spool.Close()
		f.spool = nil
	}
}

// flightReader reads a flight's blob from its start.
type flightReader struct {
	f      *flight
	ctx    context.Context
	pull   bool // a pull's (else the store's)
	off    int64
	closed bool
}

// servedFirst records that a pull's reader got the blob's first bytes:
// the store's copy of the blob may start.
func (r *flightReader) servedFirst() {
	f := r.f
	f.mu.Lock()
	first := !f.served
	f.served = true
	if first {
		f.cond.Broadcast()
	}
	f.mu.Unlock()
}

// Read returns the bytes fetched so far beyond the reader's offset,
// waiting for more; the blob's last byte only once it matched its
// digest, and the fetch's failure otherwise.
func (r *flightReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f := r.f
	stop := context.AfterFunc(r.ctx, f.wake)
	defer stop()
	f.mu.Lock()
	for {
		if err := r.ctx.Err(); err != nil {
			f.mu.Unlock()
			return 0, err
		}
		if f.done && f.err != nil {
			f.mu.Unlock()
			return 0, f.err
		}
		limit := f.n
		if !f.done && (f.size < 0 || f.n >= f.size) {
			limit-- // the blob's last byte waits for its digest
		}
		if r.off < limit {
			n := min(int64(len(p)), limit-r.off)
			sp := f.spool
			f.mu.Unlock()
			k, err := sp.ReadAt(p[:n], r.off)
			if r.pull && r.off == 0 && k > 0 {
				r.servedFirst()
			}
			r.off += int64(k)
			if err != nil && !errors.Is(err, io.EOF) {
				return k, fmt.Errorf("pullthrough: spool of %s: %w", f.d, err)
			}
			return k, nil
		}
		if f.done {
			f.mu.Unlock()
			return 0, io.EOF
		}
		f.cond.Wait()
	}
}

// fetched waits for the fetch's end and returns its failure: nil once
// the whole blob matched its digest.
func (r *flightReader) fetched(ctx context.Context) error {
	f := r.f
	stop := context.AfterFunc(ctx, f.wake)
	defer stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for !f.done {
		if err := ctx.Err(); err != nil {
			return err
		}
		f.cond.Wait()
	}
	return f.err
}

// Close releases the reader; the flight goes on.
func (r *flightReader) Close() error {
	if !r.closed {
		r.closed = true
		r.f.release(r.pull)
	}
	return nil
}

// drain waits for the fetch's end and the store's copy, reading nothing
// itself: the fetch's failure, else the store's.
func (r *flightReader) drain(ctx context.Context) error {
	err := r.fetched(ctx)
	serr := r.stored(ctx)
	if err != nil {
		return err
	}
	return serr
}

// stored waits for the store's copy of the blob and returns how it went.
func (r *flightReader) stored(ctx context.Context) error {
	select {
	case <-r.f.storedCh:
		return r.f.storeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}
