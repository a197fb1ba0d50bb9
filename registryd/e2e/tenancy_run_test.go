package e2e

// The hostile-tenant suite's rows and how they run: an attempt that must
// be refused (the exact answer, the store unchanged, the audit record),
// and a grant that must work (checked with the client the request needs,
// and in the store).

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tnAnswer is what a client got: an HTTP status with an OCI error code
// (OCI and admin API), or an AWS error code (ECR API; Status 0). Msg is
// the error's message, Challenge the WWW-Authenticate header of a 401.
type tnAnswer struct {
	Status    int
	Code      string
	Msg       string
	Challenge string
}

// The answers a refusal expects.
var (
	// tnUnauthorized is the answer to a caller without acceptable
	// credentials: 401 with the Basic challenge, so clients log in.
	tnUnauthorized = tnAnswer{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Challenge: `Basic realm="berth"`}
	// tnDenied is the answer to an authenticated caller refused.
	tnDenied = tnAnswer{Status: http.StatusForbidden, Code: "DENIED"}
)

// tnAWS is an expected AWS error.
func tnAWS(code string) tnAnswer { return tnAnswer{Code: code} }

// tnAuditKind is what the audit log must hold of a refused attempt.
type tnAuditKind int

const (
	// tnAuditDenial: a denial (ExplicitDeny or ImplicitDeny) of the
	// attempt's request, with its principal and deciding statement.
	tnAuditDenial tnAuditKind = iota
	// tnAuditDecision: a decision of the request with its principal and
	// statement, whatever it was: the attempt was refused after
	// authorization (a policy that cannot be set, a mount that reads
	// nothing, a tag no cache fill may bring).
	tnAuditDecision
	// tnAuditNone: no record can exist, because authentication refused
	// the request (no principal to decide for) or no daemon was involved.
	tnAuditNone
)

// tnRefusal is one attempt that must be refused: who tries what, and the
// answer and audit record it must get.
type tnRefusal struct {
	who  string // the caller: a user, or "" for an anonymous caller
	what string
	try  func(f *tenancy) tnAnswer
	want tnAnswer
	// action is the action of the expected denial (tnAuditDenial), and
	// statement a part of its deciding statement, when the row names one.
	audit     tnAuditKind
	action    string
	statement string
	// oracle names rows that must get the same answer, names aside: a
	// refused caller learns nothing of what exists.
	oracle string
	// check, if set, checks more of the answer or the store.
	check func(t *testing.T, f *tenancy, got tnAnswer)
}

// tnOutcome is a refused attempt as it ran, for the audit check.
type tnOutcome struct {
	row tnRefusal
	got tnAnswer
	ids []string
}

// refuse runs rows: each answer must be the expected one and the store's
// fingerprint the same after as before.
func (f *tenancy) refuse(t *testing.T, rows []tnRefusal) {
	t.Helper()
	for _, r := range rows {
		if f.print == "" {
			f.print = f.fingerprint()
		}
		ok := t.Run(tnName(r.who, r.what), func(t *testing.T) {
			defer f.as(t)()
			f.log.start()
			got := r.try(f)
			ids := f.log.stop()
			f.outcomes = append(f.outcomes, tnOutcome{row: r, got: got, ids: ids})
			tnRequireAnswer(t, r.want, got)
			if (got.Code == "DENIED" || got.Code == "AccessDeniedException") && r.action != "" {
				// The refusal names who may not do what, and why (on the
				// ECR API in IAM's words).
				if got.Code == "AccessDeniedException" {
					assert.Contains(t, got.Msg, "User: "+tnARN(r.who)+" is not authorized to perform: "+r.action, "%+v", got)
				} else {
					assert.Contains(t, got.Msg, tnARN(r.who)+" may not "+r.action, "%+v", got)
				}
				if r.statement != "" {
					assert.Contains(t, got.Msg, r.statement, "%+v", got)
				}
			}
			if r.check != nil {
				r.check(t, f, got)
			}
			after := f.fingerprint()
			require.Equal(t, f.print, after, "the store changed")
		})
		if !ok {
			f.print = "" // take it again: the next row starts from what is
		}
	}
}

// as makes the fixture's helpers fail t (the running row's test) until
// the returned function restores the test before it.
func (f *tenancy) as(t *testing.T) (restore func()) {
	parent := f.t
	f.t = t
	return func() { f.t = parent }
}

// tnRequireAnswer checks got against want: the status (when want has
// one), the code, and the challenge of a 401.
func tnRequireAnswer(t *testing.T, want, got tnAnswer) {
	t.Helper()
	if want.Status != 0 {
		require.Equal(t, want.Status, got.Status, "%+v", got)
	}
	assert.Equal(t, want.Code, got.Code, "%+v", got)
	if want.Challenge != "" {
		assert.Equal(t, want.Challenge, got.Challenge, "%+v", got)
	}
	if want.Msg != "" {
		assert.Contains(t, got.Msg, want.Msg)
	}
}

// tnName is a subtest's name: who, then what.
func tnName(who, what string) string {
	if who == "" {
		who = "anonymous"
	}
	return who + ": " + what
}

// tnGrant is one request that must be allowed: who does what, checked
// with the real client the request needs and then in the store.
type tnGrant struct {
	who  string
	what string
	do   func(t *testing.T, f *tenancy)
}

// grant runs rows.
func (f *tenancy) grant(t *testing.T, rows []tnGrant) {
	t.Helper()
	for _, g := range rows {
		f.granted++
		t.Run(tnName(g.who, g.what), func(t *testing.T) {
			defer f.as(t)()
			g.do(t, f)
		})
	}
	f.print = "" // grants change the store
}

// ociAnswer sends a raw OCI or admin request as user and reads its
// answer.
func (f *tenancy) ociAnswer(user, method, path string, body []byte, hdr map[string]string) tnAnswer {
	status, h, b := f.do(user, method, path, body, hdr)
	return tnParseOCI(status, h, b)
}

// tnParseOCI reads an OCI error answer (a HEAD's has no body).
func tnParseOCI(status int, h http.Header, b []byte) tnAnswer {
	a := tnAnswer{Status: status}
	if status == http.StatusUnauthorized {
		a.Challenge = h.Get("WWW-Authenticate")
	}
	var e ociError
	if status >= 400 && len(b) > 0 && json.Unmarshal(b, &e) == nil && len(e.Errors) > 0 {
		a.Code, a.Msg = e.Errors[0].Code, e.Errors[0].Message
	}
	return a
}

// tnAWSAnswer reads the AWS error of an SDK call (the zero answer for
// none).
func tnAWSAnswer(err error) tnAnswer {
	if err == nil {
		return tnAnswer{}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return tnAnswer{Code: ae.ErrorCode(), Msg: ae.ErrorMessage()}
	}
	return tnAnswer{Code: "not an API error", Msg: err.Error()}
}

// tnRegistryAnswer reads the error go-containerregistry returns.
func tnRegistryAnswer(err error) tnAnswer {
	if err == nil {
		return tnAnswer{}
	}
	var te *transport.Error
	if !errors.As(err, &te) {
		return tnAnswer{Code: "not a registry error", Msg: err.Error()}
	}
	a := tnAnswer{Status: te.StatusCode}
	if len(te.Errors) > 0 {
		a.Code, a.Msg = string(te.Errors[0].Code), te.Errors[0].Message
	}
	if te.StatusCode == http.StatusUnauthorized && te.Request != nil && te.Request.Response != nil {
		a.Challenge = te.Request.Response.Header.Get("WWW-Authenticate")
	}
	return a
}

// tnNames are the names that oracle twins differ by: repositories,
// digests, tags.
var tnNames = regexp.MustCompile(`sha256:[0-9a-f]{64}|repository/[a-z0-9/_.-]+|[a-z0-9-]+/[a-z0-9/_.-]+`)

// checkOracles: the rows of one oracle got the same answer, the names
// they asked about aside.
func (f *tenancy) checkOracles(t *testing.T) {
	groups := map[string][]tnOutcome{}
	for _, o := range f.outcomes {
		if o.row.oracle != "" {
			groups[o.row.oracle] = append(groups[o.row.oracle], o)
		}
	}
	for name, g := range groups {
		require.GreaterOrEqual(t, len(g), 2, "oracle %s has no twin", name)
		first := g[0].got
		first.Msg = tnNames.ReplaceAllString(first.Msg, "NAME")
		for _, o := range g[1:] {
			got := o.got
			got.Msg = tnNames.ReplaceAllString(got.Msg, "NAME")
			assert.Equal(t, first, got, "oracle %s: %q and %q answer differently", name, g[0].row.what, o.row.what)
		}
	}
}

// tnAuditEvent is the part of an audit line (a CloudTrail event) the
// suite reads.
type tnAuditEvent struct {
	EventID      string `json:"eventID"`
	RequestID    string `json:"requestID"`
	EventSource  string `json:"eventSource"`
	EventName    string `json:"eventName"`
	UserIdentity struct {
		ARN string `json:"arn"`
	} `json:"userIdentity"`
	ErrorCode  string `json:"errorCode"`
	Additional struct {
		Decision  string `json:"decision"`
		Statement string `json:"statement"`
	} `json:"additionalEventData"`
}

// action is the event's action ("ecr:PutImage").
func (e tnAuditEvent) action() string {
	return strings.TrimSuffix(e.EventSource, ".amazonaws.com") + ":" + e.EventName
}

// checkAudit: every refused attempt that reached a decision is in the
// audit log with its principal and deciding statement, read through the
// admin API as the administrator.
func (f *tenancy) checkAudit(t *testing.T) {
	status, _, body := f.do("admin", http.MethodGet, "/admin/v1/audit?order=oldest&since="+f.started, nil, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	byRequest := map[string][]tnAuditEvent{}
	f.denials = map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var e tnAuditEvent
		require.NoError(t, json.Unmarshal([]byte(line), &e), line)
		byRequest[e.RequestID] = append(byRequest[e.RequestID], e)
		require.NotEqual(t, "Forged", e.EventName, "a caller's path or User-Agent made an audit line: %s", line)
		if e.Additional.Decision == "ExplicitDeny" || e.Additional.Decision == "ImplicitDeny" {
			f.denials[e.EventID] = true
		}
	}
	audited := 0
	for _, o := range f.outcomes {
		if o.row.audit == tnAuditNone {
			continue
		}
		audited++
		var found []tnAuditEvent
		for _, id := range o.ids {
			found = append(found, byRequest[id]...)
		}
		match := func(e tnAuditEvent) bool {
			if e.UserIdentity.ARN != tnARN(o.row.who) || e.Additional.Statement == "" {
				return false
			}
			if o.row.audit == tnAuditDecision {
				return true
			}
			if e.Additional.Decision != "ExplicitDeny" && e.Additional.Decision != "ImplicitDeny" {
				return false
			}
			if o.row.action != "" && e.action() != o.row.action {
				return false
			}
			return o.row.statement == "" || strings.Contains(e.Additional.Statement, o.row.statement)
		}
		ok := false
		for _, e := range found {
			if match(e) {
				ok = true
				break
			}
		}
		assert.True(t, ok, "%s: no audit record of the refusal (action %q, statement %q) among its requests' %d records: %+v",
			tnName(o.row.who, o.row.what), o.row.action, o.row.statement, len(found), found)
	}
	t.Logf("audit: %d refused attempts reached a decision and are in the audit log with principal and deciding statement; %d were refused by authentication or offline", audited, len(f.outcomes)-audited)
}

// ctx is the suite's context.
var tnCtx = context.Background()
