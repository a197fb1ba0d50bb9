package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Query selects records. The zero Query selects every record, newest
// first.
type Query struct {
	// Since and Until bound the records' times: Since <= Time < Until.
	// A zero bound is open.
	Since, Until time.Time
	// Principal selects the records of one caller, by ARN or by user
	// name (exact).
	Principal string
	// Repository selects the records of one repository (exact name).
	Repository string
	// Action selects by action, "ecr:PutImage", or a pattern with '*'
	// (any run of characters) and '?' (one character) such as "ecr:*"
	// or "*Delete*"; without case, as IAM matches actions.
	Action string
	// Decision selects Allow, ExplicitDeny or ImplicitDeny records, or
	// with AnyDenial both kinds of denial. Empty selects all.
	Decision Decision
	// Limit stops the query after that many records; 0 is no limit.
	Limit int
	// Order is NewestFirst (the zero value) or OldestFirst.
	Order Order
}

// AnyDenial, as a Query's Decision, selects both ExplicitDeny and
// ImplicitDeny records. It is never a record's decision.
const AnyDenial Decision = "Deny"

// Order is the order in which a query returns records.
type Order int

const (
	// NewestFirst returns the newest record first, as CloudTrail's
	// LookupEvents does: with a Limit, the most recent records.
	NewestFirst Order = iota
	// OldestFirst returns records in the order they were appended, as a
	// log is read: what Export writes for a file of history.
	OldestFirst
)

// check reports what makes q unanswerable.
func (q *Query) check() error {
	switch {
	case !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since):
		return fmt.Errorf("%w: until %s is before since %s", ErrInvalidQuery, q.Until, q.Since)
	case q.Limit < 0:
		return fmt.Errorf("%w: negative limit %d", ErrInvalidQuery, q.Limit)
	case q.Decision != "" && q.Decision != AnyDenial && !q.Decision.Valid():
		return fmt.Errorf("%w: decision %q (Allow, ExplicitDeny, ImplicitDeny or Deny)", ErrInvalidQuery, q.Decision)
	case q.Order != NewestFirst && q.Order != OldestFirst:
		return fmt.Errorf("%w: order %d", ErrInvalidQuery, q.Order)
	}
	return nil
}

// Records calls fn with each record q selects, in q's order, until fn
// returns an error (which Records returns), the limit is reached or ctx
// is done. It reads only the segments whose time span meets
// [Since, Until), and within one, stops at the first record past the
// bound (times never go down within a segment). Lines that do not decode
// (a torn or damaged line) are skipped and counted in a warning.
func (l *Log) Records(ctx context.Context, q Query, fn func(Record) error) error {
	return l.scan(ctx, q, true, func(line []byte, rec *Record) error {
		return fn(*rec)
	})
}

// Export writes the lines of the records q selects to w, in q's order:
// CloudTrail-shaped JSON, one event a line, byte for byte as stored (so
// `jq` reads the output, and an export of everything is the log itself).
func (l *Log) Export(ctx context.Context, q Query, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	err := l.scan(ctx, q, false, func(line []byte, _ *Record) error {
		if _, err := bw.Write(line); err != nil {
			return err
		}
		return bw.WriteByte('\n')
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// matcher is a compiled Query.
type matcher struct {
	q            Query
	since, until []byte // eventTime text of the bounds; nil when open
	principal    []byte // the JSON string of Principal, for a quick test
	repository   []byte // `"repositoryName":"..."`
	decision     []byte // `"decision":"..."`
	action       string // lower case
	needDecode   bool   // a field must be compared after decoding
}

func compile(q Query) *matcher {
	m := &matcher{q: q, action: strings.ToLower(q.Action)}
	if !q.Since.IsZero() {
		m.since = []byte(formatTime(q.Since))
	}
	if !q.Until.IsZero() {
		m.until = []byte(formatTime(q.Until))
	}
	if q.Principal != "" {
		m.principal = appendString(nil, q.Principal)
	}
	if q.Repository != "" {
		m.repository = appendString([]byte(`"repositoryName":`), q.Repository)
	}
	if q.Decision != "" && q.Decision != AnyDenial {
		m.decision = appendString([]byte(`"decision":`), string(q.Decision))
	}
	m.needDecode = q.Principal != "" || q.Repository != "" || q.Action != "" || q.Decision != ""
	return m
}

// timeCmp compares the time text t with the bound b.
func timeCmp(t, b []byte) int { return bytes.Compare(t, b) }

// quick reports whether a line Berth wrote may match: each selected
// string must appear in it as Berth writes it. False means it cannot.
func (m *matcher) quick(line []byte) bool {
	if m.principal != nil && !bytes.Contains(line, m.principal) {
		return false
	}
	if m.repository != nil && !bytes.Contains(line, m.repository) {
		return false
	}
	if m.decision != nil && !bytes.Contains(line, m.decision) {
		return false
	}
	return true
}

// match reports whether a decoded record matches every field of the
// query but the times.
func (m *matcher) match(r *Record) bool {
	q := &m.q
	if q.Principal != "" && r.PrincipalARN != q.Principal && r.UserName != q.Principal {
		return false
	}
	if q.Repository != "" && r.Repository != q.Repository {
		return false
	}
	switch q.Decision {
	case "":
	case AnyDenial:
		if !r.Decision.Denied() {
			return false
		}
	default:
		if r.Decision != q.Decision {
			return false
		}
	}
	if q.Action != "" && !globMatch(m.action, strings.ToLower(r.Action)) {
		return false
	}
	return true
}

// globMatch matches s against a pattern of '*' (any run) and '?' (one
// byte), in linear time.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// errStop ends a scan early (the limit reached); it is not returned.
var errStop = errors.New("audit: stop")

// scan calls fn with the line and, when wantRecord, the decoded record of
// every line q selects, in q's order. Without wantRecord (an export), a
// line is checked to be JSON and decoded only if a field of q needs it.
func (l *Log) scan(ctx context.Context, q Query, wantRecord bool, fn func(line []byte, rec *Record) error) error {
	if err := q.check(); err != nil {
		return err
	}
	m := compile(q)
	segs := l.snapshot(m)
	if q.Order == NewestFirst {
		for i, j := 0, len(segs)-1; i < j; i, j = i+1, j-1 {
			segs[i], segs[j] = segs[j], segs[i]
		}
	}
	n := 0
	var err error
	for _, s := range segs {
		if err = ctx.Err(); err != nil {
			break
		}
		var c int
		c, err = l.scanSegment(ctx, s, m, wantRecord, &n, fn)
		if c > 0 {
			l.logger().Warn("audit: skipped lines that are not records", "segment", filepath.Base(s.path), "lines", c)
		}
		if err != nil {
			break
		}
	}
	if errors.Is(err, errStop) {
		err = nil
	}
	return err
}

// segmentView is what a query knows of a segment: its file, its span and
// the bytes of complete lines when the query began.
type segmentView struct {
	path        string
	first, last time.Time
	size        int64
}

// snapshot returns the segments whose span meets m's bounds, oldest
// first.
func (l *Log) snapshot(m *matcher) []segmentView {
	l.mu.Lock()
	defer l.mu.Unlock()
	var v []segmentView
	for _, s := range l.segs {
		if s.size == 0 {
			continue
		}
		if !m.q.Until.IsZero() && !s.first.Before(m.q.Until) {
			continue
		}
		if !m.q.Since.IsZero() && s.last.Before(m.q.Since) {
			continue
		}
		v = append(v, segmentView{path: s.path, first: s.first, last: s.last, size: s.size})
	}
	return v
}

// scanSegment runs the query over one segment, counting the records it
// gives fn in *n; it returns the number of lines that did not decode.
func (l *Log) scanSegment(ctx context.Context, s segmentView, m *matcher, wantRecord bool, n *int, fn func([]byte, *Record) error) (corrupt int, err error) {
	f, err := l.fs.Open(s.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil // retention deleted it since the snapshot
		}
		return 0, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	newest := m.q.Order == NewestFirst
	var rec Record
	lines := 0
	visit := func(line []byte) bool {
		lines++
		if lines%4096 == 0 {
			if err = ctx.Err(); err != nil {
				return false
			}
		}
		if len(line) == 0 {
			corrupt++
			return true
		}
		t, fast := lineTime(line)
		decoded := false
		if !fast {
			// Not the shape Berth writes: decode it to learn its time.
			r, derr := decodeRecord(line)
			if derr != nil {
				corrupt++
				return true
			}
			rec, decoded = r, true
			t = []byte(formatTime(r.Time))
		}
		if newest {
			if m.until != nil && timeCmp(t, m.until) >= 0 {
				return true // newer than the query: read on back
			}
			if m.since != nil && timeCmp(t, m.since) < 0 {
				return false // older: nothing before it matches
			}
		} else {
			if m.since != nil && timeCmp(t, m.since) < 0 {
				return true
			}
			if m.until != nil && timeCmp(t, m.until) >= 0 {
				return false
			}
		}
		if m.needDecode {
			if fast && !m.quick(line) {
				return true
			}
			if !decoded {
				r, derr := decodeRecord(line)
				if derr != nil {
					corrupt++
					return true
				}
				rec = r
			}
			if !m.match(&rec) {
				return true
			}
		} else if !decoded && wantRecord {
			r, derr := decodeRecord(line)
			if derr != nil {
				corrupt++
				return true
			}
			rec = r
		}
		if !wantRecord && !validLine(line) {
			// An export writes only lines that are JSON, so that jq
			// reads all it writes. (The decoder is more lenient: it
			// reads what it can of a line, such as one with a raw
			// control character in a string, which Berth never writes.)
			corrupt++
			return true
		}
		if err = fn(line, &rec); err != nil {
			return false
		}
		*n++
		if m.q.Limit > 0 && *n >= m.q.Limit {
			err = errStop
			return false
		}
		return true
	}
	var rerr error
	if newest {
		rerr = backwardLines(f, s.size, visit)
	} else {
		rerr = forwardLines(f, s.size, visit)
	}
	if err == nil && rerr != nil {
		err = fmt.Errorf("audit: read %s: %w", filepath.Base(s.path), rerr)
	}
	return corrupt, err
}
