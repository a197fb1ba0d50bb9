package authz

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthstore/berth/engine"
)

// Decider is the store's access decision (engine.Authorize): the one
// place in Berth that decides; and its audit log, where each decision is
// recorded.
type Decider interface {
	Authorize(ctx context.Context, req *engine.AccessRequest) (engine.Decision, error)
	// AuthorizeEach decides req about each of repositories, as Authorize
	// decides each alone (a listing's questions).
	AuthorizeEach(ctx context.Context, req *engine.AccessRequest, repositories []string) ([]engine.Decision, error)
	Recorder
}

var _ Decider = (*engine.Engine)(nil)

// IAM is the Authorizer over the engine's decisions: identity policies,
// repository policies and the registry policy, evaluated as AWS does
// (docs/policies.md). On an open registry (authentication off) every
// caller is anonymous, and only an explicit Deny refuses; with anonymous
// pulls on, an anonymous caller's pull is allowed unless a policy
// explicitly denies it.
type IAM struct {
	decider       Decider
	open          bool
	anonymousPull bool
	statements    statementTexts
}

var _ Authorizer = (*IAM)(nil)

// IAMConfig configures an IAM Authorizer.
type IAMConfig struct {
	// Open is true when authentication is off: the registry is open to
	// anyone who reaches it, and only explicit Deny statements refuse.
	Open bool
	// AnonymousPull lets anonymous callers pull (the pull actions) from
	// every repository, unless a policy explicitly denies it.
	AnonymousPull bool
}

// NewIAM returns the Authorizer over d's decisions.
func NewIAM(d Decider, cfg IAMConfig) (*IAM, error) {
	if d == nil {
		return nil, errors.New("authz: no access decider")
	}
	return &IAM{decider: d, open: cfg.Open, anonymousPull: cfg.AnonymousPull}, nil
}

// pullActions are what an anonymous pull performs: the /v2/ version
// check (GetAuthorizationToken on the registry, where a client learns it
// may go on without credentials), then manifests, blobs and tags.
var pullActions = map[Action]bool{
	GetAuthorizationToken: true,
	BatchGetImage:         true, GetDownloadURLForLayer: true, BatchCheckLayerAvailability: true, ListImages: true,
}

// Authorize implements Authorizer. Every question is recorded in the
// audit log with its final decision (record); a record that cannot be
// written refuses the request.
func (a *IAM) Authorize(ctx context.Context, who engine.Principal, action Action, resource Resource) error {
	req := engine.AccessRequest{Principal: who, Action: string(action)}
	if repo, ok := resource.Repository(); ok {
		req.Repository = repo
	}
	if key, ok := resource.Key(); ok {
		req.Key = key
	}
	if secret, ok := resource.Secret(); ok {
		req.Secret = secret
	}
	withRequestContext(ctx, &req)
	if !action.Known() {
		return a.record(ctx, &req, "*", engine.AuditImplicitDeny, "implicitly denied: an action registryd does not know",
			fmt.Errorf("%w: %w %q", engine.ErrAccessDenied, ErrUnknownAction, action))
	}
	if !resource.valid() {
		return a.record(ctx, &req, "*", engine.AuditImplicitDeny, "implicitly denied: the question names no resource",
			fmt.Errorf("%w: %w: %s", engine.ErrAccessDenied, ErrNoResource, action))
	}
	d, err := a.decider.Authorize(ctx, &req)
	if err != nil {
		return err
	}
	decision, statement, refusal := a.verdict(&req, action, d)
	return a.record(ctx, &req, d.Resource, decision, statement, refusal)
}

// verdict is the seam's final word on the engine's decision d of req:
// the decision the audit log records (after the open registry and
// anonymous pull allowances), the deciding statement's text, and the
// refusal (nil when allowed).
func (a *IAM) verdict(req *engine.AccessRequest, action Action, d engine.Decision) (engine.AuditDecision, string, error) {
	_, local := req.Principal.Local()
	switch {
	case d.Allowed():
		return engine.AuditAllow, a.statements.text("", d), nil
	case d.Outcome == engine.ExplicitDeny:
	case local:
		// A local user the engine refused (not the daemon's user nor
		// root): neither an open registry nor anonymous pulls let it in.
	case a.open:
		return engine.AuditAllow, a.statements.text("allowed: the registry is open (authentication off) and no statement denies; ", d), nil
	case a.anonymousPull && req.Principal.Anonymous() && pullActions[action]:
		return engine.AuditAllow, a.statements.text("allowed: an anonymous pull (--anonymous-pull) that no statement denies; ", d), nil
	}
	return engine.AuditDecisionOf(d.Outcome), a.statements.text("", d), d.Err(req)
}
