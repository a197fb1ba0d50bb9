// Package policy parses ECR repository policies and evaluates them for a
// principal and an action: the resource policies that ECR attaches to a
// repository (SetRepositoryPolicy). It is pure (text and a request in, a
// decision out); the engine caches parsed policies and answers
// Engine.CheckRepositoryPolicy with it. docs/policies.md.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid reports a policy Berth cannot parse or cannot enforce.
var ErrInvalid = errors.New("policy: invalid repository policy")

// Effects of a statement.
const (
	EffectAllow = "Allow"
	EffectDeny  = "Deny"
)

// Decision is what a policy says of a request.
type Decision int

// The decisions: no statement applies, an Allow applies, a Deny applies
// (a Deny wins over any Allow).
const (
	NoMatch Decision = iota
	Allowed
	Denied
)

// String names the decision.
func (d Decision) String() string {
	switch d {
	case Allowed:
		return "allowed"
	case Denied:
		return "denied"
	}
	return "no match"
}

// Principal is who makes a request: an IAM-style user of an account, or
// an anonymous caller.
type Principal struct {
	// Account is the 12-digit account (the registry's ID).
	Account string
	// User is the user name; empty for an anonymous caller.
	User string
}

// ARN is the principal's ARN, arn:aws:iam::<account>:user/<name>, or ""
// for an anonymous caller.
func (p Principal) ARN() string {
	if p.User == "" {
		return ""
	}
	return "arn:aws:iam::" + p.Account + ":user/" + p.User
}

// Policy is a parsed repository policy.
type Policy struct {
	Version    string
	Statements []Statement
}

// Statement is one statement of a policy.
type Statement struct {
	Sid    string
	Effect string
	// Principals are "*", account IDs, account root ARNs
	// (arn:aws:iam::<account>:root) and user or role ARNs; service
	// principals are kept as "service:<name>" and match no caller.
	Principals []string
	// Actions are action patterns ("ecr:BatchGetImage", "ecr:Batch*",
	// "ecr:*", "*"), matched case-insensitively.
	Actions []string
}

// maxStatements bounds a policy (the text is at most 10,240 characters).
const maxStatements = 100

// Parse parses and checks a repository policy. It refuses what it could
// not enforce rather than ignore it: Condition, NotAction, NotPrincipal
// and NotResource blocks.
func Parse(text string) (*Policy, error) {
	var doc struct {
		Version   string          `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrInvalid, err)
	}
	switch doc.Version {
	case "2008-10-17", "2012-10-17":
	default:
		return nil, fmt.Errorf("%w: Version %q (want 2008-10-17 or 2012-10-17)", ErrInvalid, truncate(doc.Version))
	}
	raws, err := oneOrMany[json.RawMessage](doc.Statement)
	if err != nil || len(raws) == 0 {
		return nil, fmt.Errorf("%w: Statement must be a statement or a non-empty list of them", ErrInvalid)
	}
	if len(raws) > maxStatements {
		return nil, fmt.Errorf("%w: %d statements, at most %d", ErrInvalid, len(raws), maxStatements)
	}
	p := &Policy{Version: doc.Version}
	sids := map[string]bool{}
	for i, raw := range raws {
		st, err := parseStatement(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: Statement[%d]: %v", ErrInvalid, i, err)
		}
		if st.Sid != "" {
			if sids[st.Sid] {
				return nil, fmt.Errorf("%w: Statement[%d]: Sid %q given twice", ErrInvalid, i, st.Sid)
			}
			sids[st.Sid] = true
		}
		p.Statements = append(p.Statements, st)
	}
	return p, nil
}

// unsupported are the statement blocks Berth cannot evaluate.
var unsupported = []string{"Condition", "NotAction", "NotPrincipal", "NotResource"}

func parseStatement(raw json.RawMessage) (Statement, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Statement{}, fmt.Errorf("not a JSON object")
	}
	for _, k := range unsupported {
		if _, ok := fields[k]; ok {
			return Statement{}, fmt.Errorf("%s is not supported by Berth (it would not be enforced)", k)
		}
	}
	for k := range fields {
		switch k {
		case "Sid", "Effect", "Principal", "Action", "Resource":
		default:
			return Statement{}, fmt.Errorf("unknown element %q", truncate(k))
		}
	}
	var st Statement
	if v, ok := fields["Sid"]; ok && json.Unmarshal(v, &st.Sid) != nil {
		return Statement{}, fmt.Errorf("Sid must be a string")
	}
	if err := json.Unmarshal(fields["Effect"], &st.Effect); err != nil || (st.Effect != EffectAllow && st.Effect != EffectDeny) {
		return Statement{}, fmt.Errorf("Effect must be Allow or Deny")
	}
	var err error
	if st.Principals, err = parsePrincipal(fields["Principal"]); err != nil {
		return Statement{}, err
	}
	if st.Actions, err = oneOrMany[string](fields["Action"]); err != nil || len(st.Actions) == 0 {
		return Statement{}, fmt.Errorf("Action must be a string or a non-empty list of strings")
	}
	for _, a := range st.Actions {
		if a != "*" && !strings.Contains(a, ":") {
			return Statement{}, fmt.Errorf("Action %q is not service:action", truncate(a))
		}
	}
	return st, nil
}

// parsePrincipal reads "*", {"AWS": ...} and {"Service": ...}.
func parsePrincipal(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("Principal is required in a repository policy")
	}
	var star string
	if json.Unmarshal(raw, &star) == nil {
		if star != "*" {
			return nil, fmt.Errorf("Principal %q: a string principal must be \"*\"", truncate(star))
		}
		return []string{"*"}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) == 0 {
		return nil, fmt.Errorf("Principal must be \"*\" or an object such as {\"AWS\": [...]}")
	}
	var out []string
	for kind, v := range m {
		ids, err := oneOrMany[string](v)
		if err != nil || len(ids) == 0 {
			return nil, fmt.Errorf("Principal.%s must be a string or a non-empty list of strings", truncate(kind))
		}
		switch kind {
		case "AWS":
			out = append(out, ids...)
		case "Service", "Federated", "CanonicalUser":
			for _, id := range ids {
				out = append(out, strings.ToLower(kind)+":"+id)
			}
		default:
			return nil, fmt.Errorf("Principal kind %q (want AWS or Service)", truncate(kind))
		}
	}
	return out, nil
}

// oneOrMany decodes a JSON value that is one T or a list of T.
func oneOrMany[T any](raw json.RawMessage) ([]T, error) {
	if len(raw) == 0 {
		return nil, errors.New("missing")
	}
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		var many []T
		if err := json.Unmarshal(raw, &many); err != nil {
			return nil, err
		}
		return many, nil
	}
	var one T
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, err
	}
	return []T{one}, nil
}

// Evaluate says what the policy decides for principal doing action
// ("ecr:PutImage"): Denied if a Deny statement matches, else Allowed if
// an Allow statement matches, else NoMatch.
func (p *Policy) Evaluate(principal Principal, action string) Decision {
	if p == nil {
		return NoMatch
	}
	d := NoMatch
	for i := range p.Statements {
		st := &p.Statements[i]
		if !st.matchesPrincipal(principal) || !st.matchesAction(action) {
			continue
		}
		if st.Effect == EffectDeny {
			return Denied
		}
		d = Allowed
	}
	return d
}

// matchesPrincipal: "*" matches every caller, anonymous ones included;
// an account ID or root ARN matches the account's users; a user ARN its
// user.
func (st *Statement) matchesPrincipal(p Principal) bool {
	for _, id := range st.Principals {
		switch {
		case id == "*":
			return true
		case p.User == "":
		case id == p.Account || id == "arn:aws:iam::"+p.Account+":root" || id == p.ARN():
			return true
		}
	}
	return false
}

func (st *Statement) matchesAction(action string) bool {
	for _, pat := range st.Actions {
		if wildcardMatch(strings.ToLower(pat), strings.ToLower(action)) {
			return true
		}
	}
	return false
}

// wildcardMatch matches s against pattern, where * is any run of
// characters and ? any one.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func truncate(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
