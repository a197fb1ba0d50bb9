package authz

// A listing's access questions: the catalog, DescribeRepositories and
// the admin repository list show only what the caller may see, and a
// listing of thousands of repositories asks thousands of questions. They
// are recorded as CloudTrail records a DescribeRepositories call: one
// record for the listing, saying how many repositories it showed and how
// many it hid, and one record for each repository it hid (the refusal,
// its principal and its deciding statement); a repository shown has no
// record of its own (docs/audit.md).

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/request"
)

// Listing decides, for one listing request, which resources its caller
// may see, and records the listing. Make one per request (NewListing),
// ask Visible about each page of names, and write the listing's record
// with Record before the answer goes out. A Listing is not safe for
// concurrent use.
type Listing struct {
	az     Authorizer
	who    engine.Principal
	action Action
	hidden int
}

// NewListing returns the listing by who of action (ecr:DescribeRepositories)
// decided by az.
func NewListing(az Authorizer, who engine.Principal, action Action) *Listing {
	return &Listing{az: az, who: who, action: action}
}

// Hidden is how many resources the listing's questions refused so far.
func (l *Listing) Hidden() int { return l.hidden }

// Visible reports, for each of resources, whether the caller may see it:
// the decision Authorize would make of each. With an IAM Authorizer, the
// repositories are decided together (engine.AuthorizeEach: what the
// questions share evaluated once), and each refusal is recorded as its
// own denial, the refusals of one call written together (usually one
// write(2)) and not synced (a repository hidden from a listing is no
// attempt on it), before Visible returns; an allowed one is not recorded
// (Record counts it). Another Authorizer is asked each question. An error
// refuses the listing; the refusals decided before it are recorded all
// the same.
func (l *Listing) Visible(ctx context.Context, resources []Resource) ([]bool, error) {
	visible := make([]bool, len(resources))
	iam, ok := l.az.(*IAM)
	if !ok {
		for i, r := range resources {
			err := l.az.Authorize(ctx, l.who, l.action, r)
			switch {
			case err == nil:
				visible[i] = true
			case errors.Is(err, engine.ErrAccessDenied):
				l.hidden++
			default:
				return nil, err
			}
		}
		return visible, nil
	}
	info := request.InfoFrom(ctx)
	req := engine.AccessRequest{Principal: l.who, Action: string(l.action)}
	withRequestContext(ctx, &req)
	var denials []engine.AuditRecord
	deny := func(one *engine.AccessRequest, resource string, decision engine.AuditDecision, statement string, refusal error) {
		denials = append(denials, auditRecord(info, one, resource, decision, statement, refusal))
		l.hidden++
	}
	var failure error
	switch names, ok := repositoryNames(resources); {
	case !l.action.Known():
		for _, r := range resources {
			one := req
			one.Repository, _ = r.Repository()
			deny(&one, "*", engine.AuditImplicitDeny, "implicitly denied: an action registryd does not know",
				fmt.Errorf("%w: %w %q", engine.ErrAccessDenied, ErrUnknownAction, l.action))
		}
	case ok:
		ds, err := iam.decider.AuthorizeEach(ctx, &req, names)
		if err != nil {
			failure = err
			break
		}
		one := req
		for i, d := range ds {
			if d.Allowed() {
				// What verdict answers first, and nothing to record: a
				// listing of thousands skips building their texts.
				visible[i] = true
				continue
			}
			one.Repository = names[i]
			decision, statement, refusal := iam.verdict(&one, l.action, d)
			if refusal == nil {
				visible[i] = true
				continue
			}
			deny(&one, d.Resource, decision, statement, refusal)
		}
	default:
		// Not only repositories (none of today's listings): each
		// question alone, as Authorize decides it.
		for i, r := range resources {
			one := req
			one.Repository, _ = r.Repository()
			one.Key, _ = r.Key()
			one.Secret, _ = r.Secret()
			if !r.valid() {
				deny(&one, "*", engine.AuditImplicitDeny, "implicitly denied: the question names no resource",
					fmt.Errorf("%w: %w: %s", engine.ErrAccessDenied, ErrNoResource, l.action))
				continue
			}
			d, err := iam.decider.Authorize(ctx, &one)
			if err != nil {
				failure = err
				break
			}
			decision, statement, refusal := iam.verdict(&one, l.action, d)
			if refusal == nil {
				visible[i] = true
				continue
			}
			deny(&one, d.Resource, decision, statement, refusal)
		}
	}
	if len(denials) > 0 {
		if err := iam.decider.RecordAuditAll(ctx, denials, false); err != nil {
			return nil, fmt.Errorf("authz: recording a listing's %d refusals: %w", len(denials), err)
		}
	}
	if failure != nil {
		return nil, failure
	}
	return visible, nil
}

// repositoryNames returns the names of resources when every one is a
// repository with a name.
func repositoryNames(resources []Resource) ([]string, bool) {
	names := make([]string, len(resources))
	for i, r := range resources {
		name, ok := r.Repository()
		if !ok || name == "" {
			return nil, false
		}
		names[i] = name
	}
	return names, true
}

// Record writes the listing's own record, as CloudTrail records a
// DescribeRepositories call: the listing's action on "*", allowed, with
// requestParameters repositoriesShown (shown: what the answer holds) and
// repositoriesHidden (the refusals, each recorded on its own by Visible);
// written, not synced, as an allowed read is. With an Authorizer other
// than IAM (which keeps no log) it writes nothing. A record that cannot
// be written refuses the listing (engine.ErrAuditUnavailable).
func (l *Listing) Record(ctx context.Context, shown int) error {
	iam, ok := l.az.(*IAM)
	if !ok {
		return nil
	}
	req := engine.AccessRequest{Principal: l.who, Action: string(l.action)}
	statement := fmt.Sprintf("a listing: %d shown, %d hidden (each hidden one recorded as its own denial)", shown, l.hidden)
	rec := auditRecord(request.InfoFrom(ctx), &req, "*", engine.AuditAllow, statement, nil)
	rec.Parameters = map[string]string{
		"repositoriesShown":  strconv.Itoa(shown),
		"repositoriesHidden": strconv.Itoa(l.hidden),
	}
	if err := iam.decider.RecordAudit(ctx, rec, false); err != nil {
		return fmt.Errorf("authz: recording a listing: %w", err)
	}
	return nil
}
