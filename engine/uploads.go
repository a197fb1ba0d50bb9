package engine

// Upload sessions: a blob pushed in one or more requests, resumable
// after a restart, committed under its digest.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/index"
)

// Upload is one blob upload session. Bytes are appended in order; a
// session survives a restart of the process (see ResumeUpload). An Upload
// is used by one goroutine at a time.
type Upload interface {
	// ID is the session's identifier, safe to put in a URL.
	ID() string
	// Repository is the repository the blob is pushed into.
	Repository() string
	// Size is the number of bytes appended so far.
	Size() int64
	// Write appends p.
	Write(p []byte) (int, error)
	// ReadFrom appends everything r yields.
	ReadFrom(r io.Reader) (int64, error)
	// Checkpoint makes every byte appended so far durable and records
	// the session's state, so that it resumes at Size() after a crash.
	Checkpoint(ctx context.Context) error
	// Commit verifies that the content has digest expected (and, if
	// size >= 0, that length), stores the blob, links it to the
	// repository and ends the session.
	Commit(ctx context.Context, expected digest.Digest, size int64) (Descriptor, error)
	// Cancel ends the session and removes what it wrote.
	Cancel(ctx context.Context) error
	// Close releases the in-memory handle after a Checkpoint; the session
	// stays resumable.
	Close() error
}

// uploadState is what the index keeps of an upload session between
// checkpoints (index.Upload.State).
type uploadState struct {
	// KEK is the key the session's data key is wrapped under.
	KEK string `json:"kek,omitempty"`
	// Wrap is the session's data key, wrapped (nil: plain upload).
	Wrap *crypt.WrappedKey `json:"wrap,omitempty"`
	// Writer is the blob writer's last checkpoint (nil: nothing durable yet).
	Writer *blob.WriterState `json:"writer,omitempty"`
}

// upload is one session. mu is held by the goroutine using it (between
// BeginUpload/ResumeUpload and Close/Commit/Cancel).
type upload struct {
	e       *Engine
	id      string
	repo    string
	started time.Time
	state   uploadState
	dataKey []byte
	// client is set for a client's upload (not the engine's own
	// derivative of a layer): its calls count as writes in flight.
	client bool

	// saved is the session's record state as this handle last wrote or
	// read it: with sharedUploads, a record that differs means another
	// replica continued the session and this handle is stale.
	saved []byte

	mu       sync.Mutex
	held     bool // a caller holds mu (see acquire)
	w        blobIngest
	lastUsed time.Time
	done     bool
}

var _ Upload = (*upload)(nil)

func newUploadID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // a version-4 UUID, as clients expect
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// BeginUpload starts an upload session into repo, creating the repository
// on push if a template allows it. The session is held by the caller
// until Close, Commit or Cancel.
func (e *Engine) BeginUpload(ctx context.Context, repo string) (Upload, error) {
	return e.beginUpload(ctx, repo, digest.SHA256, uploadPush)
}

// BeginUploadAlgorithm is BeginUpload for a blob whose digest algorithm is
// known in advance (e.g. sha512), so it is computed while bytes arrive.
func (e *Engine) BeginUploadAlgorithm(ctx context.Context, repo string, alg digest.Algorithm) (Upload, error) {
	return e.beginUpload(ctx, repo, alg, uploadPush)
}

// uploadFor is what an upload is for.
type uploadFor int

const (
	// uploadPush: a client's push, refused into a repository a
	// pull-through cache created.
	uploadPush uploadFor = iota
	// uploadCacheFill: a pull-through cache's fill, only into such a
	// repository (created when it does not exist, as
	// EnsureCacheRepository does).
	uploadCacheFill
	// uploadDerived: the engine's own derivative of a layer the
	// repository holds (layers.go), into any repository.
	uploadDerived
)

// beginUpload starts an upload into repo for what says.
func (e *Engine) beginUpload(ctx context.Context, repo string, alg digest.Algorithm, what uploadFor) (*upload, error) {
	if what != uploadDerived {
		defer e.pushes.begin()()
	}
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	if alg != digest.SHA256 && alg != digest.SHA512 {
		return nil, fmt.Errorf("%w: algorithm %q", ErrDigestInvalid, alg)
	}
	var (
		r   *repoState
		err error
	)
	switch what {
	case uploadCacheFill:
		r, _, err = e.ensureCacheRepo(ctx, repo)
	case uploadDerived:
		r, _, err = e.ensureRepo(ctx, repo)
	default:
		if r, _, err = e.ensureRepo(ctx, repo); err == nil {
			err = refusePush(r)
		}
	}
	if err != nil {
		return nil, err
	}
	u := &upload{e: e, id: newUploadID(), repo: repo, started: e.now(), lastUsed: e.clock.Now(), client: what != uploadDerived}
	if !e.opts.DisableEncryption {
		dk, err := crypt.NewDataKey()
		if err != nil {
			return nil, err
		}
		w, err := e.keys.Wrap(ctx, r.kek, dk, uploadWrapAD(u.id))
		if err != nil {
			return nil, keyErr(fmt.Errorf("upload into %s: %w", repo, err))
		}
		u.dataKey, u.state.KEK, u.state.Wrap = dk, r.kek, &w
	}
	u.w, err = e.hot.NewWriter(ctx, u.id, blob.WriterOptions{DataKey: u.dataKey, Algorithm: alg, Limit: e.opts.MaxBlobSize})
	if err != nil {
		return nil, blobErr(err)
	}
	// The record is not synced: a session nobody has written to yet costs
	// no fsync; the first Checkpoint makes it durable.
	if err := e.saveUpload(u, false); err != nil {
		u.w.Cancel()
		return nil, err
	}
	u.acquire()
	if err := e.register(u); err != nil {
		u.w.Cancel()
		return nil, err
	}
	return u, nil
}

func (e *Engine) register(u *upload) error {
	e.upMu.Lock()
	defer e.upMu.Unlock()
	if e.closed {
		return ErrClosed
	}
	e.uploads[u.id] = u
	return nil
}

func (e *Engine) saveUpload(u *upload, sync bool) error {
	st, err := json.Marshal(&u.state)
	if err != nil {
		return err
	}
	if e.sharedUploads && u.saved != nil {
		// Another replica may have continued the session since this
		// handle last saw its record: never overwrite its state with an
		// older one.
		if err := u.checkCurrent(); err != nil {
			return err
		}
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutUpload(&index.Upload{ID: u.id, Repo: u.repo, StartedAt: u.started, UpdatedAt: e.now(), State: st}); err != nil {
		return storageErr(err)
	}
	if err := b.Commit(sync); err != nil {
		return storageErr(err)
	}
	u.saved = st
	return nil
}

// checkCurrent fails with ErrBlobUploadInvalid when the session's record
// is not the one this handle last wrote or read (another replica
// continued the session), ErrBlobUploadUnknown when it is gone.
func (u *upload) checkCurrent() error {
	rec, err := u.e.db.Upload(u.id)
	if errors.Is(err, index.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrBlobUploadUnknown, u.id)
	}
	if err != nil {
		return storageErr(err)
	}
	if !bytes.Equal(rec.State, u.saved) {
		return fmt.Errorf("%w: upload %s was continued elsewhere", ErrBlobUploadInvalid, u.id)
	}
	return nil
}

// staleHandle reports whether checkCurrent's err says that the handle is
// stale (not that the metadata could not be read).
func staleHandle(err error) bool {
	return errors.Is(err, ErrBlobUploadInvalid) || errors.Is(err, ErrBlobUploadUnknown)
}

// dropStale forgets live handle u, which another replica's writes made
// stale: its writer is closed and its spool files removed (the session's
// bytes are in the bucket). The caller holds u.
func (e *Engine) dropStale(u *upload) {
	u.done = true
	e.upMu.Lock()
	if e.uploads[u.id] == u {
		delete(e.uploads, u.id)
	}
	e.upMu.Unlock()
	_ = u.w.Close()
	if s, ok := e.hot.(objectBackend); ok {
		_ = s.Spool().RemoveUpload(u.id)
	}
}

// ResumeUpload returns session id of repo: the live one, or one reopened
// from its last checkpoint after a restart.
func (e *Engine) ResumeUpload(ctx context.Context, repo, id string) (Upload, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	e.upMu.Lock()
	u := e.uploads[id]
	e.upMu.Unlock()
	if u != nil {
		if u.repo != repo {
			return nil, fmt.Errorf("%w: %s", ErrBlobUploadUnknown, id)
		}
		if !u.tryAcquire() {
			return nil, fmt.Errorf("%w: upload %s is in use by another request", ErrBlobUploadInvalid, id)
		}
		if u.done {
			u.release()
			return nil, fmt.Errorf("%w: %s", ErrBlobUploadUnknown, id)
		}
		if e.sharedUploads {
			if err := u.checkCurrent(); err != nil {
				if staleHandle(err) {
					// Continued, committed or cancelled on another
					// replica: this handle's bytes are not the
					// session's any more.
					e.dropStale(u)
				}
				u.release()
				if errors.Is(err, ErrBlobUploadInvalid) {
					return e.reopenUpload(ctx, repo, id)
				}
				return nil, err
			}
		}
		u.lastUsed = e.clock.Now()
		return u, nil
	}
	return e.reopenUpload(ctx, repo, id)
}

// uploadLockKey is the lock of upload session id that reopening it and
// expiring it (gc) both hold.
func uploadLockKey(id string) string { return "upload\x00" + id }

func (e *Engine) reopenUpload(ctx context.Context, repo, id string) (*upload, error) {
	unlock := e.digestLocks.Lock(uploadLockKey(id))
	defer unlock()
	e.upMu.Lock()
	if u := e.uploads[id]; u != nil {
		e.upMu.Unlock()
		return nil, fmt.Errorf("%w: upload %s is in use by another request", ErrBlobUploadInvalid, id)
	}
	e.upMu.Unlock()
	rec, err := e.dbFor(ctx).Upload(id)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) || errors.Is(err, index.ErrInvalidKey) {
			return nil, fmt.Errorf("%w: %s", ErrBlobUploadUnknown, id)
		}
		return nil, storageErr(err)
	}
	if rec.Repo != repo {
		return nil, fmt.Errorf("%w: %s", ErrBlobUploadUnknown, id)
	}
	u := &upload{e: e, id: id, repo: repo, started: rec.StartedAt, lastUsed: e.clock.Now(), client: true, saved: rec.State}
	if err := json.Unmarshal(rec.State, &u.state); err != nil {
		return nil, fmt.Errorf("%w: upload %s state: %v", ErrCorrupt, id, err)
	}
	if u.state.Wrap != nil {
		if u.dataKey, err = e.keys.Unwrap(ctx, *u.state.Wrap, uploadWrapAD(id)); err != nil {
			return nil, keyErr(fmt.Errorf("upload %s: %w", id, err))
		}
	}
	alg := digest.SHA256
	if u.state.Writer != nil {
		alg = u.state.Writer.Algorithm
		u.w, err = e.hot.ResumeWriter(ctx, id, *u.state.Writer, blob.WriterOptions{DataKey: u.dataKey, Limit: e.opts.MaxBlobSize})
	} else {
		// Nothing was made durable: start the file afresh.
		e.hot.RemoveUpload(id)
		u.w, err = e.hot.NewWriter(ctx, id, blob.WriterOptions{DataKey: u.dataKey, Algorithm: alg, Limit: e.opts.MaxBlobSize})
	}
	if errors.Is(err, blob.ErrBadState) {
		// The session cannot resume (its file went with a commit that a
		// crash interrupted before the index recorded it, or it does not
		// match its state): forget it, so that it is cleanly unknown.
		e.log.Warn("dropping unresumable upload", "upload", id, "repository", repo, "err", err)
		e.hot.RemoveUpload(id)
		b := e.dbFor(ctx).NewBatch()
		defer b.Close()
		if derr := b.DeleteUpload(id); derr != nil {
			return nil, storageErr(derr)
		}
		if derr := b.Commit(true); derr != nil {
			return nil, storageErr(derr)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrBlobUploadUnknown, id, err)
	}
	if err != nil {
		return nil, blobErr(err)
	}
	u.acquire()
	if err := e.register(u); err != nil {
		u.w.Close()
		return nil, err
	}
	return u, nil
}

func (u *upload) ID() string { return u.id }

func (u *upload) Repository() string { return u.repo }

func (u *upload) Size() int64 { return u.w.Size() }

// writing counts a client's call as a write in flight until the returned
// function is called.
func (u *upload) writing() func() {
	if !u.client {
		return func() {}
	}
	return u.e.pushes.begin()
}

func (u *upload) Write(p []byte) (int, error) {
	defer u.writing()()
	if u.done {
		return 0, fmt.Errorf("%w: %s", ErrBlobUploadUnknown, u.id)
	}
	n, err := u.w.Write(p)
	return n, blobErr(err)
}

func (u *upload) ReadFrom(r io.Reader) (int64, error) {
	defer u.writing()()
	if u.done {
		return 0, fmt.Errorf("%w: %s", ErrBlobUploadUnknown, u.id)
	}
	n, err := u.w.ReadFrom(r)
	return n, blobErr(err)
}

// Checkpoint makes the bytes appended so far durable: the writer's file
// is fsynced and its state recorded in the index with a synced batch.
func (u *upload) Checkpoint(ctx context.Context) error {
	if u.done {
		return fmt.Errorf("%w: %s", ErrBlobUploadUnknown, u.id)
	}
	if u.e.sharedUploads && u.saved != nil {
		// Before anything goes to the bucket: a handle that another
		// replica's checkpoint made stale must not overwrite the parts
		// and side object that checkpoint recorded.
		if err := u.checkCurrent(); err != nil {
			return err
		}
	}
	st, err := u.w.Checkpoint(ctx)
	if err != nil {
		return blobErr(err)
	}
	u.state.Writer = &st
	return u.e.saveUpload(u, true)
}

// park checkpoints and closes the writer; the session stays resumable.
func (u *upload) park(ctx context.Context) error {
	if u.done {
		return nil
	}
	err := u.Checkpoint(ctx)
	u.done = true
	if cerr := u.w.Close(); err == nil {
		err = cerr
	}
	return err
}

// acquire and tryAcquire take the session for one caller; release (by
// Close, Commit or Cancel) gives it back. A second release by the same
// caller is a no-op, so Close after Commit is harmless.
func (u *upload) acquire() {
	u.mu.Lock()
	u.held = true
}

func (u *upload) tryAcquire() bool {
	if !u.mu.TryLock() {
		return false
	}
	u.held = true
	return true
}

func (u *upload) release() {
	if u.held {
		u.held = false
		u.mu.Unlock()
	}
}

// Close hands the session back to the engine, which keeps the writer open
// for the next request (and parks it when idle or at Close).
func (u *upload) Close() error {
	u.lastUsed = u.e.clock.Now()
	u.release()
	return nil
}

// end forgets the session: its record, its file and its live handle.
func (u *upload) end(b *index.Batch) error {
	u.done = true
	u.e.upMu.Lock()
	if u.e.uploads != nil {
		delete(u.e.uploads, u.id)
	}
	u.e.upMu.Unlock()
	return b.DeleteUpload(u.id)
}

// Cancel ends the session and removes what it wrote.
func (u *upload) Cancel(ctx context.Context) error {
	defer u.release()
	if u.done {
		return nil
	}
	werr := u.w.Cancel()
	b := u.e.db.NewBatch()
	defer b.Close()
	if err := u.end(b); err != nil {
		return storageErr(err)
	}
	if err := b.Commit(false); err != nil {
		return storageErr(err)
	}
	return blobErr(werr)
}

// Commit verifies the content and stores the blob (or, when the store has
// it already, drops this copy), links it to the repository and ends the
// session. On a digest or size mismatch the session is cancelled: nothing
// of it remains.
func (u *upload) Commit(ctx context.Context, expected digest.Digest, size int64) (Descriptor, error) {
	defer u.release()
	defer u.writing()()
	if u.done {
		return Descriptor{}, fmt.Errorf("%w: %s", ErrBlobUploadUnknown, u.id)
	}
	if expected == "" {
		expected = u.w.Digest()
	} else if _, err := ParseDigest(string(expected)); err != nil {
		return Descriptor{}, err
	}
	desc, err := u.e.commitUpload(ctx, u, expected, size)
	if err != nil && !errors.Is(err, ErrKeyUnavailable) {
		// Refused or failed: leave nothing behind.
		u.w.Cancel()
		b := u.e.db.NewBatch()
		u.end(b)
		end := func(context.Context) {
			b.Commit(false)
			b.Close()
		}
		// A request given up (its database calls cancelled) ends its
		// session's record in the background: its answer does not wait
		// for the database it stopped waiting for.
		if ctx.Err() == nil || !u.e.goBackground(end) {
			end(ctx)
		}
	}
	return desc, err
}

func (e *Engine) commitUpload(ctx context.Context, u *upload, d digest.Digest, size int64) (Descriptor, error) {
	db := e.dbFor(ctx)
	if err := u.w.Verify(d, size); err != nil {
		return Descriptor{}, blobErr(err)
	}
	r, err := e.loadRepo(u.repo)
	if err != nil {
		return Descriptor{}, err
	}
	unlock := e.digestLocks.Lock(digestKey(d))
	defer unlock()
	defer e.gcEnter()() // write barrier: see engine/gc.go and docs/gc.md
	e.shade(d)
	b := db.NewBatch()
	defer b.Close()
	wrote := false // this call put d's file in place
	rec, err := db.Blob(d)
	switch {
	case err == nil:
		// Dedupe: the store holds these bytes already.
		if err := u.w.Cancel(); err != nil {
			return Descriptor{}, blobErr(err)
		}
		if rec.Tier != index.TierHot {
			// In the archive tier: a push of it brings it back. The copy
			// comes from the archive, under the blob's own data key, so
			// that every wrap in its record stays valid.
			if err := e.ensureHotLocked(ctx, d); err != nil {
				return Descriptor{}, err
			}
			if rec, err = db.Blob(d); err != nil {
				return Descriptor{}, storageErr(err)
			}
		}
		changed, err := e.addWrap(ctx, rec, r.kek)
		if err != nil {
			return Descriptor{}, err
		}
		if changed {
			if err := b.PutBlob(rec); err != nil {
				return Descriptor{}, storageErr(err)
			}
		}
	case errors.Is(err, index.ErrNotFound):
		info, err := u.w.Commit(ctx, d, size)
		if err != nil {
			return Descriptor{}, blobErr(err)
		}
		wrote = true
		rec = &index.Blob{Digest: d, Size: info.Size, StoredSize: info.StoredSize, CreatedAt: e.now(), FileID: info.FileID[:]}
		if u.dataKey != nil {
			w, err := e.keys.Wrap(ctx, u.state.KEK, u.dataKey, blobWrapAD(d))
			if err != nil {
				e.hot.Delete(ctx, d)
				return Descriptor{}, keyErr(err)
			}
			rec.Wraps = []index.KeyWrap{toIndexWrap(w)}
			if r.kek != u.state.KEK {
				if _, err := e.addWrap(ctx, rec, r.kek); err != nil {
					e.hot.Delete(ctx, d)
					return Descriptor{}, err
				}
			}
		}
		if err := b.PutBlob(rec); err != nil {
			return Descriptor{}, storageErr(err)
		}
	default:
		return Descriptor{}, storageErr(err)
	}
	if err := b.PutLink(u.repo, d, e.now()); err != nil {
		return Descriptor{}, storageErr(err)
	}
	if err := e.putShades(b, d); err != nil {
		return Descriptor{}, err
	}
	if err := u.end(b); err != nil {
		return Descriptor{}, storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		if wrote {
			// The file is in place but unnamed, and the digest lock keeps
			// every other writer of d out: remove it now (on a full disk
			// this gives back the room that the cleanup of the session
			// needs). Were the process to die first, gc or the next push
			// of the same digest replaces it. (Also when the request
			// was given up: that is what refused the commit.)
			e.hot.Delete(context.WithoutCancel(ctx), d)
		}
		return Descriptor{}, storageErr(err)
	}
	return Descriptor{Digest: d, Size: rec.Size, MediaType: "application/octet-stream"}, nil
}

// PutBlob stores the content of r as one blob in repo, verifying expected
// (which may be "" to accept whatever sha256 digest the content has). A
// push into a repository a pull-through cache created is refused
// (ErrPushToCacheRepository).
func (e *Engine) PutBlob(ctx context.Context, repo string, r io.Reader, expected digest.Digest) (Descriptor, error) {
	return e.putBlob(ctx, repo, r, expected, uploadPush)
}

// PutCachedBlob is PutBlob for a pull-through cache fill: it writes only
// into a repository a pull-through cache created (creating it, as
// EnsureCacheRepository does, when it does not exist), and fails with
// ErrNotPullThroughCache for any other.
func (e *Engine) PutCachedBlob(ctx context.Context, repo string, r io.Reader, expected digest.Digest) (Descriptor, error) {
	return e.putBlob(ctx, repo, r, expected, uploadCacheFill)
}

func (e *Engine) putBlob(ctx context.Context, repo string, r io.Reader, expected digest.Digest, what uploadFor) (Descriptor, error) {
	alg := digest.SHA256
	if expected != "" {
		if _, err := ParseDigest(string(expected)); err != nil {
			return Descriptor{}, err
		}
		alg = expected.Algorithm()
	}
	u, err := e.beginUpload(ctx, repo, alg, what)
	if err != nil {
		return Descriptor{}, err
	}
	if _, err := u.ReadFrom(r); err != nil {
		u.Cancel(ctx)
		return Descriptor{}, err
	}
	return u.Commit(ctx, expected, -1)
}

// startReaper parks, every quarter of IdleUploadTimeout (at least every
// second), the live sessions nobody used for IdleUploadTimeout.
func (e *Engine) startReaper() {
	e.every(max(e.opts.IdleUploadTimeout/4, time.Second), e.parkIdleUploads, nil)
}

// parkIdleUploads parks the live sessions nobody used for
// IdleUploadTimeout: checkpointed and closed, still resumable. Each is
// parked under its session lock before it leaves the live handles, so a
// ResumeUpload meanwhile finds it in use, or waits for the checkpoint
// before it reopens the session from its record.
func (e *Engine) parkIdleUploads() {
	now := e.clock.Now()
	e.upMu.Lock()
	var idle []*upload
	for _, u := range e.uploads {
		if u.mu.TryLock() {
			if now.Sub(u.lastUsed) > e.opts.IdleUploadTimeout {
				idle = append(idle, u) // u.mu stays held
			} else {
				u.mu.Unlock()
			}
		}
	}
	e.upMu.Unlock()
	for _, u := range idle {
		unlock := e.digestLocks.Lock(uploadLockKey(u.id))
		if e.sharedUploads {
			if err := u.checkCurrent(); staleHandle(err) {
				// Continued or ended on another replica: nothing to park.
				e.dropStale(u)
				unlock()
				u.mu.Unlock()
				continue
			}
		}
		if err := u.park(context.Background()); err != nil {
			e.log.Warn("parking idle upload", "upload", u.id, "err", err)
		}
		e.upMu.Lock()
		delete(e.uploads, u.id)
		e.upMu.Unlock()
		unlock()
		u.mu.Unlock()
	}
}
