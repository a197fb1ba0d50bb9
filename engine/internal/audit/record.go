package audit

import (
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"time"
)

// Record is one audit event: an authorization decision (allowed or denied)
// for an authenticated request, or a change made through one of Berth's
// APIs. On disk it is one line of CloudTrail-shaped JSON (see event.go and
// docs/audit.md); the comment of each field names where it goes.
type Record struct {
	// Time is when the record was appended, in UTC with nanoseconds
	// (eventTime). Append sets it from Options.Now and replaces any value
	// given, so that the log's order is its time order; records read back
	// carry the stored time.
	Time time.Time
	// EventID is the record's own random UUID (eventID). Append sets a
	// fresh one when it is empty; a caller that needs the id beforehand
	// (to name it in a response) sets it with NewEventID.
	EventID string
	// RequestID is the id of the HTTP request or CLI command the record
	// belongs to (requestID); several records (one per action checked)
	// may share it.
	RequestID string

	// PrincipalARN is the caller's ARN, such as
	// "arn:aws:iam::123456789012:user/alice", or "*" for an anonymous
	// caller (userIdentity.arn).
	PrincipalARN string
	// Account is the caller's account id (userIdentity.accountId).
	Account string
	// UserName is the caller's user name (userIdentity.userName).
	UserName string
	// UserID is the caller's stable unique id, aws:userid, such as
	// "AIDA..." (userIdentity.principalId).
	UserID string
	// PrincipalType says what kind of caller it is (userIdentity.type):
	// PrincipalIAMUser, PrincipalAnonymous or PrincipalLocal.
	PrincipalType PrincipalType
	// SourceIP is the caller's address as the server saw it
	// (sourceIPAddress); empty for a local command.
	SourceIP string
	// UserAgent is the caller's User-Agent header (userAgent), cut at
	// MaxTextBytes.
	UserAgent string

	// Action is the action decided or carried out, with its service
	// prefix: "ecr:BatchGetImage", "kms:CreateKey",
	// "berth:CollectGarbage" (eventSource and eventName).
	Action string
	// Resource is the ARN the action was on, or "*" for a registry-level
	// action (resources[0].ARN; absent for "*").
	Resource string
	// Repository is the repository's name when the action is on one
	// (requestParameters.repositoryName).
	Repository string
	// Parameters are further request parameters worth keeping (such as
	// "imageTag", "imageDigest", "registryId"); they go into
	// requestParameters beside repositoryName, in key order. Optional.
	Parameters map[string]string

	// Decision is what authorization decided
	// (additionalEventData.decision).
	Decision Decision
	// Statement names the deciding statement, such as
	// `repository policy "repository/app" statement 1 (Sid "NoPush")`;
	// empty for an implicit deny or an open registry
	// (additionalEventData.statement).
	Statement string
	// Mutating is true when the record is of a change made to the store
	// (a push, a delete, a policy set, a collection run), as opposed to a
	// decision alone (additionalEventData.mutating).
	Mutating bool
	// ReadOnly is true when the action only reads (readOnly), as
	// CloudTrail marks Describe*, Get*, List* and BatchGetImage.
	ReadOnly bool
	// ErrorCode is the error the request ended with when it failed or
	// was refused (errorCode). Append sets "AccessDenied" for a denial
	// that names no code, as CloudTrail records refusals.
	ErrorCode string
	// ErrorMessage says why (errorMessage), cut at MaxTextBytes.
	ErrorMessage string

	// API is the interface the request came through
	// (additionalEventData.api).
	API API
	// Method is the HTTP method, for the OCI API (and any HTTP API)
	// (additionalEventData.method).
	Method string
	// Path is the HTTP path, for the OCI API, cut at MaxTextBytes
	// (additionalEventData.path).
	Path string
}

// PrincipalType is the kind of caller (userIdentity.type).
type PrincipalType string

// The kinds of caller. IAMUser is CloudTrail's own type; CloudTrail has
// none for the other two, which are Berth's.
const (
	// PrincipalIAMUser: a user authenticated by password, access key or
	// login token.
	PrincipalIAMUser PrincipalType = "IAMUser"
	// PrincipalAnonymous: a caller without credentials (an anonymous
	// pull), the principal "*".
	PrincipalAnonymous PrincipalType = "Anonymous"
	// PrincipalLocal: the operator's command line acting on a store no
	// daemon holds, or the engine's own scheduled work (user "system",
	// API APIEngine).
	PrincipalLocal PrincipalType = "Local"
)

// Valid reports whether t is one of the known principal types.
func (t PrincipalType) Valid() bool {
	switch t {
	case PrincipalIAMUser, PrincipalAnonymous, PrincipalLocal:
		return true
	}
	return false
}

// Decision is the outcome of authorization.
type Decision string

// The decisions, as the evaluator names them.
const (
	// Allow: a statement allowed the request (or the registry is open).
	Allow Decision = "Allow"
	// ExplicitDeny: a Deny statement matched.
	ExplicitDeny Decision = "ExplicitDeny"
	// ImplicitDeny: no statement allowed the request.
	ImplicitDeny Decision = "ImplicitDeny"
)

// Valid reports whether d is one of the three decisions.
func (d Decision) Valid() bool {
	switch d {
	case Allow, ExplicitDeny, ImplicitDeny:
		return true
	}
	return false
}

// Denied reports whether d refuses the request.
func (d Decision) Denied() bool { return d == ExplicitDeny || d == ImplicitDeny }

// API is the interface a request came through.
type API string

// The interfaces.
const (
	APIOCI     API = "oci"     // the OCI Distribution API (/v2/...)
	APIECR     API = "ecr"     // the ECR JSON API
	APIAdmin   API = "admin"   // the admin API (/admin/v1/...)
	APIConsole API = "console" // the web console
	APICLI     API = "cli"     // a registryd command acting on the store itself
	APIEngine  API = "engine"  // the engine's own work (schedules, events routed)
)

// Valid reports whether a is one of the known interfaces.
func (a API) Valid() bool {
	switch a {
	case APIOCI, APIECR, APIAdmin, APIConsole, APICLI, APIEngine:
		return true
	}
	return false
}

// Limits on what a record holds, so that one line stays well under
// maxLineBytes whatever a caller sends.
const (
	// MaxTextBytes is where Append cuts the fields a remote caller
	// chooses freely (UserAgent, Path, ErrorMessage, the values of
	// Parameters); the cut is marked with truncatedMark.
	MaxTextBytes = 4096
	// MaxParameters is the most Parameters a record may carry.
	MaxParameters = 16
	// maxLineBytes is the largest line Append writes and readers accept;
	// a longer line is corrupt.
	maxLineBytes = 1 << 20
)

// truncatedMark ends a field that Append cut at MaxTextBytes.
const truncatedMark = "...(truncated)"

// normalize checks r and fills what Append fills: the event id, the
// error code of a denial, the cuts of long free text. It does not set
// Time (the writer's lock does).
func (r *Record) normalize() error {
	if err := r.check(); err != nil {
		return err
	}
	if r.EventID == "" {
		r.EventID = NewEventID()
	}
	if r.Decision.Denied() && r.ErrorCode == "" {
		r.ErrorCode = "AccessDenied"
	}
	r.UserAgent = cut(r.UserAgent)
	r.Path = cut(r.Path)
	r.ErrorMessage = cut(r.ErrorMessage)
	long := false
	for k, v := range r.Parameters {
		if k == "" || len(k) > MaxTextBytes {
			return fmt.Errorf("%w: parameter name of %d bytes", ErrInvalidRecord, len(k))
		}
		long = long || len(v) > MaxTextBytes
	}
	if long {
		r.Parameters = maps.Clone(r.Parameters) // leave the caller's map as it is
		for k, v := range r.Parameters {
			r.Parameters[k] = cut(v)
		}
	}
	return nil
}

// check reports the first thing r lacks.
func (r *Record) check() error {
	switch {
	case !validAction(r.Action):
		return fmt.Errorf("%w: action %q is not service:Name", ErrInvalidRecord, r.Action)
	case !r.Decision.Valid():
		return fmt.Errorf("%w: decision %q", ErrInvalidRecord, r.Decision)
	case !r.PrincipalType.Valid():
		return fmt.Errorf("%w: principal type %q", ErrInvalidRecord, r.PrincipalType)
	case !r.API.Valid():
		return fmt.Errorf("%w: api %q", ErrInvalidRecord, r.API)
	case r.Resource != "*" && !strings.HasPrefix(r.Resource, "arn:"):
		return fmt.Errorf("%w: resource %q is neither an ARN nor \"*\"", ErrInvalidRecord, r.Resource)
	case len(r.Parameters) > MaxParameters:
		return fmt.Errorf("%w: %d parameters, at most %d", ErrInvalidRecord, len(r.Parameters), MaxParameters)
	}
	if _, ok := r.Parameters["repositoryName"]; ok {
		return fmt.Errorf("%w: parameter repositoryName: use Repository", ErrInvalidRecord)
	}
	return nil
}

// validAction reports whether s is "service:Name" with a service of
// lower-case letters, digits and dashes (it becomes a host name in
// eventSource) and a non-empty name.
func validAction(s string) bool {
	svc, name, ok := strings.Cut(s, ":")
	if !ok || svc == "" || name == "" {
		return false
	}
	for i := 0; i < len(svc); i++ {
		c := svc[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// cut shortens s to MaxTextBytes (on a rune boundary) and marks the cut.
func cut(s string) string {
	if len(s) <= MaxTextBytes {
		return s
	}
	n := MaxTextBytes - len(truncatedMark)
	for n > 0 && s[n]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		n--
	}
	return s[:n] + truncatedMark
}

// NewEventID returns a random (version 4) UUID in its canonical form.
//
// The 122 random bits come from math/rand/v2's global generator (ChaCha8
// per thread, seeded by the runtime from the operating system): an event
// id must be unique, not secret, and this costs no system call per record
// where crypto/rand costs one (getrandom(2)) on kernels without its vDSO.
func NewEventID() string {
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant RFC 9562
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}
