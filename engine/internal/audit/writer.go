package audit

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthstore/berth/internal/vfsutil"
)

// Group commit. An append stamps its record's time and queues its
// encoded line; the writer goroutine takes everything queued, writes it
// with one write(2), acknowledges the records that need no sync at once,
// and hands the durable ones to the syncer goroutine, which acknowledges
// them after an fdatasync(2) that began after their write. A sync
// (hundreds of microseconds) therefore never delays a record that needs
// none: the writer goes on writing while the syncer syncs, and each sync
// covers every durable record written before it began.
//
// An append that finds nobody writing and nothing queued writes its own
// line (the same code, a batch of one) instead of waking the writer and
// waiting for it to wake it back: the lone append costs a write(2) and no
// hand-off. Appends that arrive while someone writes queue without waking
// anyone: whoever writes takes the queue before it stops (the lone
// appender writes up to maxDrains batches of them before it answers its
// own request, then wakes the writer goroutine for the rest), so that a
// queued append costs no wake-up of the writer goroutine. One writer at a
// time (busy) keeps the lines in the order of their times.

// maxDrains bounds the batches a lone appender writes for others before
// it returns to its own request.
const maxDrains = 2

// waiter is one append waiting for its acknowledgement.
type waiter struct {
	line    []byte
	time    time.Time
	durable bool
	// syncing marks a durable append acknowledged at its write (done)
	// whose sync the syncer reports on synced (AppendSyncing).
	syncing bool
	done    chan error // capacity 1: the writer or syncer never blocks on it
	synced  chan error // capacity 1, for syncing waiters
}

var waiterPool = sync.Pool{New: func() any {
	return &waiter{done: make(chan error, 1), synced: make(chan error, 1)}
}}

// syncRequest asks the syncer to sync seg and then acknowledge waiters,
// or (closing) to sync and close seg, which the writer has left.
type syncRequest struct {
	seg     *segment
	waiters []*waiter
	closing bool
}

// wakeWriter wakes the writer goroutine.
func (l *Log) wakeWriter() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// drain is the end of a lone append's write (busy is set): it writes
// what queued meanwhile, at most maxDrains batches, then stops writing,
// and wakes the writer goroutine if more is queued or the log is closing.
func (l *Log) drain() {
	l.qmu.Lock()
	for range maxDrains {
		if len(l.queue) == 0 {
			break
		}
		batch := l.takeQueue()
		l.qmu.Unlock()
		l.writeBatch(batch)
		clear(batch)
		l.qmu.Lock()
		l.spare = batch[:0]
	}
	l.busy = false
	more := len(l.queue) > 0 || l.closed
	l.qmu.Unlock()
	if more {
		l.wakeWriter()
	}
}

// takeQueue returns the queued appends and leaves an empty queue, on the
// spare backing array (the written batch's goes back to spare). qmu is
// held; the caller writes (busy).
func (l *Log) takeQueue() []*waiter {
	batch := l.queue
	l.queue, l.spare = l.spare[:0], nil
	return batch
}

// writer takes the queued appends and writes them until Close, then
// hands the current segment to the syncer to close.
func (l *Log) writer() {
	defer l.writerWG.Done()
	for {
		<-l.wake
		for {
			l.qmu.Lock()
			if l.busy {
				// An Append is writing; it takes the queue, and wakes the
				// writer for what it leaves.
				l.qmu.Unlock()
				break
			}
			closed := l.closed
			if len(l.queue) == 0 {
				l.qmu.Unlock()
				if closed {
					if l.cur != nil {
						l.enqueueSync(syncRequest{seg: l.cur, closing: true})
						l.cur = nil
					}
					l.enqueueSync(syncRequest{}) // the syncer's stop
					return
				}
				break
			}
			batch := l.takeQueue()
			l.busy = true
			l.qmu.Unlock()
			l.writeBatch(batch)
			clear(batch)
			l.qmu.Lock()
			l.spare = batch[:0]
			l.busy = false
			l.qmu.Unlock()
		}
	}
}

// writeBatch writes the waiters' lines, beginning a new segment before a
// line that may not go into the current one.
func (l *Log) writeBatch(batch []*waiter) {
	buf := l.buf[:0]
	start := 0 // batch[start:i] are in buf
	var lastTime time.Time
	for i, w := range batch {
		if l.needsRotation(w, int64(len(buf)), lastTime) {
			l.flush(buf, batch[start:i], lastTime)
			buf, start = buf[:0], i
			if err := l.rotate(w.time); err != nil {
				err = fmt.Errorf("%w: new segment: %w", ErrWrite, err)
				l.failure(err)
				for _, w := range batch[i:] {
					l.fail(w, err)
				}
				l.buf = buf
				return
			}
		}
		buf = append(buf, w.line...)
		lastTime = w.time
	}
	l.flush(buf, batch[start:], lastTime)
	if cap(buf) > 4<<20 {
		buf = nil // do not keep a burst's buffer
	}
	l.buf = buf
}

// needsRotation reports whether w must go into a new segment: there is
// none, the current one failed, w would take it past SegmentBytes, w is
// of another UTC day than its first record, or the clock went back.
func (l *Log) needsRotation(w *waiter, pending int64, pendingLast time.Time) bool {
	c := l.cur
	if c == nil || c.broken.Load() {
		return true
	}
	size := c.size + pending
	if size > 0 && size+int64(len(w.line)) > l.opts.SegmentBytes {
		return true
	}
	if !sameDay(c.first, w.time) {
		return true
	}
	last := c.last
	if pending > 0 {
		last = pendingLast
	}
	return w.time.Before(last)
}

// sameDay reports whether a and b fall on the same UTC day.
func sameDay(a, b time.Time) bool {
	ay, am, ad := a.UTC().Date()
	by, bm, bd := b.UTC().Date()
	return ay == by && am == bm && ad == bd
}

// flush writes buf, the lines of group, to the current segment with one
// write(2), and acknowledges them: at once those not durable, through the
// syncer the durable ones. On failure every one of group fails.
func (l *Log) flush(buf []byte, group []*waiter, last time.Time) {
	if len(group) == 0 {
		return
	}
	c := l.cur
	l.writes.Add(1)
	// At the segment's end (its size is the bytes of complete lines):
	// pwrite(2), since a vfs.File has no O_APPEND.
	n, err := c.f.WriteAt(buf, c.size)
	if err != nil {
		if n > 0 {
			// Take back the part written: a torn line in the middle of
			// the segment would spoil it. If that fails too, the segment
			// is given up and the next records go to a new one.
			if terr := vfsutil.Truncate(c.f, c.size); terr != nil {
				c.broken.Store(true)
			}
		}
		if !errors.Is(err, unix.ENOSPC) {
			c.broken.Store(true)
		}
		err = fmt.Errorf("%w: %s: %w", ErrWrite, filepath.Base(c.path), err)
		l.failure(err)
		for _, w := range group {
			l.fail(w, err)
		}
		return
	}
	l.mu.Lock()
	c.size += int64(n)
	c.last = last
	l.mu.Unlock()
	l.success()
	var durable []*waiter
	for _, w := range group {
		if w.durable {
			durable = append(durable, w)
			if w.syncing {
				w.done <- nil // written: its sync follows on synced
			}
			continue
		}
		w.done <- nil
	}
	if len(durable) > 0 {
		l.enqueueSync(syncRequest{seg: c, waiters: durable})
		l.durablePending.Add(-int64(len(durable)))
	}
}

// fail answers w with err.
func (l *Log) fail(w *waiter, err error) {
	if w.durable {
		l.durablePending.Add(-1)
	}
	w.done <- err
}

// rotate leaves the current segment (to the syncer, which syncs and
// closes it; an empty one is deleted) and creates the next, whose first
// record is at t.
func (l *Log) rotate(t time.Time) error {
	if old := l.cur; old != nil {
		l.cur = nil
		if old.size == 0 {
			l.dropSegment(old)
		}
		l.enqueueSync(syncRequest{seg: old, closing: true})
	}
	l.mu.Lock()
	seq := l.nextSeq
	l.nextSeq++
	l.mu.Unlock()
	path := filepath.Join(l.dir, segmentName(seq, t))
	f, err := vfsutil.Create(l.fs, path, true)
	if err != nil {
		return err
	}
	s := &segment{seq: seq, path: path, first: t, last: t, f: f}
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	l.cur = s
	select {
	case l.pruneWake <- struct{}{}:
	default:
	}
	return nil
}

// dropSegment removes an empty segment from the list and from the disk.
func (l *Log) dropSegment(s *segment) {
	l.mu.Lock()
	for i, x := range l.segs {
		if x == s {
			l.segs = append(l.segs[:i], l.segs[i+1:]...)
			break
		}
	}
	l.mu.Unlock()
	l.fs.Remove(s.path)
}

// enqueueSync hands r to the syncer.
func (l *Log) enqueueSync(r syncRequest) {
	l.smu.Lock()
	l.syncQueue = append(l.syncQueue, r)
	l.smu.Unlock()
	select {
	case l.syncWake <- struct{}{}:
	default:
	}
}

// syncer syncs segments for the durable appends the writer hands it, and
// syncs and closes the segments the writer leaves, until the writer's
// stop (an empty request).
func (l *Log) syncer() {
	defer l.syncerWG.Done()
	var reqs []syncRequest
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	expect := 0 // the durable appends seen around the last sync
	for {
		<-l.syncWake
		reqs = l.takeSyncs(reqs)
		// Gather, as PostgreSQL's commit_delay does, but only when there
		// is someone to wait for: durable appends stamped and not yet
		// written (they are on their way), or fewer waiting than the
		// concurrency seen around the last sync (the callers it
		// acknowledged are likely to append again as soon as they have
		// run; without the wait, concurrent callers split into two
		// groups that take turns, each sync covering half of them). The
		// wait is at most a quarter of the last sync.
		if n := waiting(reqs); n > 0 && (l.durablePending.Load() > 0 || n < expect) {
			gather.Reset(time.Duration(l.lastSync.Load()) / 4)
		wait:
			for l.durablePending.Load() > 0 || waiting(reqs) < expect {
				select {
				case <-l.syncWake:
					reqs = l.takeSyncs(reqs)
				case <-gather.C:
					break wait
				}
			}
			gather.Stop()
		}
		n := waiting(reqs)
		// One fdatasync per run of requests for the same segment: it
		// covers every write that finished before it began.
		for i := 0; i < len(reqs); {
			r := reqs[i]
			if r.seg == nil {
				return // the writer has stopped: nothing follows
			}
			j := i + 1
			for j < len(reqs) && reqs[j].seg == r.seg && !reqs[j-1].closing {
				j++
			}
			err := l.syncSegment(r.seg)
			for _, q := range reqs[i:j] {
				for _, w := range q.waiters {
					if w.syncing {
						w.synced <- err
					} else {
						w.done <- err
					}
				}
			}
			if reqs[j-1].closing {
				if cerr := r.seg.f.Close(); cerr != nil && err == nil {
					err = cerr
				}
				r.seg.f = nil
				if err != nil {
					l.mu.Lock()
					if l.closeErr == nil {
						l.closeErr = fmt.Errorf("%w: closing %s: %w", ErrWrite, filepath.Base(r.seg.path), err)
					}
					l.mu.Unlock()
				}
			}
			i = j
		}
		if n > 0 {
			// The concurrency seen: those just acknowledged, and those
			// already waiting for the next sync.
			l.smu.Lock()
			expect = n + waiting(l.syncQueue) + int(l.durablePending.Load())
			l.smu.Unlock()
		}
		clear(reqs)
		reqs = reqs[:0]
	}
}

// waiting counts the durable appends of reqs.
func waiting(reqs []syncRequest) int {
	n := 0
	for _, r := range reqs {
		n += len(r.waiters)
	}
	return n
}

// takeSyncs appends the queued sync requests to reqs.
func (l *Log) takeSyncs(reqs []syncRequest) []syncRequest {
	l.smu.Lock()
	reqs = append(reqs, l.syncQueue...)
	clear(l.syncQueue)
	l.syncQueue = l.syncQueue[:0]
	l.smu.Unlock()
	return reqs
}

// syncSegment makes what was written to s durable: fdatasync(2) of the
// file and, the first time, fsync of the directory that names it. After
// a failed sync the kernel may have dropped the unsynced pages, and a
// second sync would report success for data that is gone: so the
// segment is given up (broken) and the writer begins a new one.
func (l *Log) syncSegment(s *segment) error {
	start := time.Now()
	l.syncs.Add(1)
	err := s.f.SyncData() // fdatasync(2) on the operating system's files
	l.lastSync.Store(int64(time.Since(start)))
	if err == nil && !s.dirSynced {
		err = vfsutil.SyncDir(l.fs, l.dir)
		s.dirSynced = err == nil
	}
	if err != nil {
		s.broken.Store(true)
		err = fmt.Errorf("%w: sync %s: %w", ErrWrite, filepath.Base(s.path), err)
		l.failure(err)
	}
	return err
}
