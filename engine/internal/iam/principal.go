package iam

import (
	"fmt"
	"strings"
)

// Principal is who makes a request: a user of an account, or an
// anonymous caller (the zero Principal). Build one with NewUser once, when
// the caller is authenticated, not per request.
type Principal struct {
	// ARN is the user's ARN, arn:aws:iam::<account>:user<path><name>;
	// empty for an anonymous caller.
	ARN string
	// Account is the user's 12-digit account.
	Account string
	// UserName is the user's name (aws:username).
	UserName string
	// UserID is the user's unique ID (aws:userid), which AWS gives as
	// "AIDA..." and a re-created user does not share.
	UserID string
}

// NewUser returns the principal of user name, with IAM path path ("" is
// "/"), in account, whose unique ID is userID.
func NewUser(account, path, name, userID string) (Principal, error) {
	if path == "" {
		path = "/"
	}
	if !validAccount(account) {
		return Principal{}, fmt.Errorf("iam: account %s is not 12 digits", quote(account))
	}
	if !validUserPath(path) || !validUserName(name) {
		return Principal{}, fmt.Errorf("iam: user %s with path %s: a name is 1 to 64 of A-Z a-z 0-9 +=,.@_- and a path /.../", quote(name), quote(path))
	}
	if userID == "" {
		return Principal{}, fmt.Errorf("iam: user %s has no unique ID", quote(name))
	}
	return Principal{ARN: "arn:aws:iam::" + account + ":user" + path + name, Account: account, UserName: name, UserID: userID}, nil
}

// Anonymous returns the principal of an unauthenticated caller.
func Anonymous() Principal { return Principal{} }

// IsAnonymous reports whether p is an unauthenticated caller.
func (p Principal) IsAnonymous() bool { return p.ARN == "" }

// principalSet is a parsed Principal or NotPrincipal element. Berth's
// principals are users; so the set holds "*", accounts and user ARNs.
type principalSet struct {
	any      bool
	accounts []string
	users    []string // ARNs, compared exactly (IAM: "the user name part of the ARN is case sensitive")
}

// principalMatch says how a Principal element names a caller.
type principalMatch uint8

const (
	matchNone principalMatch = iota
	// matchDirect: "*" or the user's own ARN. Within an account such a
	// grant needs no identity policy (IAM: "resource-based policies that
	// grant permissions to an IAM user ARN ... are not limited by an
	// implicit deny in an identity-based policy").
	matchDirect
	// matchAccount: the user's account. This delegates to the account
	// (IAM: "This delegates authority to the account"): the user's
	// identity policies must allow as well.
	matchAccount
)

func (s *principalSet) match(p *Principal) principalMatch {
	if s.any {
		return matchDirect
	}
	if p.IsAnonymous() {
		return matchNone
	}
	for _, u := range s.users {
		if u == p.ARN {
			return matchDirect
		}
	}
	for _, a := range s.accounts {
		if a == p.Account {
			return matchAccount
		}
	}
	return matchNone
}

// excludes reports whether a NotPrincipal set leaves the caller out of
// its statement: the caller is a user it lists (Parse requires the user's
// account to be listed too, as AWS asks).
func (s *principalSet) excludes(p *Principal) bool {
	if p.IsAnonymous() {
		return false
	}
	for _, u := range s.users {
		if u == p.ARN {
			return true
		}
	}
	return false
}

// parsePrincipal reads a Principal or NotPrincipal element: "*" or
// {"AWS": ...}. What Berth cannot match is refused: roles, sessions,
// groups, services, federated and canonical users, unique IDs and any
// wildcard inside a principal (IAM: "You cannot use a wildcard to match
// part of a principal name or ARN").
func parsePrincipal(field string, v *jvalue) (principalSet, error) {
	var s principalSet
	if v.kind == jString {
		if v.str != "*" {
			return s, errorf(ErrSyntax, field, "a string principal is \"*\"; name users and accounts as {\"AWS\": [...]}, not %s", quote(v.str))
		}
		s.any = true
		return s, nil
	}
	if v.kind != jObject || len(v.members) == 0 {
		return s, errorf(ErrSyntax, field, "must be \"*\" or an object such as {\"AWS\": [...]}")
	}
	for _, m := range v.members {
		f := field + "." + m.key
		if m.key != "AWS" {
			switch m.key {
			case "Service", "Federated", "CanonicalUser":
				return s, errorf(ErrUnsupported, f, "Berth has no %s principals; name users and accounts under \"AWS\"", m.key)
			}
			return s, errorf(ErrSyntax, f, "unknown principal type (AWS, Service, Federated or CanonicalUser)")
		}
		ids, err := m.val.strings(f)
		if err != nil {
			return s, err
		}
		for _, id := range ids {
			if err := s.add(f, id); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}

func (s *principalSet) add(field, id string) error {
	switch {
	case id == "*":
		s.any = true
		return nil
	case validAccount(id):
		s.accounts = append(s.accounts, id)
		return nil
	case strings.ContainsAny(id, "*?"):
		return errorf(ErrUnsupported, field, "%s: a principal names one user or account; a wildcard may stand only alone (\"*\"); use a condition on aws:PrincipalArn for patterns", quote(id))
	case !strings.HasPrefix(id, "arn:"):
		return errorf(ErrUnsupported, field, "%s: a principal is \"*\", a 12-digit account or an ARN, not a bare name or unique ID", quote(id))
	}
	parts, ok := splitARN(id)
	if !ok || parts[arnPartition] == "" {
		return errorf(ErrBadARN, field, "%s is not an ARN", quote(id))
	}
	if parts[arnPartition] != "aws" || parts[arnService] != "iam" || parts[arnRegion] != "" {
		return errorf(ErrUnsupported, field, "%s: Berth's principals are arn:aws:iam::<account>:root and arn:aws:iam::<account>:user/<name>", quote(id))
	}
	if !validAccount(parts[arnAccount]) {
		return errorf(ErrBadARN, field, "%s: the account is 12 digits", quote(id))
	}
	res := parts[arnResource]
	switch {
	case res == "root":
		s.accounts = append(s.accounts, parts[arnAccount])
		return nil
	case strings.HasPrefix(res, "user/"):
		path, name := splitUser(res[len("user"):])
		if !validUserPath(path) || !validUserName(name) {
			return errorf(ErrBadARN, field, "%s: a user is user/<path/>name with a name of 1 to 64 of A-Z a-z 0-9 +=,.@_-", quote(id))
		}
		s.users = append(s.users, id)
		return nil
	case strings.HasPrefix(res, "group/"):
		return errorf(ErrUnsupported, field, "%s: a group is not a principal (in AWS either); attach an identity policy to the group instead", quote(id))
	}
	return errorf(ErrUnsupported, field, "%s: Berth has users and accounts, no roles or other principal types", quote(id))
}

// splitUser splits "/path/name" into "/path/" and "name".
func splitUser(s string) (path, name string) {
	i := strings.LastIndexByte(s, '/')
	return s[:i+1], s[i+1:]
}

func validAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// validUserName: IAM user names are 1 to 64 of [\w+=,.@-].
func validUserName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("+=,.@_-", c)) {
			return false
		}
	}
	return true
}

// validUserPath: "/" or "/a/b/", at most 512 characters of printable
// ASCII (IAM), here without the wildcards '*' and '?'.
func validUserPath(s string) bool {
	if len(s) == 0 || len(s) > 512 || s[0] != '/' || s[len(s)-1] != '/' {
		return false
	}
	for _, c := range s {
		if c < 0x21 || c > 0x7e || c == '*' || c == '?' {
			return false
		}
	}
	return true
}
