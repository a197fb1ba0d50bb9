package authz

// Policy simulation: what the decision on a request would be, for
// `registryd iam simulate` and the admin API's /admin/v1/iam/simulate.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/berthstore/berth/engine"
)

// ErrSimulation reports a simulation that names no valid request.
var ErrSimulation = errors.New("authz: bad simulation")

// Simulation is one request to simulate: User performing Action on a
// repository, a key or (neither) the registry, in a context.
type Simulation struct {
	// User is the user name; "" simulates an anonymous caller.
	User string `json:"user"`
	// Action is an IAM action Berth knows ("ecr:PutImage", "kms:CreateGrant",
	// "berth:CollectGarbage").
	Action string `json:"action"`
	// Repository is the repository acted on, if any.
	Repository string `json:"repository,omitempty"`
	// Key is the key-encryption key acted on (kms: actions), if any.
	Key string `json:"key,omitempty"`
	// SourceIP is the caller's address (aws:SourceIp); empty: absent.
	SourceIP string `json:"sourceIp,omitempty"`
	// SecureTransport is aws:SecureTransport.
	SecureTransport bool `json:"secureTransport,omitempty"`
	// RequestTags are the tags the request sets (aws:RequestTag/<key>,
	// aws:TagKeys).
	RequestTags map[string]string `json:"requestTags,omitempty"`
}

// SimulationResult is a simulated decision.
type SimulationResult struct {
	// Principal is the principal's ARN, "anonymous" for an anonymous
	// caller.
	Principal string `json:"principal"`
	// Action is the action decided.
	Action string `json:"action"`
	// Resource is the resource's ARN ("*" for a registry-level action).
	Resource string `json:"resource"`
	// Decision is Allow, ExplicitDeny or ImplicitDeny.
	Decision string `json:"decision"`
	// Reason names the deciding statement (engine.Decision.Reason).
	Reason string `json:"reason"`
}

// Validate reports what makes s no request Berth could decide.
func (s Simulation) Validate() error {
	var errs []error
	switch {
	case s.Action == "":
		errs = append(errs, errors.New("an action is required (such as ecr:PutImage)"))
	case strings.ContainsAny(s.Action, "*?"):
		errs = append(errs, fmt.Errorf("action %q: a request performs one action, not a pattern", s.Action))
	default:
		if err := checkAction(s.Action); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Repository != "" && s.Key != "" {
		errs = append(errs, errors.New("a request acts on a repository or a key, not both"))
	}
	if s.Key != "" && !strings.HasPrefix(strings.ToLower(s.Action), "kms:") {
		errs = append(errs, fmt.Errorf("a key is acted on by kms: actions, not %s", s.Action))
	}
	if s.SourceIP != "" {
		if _, err := netip.ParseAddr(s.SourceIP); err != nil {
			errs = append(errs, fmt.Errorf("source IP %q is not an IP address", s.SourceIP))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrSimulation, errors.Join(errs...))
	}
	return nil
}

// checkAction refuses an action of a service Berth does not serve or one
// the engine does not know: the engine's own policy parser is the judge,
// so that a simulation never answers for an action no request performs.
func checkAction(action string) error {
	service, _, ok := strings.Cut(action, ":")
	switch strings.ToLower(service) {
	case "ecr", "kms", "secretsmanager", "berth":
	default:
		if !ok {
			return fmt.Errorf("action %q: want service:Action, such as ecr:PutImage", action)
		}
		return fmt.Errorf("action %q: Berth decides ecr:, kms:, secretsmanager: and berth: actions only", action)
	}
	name, _ := json.Marshal(action)
	_, err := engine.ParseIdentityPolicy("simulation",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":`+string(name)+`,"Resource":"*"}]}`)
	if err != nil {
		return fmt.Errorf("action %q is not one Berth knows: %w", action, err)
	}
	return nil
}

// Simulate returns the decision d makes on s performed by who (the
// principal of s.User, built by the caller from the identities to
// simulate with): the deciding statement included, as Authorize would
// decide it, before the registry's own overrides (an open registry
// allows what no policy explicitly denies; anonymous pulls).
func Simulate(ctx context.Context, d Decider, who engine.Principal, s Simulation) (SimulationResult, error) {
	if err := s.Validate(); err != nil {
		return SimulationResult{}, err
	}
	req := engine.AccessRequest{
		Principal:       who,
		Action:          s.Action,
		Repository:      s.Repository,
		Key:             s.Key,
		SecureTransport: s.SecureTransport,
		RequestTags:     s.RequestTags,
	}
	if s.SourceIP != "" {
		req.SourceIP, _ = netip.ParseAddr(s.SourceIP)
	}
	dec, err := d.Authorize(ctx, &req)
	if err != nil {
		return SimulationResult{}, err
	}
	name := "anonymous"
	if !who.Anonymous() {
		name = who.ARN()
	}
	return SimulationResult{Principal: name, Action: s.Action, Resource: dec.Resource,
		Decision: dec.Outcome.String(), Reason: dec.Reason()}, nil
}
