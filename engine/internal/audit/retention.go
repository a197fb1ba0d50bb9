package audit

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Retention deletes whole segments, oldest first, never the current one:
//
//   - a segment whose newest record is older than MaxAge (segments close
//     at each UTC midnight, so a record goes at most a day after it
//     expires);
//   - the oldest segments, until the closed ones leave room for a full
//     current segment within MaxBytes.
//
// It runs on open and after each rotation (the only times the closed
// segments change), in its own goroutine so that deleting a large file
// never holds up appends.

// planPrune returns the segments retention deletes from segs (in
// sequence order, the last being the current one) at now.
func planPrune(segs []*segment, now time.Time, o *Options) []*segment {
	if len(segs) < 2 {
		return nil
	}
	closed := segs[:len(segs)-1]
	var victims []*segment
	var total int64
	for _, s := range closed {
		total += s.size
	}
	budget := o.MaxBytes - o.SegmentBytes // for the closed segments
	cutoff := now.Add(-o.MaxAge)
	for _, s := range closed {
		expired := o.MaxAge > 0 && s.last.Before(cutoff)
		if !expired && total <= budget {
			break // the rest are newer and fit
		}
		victims = append(victims, s)
		total -= s.size
	}
	// An expired segment after a kept one (the clock went back between
	// them) goes too.
	for _, s := range closed[len(victims):] {
		if o.MaxAge > 0 && s.last.Before(cutoff) {
			victims = append(victims, s)
		}
	}
	return victims
}

// prune deletes the segments retention no longer keeps.
func (l *Log) prune() {
	l.mu.Lock()
	victims := planPrune(l.segs, l.opts.Now(), l.opts)
	if len(victims) > 0 {
		l.segs = slices.DeleteFunc(l.segs, func(s *segment) bool { return slices.Contains(victims, s) })
	}
	l.mu.Unlock()
	// Outside the lock: unlinking a large file takes a while, and a query
	// that has one open reads on (the file lives until it is closed).
	for _, s := range victims {
		if err := l.fs.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.logger().Error("audit: retention could not delete a segment", "segment", filepath.Base(s.path), "err", err)
			continue
		}
		l.logger().Info("audit: retention deleted a segment",
			"segment", filepath.Base(s.path), "bytes", s.size, "newest", s.last)
	}
}

// pruner prunes after each rotation until Close.
func (l *Log) pruner() {
	defer l.prunerWG.Done()
	for {
		select {
		case <-l.pruneWake:
			l.prune()
		case <-l.stop:
			return
		}
	}
}
