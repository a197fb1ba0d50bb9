package engine

// Access decisions: the one place that decides whether a principal may
// perform an action on a resource. registryd authenticates callers and
// asks Authorize for every request of every API; nothing else in Berth
// decides access. engine/internal/iam evaluates the policies as AWS does;
// this file gathers them (the principal's identity policies, the
// repository's policy, the registry policy, a key's policy) and the
// request's context. docs/policies.md.

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/berthstore/berth/engine/internal/iam"
)

// Principal is who makes a request: a user of an account, or an
// anonymous caller (User empty). Build one with NewPrincipal when the
// caller is authenticated (a literal works too, at the cost of building
// its IAM identity on every decision).
type Principal struct {
	// Account is the user's account ID (12 digits).
	Account string
	// User is the user name; empty for an anonymous caller.
	User string
	// Path is the user's IAM path ("/" when empty).
	Path string
	// Identity is the identity policies that apply to the user (its own
	// and its groups'); nil for none.
	Identity *IdentityPolicies

	iam iam.Principal // built by NewPrincipal

	// local marks a user of the machine (LocalPrincipal), uid its user id.
	local bool
	uid   uint32
}

// LocalPrincipal returns the principal of the operating system's user
// uid, named name ("" names it "uid:<uid>"), acting on the store from
// this machine: a peer of the daemon's admin socket. No policy applies to
// it: Authorize allows it every action when uid is the user the daemon
// runs as, or root (whoever may reach the socket is an administrator of
// the store, as whoever may read its files is), and refuses it every
// action otherwise.
func LocalPrincipal(name string, uid uint32) Principal {
	if name == "" {
		name = "uid:" + strconv.FormatUint(uint64(uid), 10)
	}
	return Principal{User: name, local: true, uid: uid}
}

// Local reports whether p is a local user (LocalPrincipal), and its uid.
func (p Principal) Local() (uid uint32, ok bool) { return p.uid, p.local }

// localOperator reports whether uid may administer the store: it is the
// user this process runs as, or root.
func localOperator(uid uint32) bool { return uid == 0 || int64(uid) == int64(os.Getuid()) }

// describe names p for people: its ARN, "anonymous caller", or "local
// user NAME (uid N)".
func (p Principal) describe() string {
	switch {
	case p.local:
		return "local user " + p.User + " (uid " + strconv.FormatUint(uint64(p.uid), 10) + ")"
	case p.Anonymous():
		return "anonymous caller"
	}
	return p.ARN()
}

// NewPrincipal returns the principal of user name, with IAM path path
// ("" is "/"), in account, holding the identity policies identity (nil:
// none). An empty name is an anonymous caller.
func NewPrincipal(account, path, name string, identity *IdentityPolicies) (Principal, error) {
	p := Principal{Account: account, User: name, Path: path, Identity: identity}
	if name == "" {
		return p, nil
	}
	ip, err := iam.NewUser(account, path, name, UserID(account, name))
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	p.iam = ip
	return p, nil
}

// Anonymous reports whether p is an unauthenticated caller.
func (p Principal) Anonymous() bool { return p.User == "" }

// ARN is the principal's ARN, arn:aws:iam::<account>:user<path><name>,
// or "" for an anonymous caller and a local user, who have none.
func (p Principal) ARN() string {
	if p.User == "" || p.local {
		return ""
	}
	if p.iam.ARN != "" {
		return p.iam.ARN
	}
	path := p.Path
	if path == "" {
		path = "/"
	}
	return "arn:aws:iam::" + p.Account + ":user" + path + p.User
}

// UserID returns the unique ID (aws:userid) of user name in account: "AIDA"
// and 17 characters of a SHA-256 of both, so that it is stable across
// restarts and differs between names, as an IAM user's unique ID does.
func UserID(account, name string) string {
	sum := sha256.Sum256([]byte(account + "\x00" + name))
	return "AIDA" + base32.StdEncoding.EncodeToString(sum[:])[:17]
}

// iamPrincipal returns p as the evaluator knows it.
func (p *Principal) iamPrincipal() (iam.Principal, error) {
	if p.User == "" {
		return iam.Anonymous(), nil
	}
	if p.iam.ARN != "" {
		return p.iam, nil
	}
	return iam.NewUser(p.Account, p.Path, p.User, UserID(p.Account, p.User))
}

// IdentityPolicy is a parsed identity policy: an IAM policy document
// attached to users and groups (no Principal element).
type IdentityPolicy struct {
	p *iam.Policy
}

// ParseIdentityPolicy parses and validates an identity policy; name
// names it in decisions ("group/team-a/push"). Whatever Berth could not
// enforce exactly (an unknown action, condition operator or key, a
// malformed ARN) is refused with an error wrapping ErrInvalidArgument
// that names the statement and the field.
func ParseIdentityPolicy(name, text string) (*IdentityPolicy, error) {
	p, err := iam.Parse(iam.IdentityPolicy, name, text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return &IdentityPolicy{p: p}, nil
}

// Name is the name the policy was parsed with.
func (p *IdentityPolicy) Name() string { return p.p.Source() }

// IdentityPolicies is the set of identity policies that apply to one
// principal. Build it once per user (when identities are loaded), not
// per request.
type IdentityPolicies struct {
	list []*iam.Policy
}

// NewIdentityPolicies returns the set of ps (nil entries skipped).
func NewIdentityPolicies(ps ...*IdentityPolicy) *IdentityPolicies {
	s := &IdentityPolicies{}
	for _, p := range ps {
		if p != nil {
			s.list = append(s.list, p.p)
		}
	}
	return s
}

// policies returns the set's policies (none for a nil set).
func (s *IdentityPolicies) policies() []*iam.Policy {
	if s == nil {
		return nil
	}
	return s.list
}

// AccessRequest is one question for Authorize: may Principal perform
// Action on the resource (a repository, a key, or the registry as a
// whole), in the request's context?
type AccessRequest struct {
	Principal Principal
	// Action is an IAM action: "ecr:BatchGetImage", "kms:CreateGrant",
	// or one of Berth's own "berth:" actions (the admin API).
	Action string
	// Repository is the repository acted on; empty for a registry-level
	// action (templates, pull-through cache rules, the registry policy,
	// login tokens, the admin API), whose resource is "*" as in IAM.
	Repository string
	// Key is the key-encryption key acted on by a "kms:" action; its
	// resource is arn:aws:kms:<region>:<account>:key/<name>.
	Key string
	// Secret is the stored secret acted on by a "secretsmanager:" action;
	// its resource is arn:aws:secretsmanager:<region>:<account>:secret:<name>.
	// Secrets have no resource policy: the caller's identity policies
	// decide, and the registry policy does not apply.
	Secret string
	// SourceIP is the caller's address (aws:SourceIp); the zero Addr
	// leaves the key absent.
	SourceIP netip.Addr
	// SecureTransport reports that the request came over TLS
	// (aws:SecureTransport).
	SecureTransport bool
	// RequestTags are the resource tags the request sets
	// (aws:RequestTag/<key>, aws:TagKeys): CreateRepository, TagResource,
	// a repository created on push with a template's tags.
	RequestTags map[string]string
	// RepositoryPolicy, when not nil, is the repository policy to decide
	// with in place of Repository's stored one ("" for none): what the
	// decision would be under a policy about to be set (ECR's
	// SetRepositoryPolicy refuses, without force, a policy that would
	// lock its caller out). A policy that does not parse fails Authorize
	// with ErrInvalidArgument.
	RepositoryPolicy *string
}

// Outcome is what a decision says.
type Outcome uint8

// The outcomes of Authorize. The zero Outcome is ImplicitDeny.
const (
	// ImplicitDeny: no statement allows.
	ImplicitDeny Outcome = iota
	// ExplicitDeny: a Deny statement matches; nothing overrides it.
	ExplicitDeny
	// Allow: a statement allows and none denies.
	Allow
)

// String is "Allow", "ExplicitDeny" or "ImplicitDeny".
func (o Outcome) String() string {
	switch o {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "ImplicitDeny"
}

// Decision is Authorize's answer.
type Decision struct {
	// Outcome is Allow, ExplicitDeny or ImplicitDeny.
	Outcome Outcome
	// Resource is the resource's ARN ("*" for registry-level actions).
	Resource string

	d      iam.Decision
	reason string // set instead of d for decisions the evaluator did not make
}

// Allowed reports whether the request is allowed.
func (d Decision) Allowed() bool { return d.Outcome == Allow }

// Reason names the deciding statement, as the audit log records it:
// `explicitly denied by repository policy "repository/app" statement 1
// (Sid "NoPush")`, `allowed by identity policy "admin" statement 0`,
// `implicitly denied: no statement allows`.
func (d Decision) Reason() string {
	if d.reason != "" {
		return d.reason
	}
	return d.d.String()
}

// Err returns nil for an allowed request, and otherwise an
// *AccessDeniedError (ErrAccessDenied) that names who, what, where and
// why, for the caller.
func (d Decision) Err(req *AccessRequest) error {
	if d.Allowed() {
		return nil
	}
	e := &AccessDeniedError{Principal: req.Principal.describe(), Action: req.Action, Resource: d.Resource,
		Outcome: d.Outcome, Reason: d.Reason()}
	if d.Outcome == ExplicitDeny {
		e.DeniedBy = DeniedByResourcePolicy
		if d.d.Statement.Kind == iam.IdentityPolicy {
			e.DeniedBy = DeniedByIdentityPolicy
		}
	}
	return e
}

// The kinds of policy an explicit deny comes from
// (AccessDeniedError.DeniedBy), as AWS's access denied messages name
// them.
const (
	DeniedByIdentityPolicy = "identity-based"
	DeniedByResourcePolicy = "resource-based"
)

// AccessDeniedError is a refused request (Decision.Err): who may not do
// what on which resource, and why. It is ErrAccessDenied (errors.Is).
type AccessDeniedError struct {
	// Principal is the caller as a message names it: its ARN, "anonymous
	// caller", or the local user with its uid.
	Principal string
	// Action is the action refused; Resource the ARN it was asked on
	// ("*" for a registry-level action).
	Action, Resource string
	// Outcome is ExplicitDeny or ImplicitDeny.
	Outcome Outcome
	// DeniedBy is the kind of policy whose statement denied
	// (DeniedByIdentityPolicy, DeniedByResourcePolicy; a stored policy
	// that can no longer be enforced counts as a resource policy's deny);
	// "" for an implicit deny.
	DeniedBy string
	// Reason names the deciding statement (Decision.Reason).
	Reason string
}

// Error implements error.
func (e *AccessDeniedError) Error() string {
	return fmt.Sprintf("%s: %s may not %s on %s (%s)", ErrAccessDenied, e.Principal, e.Action, e.Resource, e.Reason)
}

// Unwrap returns ErrAccessDenied.
func (e *AccessDeniedError) Unwrap() error { return ErrAccessDenied }

// policyAdminActions stay open under a stored repository policy that
// cannot be enforced, so that it can be read and replaced.
var policyAdminActions = map[string]bool{
	"ecr:getrepositorypolicy":    true,
	"ecr:setrepositorypolicy":    true,
	"ecr:deleterepositorypolicy": true,
}

// registryPolicyAdminActions stay open under a stored registry policy
// that cannot be enforced.
var registryPolicyAdminActions = map[string]bool{
	"ecr:getregistrypolicy":    true,
	"ecr:putregistrypolicy":    true,
	"ecr:deleteregistrypolicy": true,
}

// Authorize decides req as AWS decides an IAM request: an explicit Deny
// in any policy that applies (the principal's identity policies, the
// repository's policy, the registry policy, a key's policy) wins;
// otherwise an Allow in an identity policy or one in the resource's
// policy that names the caller allows; otherwise the request is denied.
// An anonymous caller is allowed only by a resource policy's Allow for
// "*". The error is for a store that cannot answer; a refusal is a
// Decision whose Err names it.
func (e *Engine) Authorize(ctx context.Context, req *AccessRequest) (Decision, error) {
	if uid, ok := req.Principal.Local(); ok {
		return e.authorizeLocal(req, uid), nil
	}
	who, err := req.Principal.iamPrincipal()
	if err != nil {
		return Decision{Resource: "*", reason: "implicitly denied: " + err.Error()}, nil
	}
	ir := iam.Request{
		Principal:       who,
		Action:          req.Action,
		Resource:        "*",
		SourceIP:        req.SourceIP,
		SecureTransport: req.SecureTransport,
		Clock:           e.opts.Clock, // read only by a condition on the time
	}
	var resource [2]*iam.Policy
	ctxTags := accessContext{request: req.RequestTags}
	// A decision on a repository that exists, under its stored policy and
	// without tags set by the request, may be cached (decisions.go): the
	// registry-wide state it is decided under is read first, so that a
	// change of it after this point leaves the decision uncached.
	var (
		cacheable bool
		key       decisionKey
		regNow    = e.registryPolicy.Load()
		setNow    = e.accountSettings.Load()
	)
	switch {
	case (req.Repository != "") && (req.Key != "" || req.Secret != "") || req.Key != "" && req.Secret != "":
		return Decision{Resource: "*", reason: "implicitly denied: a request names one resource"}, nil
	case req.Repository != "":
		pe, err := e.repositoryAccess(req.Repository)
		if err != nil {
			return Decision{}, err
		}
		ir.Resource = pe.arn
		if req.RepositoryPolicy != nil {
			pe = &repoAccess{arn: pe.arn, tags: pe.tags}
			if *req.RepositoryPolicy != "" {
				if pe.policy, err = parseRepositoryPolicy(req.Repository, *req.RepositoryPolicy); err != nil {
					return Decision{}, fmt.Errorf("%w: policyText: %w", ErrInvalidArgument, err)
				}
			}
		}
		if pe.err != nil {
			if policyAdminActions[strings.ToLower(req.Action)] {
				resource[0] = nil // the policy can still be read and replaced
			} else {
				return Decision{Outcome: ExplicitDeny, Resource: pe.arn,
					reason: "explicitly denied: " + pe.err.Error() + "; replace it with SetRepositoryPolicy"}, nil
			}
		} else {
			resource[0] = pe.policy
		}
		ctxTags.resource = pe.tags
		if cacheable = pe.cached && req.RepositoryPolicy == nil && len(req.RequestTags) == 0; cacheable {
			key = decisionKeyOf(req, pe)
			if d, ok := e.decisions.load(&key, regNow, setNow, e.opts.Clock); ok {
				return d, nil
			}
		}
	case req.Key != "":
		ir.Resource = iam.KeyARN(e.opts.Region, e.opts.Account, req.Key)
		resource[0] = e.keyPolicy()
	case req.Secret != "":
		ir.Resource = iam.SecretARN(e.opts.Region, e.opts.Account, req.Secret)
	}
	rp, err := e.loadRegistryPolicy()
	if err != nil {
		return Decision{}, err
	}
	if rp.err != nil && !registryPolicyAdminActions[strings.ToLower(req.Action)] {
		// A stored registry policy that a later Berth cannot enforce
		// refuses everything but replacing it.
		return Decision{Outcome: ExplicitDeny, Resource: ir.Resource,
			reason: "explicitly denied: the stored registry policy cannot be enforced: " + rp.err.Error() + "; replace it with PutRegistryPolicy"}, nil
	}
	if req.Key == "" && req.Secret == "" {
		applies, err := e.registryPolicyApplies(req.Action)
		if err != nil {
			return Decision{}, err
		}
		if applies {
			resource[1] = rp.policy
		}
	}
	if ctxTags.resource != nil || ctxTags.request != nil {
		ir.Context = ctxTags
	}
	d, span := iam.EvaluateTimed(&ir, req.Principal.Identity.policies(), resource[:])
	out := Decision{Resource: ir.Resource, d: d}
	switch d.Outcome {
	case iam.Allow:
		out.Outcome = Allow
	case iam.ExplicitDeny:
		out.Outcome = ExplicitDeny
	}
	// Cached only when decided under the registry policy and settings
	// read before the decision, unchanged since: each change stores a new
	// pointer, never an earlier one again, so every read in between saw
	// these same ones.
	if cacheable && rp == regNow && setNow != nil && e.accountSettings.Load() == setNow {
		e.decisions.store(&key, regNow, setNow, span, out)
	}
	return out, nil
}

// authorizeLocal decides the request of a local user (LocalPrincipal):
// every action for the daemon's own user and root, none for another
// user; no policy is evaluated.
func (e *Engine) authorizeLocal(req *AccessRequest, uid uint32) Decision {
	resource := "*"
	switch {
	case req.Repository != "" && req.Key != "":
		return Decision{Resource: "*", reason: "implicitly denied: a request names one resource"}
	case req.Repository != "":
		resource = e.RepositoryARN(req.Repository)
	case req.Key != "":
		resource = e.KeyARN(req.Key)
	}
	who := req.Principal.describe()
	if !localOperator(uid) {
		return Decision{Outcome: ImplicitDeny, Resource: resource,
			reason: fmt.Sprintf("implicitly denied: %s is neither the user the daemon runs as (uid %d) nor root", who, os.Getuid())}
	}
	return Decision{Outcome: Allow, Resource: resource,
		reason: "allowed: " + who + " through the daemon's admin socket, whose users administer the store (no policy is evaluated)"}
}

// accessContext gives the evaluator a request's tags and its
// repository's, when a condition asks for them.
type accessContext struct {
	resource []ResourceTag
	request  map[string]string
}

var _ iam.Context = accessContext{}

// ResourceTag implements iam.Context (tag keys compare case-insensitively).
func (c accessContext) ResourceTag(key string) (string, bool) {
	for _, t := range c.resource {
		if strings.EqualFold(t.Key, key) {
			return t.Value, true
		}
	}
	return "", false
}

// RequestTag implements iam.Context.
func (c accessContext) RequestTag(key string) (string, bool) {
	for k, v := range c.request {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// RequestTagKeys implements iam.Context.
func (c accessContext) RequestTagKeys() []string {
	if len(c.request) == 0 {
		return nil
	}
	keys := make([]string, 0, len(c.request))
	for k := range c.request {
		keys = append(keys, k)
	}
	return keys
}

// keyPolicy is the policy of every key-encryption key: KMS's default
// key policy, which lets the account's identity policies decide key use
// ("Enable IAM User Permissions").
func (e *Engine) keyPolicy() *iam.Policy {
	e.keyPolicyOnce.Do(func() {
		text := `{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow",` +
			`"Principal":{"AWS":"arn:aws:iam::` + e.opts.Account + `:root"},"Action":"kms:*","Resource":"*"}]}`
		p, err := iam.Parse(iam.KeyPolicy, "default key policy", text)
		if err != nil {
			panic("engine: the default key policy does not parse: " + err.Error()) // a programming error
		}
		e.defaultKeyPolicy = p
	})
	return e.defaultKeyPolicy
}
