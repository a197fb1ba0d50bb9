package audit

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Defaults of Options.
const (
	// DefaultSegmentBytes is the size at which a segment is closed and a
	// new one begun.
	DefaultSegmentBytes = 64 << 20
	// DefaultMaxAge is how long records are kept: 90 days, as long as
	// CloudTrail's event history keeps management events.
	DefaultMaxAge = 90 * 24 * time.Hour
	// DefaultMaxBytes bounds the directory: 1 GiB.
	DefaultMaxBytes = 1 << 30
	// DefaultRegion is the awsRegion written when none is given, the
	// region registryd's ECR API answers for by default.
	DefaultRegion = "us-east-1"
	// DefaultAccountID is the recipientAccountId written when none is
	// given, registryd's default registry id.
	DefaultAccountID = "000000000000"
)

// minSegmentBytes is the smallest SegmentBytes Validate accepts.
const minSegmentBytes = 64 << 10

// Options configure a Log. Open clones them, fills the zero fields
// (EnsureDefaults) and refuses what Validate finds wrong; the caller's
// value is not changed.
type Options struct {
	// SegmentBytes is the size at which the current segment is closed and
	// a new one begun (a segment may pass it by less than one line).
	// Default DefaultSegmentBytes (64 MiB); at least 64 KiB. Smaller
	// segments make retention finer and queries read less around their
	// time span, at the cost of more files.
	SegmentBytes int64
	// MaxAge is how long a record is kept: a closed segment whose newest
	// record is older than MaxAge is deleted (on open and on each
	// rotation; segments also close at each UTC midnight, so records go
	// within a day of their time). Default DefaultMaxAge (90 days);
	// negative keeps records forever (MaxBytes still bounds them).
	MaxAge time.Duration
	// MaxBytes bounds the directory: the oldest closed segments are
	// deleted until the closed ones and a full current segment fit in it.
	// Default DefaultMaxBytes (1 GiB); at least SegmentBytes.
	MaxBytes int64
	// Region is the awsRegion of every line. Default DefaultRegion.
	Region string
	// AccountID is the registry's account, each line's
	// recipientAccountId. Default DefaultAccountID.
	AccountID string
	// Now is the clock: record times, day boundaries, retention. Default
	// time.Now. Tests give a fake one to rotate and expire without
	// sleeping.
	Now func() time.Time
	// Logger receives what an operator must hear about: bytes dropped
	// from a torn last line at open, undecodable lines skipped by a
	// query, segments deleted by retention, write and sync failures.
	// Default slog.Default().
	Logger *slog.Logger
	// FS is the file system the log's segments are on: every segment is
	// created, written, synced, truncated, listed, read and removed
	// through it. Default vfs.Default, the operating system's. Tests give
	// internal/faultfs to fill the disk or fail it. The directory's LOCK
	// is flock(2) on the operating system's file when FS is (or wraps)
	// vfs.Default, and FS.Lock otherwise.
	FS vfs.FS
}

// EnsureDefaults fills the zero fields of o with their defaults and
// returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.AccountID == "" {
		o.AccountID = DefaultAccountID
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	return o
}

// Validate reports every problem of o at once (each wraps
// ErrInvalidOptions), or nil. It expects EnsureDefaults to have run.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	if o.SegmentBytes < minSegmentBytes {
		bad("SegmentBytes %d is below %d", o.SegmentBytes, minSegmentBytes)
	}
	if o.MaxBytes < o.SegmentBytes {
		bad("MaxBytes %d is below SegmentBytes %d", o.MaxBytes, o.SegmentBytes)
	}
	if o.Now == nil {
		bad("no clock (Now)")
	}
	if o.Logger == nil {
		bad("no Logger")
	}
	return errors.Join(errs...)
}

// clone returns a copy of o, or of the zero Options when o is nil.
func (o *Options) clone() *Options {
	if o == nil {
		return &Options{}
	}
	c := *o
	return &c
}
