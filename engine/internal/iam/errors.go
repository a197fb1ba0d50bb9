package iam

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every refusal of Parse: the policy cannot be
// stored, because Berth could not enforce it as written.
var ErrInvalid = errors.New("iam: invalid policy")

// The precise reasons for a refusal; each PolicyError wraps one of them
// and ErrInvalid.
var (
	// ErrSyntax: not JSON, a duplicate key, a missing or unknown element,
	// an element of the wrong JSON type.
	ErrSyntax = errors.New("iam: malformed policy")
	// ErrTooLarge: the document is over its kind's size limit.
	ErrTooLarge = errors.New("iam: policy too large")
	// ErrUnknownAction: an action (or pattern) that names no action of a
	// service whose actions Berth knows (ecr, kms), or an action a kind of
	// policy may not hold.
	ErrUnknownAction = errors.New("iam: unknown action")
	// ErrUnsupported: valid in AWS, but Berth cannot enforce it: an
	// unknown condition operator or key, a role, service or federated
	// principal, a principal pattern.
	ErrUnsupported = errors.New("iam: not enforceable by Berth")
	// ErrBadARN: a Resource, principal or ARN condition value that is not
	// a well-formed ARN.
	ErrBadARN = errors.New("iam: malformed ARN")
	// ErrBadValue: a condition value of the wrong form (not an IP range,
	// a date, a number, true or false).
	ErrBadValue = errors.New("iam: malformed condition value")
)

// PolicyError is a refusal of Parse. It names the policy, the statement
// (its index and Sid) and the field that cannot be enforced.
type PolicyError struct {
	// Policy is the source name given to Parse.
	Policy string
	// Statement is the statement's index, or -1 for the policy as a whole.
	Statement int
	// Sid is the statement's Sid, if it has one.
	Sid string
	// Field is the element in question, such as "Action",
	// "Condition.StringEquals.aws:username" or "Principal.AWS".
	Field string
	// Err is one of the sentinels (ErrSyntax, ErrUnknownAction, ...).
	Err error
	// Detail says what is wrong with the field.
	Detail string
}

// Error reads "iam: unknown action: policy "p", Statement[1] (Sid "x"),
// Action: ...".
func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	fmt.Fprintf(&b, ": policy %q", e.Policy)
	if e.Statement >= 0 {
		fmt.Fprintf(&b, ", Statement[%d]", e.Statement)
		if e.Sid != "" {
			fmt.Fprintf(&b, " (Sid %q)", e.Sid)
		}
	}
	if e.Field != "" {
		b.WriteString(", ")
		b.WriteString(e.Field)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap makes errors.Is true for ErrInvalid and for the precise sentinel.
func (e *PolicyError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// fieldError is a refusal inside a statement, before the statement's
// index and Sid are known; Parse turns it into a PolicyError.
type fieldError struct {
	field  string
	err    error
	detail string
}

func (e *fieldError) Error() string { return e.field + ": " + e.detail }

func errorf(sentinel error, field, format string, args ...any) *fieldError {
	return &fieldError{field: field, err: sentinel, detail: fmt.Sprintf(format, args...)}
}

// quote shortens s for an error message and quotes it.
func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return fmt.Sprintf("%q", s)
}
