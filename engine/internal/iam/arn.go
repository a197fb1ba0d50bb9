package iam

import (
	"strings"
)

// The parts of an ARN, arn:partition:service:region:account:resource.
const (
	arnPartition = iota
	arnService
	arnRegion
	arnAccount
	arnResource
)

// splitARN splits an ARN into partition, service, region, account and
// resource; the resource keeps any further colons. ok is false unless s
// begins with "arn:" and has its five colons.
func splitARN(s string) (parts [5]string, ok bool) {
	rest, found := strings.CutPrefix(s, "arn:")
	if !found {
		return parts, false
	}
	for i := 0; i < arnResource; i++ {
		j := strings.IndexByte(rest, ':')
		if j < 0 {
			return parts, false
		}
		parts[i], rest = rest[:j], rest[j+1:]
	}
	parts[arnResource] = rest
	return parts, true
}

// arnPattern is a Resource entry or an ARN condition value: "*" or an
// ARN whose parts are matched one by one, each with its own wildcards
// (IAM: "each of the six colon-delimited components of the ARN is checked
// separately"; a '*' in the resource part spans '/' and ':').
type arnPattern struct {
	any   bool
	parts [5]pattern
}

// resourceTypes are the resource types of the known services, the
// prefixes of their ARNs' resource part.
var resourceTypes = map[string][]string{
	"ecr": {"repository/"},
	"kms": {"key/", "alias/"},
}

// compileARN reads an ARN pattern. vars allows policy variables, in the
// resource part only (IAM: "You can't use a variable to replace parts of
// the ARN before the fifth colon"). resource: the value is a Resource
// entry, where '*' alone means every resource and the service part takes
// no wildcard.
func compileARN(field, s string, vars, resource bool) (arnPattern, error) {
	var p arnPattern
	if resource && s == "*" {
		p.any = true
		return p, nil
	}
	parts, ok := splitARN(s)
	if !ok {
		return p, errorf(ErrBadARN, field, "%s is not an ARN (arn:partition:service:region:account:resource)", quote(s))
	}
	for i := 0; i < arnResource && vars; i++ {
		if strings.Contains(parts[i], "${") {
			return p, errorf(ErrUnsupported, field, "%s: policy variables are allowed only in the resource part of an ARN", quote(s))
		}
	}
	if parts[arnPartition] == "" || parts[arnService] == "" {
		return p, errorf(ErrBadARN, field, "%s: the partition and the service of an ARN are not empty", quote(s))
	}
	if resource && strings.ContainsAny(parts[arnService], "*?") {
		return p, errorf(ErrBadARN, field, "%s: the service part of a resource ARN takes no wildcard", quote(s))
	}
	for i := 0; i < arnResource; i++ {
		var err error
		if p.parts[i], err = compilePattern(field, parts[i], true, false); err != nil {
			return p, err
		}
	}
	var err error
	if p.parts[arnResource], err = compilePattern(field, parts[arnResource], true, vars); err != nil {
		return p, err
	}
	if !resource {
		return p, nil
	}
	types, known := resourceTypes[parts[arnService]]
	if !known {
		return p, nil
	}
	if !validARNPart(parts[arnRegion], false) || !validARNPart(parts[arnAccount], true) {
		return p, errorf(ErrBadARN, field, "%s: a %s ARN has a region and a 12-digit account (or wildcards)", quote(s), parts[arnService])
	}
	res := &p.parts[arnResource]
	prefix := res.literalPrefix()
	for _, t := range types {
		if strings.HasPrefix(prefix, t) && (len(prefix) > len(t) || !res.isLit) {
			return p, nil
		}
		if strings.HasPrefix(t, prefix) && !res.isLit {
			return p, nil
		}
	}
	return p, errorf(ErrBadARN, field, "%s: a %s resource is %s<name>", quote(s), parts[arnService], strings.Join(types, "<name> or "))
}

// validARNPart checks a region (letters, digits, '-') or an account (12
// digits), either of which may be written with wildcards.
func validARNPart(s string, account bool) bool {
	if s == "" {
		return false
	}
	wild := false
	for _, c := range s {
		switch {
		case c == '*' || c == '?':
			wild = true
		case c >= '0' && c <= '9':
		case !account && (c >= 'a' && c <= 'z' || c == '-'):
		default:
			return false
		}
	}
	return !account || wild || len(s) == 12
}

// matchARN matches a split ARN against the pattern.
func (e *evaluation) matchARN(p *arnPattern, arn *[5]string) bool {
	if p.any {
		return true
	}
	for i := range p.parts {
		if !e.match(&p.parts[i], arn[i], false) {
			return false
		}
	}
	return true
}

// RepositoryARN returns the ARN of ECR repository name,
// arn:aws:ecr:<region>:<account>:repository/<name>, a Request's Resource.
// Build it once per repository, not per request.
func RepositoryARN(region, account, name string) string {
	return "arn:aws:ecr:" + region + ":" + account + ":repository/" + name
}

// KeyARN returns the ARN of KMS key id, arn:aws:kms:<region>:<account>:key/<id>.
func KeyARN(region, account, id string) string {
	return "arn:aws:kms:" + region + ":" + account + ":key/" + id
}

// SecretARN is the ARN of a stored secret,
// arn:aws:secretsmanager:<region>:<account>:secret:<name>.
func SecretARN(region, account, name string) string {
	return "arn:aws:secretsmanager:" + region + ":" + account + ":secret:" + name
}
