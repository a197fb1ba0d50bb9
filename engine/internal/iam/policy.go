package iam

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is the kind of a policy: what it is attached to, which decides
// the elements it may hold and its size limit.
type Kind uint8

// The kinds of policies.
const (
	// IdentityPolicy is attached to a user or a group: no Principal
	// (the principal is whoever it is attached to), Resource required.
	IdentityPolicy Kind = iota + 1
	// RepositoryPolicy is ECR's repository policy (SetRepositoryPolicy):
	// Principal required, ecr actions only; without Resource a statement
	// is about its repository.
	RepositoryPolicy
	// RegistryPolicy is ECR's registry policy (PutRegistryPolicy):
	// Principal required; ECR enforces only ecr:ReplicateImage,
	// ecr:BatchImportUpstreamImage and ecr:CreateRepository there and
	// refuses other actions ("ecr:*" and "*" aside).
	RegistryPolicy
	// KeyPolicy is a KMS key policy: Principal required, kms actions
	// only. As in KMS, identity policies grant key use only where the key
	// policy allows the principal or its account.
	KeyPolicy
)

// String names the kind as a decision's text does.
func (k Kind) String() string {
	switch k {
	case IdentityPolicy:
		return "identity policy"
	case RepositoryPolicy:
		return "repository policy"
	case RegistryPolicy:
		return "registry policy"
	case KeyPolicy:
		return "key policy"
	}
	return "policy"
}

// Size limits, as AWS sets them.
const (
	// MaxIdentityPolicySize is IAM's limit for a managed policy: 6,144
	// characters, white space not counted.
	MaxIdentityPolicySize = 6144
	// MaxRepositoryPolicySize is ECR's limit for a repository or
	// registry policy text: 10,240 characters.
	MaxRepositoryPolicySize = 10240
	// MaxKeyPolicySize is KMS's limit for a key policy: 32 KiB.
	MaxKeyPolicySize = 32768
)

// The versions of the policy language; only 2012-10-17 has policy
// variables (in 2008-10-17, "${aws:username}" is literal text).
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Policy is a parsed, validated policy: safe to share between
// goroutines and to evaluate any number of times.
type Policy struct {
	kind       Kind
	source     string
	version    string
	statements []statement
	// heads has each statement's effect and actions, side by side, so
	// that Evaluate passes over the statements whose actions do not match
	// without touching the rest of them.
	heads []stmtHead
}

// stmtHead is what Evaluate looks at first in a statement.
type stmtHead struct {
	known     actionBits // the known actions the Action or NotAction element names
	all       bool       // Action "*"
	notAction bool
	deny      bool
}

// actionMatches reports whether the statement's Action (or NotAction)
// element matches the request's action, when that is a known action.
func (h *stmtHead) actionMatches(id actionID) bool {
	return (h.all || h.known.has(id)) != h.notAction
}

// Kind returns the policy's kind.
func (p *Policy) Kind() Kind { return p.kind }

// Source returns the name given to Parse, which decisions quote.
func (p *Policy) Source() string { return p.source }

// Version returns the policy's Version element.
func (p *Policy) Version() string { return p.version }

// Len returns the number of statements.
func (p *Policy) Len() int { return len(p.statements) }

// effect is a statement's Effect.
type effect uint8

const (
	effectAllow effect = iota
	effectDeny
)

// statement is a parsed statement.
type statement struct {
	sid    string
	effect effect
	// principals is the Principal or NotPrincipal element of a resource
	// policy; hasPrincipal is false in identity policies.
	principals   principalSet
	hasPrincipal bool
	notPrincipal bool
	actions      actionSet
	notAction    bool
	// resources is nil in a resource policy's statement without Resource:
	// the statement is about the policy's own resource.
	resources   []arnPattern
	notResource bool
	conditions  []condition
}

// Parse parses and validates a policy document of the given kind.
// source names the policy in decisions and errors ("user/alice/ci",
// "repository/team/app"). Whatever Berth could not enforce exactly as AWS
// would is refused with a *PolicyError, which wraps ErrInvalid and a more
// precise sentinel.
func Parse(kind Kind, source, text string) (*Policy, error) {
	p := &Policy{kind: kind, source: source}
	fail := func(stmt int, sid string, err error) (*Policy, error) {
		var fe *fieldError
		if errors.As(err, &fe) {
			return nil, &PolicyError{Policy: source, Statement: stmt, Sid: sid, Field: fe.field, Err: fe.err, Detail: fe.detail}
		}
		return nil, &PolicyError{Policy: source, Statement: stmt, Sid: sid, Err: ErrSyntax, Detail: err.Error()}
	}
	if kind < IdentityPolicy || kind > KeyPolicy {
		return fail(-1, "", errorf(ErrSyntax, "", "unknown kind of policy %d", kind))
	}
	if err := checkText(kind, text); err != nil {
		return fail(-1, "", err)
	}
	doc, err := parseJSON(text)
	if err != nil {
		return fail(-1, "", errorf(ErrSyntax, "", "not a JSON policy: %v", err))
	}
	var stmts *jvalue
	for i := range doc.members {
		m := &doc.members[i]
		switch m.key {
		case "Version":
			if m.val.kind != jString || (m.val.str != Version2012 && m.val.str != Version2008) {
				return fail(-1, "", errorf(ErrSyntax, "Version", "must be \"2012-10-17\" or \"2008-10-17\""))
			}
			p.version = m.val.str
		case "Id":
			if kind == IdentityPolicy {
				return fail(-1, "", errorf(ErrSyntax, "Id", "an identity policy has no Id element (IAM grammar)"))
			}
			if m.val.kind != jString {
				return fail(-1, "", errorf(ErrSyntax, "Id", "must be a string"))
			}
		case "Statement":
			stmts = &m.val
		default:
			return fail(-1, "", errorf(ErrSyntax, m.key, "unknown element (a policy has Version, Id and Statement)"))
		}
	}
	if p.version == "" {
		return fail(-1, "", errorf(ErrSyntax, "Version", "missing: give \"2012-10-17\""))
	}
	if stmts == nil {
		return fail(-1, "", errorf(ErrSyntax, "Statement", "missing"))
	}
	var list []jvalue
	switch stmts.kind {
	case jObject:
		list = []jvalue{*stmts}
	case jArray:
		list = stmts.elems
	}
	if len(list) == 0 {
		return fail(-1, "", errorf(ErrSyntax, "Statement", "must be a statement or a non-empty list of statements"))
	}
	sids := map[string]bool{}
	for i := range list {
		st, err := parseStatement(kind, p.version == Version2012, &list[i])
		if err != nil {
			return fail(i, st.sid, err)
		}
		// ECR takes a repository policy whose statements repeat a Sid
		// (the audit log tells them apart by their index); IAM wants
		// them unique elsewhere.
		if st.sid != "" && kind != RepositoryPolicy {
			if sids[st.sid] {
				return fail(i, st.sid, errorf(ErrSyntax, "Sid", "given to two statements (a Sid is unique within a policy)"))
			}
			sids[st.sid] = true
		}
		p.statements = append(p.statements, st)
		p.heads = append(p.heads, stmtHead{known: st.actions.known, all: st.actions.all, notAction: st.notAction, deny: st.effect == effectDeny})
	}
	return p, nil
}

// checkText checks the document's size and characters before parsing.
func checkText(kind Kind, text string) error {
	if !utf8.ValidString(text) {
		return errorf(ErrSyntax, "", "the text is not UTF-8")
	}
	switch kind {
	case IdentityPolicy:
		// IAM counts characters without white space, and takes only
		// tab, LF, CR and U+0020 to U+00FF.
		n := 0
		for _, c := range text {
			if c != '\t' && c != '\n' && c != '\r' && (c < 0x20 || c > 0xff) {
				return errorf(ErrSyntax, "", "character %U: an identity policy holds tab, LF, CR and U+0020 to U+00FF only", c)
			}
			if !unicode.IsSpace(c) {
				n++
			}
		}
		if n > MaxIdentityPolicySize {
			return errorf(ErrTooLarge, "", "%d characters without white space, at most %d", n, MaxIdentityPolicySize)
		}
	case RepositoryPolicy, RegistryPolicy:
		if n := utf8.RuneCountInString(text); n > MaxRepositoryPolicySize {
			return errorf(ErrTooLarge, "", "%d characters, at most %d", n, MaxRepositoryPolicySize)
		}
	case KeyPolicy:
		if len(text) > MaxKeyPolicySize {
			return errorf(ErrTooLarge, "", "%d bytes, at most %d", len(text), MaxKeyPolicySize)
		}
	}
	return nil
}

// registryActions are the actions ECR enforces in a registry policy.
var registryActions = func() actionBits {
	var b actionBits
	for _, a := range []string{"ecr:ReplicateImage", "ecr:BatchImportUpstreamImage", "ecr:CreateRepository"} {
		b.add(actions.byName[a])
	}
	return b
}()

// parseStatement reads one statement of a policy of the given kind.
func parseStatement(kind Kind, vars bool, v *jvalue) (statement, error) {
	var st statement
	if v.kind != jObject {
		return st, errorf(ErrSyntax, "", "a statement is a JSON object")
	}
	if sid, ok := v.get("Sid"); ok {
		if sid.kind != jString {
			return st, errorf(ErrSyntax, "Sid", "must be a string")
		}
		st.sid = sid.str
		if err := checkSid(kind, st.sid); err != nil {
			return st, err
		}
	}
	for _, m := range v.members {
		switch m.key {
		case "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition":
		default:
			return st, errorf(ErrSyntax, m.key, "unknown element (a statement has Sid, Effect, Principal or NotPrincipal, Action or NotAction, Resource or NotResource, Condition)")
		}
	}
	eff, ok := v.get("Effect")
	switch {
	case !ok:
		return st, errorf(ErrSyntax, "Effect", "missing")
	case eff.kind == jString && eff.str == "Allow":
		st.effect = effectAllow
	case eff.kind == jString && eff.str == "Deny":
		st.effect = effectDeny
	default:
		return st, errorf(ErrSyntax, "Effect", "must be \"Allow\" or \"Deny\"")
	}

	if err := st.parsePrincipal(kind, v); err != nil {
		return st, err
	}
	if err := st.parseAction(kind, v); err != nil {
		return st, err
	}
	if err := st.parseResource(kind, v, vars); err != nil {
		return st, err
	}
	if c, ok := v.get("Condition"); ok {
		var err error
		if st.conditions, err = parseConditions(c, vars); err != nil {
			return st, err
		}
	}
	return st, nil
}

// checkSid: IAM allows A-Z, a-z and 0-9 in an identity policy's Sid;
// resource policies (ECR's among them) allow more, such as spaces.
func checkSid(kind Kind, sid string) error {
	for _, c := range sid {
		if kind == IdentityPolicy && !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return errorf(ErrSyntax, "Sid", "%s: an identity policy's Sid holds only A-Z, a-z and 0-9", quote(sid))
		}
		if unicode.IsControl(c) {
			return errorf(ErrSyntax, "Sid", "%s holds a control character", quote(sid))
		}
	}
	return nil
}

func (st *statement) parsePrincipal(kind Kind, v *jvalue) error {
	pr, hasP := v.get("Principal")
	npr, hasNP := v.get("NotPrincipal")
	if kind == IdentityPolicy {
		if hasP || hasNP {
			return errorf(ErrSyntax, "Principal", "an identity policy names no principal: it applies to whom it is attached to")
		}
		return nil
	}
	switch {
	case hasP && hasNP:
		return errorf(ErrSyntax, "Principal", "a statement has Principal or NotPrincipal, not both")
	case !hasP && !hasNP:
		return errorf(ErrSyntax, "Principal", "required in a %s", kind)
	}
	st.hasPrincipal = true
	if hasP {
		var err error
		st.principals, err = parsePrincipal("Principal", pr)
		return err
	}
	st.notPrincipal = true
	if st.effect != effectDeny {
		// IAM: "Most resource-based policy types do not allow the use of
		// NotPrincipal with "Effect": "Allow"": it grants to everyone
		// else, anonymous callers included.
		return errorf(ErrUnsupported, "NotPrincipal", "only with \"Effect\": \"Deny\"; to allow everyone but some, allow \"*\" and deny those")
	}
	var err error
	if st.principals, err = parsePrincipal("NotPrincipal", npr); err != nil {
		return err
	}
	s := &st.principals
	if s.any {
		return errorf(ErrSyntax, "NotPrincipal", "\"*\" would leave the statement applying to no one")
	}
	// IAM: "When you use NotPrincipal with Deny, you must also specify
	// the account ARN of the not-denied principal. Otherwise, the policy
	// might deny access to the entire account containing the principal."
	// Berth requires it, so that the statement means one thing; and an
	// account listed without any of its users would exempt no one (Berth
	// has no root user).
	for _, u := range s.users {
		parts, _ := splitARN(u)
		if !contains(s.accounts, parts[arnAccount]) {
			return errorf(ErrSyntax, "NotPrincipal", "%s is listed without its account: list arn:aws:iam::%s:root too, as AWS asks", quote(u), parts[arnAccount])
		}
	}
	for _, a := range s.accounts {
		found := false
		for _, u := range s.users {
			if parts, _ := splitARN(u); parts[arnAccount] == a {
				found = true
			}
		}
		if !found {
			return errorf(ErrUnsupported, "NotPrincipal", "account %s is listed without any of its users: it would exempt only the account's root user, which Berth does not have", a)
		}
	}
	return nil
}

func (st *statement) parseAction(kind Kind, v *jvalue) error {
	act, hasA := v.get("Action")
	nact, hasNA := v.get("NotAction")
	field, val := "Action", act
	switch {
	case hasA && hasNA:
		return errorf(ErrSyntax, "Action", "a statement has Action or NotAction, not both")
	case !hasA && !hasNA:
		return errorf(ErrSyntax, "Action", "missing (Action or NotAction)")
	case hasNA:
		field, val, st.notAction = "NotAction", nact, true
	}
	list, err := val.strings(field)
	if err != nil {
		return err
	}
	if st.actions, err = parseActions(field, list); err != nil {
		return err
	}
	if st.notAction && st.actions.all {
		return errorf(ErrSyntax, field, "\"*\" would leave the statement matching no action")
	}
	if st.actions.all {
		return nil
	}
	switch kind {
	case RepositoryPolicy:
		if !st.actions.onlyServices("ecr") {
			return errorf(ErrUnknownAction, field, "a repository policy names ecr actions only")
		}
	case KeyPolicy:
		if !st.actions.onlyServices("kms") {
			return errorf(ErrUnknownAction, field, "a key policy names kms actions only")
		}
	case RegistryPolicy:
		ecrAll := actions.service["ecr"]
		if st.notAction || !st.actions.onlyServices("ecr") || (st.actions.known != ecrAll && !st.actions.known.subsetOf(&registryActions)) {
			return errorf(ErrUnknownAction, field, "a registry policy names ecr:ReplicateImage, ecr:BatchImportUpstreamImage, ecr:CreateRepository (or ecr:*) only, as ECR enforces")
		}
	}
	return nil
}

func (st *statement) parseResource(kind Kind, v *jvalue, vars bool) error {
	res, hasR := v.get("Resource")
	nres, hasNR := v.get("NotResource")
	field, val := "Resource", res
	switch {
	case hasR && hasNR:
		return errorf(ErrSyntax, "Resource", "a statement has Resource or NotResource, not both")
	case !hasR && !hasNR:
		if kind == IdentityPolicy {
			return errorf(ErrSyntax, "Resource", "missing (Resource or NotResource; \"*\" for every resource)")
		}
		return nil // about the policy's own resource
	case hasNR:
		field, val, st.notResource = "NotResource", nres, true
	}
	list, err := val.strings(field)
	if err != nil {
		return err
	}
	st.resources = make([]arnPattern, 0, len(list))
	for _, r := range list {
		p, err := compileARN(field, r, vars, true)
		if err != nil {
			return err
		}
		if st.notResource && p.any {
			return errorf(ErrSyntax, field, "\"*\" would leave the statement matching no resource")
		}
		st.resources = append(st.resources, p)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// String describes the policy for logs.
func (p *Policy) String() string {
	return fmt.Sprintf("%s %s (%d statements)", p.kind, strings.TrimSpace(quote(p.source)), len(p.statements))
}
