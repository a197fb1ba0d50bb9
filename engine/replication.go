package engine

// The replication configuration (ECR's PutReplicationConfiguration and
// DescribeRegistry): rules naming destinations and the repositories they
// take. replicationqueue.go queues and tracks what they select;
// docs/replication.md has the whole design.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/berthstore/berth/engine/internal/record"
	"github.com/berthstore/berth/index"
)

// ReplicationFilterPrefixMatch is the one repository filter type ECR has:
// the repository's name starts with the filter.
const ReplicationFilterPrefixMatch = "PREFIX_MATCH"

// ECR's limits on a replication configuration.
const (
	// MaxReplicationRules is the most rules a configuration holds.
	MaxReplicationRules = 10
	// MaxReplicationDestinations is the most distinct destinations of a
	// configuration, all rules together.
	MaxReplicationDestinations = 25
	// MaxReplicationFilters is the most repository filters of a rule.
	MaxReplicationFilters = 100
)

const replicationSetting = "replicationConfiguration"

// ReplicationDestination names a registry replicated to: its region and
// registry ID (an account ID). The embedder maps it to an endpoint.
type ReplicationDestination struct {
	Region     string
	RegistryID string
}

// String is the destination as keys, logs and metrics name it:
// "<registryId>/<region>".
func (d ReplicationDestination) String() string { return d.RegistryID + "/" + d.Region }

// ParseReplicationDestination reads a destination written by String.
func ParseReplicationDestination(s string) (ReplicationDestination, error) {
	id, region, ok := strings.Cut(s, "/")
	d := ReplicationDestination{Region: region, RegistryID: id}
	if !ok || d.validate() != nil {
		return ReplicationDestination{}, fmt.Errorf("%w: replication destination %q: <registryId>/<region>, such as 111122223333/eu-west-1", ErrInvalidArgument, s)
	}
	return d, nil
}

var (
	replicationRegionPattern = regexp.MustCompile(`^[0-9a-z-]{2,25}$`)
	replicationFilterPattern = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$`)
)

func (d ReplicationDestination) validate() error {
	if !replicationRegionPattern.MatchString(d.Region) {
		return fmt.Errorf("%w: destination region %q: 2 to 25 of a-z 0-9 -", ErrInvalidArgument, d.Region)
	}
	if !validAccount(d.RegistryID) {
		return fmt.Errorf("%w: destination registryId %q: 12 digits", ErrInvalidArgument, d.RegistryID)
	}
	return nil
}

// ReplicationRepositoryFilter selects the repositories of a rule.
type ReplicationRepositoryFilter struct {
	// Filter is a repository name prefix (2 to 256 characters).
	Filter string
	// FilterType is ReplicationFilterPrefixMatch.
	FilterType string
}

// ReplicationRule replicates the repositories its filters select (all
// when it has none) to each of its destinations.
type ReplicationRule struct {
	Destinations      []ReplicationDestination
	RepositoryFilters []ReplicationRepositoryFilter
}

// ReplicationConfiguration is the registry's replication configuration.
type ReplicationConfiguration struct {
	Rules []ReplicationRule
}

// Validate checks c against ECR's rules and limits: at most 10 rules,
// each with 1 or more destinations and at most 100 PREFIX_MATCH filters
// of 2 to 256 characters; at most 25 distinct destinations in all; no
// destination twice in a rule. Errors wrap ErrInvalidArgument.
func (c *ReplicationConfiguration) Validate() error {
	if len(c.Rules) > MaxReplicationRules {
		return fmt.Errorf("%w: %d replication rules: at most %d", ErrInvalidArgument, len(c.Rules), MaxReplicationRules)
	}
	all := map[ReplicationDestination]bool{}
	for i, r := range c.Rules {
		if len(r.Destinations) == 0 {
			return fmt.Errorf("%w: rules[%d]: a rule names at least one destination", ErrInvalidArgument, i)
		}
		seen := map[ReplicationDestination]bool{}
		for _, d := range r.Destinations {
			if err := d.validate(); err != nil {
				return fmt.Errorf("rules[%d]: %w", i, err)
			}
			if seen[d] {
				return fmt.Errorf("%w: rules[%d]: destination %s twice", ErrInvalidArgument, i, d)
			}
			seen[d], all[d] = true, true
		}
		if len(r.RepositoryFilters) > MaxReplicationFilters {
			return fmt.Errorf("%w: rules[%d]: %d repository filters: at most %d", ErrInvalidArgument, i, len(r.RepositoryFilters), MaxReplicationFilters)
		}
		for j, f := range r.RepositoryFilters {
			if f.FilterType != ReplicationFilterPrefixMatch {
				return fmt.Errorf("%w: rules[%d].repositoryFilters[%d].filterType %q: PREFIX_MATCH", ErrInvalidArgument, i, j, f.FilterType)
			}
			if len(f.Filter) < 2 || len(f.Filter) > 256 || !replicationFilterPattern.MatchString(f.Filter) {
				return fmt.Errorf("%w: rules[%d].repositoryFilters[%d].filter %q: 2 to 256 characters of a repository name's", ErrInvalidArgument, i, j, f.Filter)
			}
		}
	}
	if len(all) > MaxReplicationDestinations {
		return fmt.Errorf("%w: %d distinct replication destinations: at most %d", ErrInvalidArgument, len(all), MaxReplicationDestinations)
	}
	return nil
}

// matches reports whether the rule takes repo.
func (r *ReplicationRule) matches(repo string) bool {
	if len(r.RepositoryFilters) == 0 {
		return true
	}
	for _, f := range r.RepositoryFilters {
		if strings.HasPrefix(repo, f.Filter) {
			return true
		}
	}
	return false
}

// destinationsFor returns the destinations repo is replicated to, each
// once, in the order the rules name them.
func (c *ReplicationConfiguration) destinationsFor(repo string) []ReplicationDestination {
	var out []ReplicationDestination
	for i := range c.Rules {
		r := &c.Rules[i]
		if !r.matches(repo) {
			continue
		}
		for _, d := range r.Destinations {
			dup := false
			for _, o := range out {
				dup = dup || o == d
			}
			if !dup {
				out = append(out, d)
			}
		}
	}
	return out
}

// PutReplicationConfiguration validates c (Validate), refuses a
// destination that is this registry itself or that Options.
// ReplicationDestinations does not name (no endpoint to send to), and
// stores it: pushes committed after it returns are replicated by it.
// Errors: ErrInvalidArgument, ErrClosed.
func (e *Engine) PutReplicationConfiguration(ctx context.Context, c ReplicationConfiguration) (ReplicationConfiguration, error) {
	if err := e.checkOpen(); err != nil {
		return ReplicationConfiguration{}, err
	}
	if err := c.Validate(); err != nil {
		return ReplicationConfiguration{}, err
	}
	known := map[ReplicationDestination]bool{}
	for _, d := range e.opts.ReplicationDestinations {
		known[d] = true
	}
	rec := record.ReplicationConfiguration{UpdatedAt: e.now()}
	for i, r := range c.Rules {
		rr := record.ReplicationRule{}
		for _, d := range r.Destinations {
			if d.RegistryID == e.opts.Account && d.Region == e.opts.Region {
				return ReplicationConfiguration{}, fmt.Errorf("%w: rules[%d]: destination %s is this registry itself", ErrInvalidArgument, i, d)
			}
			if !known[d] {
				return ReplicationConfiguration{}, fmt.Errorf("%w: rules[%d]: destination %s (registryId %s, region %s) has no endpoint configured: name it in the replication destinations of the configuration first",
					ErrInvalidArgument, i, d, d.RegistryID, d.Region)
			}
			rr.Destinations = append(rr.Destinations, record.ReplicationDestination{Region: d.Region, RegistryID: d.RegistryID})
		}
		for _, f := range r.RepositoryFilters {
			rr.Filters = append(rr.Filters, record.ReplicationFilter{Filter: f.Filter, Type: f.FilterType})
		}
		rec.Rules = append(rec.Rules, rr)
	}
	v, err := record.EncodeReplicationConfiguration(rec)
	if err != nil {
		return ReplicationConfiguration{}, err
	}
	// Under every repository's lock would be exact; the configuration's
	// own mutex is enough: a push reads the configuration under its
	// repository's lock after this store, or before it (then it is not
	// replicated by the new rules, as a push that committed first).
	e.registryMu.Lock()
	defer e.registryMu.Unlock()
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutRegistrySetting(replicationSetting, v); err != nil {
		return ReplicationConfiguration{}, storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		return ReplicationConfiguration{}, storageErr(err)
	}
	cc := cloneReplicationConfiguration(c)
	e.repl.config.Store(&cc)
	return cloneReplicationConfiguration(c), nil
}

// ReplicationConfiguration returns the registry's replication
// configuration (no rules when none was put).
func (e *Engine) ReplicationConfiguration(ctx context.Context) (ReplicationConfiguration, error) {
	if err := e.checkOpen(); err != nil {
		return ReplicationConfiguration{}, err
	}
	c, err := e.replicationConfig()
	if err != nil {
		return ReplicationConfiguration{}, err
	}
	return cloneReplicationConfiguration(*c), nil
}

// replicationConfig returns the cached configuration, reading it on a
// miss. The caller must not change it.
func (e *Engine) replicationConfig() (*ReplicationConfiguration, error) {
	if c := e.repl.config.Load(); c != nil {
		return c, nil
	}
	g := e.fillGen()
	b, err := e.db.RegistrySetting(replicationSetting)
	if errors.Is(err, index.ErrNotFound) {
		return e.fillReplicationConfig(g, &ReplicationConfiguration{}), nil
	}
	if err != nil {
		return nil, storageErr(err)
	}
	rec, err := record.DecodeReplicationConfiguration(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	c := &ReplicationConfiguration{}
	for _, r := range rec.Rules {
		rr := ReplicationRule{}
		for _, d := range r.Destinations {
			rr.Destinations = append(rr.Destinations, ReplicationDestination{Region: d.Region, RegistryID: d.RegistryID})
		}
		for _, f := range r.Filters {
			rr.RepositoryFilters = append(rr.RepositoryFilters, ReplicationRepositoryFilter{Filter: f.Filter, FilterType: f.Type})
		}
		c.Rules = append(c.Rules, rr)
	}
	return e.fillReplicationConfig(g, c), nil
}

// fillReplicationConfig caches c, read under drop generation g (fresh),
// unless another is cached, and returns the one cached (c when none is).
func (e *Engine) fillReplicationConfig(g uint64, c *ReplicationConfiguration) *ReplicationConfiguration {
	if !e.fresh(g) {
		return c
	}
	if !e.repl.config.CompareAndSwap(nil, c) {
		if cur := e.repl.config.Load(); cur != nil {
			return cur
		}
		return c
	}
	if !e.fresh(g) {
		e.repl.config.CompareAndSwap(c, nil)
	}
	return c
}

func cloneReplicationConfiguration(c ReplicationConfiguration) ReplicationConfiguration {
	out := ReplicationConfiguration{Rules: make([]ReplicationRule, 0, len(c.Rules))}
	for _, r := range c.Rules {
		out.Rules = append(out.Rules, ReplicationRule{
			Destinations:      append([]ReplicationDestination(nil), r.Destinations...),
			RepositoryFilters: append([]ReplicationRepositoryFilter(nil), r.RepositoryFilters...),
		})
	}
	return out
}
