package engine

// The decisions of Authorize on a repository, cached: a pull asks the
// same question (this user, this action, this repository, from this
// address) for every manifest and blob, and evaluating the user's
// identity policies and the repository's policy costs more than the
// rest of the question.

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/berthstore/berth/engine/internal/iam"
)

// maxDecisions bounds the cache of decisions: past it the cache starts
// over. An entry is a few hundred bytes.
const maxDecisions = 4096

// decisions caches Authorize's decisions on repositories that exist.
//
// A decision is a function of its inputs: the principal (account, path,
// name and identity policies), the action, the repository's ARN, policy
// and resource tags (its *repoAccess, immutable, replaced on every
// change), the registry policy (*registryPolicyEntry) and the account
// settings (*accountSettings, for the registry policy's scope), the
// request's aws:SourceIp and aws:SecureTransport, the tags the request
// sets and the time. An entry is keyed by all but the registry policy,
// the settings, the request's tags and the time; it holds the registry
// policy and the settings it was decided under and is served only while
// both are still the current ones. The current *repoAccess is part of
// the key, so a changed repository policy or tag is never answered from
// an entry of the repository before the change. A decision whose
// evaluation read the time (a condition on aws:CurrentTime or
// aws:EpochTime) holds the span of time over which each of its
// comparisons with the time comes out the same (iam.TimeSpan: until the
// date a DateLessThan names, one second for the time as a policy
// variable), and is served only within it. Decisions of requests that
// set tags and of a policy given in the request (RepositoryPolicy) are
// not cached.
//
// Reads take no lock (sync.Map, whose Load of a comparable struct key
// does not allocate).
type decisions struct {
	m sync.Map     // decisionKey -> *cachedDecision
	n atomic.Int64 // entries stored since the last start over
}

// decisionKey is what a cached decision was asked about.
type decisionKey struct {
	access              *repoAccess
	identity            *IdentityPolicies
	account, path, user string
	action              string
	sourceIP            netip.Addr
	secureTransport     bool
}

// cachedDecision is a decision, the registry-wide state it was made
// under and the span of time over which it stands.
type cachedDecision struct {
	registry *registryPolicyEntry
	settings *accountSettings
	span     iam.TimeSpan
	d        Decision
}

// decisionKeyOf is the key of req's decision on repository access ra.
func decisionKeyOf(req *AccessRequest, ra *repoAccess) decisionKey {
	p := &req.Principal
	return decisionKey{access: ra, identity: p.Identity, account: p.Account, path: p.Path, user: p.User,
		action: req.Action, sourceIP: req.SourceIP, secureTransport: req.SecureTransport}
}

// load returns the decision cached for k, if it was made under
// registry policy rp and settings s, the current ones, and stands at the
// clock's time (read only for a decision that read the time).
func (c *decisions) load(k *decisionKey, rp *registryPolicyEntry, s *accountSettings, clock Clock) (Decision, bool) {
	if rp == nil || s == nil {
		return Decision{}, false
	}
	v, ok := c.m.Load(*k)
	if !ok {
		return Decision{}, false
	}
	cd := v.(*cachedDecision)
	if cd.registry != rp || cd.settings != s || cd.span.Timed && !cd.span.Contains(clock.Now()) {
		return Decision{}, false
	}
	return cd.d, true
}

// store caches d for k, made under registry policy rp and settings s,
// standing over span.
func (c *decisions) store(k *decisionKey, rp *registryPolicyEntry, s *accountSettings, span iam.TimeSpan, d Decision) {
	if c.n.Add(1) > maxDecisions {
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(*k, &cachedDecision{registry: rp, settings: s, span: span, d: d})
}

// len is the number of decisions held.
func (c *decisions) len() int {
	n := 0
	c.m.Range(func(any, any) bool { n++; return true })
	return n
}
