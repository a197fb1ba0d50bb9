package admin

import (
	"context"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/gc"
)

// The engine's maintenance types, named once here (the gc package's
// today).
type (
	gcOptions   = gc.Options
	gcReport    = gc.Report
	fsckOptions = gc.FsckOptions
	fsckReport  = gc.FsckReport
	expiry      = gc.Expiry
)

// The engine's maintenance errors: a collection already running, and a
// lifecycle policy that does not parse.
var (
	errGCRunning     = gc.ErrRunning
	errInvalidPolicy = gc.ErrInvalidPolicy
)

// Store is the role of the store the admin API drives: collection, the
// store check and lifecycle policies run now.
type Store interface {
	CollectGarbage(ctx context.Context, opts gcOptions) (gcReport, error)
	Fsck(ctx context.Context, opts fsckOptions) (*fsckReport, error)
	LifecyclePreview(ctx context.Context, repo, policyOverride string) ([]expiry, error)
	LifecycleApply(ctx context.Context, repo, policyOverride string) ([]expiry, error)
}

var _ Store = (*engine.Engine)(nil)
