package audit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"

	"github.com/berthstore/berth/internal/vfsutil"
)

// Log is an audit log: a directory of segments that records are appended
// to and queried from. Its methods are safe for concurrent use. One Log
// holds a directory at a time (ErrLocked for a second).
type Log struct {
	dir  string
	opts *Options
	fs   vfs.FS
	enc  encoder
	lock io.Closer // <dir>/LOCK, held while open

	// The queue of appends waiting for the writer, in the order their
	// times were stamped. busy is set while a writer (the writer
	// goroutine, or an Append that found the queue empty and writes its
	// own record) holds records not yet written; the writer's state (cur,
	// buf) belongs to whoever set it.
	qmu    sync.Mutex
	queue  []*waiter
	busy   bool
	closed bool
	wake   chan struct{} // wakes the writer (capacity 1)

	// durablePending counts the durable appends stamped but not yet
	// handed to the syncer: while there are some, the syncer waits a
	// little for them, so that one sync covers them too.
	durablePending atomic.Int64
	lastSync       atomic.Int64 // how long the last fdatasync took, ns

	// The durable appends written and waiting for the syncer.
	smu       sync.Mutex
	syncQueue []syncRequest
	syncWake  chan struct{} // wakes the syncer (capacity 1)

	pruneWake chan struct{} // wakes the pruner (capacity 1)
	stop      chan struct{} // closed by Close after the writer and syncer finish
	writerWG  sync.WaitGroup
	syncerWG  sync.WaitGroup
	prunerWG  sync.WaitGroup

	// cur is the segment appended to; the writer's alone (nil before the
	// first segment and after a failure to create one).
	cur   *segment
	buf   []byte    // the writer's batch
	spare []*waiter // the writer's: the queue's next backing array

	// mu guards segs (and the last and size of the current segment) and
	// the health fields.
	mu          sync.Mutex
	segs        []*segment // in sequence order; cur, if any, is last
	nextSeq     uint64
	healthy     bool
	lastErr     error
	lastErrTime time.Time
	closeErr    error // a failure to sync or close a segment the writer left

	appended      atomic.Uint64
	failed        atomic.Uint64
	writes, syncs atomic.Uint64
	droppedAtOpen int64
}

// Status is the log's health and size, for a health endpoint and metrics.
type Status struct {
	// Healthy is false after a write or sync failed, until the next
	// write succeeds. While it is false, appends are likely to fail.
	Healthy bool
	// LastError is the most recent write or sync failure since Open (nil
	// if none), and LastErrorTime when it happened; they stay after the
	// log recovers.
	LastError     error
	LastErrorTime time.Time
	// Segments and Bytes are the files of the log and their total size.
	Segments int
	Bytes    int64
	// Oldest and Newest are the times of the first record of the oldest
	// segment and of the newest record (zero for an empty log).
	Oldest, Newest time.Time
	// Appended and Failed count the appends since Open that were
	// acknowledged and that failed to be written or synced.
	Appended, Failed uint64
	// Writes and Syncs count the write(2) and fdatasync(2) calls since
	// Open: Appended / Writes is how many records a write carries.
	Writes, Syncs uint64
	// DroppedAtOpen is the number of bytes of torn lines (a crash in the
	// middle of a write) that Open cut off.
	DroppedAtOpen int64
}

// Open opens the log in dir (created if missing, mode 0700), recovers it
// after a crash (the torn end of a segment, a line a crash cut short, is
// cut off and its size logged; every complete line stays), deletes what
// retention no longer keeps, and starts the writer.
func Open(dir string, opts *Options) (*Log, error) {
	o := opts.clone().EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := vfsutil.MkdirAll(o.FS, dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	lock, err := lockDir(o.FS, dir)
	if err != nil {
		return nil, err
	}
	l := &Log{
		dir:       dir,
		opts:      o,
		fs:        o.FS,
		enc:       encoder{region: o.Region, account: o.AccountID, ids: &identities{}},
		lock:      lock,
		wake:      make(chan struct{}, 1),
		syncWake:  make(chan struct{}, 1),
		pruneWake: make(chan struct{}, 1),
		stop:      make(chan struct{}),
		healthy:   true,
	}
	if err := l.recover(); err != nil {
		l.closeFiles()
		return nil, err
	}
	l.prune()
	l.writerWG.Add(1)
	go l.writer()
	l.syncerWG.Add(1)
	go l.syncer()
	l.prunerWG.Add(1)
	go l.pruner()
	return l, nil
}

// lockDir takes <dir>/LOCK with flock(2), so that a second Log on the
// same directory, in this process or another, fails with ErrLocked. On a
// file system that is not the operating system's (an in-memory one in
// tests) it takes the FS's own lock instead, and any failure to take it
// is ErrLocked.
func lockDir(fsys vfs.FS, dir string) (io.Closer, error) {
	name := filepath.Join(dir, "LOCK")
	if !vfsutil.OSBacked(fsys) {
		c, err := fsys.Lock(name)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrLocked, dir, err)
		}
		return c, nil
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("audit: lock %s: %w", dir, err)
	}
	return flockFile{f}, nil
}

// flockFile is a LOCK file held with flock(2).
type flockFile struct{ f *os.File }

// Close releases the lock and closes the file.
func (l flockFile) Close() error {
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	return l.f.Close()
}

// recover lists the segments, cuts torn lines off their ends, finds the
// time of each one's last record and reopens the last for appending.
func (l *Log) recover() error {
	segs, err := listSegments(l.fs, l.dir)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	for i, s := range segs {
		f, err := vfsutil.OpenExisting(l.fs, s.path)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		torn, err := tornTail(f, s.size)
		if err == nil && torn > 0 {
			// A crash (or a failed write that could not be undone) left
			// part of a line: it was never acknowledged. Cut it off, so
			// that the next line does not run into it.
			if err = vfsutil.Truncate(f, s.size-torn); err == nil {
				err = f.Sync()
			}
			if err == nil {
				l.opts.Logger.Warn("audit: cut a torn line off the end of a segment",
					"segment", filepath.Base(s.path), "bytes", torn)
				s.size -= torn
				l.droppedAtOpen += torn
			}
		}
		if err == nil {
			var t time.Time
			var ok bool
			if t, ok, err = lastTime(f, s.size); ok && !t.Before(s.first) {
				s.last = t
			}
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("audit: recover %s: %w", s.path, err)
		}
		if i == len(segs)-1 {
			s.f = f // the current segment: appends continue in it
			l.cur = s
		} else {
			f.Close()
		}
	}
	l.segs = segs
	if len(segs) > 0 {
		l.nextSeq = segs[len(segs)-1].seq + 1
	}
	return nil
}

// Append writes rec to the log and returns when it is written to the
// operating system (write(2) has returned: a crash of the process can no
// longer lose it) and, when durable, also synced to the disk (fdatasync:
// a crash of the machine cannot lose it either). Records that denials and
// changes make should be durable; allowed reads need not be.
//
// Append sets rec.Time (from Options.Now) and rec.EventID (when empty),
// and sets ErrorCode "AccessDenied" on a denial without one. Concurrent
// appends share writes and syncs: one writer writes every record waiting
// in one write(2), and one fdatasync covers every durable record written
// before it began.
//
// An error wraps ErrInvalidRecord (the record lacks something),
// ErrClosed, or ErrWrite (the disk refused it: the caller must refuse the
// request it records, as Vault's audit devices make it do). After
// ErrWrite the log recovers by itself when the disk does.
func (l *Log) Append(rec Record, durable bool) error {
	w, err := l.prepare(&rec)
	if err != nil {
		return err
	}
	w.durable = durable
	batch := [1]*waiter{w}
	if err := l.enqueue(batch[:]); err != nil {
		l.release(w)
		return err
	}
	err = l.count(<-w.done)
	l.release(w)
	return err
}

// AppendAll writes recs as Append writes each, and returns when every one
// is written (and, when durable, synced): they are queued together, so
// that they usually share one write(2). Each record is one line of its
// own, as if appended alone; all carry the same time. It returns the
// first error (an invalid record fails the whole call before any is
// written). The denials of a listing's page, thousands for one request, are
// written this way.
func (l *Log) AppendAll(recs []Record, durable bool) error {
	if len(recs) == 0 {
		return nil
	}
	ws := make([]*waiter, 0, len(recs))
	defer func() {
		for _, w := range ws {
			l.release(w)
		}
	}()
	for i := range recs {
		w, err := l.prepare(&recs[i])
		if err != nil {
			return err
		}
		w.durable = durable
		ws = append(ws, w)
	}
	if err := l.enqueue(ws); err != nil {
		return err
	}
	var first error
	for _, w := range ws {
		if err := l.count(<-w.done); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Pending is a record AppendSyncing wrote whose sync is under way.
type Pending struct {
	l *Log
	w *waiter
}

// Wait returns once the record is synced to the disk (an fdatasync(2)
// that began after its write has returned), or the sync's failure
// (ErrWrite). Call it exactly once.
func (p Pending) Wait() error {
	if p.w == nil {
		return nil
	}
	err := <-p.w.synced
	p.l.release(p.w)
	return err
}

// AppendSyncing writes rec as a durable Append does, but returns once the
// record is written (a crash of the process can no longer lose it), with
// its sync under way: the caller does the work the record is of, then
// waits for the sync (Pending.Wait) before it acknowledges that work, so
// that it pays the longer of its own sync and the record's instead of
// their sum. An error is Append's; on error there is nothing to wait for.
func (l *Log) AppendSyncing(rec Record) (Pending, error) {
	w, err := l.prepare(&rec)
	if err != nil {
		return Pending{}, err
	}
	w.durable, w.syncing = true, true
	batch := [1]*waiter{w}
	if err := l.enqueue(batch[:]); err != nil {
		l.release(w)
		return Pending{}, err
	}
	if err := l.count(<-w.done); err != nil {
		l.release(w)
		return Pending{}, err
	}
	return Pending{l: l, w: w}, nil
}

// prepare normalizes rec and encodes it into a waiter from the pool.
func (l *Log) prepare(rec *Record) (*waiter, error) {
	if err := rec.normalize(); err != nil {
		return nil, err
	}
	w := waiterPool.Get().(*waiter)
	w.line = l.enc.encode(w.line[:0], rec)
	if len(w.line) > maxLineBytes {
		n := len(w.line)
		l.release(w)
		return nil, fmt.Errorf("%w: %d bytes encoded, at most %d", ErrInvalidRecord, n, maxLineBytes)
	}
	return w, nil
}

// release puts w back into the pool.
func (l *Log) release(w *waiter) {
	if cap(w.line) > 64<<10 {
		w.line = nil // do not keep a huge buffer in the pool
	}
	w.durable, w.syncing = false, false
	waiterPool.Put(w)
}

// count counts an append's outcome.
func (l *Log) count(err error) error {
	if err != nil {
		l.failed.Add(1)
		return err
	}
	l.appended.Add(1)
	return nil
}

// enqueue stamps the waiters' time and writes them here when nobody is
// writing, or queues them for whoever writes. Their acknowledgements
// follow on their done channels; an error (ErrClosed) means none was
// queued.
func (l *Log) enqueue(ws []*waiter) error {
	l.qmu.Lock()
	if l.closed {
		l.qmu.Unlock()
		return ErrClosed
	}
	// Stamped under the queue's lock: the order of writing is the times'.
	t := l.opts.Now().UTC()
	for _, w := range ws {
		w.time = t
		stampTime(w.line, t)
		if w.durable {
			l.durablePending.Add(1)
		}
	}
	switch {
	case !l.busy && len(l.queue) == 0:
		// Nobody is writing: write them here, without waking the writer
		// goroutine and waiting for it (half the cost of an append
		// that has no company), then what queued meanwhile.
		l.busy = true
		l.qmu.Unlock()
		l.writeBatch(ws)
		l.drain()
	case l.busy:
		// Whoever writes takes the queue before it stops.
		l.queue = append(l.queue, ws...)
		l.qmu.Unlock()
	default:
		// Queued for the writer goroutine, which is woken already.
		l.queue = append(l.queue, ws...)
		l.qmu.Unlock()
		l.wakeWriter()
	}
	return nil
}

// Status reports the log's health and size.
func (l *Log) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Status{
		Healthy:       l.healthy,
		LastError:     l.lastErr,
		LastErrorTime: l.lastErrTime,
		Segments:      len(l.segs),
		Appended:      l.appended.Load(),
		Failed:        l.failed.Load(),
		Writes:        l.writes.Load(),
		Syncs:         l.syncs.Load(),
		DroppedAtOpen: l.droppedAtOpen,
	}
	for _, s := range l.segs {
		st.Bytes += s.size
	}
	if len(l.segs) > 0 {
		st.Oldest = l.segs[0].first
		for _, s := range l.segs {
			if s.last.After(st.Newest) && s.size > 0 {
				st.Newest = s.last
			}
		}
	}
	return st
}

// Close waits for the appends under way, syncs and closes the current
// segment and releases the directory. Appends after Close fail with
// ErrClosed; queries may still run (they read closed files).
func (l *Log) Close() error {
	l.qmu.Lock()
	if l.closed {
		l.qmu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.qmu.Unlock()
	l.wakeWriter()
	l.writerWG.Wait() // the writer drains the queue and hands cur to the syncer
	l.syncerWG.Wait()
	close(l.stop)
	l.prunerWG.Wait()
	l.mu.Lock()
	err := l.closeErr
	l.mu.Unlock()
	if cerr := l.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

// closeFiles closes the current segment (if the writer did not) and
// releases the lock.
func (l *Log) closeFiles() error {
	var err error
	if l.cur != nil && l.cur.f != nil {
		err = l.cur.f.Close()
		l.cur.f = nil
	}
	if l.lock != nil {
		if cerr := l.lock.Close(); err == nil {
			err = cerr
		}
		l.lock = nil
	}
	return err
}

// failure records a write or sync failure for Status and the operator.
func (l *Log) failure(err error) {
	l.mu.Lock()
	wasHealthy := l.healthy
	l.healthy = false
	l.lastErr = err
	l.lastErrTime = l.opts.Now().UTC()
	l.mu.Unlock()
	if wasHealthy {
		l.opts.Logger.Error("audit: the log cannot write; requests that need a record are refused until it can", "err", err)
	}
}

// success marks the log healthy after a write went through.
func (l *Log) success() {
	l.mu.Lock()
	recovered := !l.healthy
	l.healthy = true
	l.mu.Unlock()
	if recovered {
		l.opts.Logger.Info("audit: the log writes again")
	}
}

// logger is the log's slog.Logger.
func (l *Log) logger() *slog.Logger { return l.opts.Logger }
