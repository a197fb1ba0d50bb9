package cli

// The schedules of serve: lifecycle policies and garbage collection run by
// the engine (engine/schedule.go) at the configured intervals.

import (
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/berthstore/berth/engine"
)

// Defaults and bounds of the schedules.
const (
	// DefaultScheduleInterval is the default lifecycle and gc interval:
	// a day, as ECR applies lifecycle policies within 24 hours.
	DefaultScheduleInterval = 24 * time.Hour
	// MinScheduleInterval is the shortest interval allowed without
	// ShortSchedules: each lifecycle run reads every repository with a
	// policy, each collection marks the whole index.
	MinScheduleInterval = time.Minute
	// scheduleJitter moves each run by up to this fraction of its
	// interval either way, so that registries started together (a fleet,
	// a restart of many) do not all collect at once.
	scheduleJitter = 0.1
)

// bindScheduleFlags defines the flags of the schedules (serve only).
func bindScheduleFlags(fs *flag.FlagSet, c *Config) {
	fs.Var(&c.LifecycleInterval, "lifecycle-interval", "apply every repository's lifecycle policy this often, ±10% at random (default 24h; 0: off)")
	fs.Var(&c.GCInterval, "gc-interval", "run an online garbage collection this often, ±10% at random (default 24h; 0: off)")
	fs.BoolVar(&c.GCAfterLifecycle, "gc-after-lifecycle", c.GCAfterLifecycle, "also collect garbage after each scheduled lifecycle run that expired images")
	fs.Var(&c.GCGrace, "gc-grace", "spare unreferenced blobs younger than this in scheduled collections (default 1h)")
	fs.BoolVar(&c.ShortSchedules, "short-schedules", c.ShortSchedules, "allow --lifecycle-interval and --gc-interval under a minute (tests, demonstrations)")
}

// validateSchedules reports the problems of the schedule settings.
func (c *Config) validateSchedules() []error {
	var errs []error
	for _, s := range []struct {
		name string
		d    Duration
	}{{"lifecycleInterval", c.LifecycleInterval}, {"gcInterval", c.GCInterval}} {
		switch d := time.Duration(s.d); {
		case d < 0:
			errs = append(errs, fmt.Errorf("%s %v: want 0 (off) or a positive interval", s.name, d))
		case d > 0 && d < MinScheduleInterval && !c.ShortSchedules:
			errs = append(errs, fmt.Errorf("%s %v is under %v: set shortSchedules (--short-schedules) to allow it", s.name, d, MinScheduleInterval))
		}
	}
	if c.GCGrace < 0 {
		errs = append(errs, fmt.Errorf("gcGrace %v: want 0 (the default, 1h) or a positive duration", time.Duration(c.GCGrace)))
	}
	return errs
}

// scheduleOptions sets the engine options of serve's schedules.
func (c *Config) scheduleOptions(o *engine.Options) {
	o.LifecycleInterval = time.Duration(c.LifecycleInterval)
	o.GCInterval = time.Duration(c.GCInterval)
	o.GCAfterLifecycle = c.GCAfterLifecycle && c.LifecycleInterval > 0
	o.GCGrace = time.Duration(c.GCGrace)
	o.ScheduleJitter = scheduleJitter
}

// logSchedules says at start when lifecycle policies and collections run.
func logSchedules(log *slog.Logger, cfg *Config, eng *engine.Engine) {
	on := map[string]engine.ScheduleInfo{}
	for _, s := range eng.Schedules() {
		on[s.Name] = s
	}
	grace := time.Duration(cfg.GCGrace)
	if grace == 0 {
		grace = engine.DefaultGCGrace
	}
	if s, ok := on[engine.ScheduleLifecycle]; ok {
		log.Info("lifecycle schedule: every repository's policy is applied", "interval", s.Interval, "jitter", "±10%",
			"nextRun", s.NextRun, "resumesCutShortRun", s.Resume, "gcAfter", cfg.GCAfterLifecycle)
	} else {
		log.Info("lifecycle schedule off: policies apply only when asked (admin API, registryd lifecycle apply)")
	}
	if s, ok := on[engine.ScheduleGC]; ok {
		log.Info("gc schedule: online garbage collection", "interval", s.Interval, "jitter", "±10%", "grace", grace,
			"nextRun", s.NextRun, "resumesCutShortRun", s.Resume)
	} else {
		log.Info("gc schedule off: collections run only when asked (admin API, registryd gc), or after lifecycle runs", "gcAfterLifecycle", cfg.GCAfterLifecycle && cfg.LifecycleInterval > 0, "grace", grace)
	}
}
