package iam

import (
	"fmt"
	"strconv"
)

// Outcome is what a decision says.
type Outcome uint8

// The outcomes. The zero Outcome is ImplicitDeny, so that a forgotten
// decision denies.
const (
	// ImplicitDeny: no statement allows (or what allows is not enough,
	// as for a principal of another account).
	ImplicitDeny Outcome = iota
	// ExplicitDeny: a Deny statement matches; nothing overrides it.
	ExplicitDeny
	// Allow: allowed.
	Allow
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case ExplicitDeny:
		return "explicit deny"
	case Allow:
		return "allow"
	}
	return "implicit deny"
}

// Reason says why a decision is what it is.
type Reason uint8

// The reasons.
const (
	// ReasonNoAllow: no statement allows (ImplicitDeny).
	ReasonNoAllow Reason = iota
	// ReasonDeny: a Deny statement matches (ExplicitDeny).
	ReasonDeny
	// ReasonIdentityAllow: an identity policy allows, within the
	// resource's account.
	ReasonIdentityAllow
	// ReasonResourceAllow: the resource's policy allows the caller
	// directly ("*" or the user's ARN), within the resource's account, or
	// an anonymous caller through "*".
	ReasonResourceAllow
	// ReasonIdentityAndResourceAllow: an identity policy allows and the
	// resource's policy grants the caller or the caller's account; both
	// are needed across accounts and for a key.
	ReasonIdentityAndResourceAllow
	// ReasonNoResourceGrant: an identity policy allows, but the caller is
	// of another account (or the resource is a key) and the resource's
	// policy grants neither the caller nor its account (ImplicitDeny).
	ReasonNoResourceGrant
	// ReasonNoIdentityGrant: the resource's policy grants the caller's
	// account (or, across accounts, the caller), but no identity policy
	// allows (ImplicitDeny).
	ReasonNoIdentityGrant
	// ReasonUnknownAction: the request's action is not an action of its
	// service (a caller's mistake; ImplicitDeny).
	ReasonUnknownAction
)

// StatementRef names a statement for the audit log: its policy (kind
// and source name), its index in the policy and its Sid.
type StatementRef struct {
	// Kind is the policy's kind; zero when no statement is named.
	Kind Kind
	// Policy is the source name given to Parse.
	Policy string
	// Index is the statement's index in the policy.
	Index int
	// Sid is the statement's Sid, if any.
	Sid string
}

// IsZero reports whether the reference names no statement.
func (r StatementRef) IsZero() bool { return r.Kind == 0 }

// String reads `repository policy "repo/a" statement 2 (Sid "NoPush")`.
func (r StatementRef) String() string {
	if r.IsZero() {
		return "no statement"
	}
	s := r.Kind.String() + " " + strconv.Quote(r.Policy) + " statement " + strconv.Itoa(r.Index)
	if r.Sid != "" {
		s += " (Sid " + strconv.Quote(r.Sid) + ")"
	}
	return s
}

// Decision is the result of Evaluate.
type Decision struct {
	Outcome Outcome
	Reason  Reason
	// Statement is the deciding statement: the matching Deny for an
	// ExplicitDeny; for an Allow, the identity policy's Allow when one
	// took part, else the resource policy's; for ReasonNoResourceGrant,
	// the identity policy's Allow that was not enough.
	Statement StatementRef
	// Grant is the resource policy's Allow that granted the caller's
	// account or, across accounts, the caller, when Statement is an
	// identity policy's (ReasonIdentityAndResourceAllow) or when no
	// identity policy allowed (ReasonNoIdentityGrant).
	Grant StatementRef
}

// Allowed reports whether the request is allowed.
func (d Decision) Allowed() bool { return d.Outcome == Allow }

// String is the decision as the audit log records it.
func (d Decision) String() string {
	switch d.Reason {
	case ReasonDeny:
		return "explicitly denied by " + d.Statement.String()
	case ReasonIdentityAllow, ReasonResourceAllow:
		return "allowed by " + d.Statement.String()
	case ReasonIdentityAndResourceAllow:
		return "allowed by " + d.Statement.String() + " with " + d.Grant.String()
	case ReasonNoResourceGrant:
		return "implicitly denied: " + d.Statement.String() + " allows, but no resource policy grants the caller or its account (both must across accounts and for a key)"
	case ReasonNoIdentityGrant:
		return "implicitly denied: " + d.Grant.String() + " allows, but no identity policy does (both must across accounts, for a key, and for a grant to an account)"
	case ReasonUnknownAction:
		return "implicitly denied: unknown action"
	}
	return "implicitly denied: no statement allows"
}

// GoString helps test failures.
func (d Decision) GoString() string { return fmt.Sprintf("iam.Decision{%s}", d) }

// Evaluate decides req against the principal's identity policies (its
// user's and its groups') and the resource's policies (a repository
// policy, the registry policy for registry-level actions, a key policy),
// as AWS does:
//
//  1. a Deny statement that matches, in any policy, denies (ExplicitDeny);
//  2. within the resource's account, an Allow in an identity policy, or
//     an Allow in a resource policy that names the caller directly ("*"
//     or the user's ARN), allows;
//  3. for a principal of another account, and for a KMS key (a kms
//     resource ARN, or a KeyPolicy among the policies), an
//     identity policy's Allow is needed and also a resource policy's
//     Allow that names the caller or the caller's account; a resource
//     policy that names an account delegates to the account and never
//     allows by itself;
//  4. an anonymous caller is allowed only by a resource policy's Allow
//     for "*" (it has no identity policies: any passed are used for their
//     Deny statements only);
//  5. otherwise the request is denied (ImplicitDeny).
//
// Each policy is evaluated as its Kind says; the two lists only spare the
// caller a concatenation. nil entries are skipped. Evaluate does not
// allocate, save what a Context implementation or a policy variable over
// a non-string key (aws:SourceIp, aws:CurrentTime) costs.
func Evaluate(req *Request, identity, resource []*Policy) Decision {
	e := evaluation{req: req, action: noAction}
	return e.decide(identity, resource)
}

// EvaluateTimed is Evaluate, and returns the span of time over which the
// decision stands: the same request with another time in span (and the
// same policies) is decided the same way. A decision is a function of
// the request's principal, action, resource, SourceIP, SecureTransport,
// Context and time; the span says how far the time took part (not at
// all when no statement that otherwise matched had a condition on
// aws:CurrentTime or aws:EpochTime; one second when either was a policy
// variable).
func EvaluateTimed(req *Request, identity, resource []*Policy) (Decision, TimeSpan) {
	e := evaluation{req: req, action: noAction}
	d := e.decide(identity, resource)
	return d, e.span
}

// decide is Evaluate's work.
func (e *evaluation) decide(identity, resource []*Policy) Decision {
	req := e.req
	id, knownService := lookupAction(req.Action)
	if knownService && id == noAction {
		return Decision{Outcome: ImplicitDeny, Reason: ReasonUnknownAction}
	}
	e.action = id
	e.resource, e.resOK = splitARN(req.Resource)

	var idAllow, direct, viaAccount StatementRef
	anon := req.Principal.IsAnonymous()
	owner := req.ResourceAccount
	if owner == "" && e.resOK {
		owner = e.resource[arnAccount]
	}
	sameAccount := owner == "" || owner == req.Principal.Account
	// A KMS key is reached only through its key policy, given or not.
	keyPolicy := e.resOK && e.resource[arnService] == "kms"
	for _, lists := range [2][]*Policy{identity, resource} {
		for _, p := range lists {
			keyPolicy = keyPolicy || p != nil && p.kind == KeyPolicy
		}
	}
	// Within the account, once an identity policy allows, only Deny
	// statements can change the decision.
	identityEnough := sameAccount && !keyPolicy
	for _, list := range [2][]*Policy{identity, resource} {
		for _, p := range list {
			if p == nil {
				continue
			}
			for i := range p.heads {
				h := &p.heads[i]
				if e.action != noAction && !h.actionMatches(e.action) {
					continue
				}
				if !h.deny {
					// Skip the Allow statements that can no longer change
					// the decision.
					if p.kind == IdentityPolicy && (anon || !idAllow.IsZero()) {
						continue
					}
					if p.kind != IdentityPolicy && (!direct.IsZero() || identityEnough && !idAllow.IsZero()) {
						continue
					}
				}
				s := &p.statements[i]
				how, ok := e.applies(s)
				if !ok {
					continue
				}
				ref := StatementRef{Kind: p.kind, Policy: p.source, Index: i, Sid: s.sid}
				switch {
				case s.effect == effectDeny:
					return Decision{Outcome: ExplicitDeny, Reason: ReasonDeny, Statement: ref}
				case p.kind == IdentityPolicy:
					idAllow = ref
				case how == matchDirect:
					direct = ref
				case viaAccount.IsZero():
					viaAccount = ref
				}
			}
		}
	}

	if anon {
		if !direct.IsZero() {
			return Decision{Outcome: Allow, Reason: ReasonResourceAllow, Statement: direct}
		}
		return Decision{Outcome: ImplicitDeny, Reason: ReasonNoAllow}
	}
	grant := direct
	if grant.IsZero() {
		grant = viaAccount
	}
	switch {
	case !idAllow.IsZero() && identityEnough:
		return Decision{Outcome: Allow, Reason: ReasonIdentityAllow, Statement: idAllow}
	case !direct.IsZero() && sameAccount:
		return Decision{Outcome: Allow, Reason: ReasonResourceAllow, Statement: direct}
	case !idAllow.IsZero() && !grant.IsZero():
		return Decision{Outcome: Allow, Reason: ReasonIdentityAndResourceAllow, Statement: idAllow, Grant: grant}
	case !idAllow.IsZero():
		return Decision{Outcome: ImplicitDeny, Reason: ReasonNoResourceGrant, Statement: idAllow}
	case !grant.IsZero():
		return Decision{Outcome: ImplicitDeny, Reason: ReasonNoIdentityGrant, Grant: grant}
	}
	return Decision{Outcome: ImplicitDeny, Reason: ReasonNoAllow}
}

// applies reports whether statement s matches the request: action (when
// the heads could not tell), resource, principal, then conditions (so a
// condition's tags are fetched only for a statement that otherwise
// matches). how says how a resource policy's Principal names the caller.
func (e *evaluation) applies(s *statement) (how principalMatch, ok bool) {
	if e.action == noAction && s.actions.matches(e.action, e.req.Action) == s.notAction {
		return matchNone, false
	}
	if !e.resourceMatches(s) {
		return matchNone, false
	}
	how = matchDirect
	if s.hasPrincipal {
		if s.notPrincipal {
			if s.principals.excludes(&e.req.Principal) {
				return matchNone, false
			}
		} else if how = s.principals.match(&e.req.Principal); how == matchNone {
			return matchNone, false
		}
	}
	for i := range s.conditions {
		if !e.holds(&s.conditions[i]) {
			return matchNone, false
		}
	}
	return how, true
}

// resourceMatches applies a statement's Resource or NotResource.
func (e *evaluation) resourceMatches(s *statement) bool {
	if s.resources == nil {
		return true
	}
	matched := false
	for i := range s.resources {
		r := &s.resources[i]
		if r.any || e.resOK && e.matchARN(r, &e.resource) {
			matched = true
			break
		}
	}
	return matched != s.notResource
}
