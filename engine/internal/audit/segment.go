package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A segment is one file of the log: complete lines, appended and never
// rewritten, in the order (and so the time order) they were appended.
//
//	<dir>/
//	  LOCK                                           flock(2): one Log per directory
//	  0000000041-20261122T000000.004112877Z.jsonl    closed segments
//	  0000000042-20261123T000000.001981312Z.jsonl    the current segment, appended to
//
// The name is the segment's sequence number (the order of segments) and
// the time of its first record (nameLayout). Within a segment, times never
// go down: the writer begins a new segment when the clock steps back, at
// each UTC midnight, and at Options.SegmentBytes. So a segment spans from
// its first record's time (its name) to its last record's time (read from
// its last line at open, kept up to date by the writer), and a query
// reads only the segments whose span meets its own.
type segment struct {
	seq   uint64
	path  string
	first time.Time // the first record's time, from the name

	// last and size change only for the current segment, by the writer,
	// under Log.mu: the time of the newest record, and the bytes of
	// complete lines in the file.
	last time.Time
	size int64

	// f is the open file of the current segment (the writer's, then the
	// syncer's until it closes it); nil for a closed segment.
	f vfs.File
	// broken is set when a write or sync of the segment failed: the
	// writer then begins a new segment for the next records.
	broken atomic.Bool
	// dirSynced is set once the directory holding the new file has been
	// synced (by the syncer, before it acknowledges the segment's first
	// durable records).
	dirSynced bool
}

// nameLayout is the time in a segment's name: UTC, nanoseconds, no
// separators that a file system or a shell would mind.
const nameLayout = "20060102T150405.000000000Z"

// segmentExt ends every segment's name.
const segmentExt = ".jsonl"

// segmentName is the file name of segment seq whose first record is at t.
func segmentName(seq uint64, t time.Time) string {
	return fmt.Sprintf("%010d-%s%s", seq, t.UTC().Format(nameLayout), segmentExt)
}

// parseSegmentName reads a name segmentName made; ok is false for any
// other file.
func parseSegmentName(name string) (seq uint64, first time.Time, ok bool) {
	base, found := strings.CutSuffix(name, segmentExt)
	if !found {
		return 0, time.Time{}, false
	}
	num, ts, found := strings.Cut(base, "-")
	if !found || len(num) < 10 {
		return 0, time.Time{}, false
	}
	seq, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, time.Time{}, false
	}
	first, err = time.Parse(nameLayout, ts)
	if err != nil {
		return 0, time.Time{}, false
	}
	return seq, first, true
}

// listSegments returns the segments of dir on fsys in sequence order,
// with their sizes; other files are left alone.
func listSegments(fsys vfs.FS, dir string) ([]*segment, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, err
	}
	var segs []*segment
	for _, name := range names {
		seq, first, ok := parseSegmentName(name)
		if !ok {
			continue
		}
		info, err := fsys.Stat(filepath.Join(dir, name))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		if !info.Mode().IsRegular() {
			continue
		}
		segs = append(segs, &segment{
			seq:   seq,
			path:  filepath.Join(dir, name),
			first: first,
			last:  first,
			size:  info.Size(),
		})
	}
	slices.SortFunc(segs, func(a, b *segment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	return segs, nil
}

// tornTail returns the length of the bytes after the last '\n' of the
// first size bytes of r: a line that a crash cut short (or all of them,
// when there is no '\n').
func tornTail(r io.ReaderAt, size int64) (int64, error) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	for end := size; end > 0; {
		start := max(end-chunk, 0)
		n, err := r.ReadAt(buf[:end-start], start)
		if err != nil && !(errors.Is(err, io.EOF) && int64(n) == end-start) {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return size - (start + int64(i) + 1), nil
		}
		end = start
	}
	return size, nil
}

// lastTime returns the time of the newest record among the first end
// bytes of r (which end on a line), or ok false when no line there
// decodes.
func lastTime(r io.ReaderAt, end int64) (t time.Time, ok bool, err error) {
	err = backwardLines(r, end, func(line []byte) bool {
		if tt, good := recordTime(line); good {
			t, ok = tt, true
			return false
		}
		return true
	})
	return t, ok, err
}

// recordTime returns the time of a line: from its fixed offset when
// Berth wrote it, by decoding it otherwise.
func recordTime(line []byte) (time.Time, bool) {
	if text, ok := lineTime(line); ok {
		if t, err := time.Parse(timeLayout, string(text)); err == nil {
			return t, true
		}
	}
	r, err := decodeRecord(line)
	if err != nil {
		return time.Time{}, false
	}
	return r.Time, true
}

// readChunk is how much a line reader reads at a time.
const readChunk = 64 << 10

// forwardLines calls yield with each line (without its '\n') of the
// first end bytes of r, first to last, until yield returns false. A line
// longer than maxLineBytes is yielded as nil, so the caller counts it as
// corrupt without holding it. Bytes after the last '\n' (a torn line) are
// not yielded.
func forwardLines(r io.ReaderAt, end int64, yield func(line []byte) bool) error {
	return forwardLinesSized(r, end, readChunk, maxLineBytes, yield)
}

// forwardLinesSized is forwardLines with the chunk and the longest line
// given (tests make them small).
func forwardLinesSized(r io.ReaderAt, end int64, chunk, maxLine int, yield func(line []byte) bool) error {
	buf := make([]byte, chunk)
	var long []byte  // a line longer than the chunk, being gathered
	tooLong := false // the current line passed maxLine: skip to its end
	for off := int64(0); off < end; {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
		if n == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return nil // the file is shorter than it was
			}
			return err
		}
		data := buf[:n]
		off += int64(n)
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				if !tooLong {
					long = append(long, data...)
					if len(long) > maxLine {
						long, tooLong = long[:0], true
					}
				}
				break
			}
			line := data[:i]
			data = data[i+1:]
			switch {
			case tooLong:
				tooLong = false
				line = nil
			case len(long) > 0:
				long = append(long, line...)
				line = long
				long = long[:0]
				if len(line) > maxLine {
					line = nil
				}
			case len(line) > maxLine:
				line = nil
			}
			if !yield(line) {
				return nil
			}
		}
	}
	return nil
}

// backwardLines is forwardLines from the last line to the first; end
// must be a line's end (just past a '\n'), as a segment's size is.
func backwardLines(r io.ReaderAt, end int64, yield func(line []byte) bool) error {
	return backwardLinesSized(r, end, readChunk, maxLineBytes, yield)
}

// backwardLinesSized is backwardLines with the chunk and the longest
// line given.
func backwardLinesSized(r io.ReaderAt, end int64, chunk, maxLine int, yield func(line []byte) bool) error {
	var carry []byte // the end of a line whose start is in an earlier chunk
	tooLong := false
	buf := make([]byte, chunk)
	// Drop the '\n' that ends the last line: every line then ends where
	// the next one's '\n' is, or at end.
	if end == 0 {
		return nil
	}
	end--
	var data, work []byte
	for off := end; ; {
		start := max(off-int64(chunk), 0)
		n, err := r.ReadAt(buf[:off-start], start)
		if int64(n) < off-start {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		off = start
		if tooLong {
			data = append(work[:0], buf[:n]...)
		} else {
			data = append(append(work[:0], buf[:n]...), carry...)
		}
		work = data
		for {
			i := bytes.LastIndexByte(data, '\n')
			if i < 0 {
				break
			}
			line := data[i+1:]
			data = data[:i]
			if tooLong || len(line) > maxLine {
				line, tooLong = nil, false
			}
			if !yield(line) {
				return nil
			}
		}
		if off == 0 {
			if tooLong || len(data) > maxLine {
				data = nil
			}
			yield(data)
			return nil
		}
		if tooLong {
			continue
		}
		if len(data) > maxLine {
			tooLong = true
			carry = carry[:0]
			continue
		}
		carry = append(carry[:0], data...)
	}
}
