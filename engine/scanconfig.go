package engine

// The registry's scanning configuration (ECR's
// PutRegistryScanningConfiguration): a scan type and rules, each a
// frequency and repository filters. Which repositories are scanned on
// push and re-matched when the vulnerability database changes follows
// from it and from each repository's scanOnPush (docs/scanning.md).

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/berthstore/berth/engine/internal/record"
	"github.com/berthstore/berth/index"
)

// Scan types and frequencies, as ECR names them.
const (
	ScanTypeBasic    = "BASIC"
	ScanTypeEnhanced = "ENHANCED"

	ScanFrequencyOnPush     = "SCAN_ON_PUSH"
	ScanFrequencyContinuous = "CONTINUOUS_SCAN"
	ScanFrequencyManual     = "MANUAL"

	ScanFilterWildcard = "WILDCARD"
)

// scanningSetting names the registry setting holding the configuration.
const scanningSetting = "scanningConfiguration"

// ScanningConfiguration is the registry's scanning configuration.
type ScanningConfiguration struct {
	// ScanType is BASIC (the default) or ENHANCED.
	ScanType string
	// Rules are at most two rules.
	Rules []ScanningRule
}

// ScanningRule scans the repositories its filters match at its frequency.
type ScanningRule struct {
	// ScanFrequency is SCAN_ON_PUSH, CONTINUOUS_SCAN (ENHANCED only) or
	// MANUAL.
	ScanFrequency string
	// RepositoryFilters: a repository matches when one filter does.
	RepositoryFilters []ScanRepositoryFilter
}

// ScanRepositoryFilter is a repository name pattern: a WILDCARD filter,
// where * matches any characters.
type ScanRepositoryFilter struct {
	Filter     string
	FilterType string
}

// RepositoryScanning is what applies to one repository.
type RepositoryScanning struct {
	// ScanOnPush is the repository's own setting.
	ScanOnPush bool
	// ScanFrequency is the frequency in effect: from the registry's rules,
	// or SCAN_ON_PUSH for a repository with scanOnPush, else MANUAL.
	ScanFrequency string
	// AppliedScanFilters are the filters of the rule that matched.
	AppliedScanFilters []ScanRepositoryFilter
}

// scanFilterPattern is the filter grammar ECR accepts.
var scanFilterPattern = regexp.MustCompile(`^[a-z0-9*._\-/]+$`)

// Validate checks a configuration as ECR does, refusing what Berth
// cannot act on, with ErrInvalidArgument.
func (c *ScanningConfiguration) Validate() error {
	switch c.ScanType {
	case ScanTypeBasic, ScanTypeEnhanced:
	default:
		return fmt.Errorf("%w: scanType %q: BASIC or ENHANCED", ErrInvalidArgument, c.ScanType)
	}
	if len(c.Rules) > 2 {
		return fmt.Errorf("%w: %d rules: at most 2", ErrInvalidArgument, len(c.Rules))
	}
	seen := map[string]bool{}
	for _, r := range c.Rules {
		switch r.ScanFrequency {
		case ScanFrequencyOnPush:
		case ScanFrequencyContinuous:
			if c.ScanType != ScanTypeEnhanced {
				return fmt.Errorf("%w: scanFrequency CONTINUOUS_SCAN needs scanType ENHANCED", ErrInvalidArgument)
			}
		case ScanFrequencyManual:
		default:
			return fmt.Errorf("%w: scanFrequency %q: SCAN_ON_PUSH, CONTINUOUS_SCAN or MANUAL", ErrInvalidArgument, r.ScanFrequency)
		}
		if seen[r.ScanFrequency] {
			return fmt.Errorf("%w: two rules with scanFrequency %s", ErrInvalidArgument, r.ScanFrequency)
		}
		seen[r.ScanFrequency] = true
		if len(r.RepositoryFilters) == 0 || len(r.RepositoryFilters) > 100 {
			return fmt.Errorf("%w: a rule has 1 to 100 repository filters, not %d", ErrInvalidArgument, len(r.RepositoryFilters))
		}
		for _, f := range r.RepositoryFilters {
			if f.FilterType != ScanFilterWildcard {
				return fmt.Errorf("%w: filterType %q: WILDCARD", ErrInvalidArgument, f.FilterType)
			}
			if len(f.Filter) < 1 || len(f.Filter) > 255 || !scanFilterPattern.MatchString(f.Filter) {
				return fmt.Errorf("%w: repository filter %q", ErrInvalidArgument, f.Filter)
			}
		}
	}
	return nil
}

// matches reports whether a WILDCARD filter matches repo.
func (f ScanRepositoryFilter) matches(repo string) bool {
	parts := strings.Split(f.Filter, "*")
	if len(parts) == 1 {
		return repo == f.Filter
	}
	if !strings.HasPrefix(repo, parts[0]) {
		return false
	}
	rest := repo[len(parts[0]):]
	for i, p := range parts[1:] {
		last := i == len(parts)-2
		if last {
			return strings.HasSuffix(rest, p) && len(rest) >= len(p)
		}
		j := strings.Index(rest, p)
		if j < 0 {
			return false
		}
		rest = rest[j+len(p):]
	}
	return true
}

// rule returns the rule that applies to repo: a continuous rule before
// one on push before a manual one (nil: none).
func (c *ScanningConfiguration) rule(repo string) *ScanningRule {
	var best *ScanningRule
	rank := map[string]int{ScanFrequencyContinuous: 3, ScanFrequencyOnPush: 2, ScanFrequencyManual: 1}
	for i := range c.Rules {
		r := &c.Rules[i]
		for _, f := range r.RepositoryFilters {
			if f.matches(repo) && (best == nil || rank[r.ScanFrequency] > rank[best.ScanFrequency]) {
				best = r
				break
			}
		}
	}
	return best
}

// frequency returns the frequency the registry's rules give repo
// (MANUAL when none matches).
func (c *ScanningConfiguration) frequency(repo string) string {
	if r := c.rule(repo); r != nil {
		return r.ScanFrequency
	}
	return ScanFrequencyManual
}

// PutRegistryScanningConfiguration replaces the registry's scanning
// configuration (validated: ErrInvalidArgument). An empty scan type is
// BASIC.
func (e *Engine) PutRegistryScanningConfiguration(ctx context.Context, c ScanningConfiguration) (ScanningConfiguration, error) {
	if c.ScanType == "" {
		c.ScanType = ScanTypeBasic
	}
	if err := c.Validate(); err != nil {
		return ScanningConfiguration{}, err
	}
	rec := record.ScanningConfiguration{ScanType: c.ScanType, UpdatedAt: e.now()}
	for _, r := range c.Rules {
		rr := record.ScanningRule{Frequency: r.ScanFrequency}
		for _, f := range r.RepositoryFilters {
			rr.Filters = append(rr.Filters, record.ScanFilter{Filter: f.Filter, Type: f.FilterType})
		}
		rec.Rules = append(rec.Rules, rr)
	}
	v, err := record.EncodeScanningConfiguration(rec)
	if err != nil {
		return ScanningConfiguration{}, err
	}
	if err := e.storeScanningConfiguration(&c, v); err != nil {
		return ScanningConfiguration{}, err
	}
	for _, r := range c.Rules {
		if r.ScanFrequency == ScanFrequencyContinuous {
			// Continuous scanning covers the images already there.
			if _, err := e.queueRematches(ctx); err != nil {
				return ScanningConfiguration{}, err
			}
			break
		}
	}
	return c, nil
}

// storeScanningConfiguration writes c (encoded as v) and makes it the
// one pushes read.
func (e *Engine) storeScanningConfiguration(c *ScanningConfiguration, v []byte) error {
	e.registryMu.Lock()
	defer e.registryMu.Unlock()
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutRegistrySetting(scanningSetting, v); err != nil {
		return storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		return storageErr(err)
	}
	e.scanConfig.Store(c)
	return nil
}

// RegistryScanningConfiguration returns the registry's scanning
// configuration (BASIC with no rules when none was put).
func (e *Engine) RegistryScanningConfiguration(ctx context.Context) (ScanningConfiguration, error) {
	if c := e.scanConfig.Load(); c != nil {
		return *c, nil
	}
	g := e.fillGen()
	b, err := e.db.RegistrySetting(scanningSetting)
	if errors.Is(err, index.ErrNotFound) {
		c := ScanningConfiguration{ScanType: ScanTypeBasic}
		e.fillScanConfig(g, &c)
		return c, nil
	}
	if err != nil {
		return ScanningConfiguration{}, storageErr(err)
	}
	rec, err := record.DecodeScanningConfiguration(b)
	if err != nil {
		return ScanningConfiguration{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	c := ScanningConfiguration{ScanType: rec.ScanType}
	for _, r := range rec.Rules {
		sr := ScanningRule{ScanFrequency: r.Frequency}
		for _, f := range r.Filters {
			sr.RepositoryFilters = append(sr.RepositoryFilters, ScanRepositoryFilter{Filter: f.Filter, FilterType: f.Type})
		}
		c.Rules = append(c.Rules, sr)
	}
	e.fillScanConfig(g, &c)
	return c, nil
}

// fillScanConfig caches c, read under drop generation g (fresh).
func (e *Engine) fillScanConfig(g uint64, c *ScanningConfiguration) {
	if e.fresh(g) && e.scanConfig.CompareAndSwap(nil, c) && !e.fresh(g) {
		e.scanConfig.CompareAndSwap(c, nil)
	}
}

// RepositoryScanningConfiguration returns what applies to repo.
func (e *Engine) RepositoryScanningConfiguration(ctx context.Context, repo string) (RepositoryScanning, error) {
	r, err := e.loadRepo(repo)
	if err != nil {
		return RepositoryScanning{}, err
	}
	c, err := e.RegistryScanningConfiguration(ctx)
	if err != nil {
		return RepositoryScanning{}, err
	}
	return c.forRepository(repo, r.ScanOnPush), nil
}

func (c *ScanningConfiguration) forRepository(repo string, scanOnPush bool) RepositoryScanning {
	out := RepositoryScanning{ScanOnPush: scanOnPush, ScanFrequency: ScanFrequencyManual}
	if r := c.rule(repo); r != nil && r.ScanFrequency != ScanFrequencyManual {
		out.ScanFrequency = r.ScanFrequency
		for _, f := range r.RepositoryFilters {
			if f.matches(repo) {
				out.AppliedScanFilters = append(out.AppliedScanFilters, f)
			}
		}
		return out
	}
	if scanOnPush {
		out.ScanFrequency = ScanFrequencyOnPush
	}
	return out
}

// scansOnPush reports whether a push to repo (with its scanOnPush
// setting) is scanned.
func (e *Engine) scansOnPush(repo string, scanOnPush bool) (bool, error) {
	c, err := e.RegistryScanningConfiguration(context.Background())
	if err != nil {
		return false, err
	}
	f := c.forRepository(repo, scanOnPush).ScanFrequency
	return f == ScanFrequencyOnPush || f == ScanFrequencyContinuous, nil
}
