package auth

// The identity file (registryd --iam): identity policies by name, groups
// of policies, and users with their groups, policies and IAM path. Each
// authenticated user becomes an engine.Principal holding its own policies
// and its groups', built once per load.
//
//	policies:                 # name -> an IAM identity policy (no Principal),
//	  admin:                  # as YAML or as a string of JSON
//	    Version: "2012-10-17"
//	    Statement: [{Effect: Allow, Action: "*", Resource: "*"}]
//	groups:
//	  admins: {policies: [admin]}
//	users:
//	  alice: {groups: [admins], policies: [], path: /ops/}

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/berthstore/berth/engine"
)

// accountPattern is the shape of an AWS account ID.
var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)

// ErrIdentities reports an unusable identity file.
var ErrIdentities = errors.New("auth: bad identity file")

// maxIdentityFile bounds an identity file.
const maxIdentityFile = 16 << 20

// Identities are the users, groups and identity policies of an identity
// file, validated and parsed, or the default set of a registry without
// one (every user holds the administrator policy). Immutable once built.
type Identities struct {
	source   string
	policies map[string]*identityPolicy
	groups   map[string]*identityGroup
	users    map[string]*identityUser
	// others is the policy set of a user the set does not list: none
	// with an identity file, the administrator policy without.
	others *engine.IdentityPolicies
}

// identityPolicy is one named policy of the file.
type identityPolicy struct {
	name       string
	policy     *engine.IdentityPolicy
	statements int
}

// identityGroup is one group: its policies by name.
type identityGroup struct {
	name     string
	policies []string
}

// identityUser is one user: its groups and own policies by name, its IAM
// path, and the policy set it holds (own policies first, then each
// group's, each policy once).
type identityUser struct {
	name, path string
	account    string // "" for the registry's
	groups     []string
	policies   []string
	set        *engine.IdentityPolicies
}

// administratorText is the identity policy every authenticated user holds
// when the registry has no identity file: all actions on all resources.
const administratorText = `{"Version":"2012-10-17","Statement":[{"Sid":"Everything","Effect":"Allow","Action":"*","Resource":"*"}]}`

// administrator is the policy set of administratorText.
var administrator = func() *engine.IdentityPolicies {
	p, err := engine.ParseIdentityPolicy("administrator (no identity file configured)", administratorText)
	if err != nil {
		panic("auth: the administrator policy does not parse: " + err.Error()) // a programming error
	}
	return engine.NewIdentityPolicies(p)
}()

// DefaultIdentities is the set of a registry without an identity file:
// it lists nobody, and every user holds the administrator policy.
func DefaultIdentities() *Identities {
	return &Identities{others: administrator}
}

// LoadIdentities reads and validates the identity file at path (YAML or
// JSON). Errors wrap ErrIdentities and name the file and the user, group
// or policy at fault; every problem is reported at once.
func LoadIdentities(path string) (*Identities, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIdentities, err)
	}
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, maxIdentityFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrIdentities, path, err)
	}
	if len(text) > maxIdentityFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrIdentities, path, maxIdentityFile)
	}
	return ParseIdentities(path, text)
}

// ParseIdentities parses and validates an identity file's text; source
// names it in errors and in the policies' names.
func ParseIdentities(source string, text []byte) (*Identities, error) {
	var file identityFile
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: %w", ErrIdentities, source, err)
	}
	ids := &Identities{
		source:   source,
		policies: map[string]*identityPolicy{},
		groups:   map[string]*identityGroup{},
		users:    map[string]*identityUser{},
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	for _, name := range sortedKeys(file.Policies) {
		if !validEntityName(name, 128) {
			fail("policy %q: want 1 to 128 of A-Z a-z 0-9 + = , . @ _ -", name)
			continue
		}
		doc := file.Policies[name]
		if doc.err != nil {
			fail("policy %q: %w", name, doc.err)
			continue
		}
		p, err := engine.ParseIdentityPolicy(name, doc.text)
		if err != nil {
			fail("policy %q: %w", name, err)
			continue
		}
		ids.policies[name] = &identityPolicy{name: name, policy: p, statements: doc.statements}
	}
	// A name that did not parse is still defined: a reference to it is
	// not reported a second time as unknown.
	defined := func(name string) bool { _, ok := file.Policies[name]; return ok }
	checkRefs := func(what, owner, kind string, refs []string, known func(string) bool) {
		seen := map[string]bool{}
		for _, ref := range refs {
			switch {
			case seen[ref]:
				fail("%s %q: %s %q listed twice", what, owner, kind, ref)
			case !known(ref):
				fail("%s %q: %s %q is not defined", what, owner, kind, ref)
			}
			seen[ref] = true
		}
	}
	for _, name := range sortedKeys(file.Groups) {
		if !validEntityName(name, 128) {
			fail("group %q: want 1 to 128 of A-Z a-z 0-9 + = , . @ _ -", name)
			continue
		}
		g := file.Groups[name]
		checkRefs("group", name, "policy", g.Policies, defined)
		ids.groups[name] = &identityGroup{name: name, policies: g.Policies}
	}
	for _, name := range sortedKeys(file.Users) {
		u := file.Users[name]
		if name == LoginUser {
			fail("user %q: the user name of login tokens cannot be a user", name)
			continue
		}
		if !validUserName(name) {
			fail("user %q: want 1 to 64 of A-Z a-z 0-9 + = , . @ _ -", name)
			continue
		}
		checkRefs("user", name, "group", u.Groups, func(g string) bool { _, ok := file.Groups[g]; return ok })
		checkRefs("user", name, "policy", u.Policies, defined)
		if _, err := engine.NewPrincipal("000000000000", u.Path, name, nil); err != nil {
			fail("user %q: path %q: %w", name, u.Path, err)
		}
		if u.Account != "" && !accountPattern.MatchString(u.Account) {
			fail("user %q: account %q: want 12 digits", name, u.Account)
		}
		ids.users[name] = &identityUser{name: name, path: u.Path, account: u.Account, groups: u.Groups, policies: u.Policies}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s: %w", ErrIdentities, source, errors.Join(errs...))
	}
	for _, u := range ids.users {
		var set []*engine.IdentityPolicy
		for _, name := range u.policyNames(ids) {
			set = append(set, ids.policies[name].policy)
		}
		u.set = engine.NewIdentityPolicies(set...)
	}
	return ids, nil
}

// policyNames are the names of the policies u holds: its own, then each
// group's in order, each once.
func (u *identityUser) policyNames(ids *Identities) []string {
	var out []string
	add := func(names []string) {
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	add(u.policies)
	for _, g := range u.groups {
		add(ids.groups[g].policies)
	}
	return out
}

// Source is the identity file the set was read from; "" for the default
// set.
func (ids *Identities) Source() string { return ids.source }

// Principal returns the principal of user name in account: with the IAM
// path and the policies the set gives it, or, for a user the set does
// not list, at path "/" with the policies of unlisted users (none with an
// identity file, the administrator policy without).
func (ids *Identities) Principal(account, name string) (engine.Principal, error) {
	if name == "" {
		return engine.Principal{Account: account}, nil // anonymous: no identity policies
	}
	if u, ok := ids.users[name]; ok {
		if u.account != "" {
			account = u.account
		}
		return engine.NewPrincipal(account, u.path, name, u.set)
	}
	return engine.NewPrincipal(account, "", name, ids.others)
}

// IdentitySummary describes an identity set, for `registryd iam check`
// and the admin API's reload.
type IdentitySummary struct {
	// Source is the identity file ("" without one).
	Source string `json:"source"`
	// Users, by name.
	Users []UserSummary `json:"users"`
	// Groups, by name.
	Groups []GroupSummary `json:"groups"`
	// Policies, by name.
	Policies []PolicySummary `json:"policies"`
}

// UserSummary is one user of an identity set.
type UserSummary struct {
	Name   string   `json:"name"`
	Path   string   `json:"path"`
	Groups []string `json:"groups"`
	// Policies are the policies the user holds, its own first.
	Policies []HeldPolicy `json:"policies"`
}

// HeldPolicy is a policy a user holds, and through what.
type HeldPolicy struct {
	Name string `json:"name"`
	// Via is "user" for the user's own policy, else "group/<name>" of the
	// first group that gives it.
	Via        string `json:"via"`
	Statements int    `json:"statements"`
}

// GroupSummary is one group.
type GroupSummary struct {
	Name     string   `json:"name"`
	Policies []string `json:"policies"`
}

// PolicySummary is one policy.
type PolicySummary struct {
	Name       string `json:"name"`
	Statements int    `json:"statements"`
}

// Summary describes the set.
func (ids *Identities) Summary() IdentitySummary {
	s := IdentitySummary{Source: ids.source, Users: []UserSummary{}, Groups: []GroupSummary{}, Policies: []PolicySummary{}}
	for _, name := range sortedKeys(ids.policies) {
		s.Policies = append(s.Policies, PolicySummary{Name: name, Statements: ids.policies[name].statements})
	}
	for _, name := range sortedKeys(ids.groups) {
		s.Groups = append(s.Groups, GroupSummary{Name: name, Policies: nonNil(ids.groups[name].policies)})
	}
	for _, name := range sortedKeys(ids.users) {
		u := ids.users[name]
		us := UserSummary{Name: name, Path: u.path, Groups: nonNil(u.groups), Policies: []HeldPolicy{}}
		if us.Path == "" {
			us.Path = "/"
		}
		for _, p := range u.policyNames(ids) {
			via := "user"
			if !slices.Contains(u.policies, p) {
				for _, g := range u.groups {
					if slices.Contains(ids.groups[g].policies, p) {
						via = "group/" + g
						break
					}
				}
			}
			us.Policies = append(us.Policies, HeldPolicy{Name: p, Via: via, Statements: ids.policies[p].statements})
		}
		s.Users = append(s.Users, us)
	}
	return s
}

// identityFile is the file's schema.
type identityFile struct {
	Policies map[string]policyDocument `yaml:"policies"`
	Groups   map[string]groupEntry     `yaml:"groups"`
	Users    map[string]userEntry      `yaml:"users"`
}

// groupEntry is a group of the file.
type groupEntry struct {
	Policies []string `yaml:"policies"`
}

// userEntry is a user of the file.
type userEntry struct {
	Groups   []string `yaml:"groups"`
	Policies []string `yaml:"policies"`
	// Path is the user's IAM path ("/team-a/"); default "/".
	Path string `yaml:"path"`
	// Account is the account the user belongs to when it is not the
	// registry's: a user of another account (the replicator of a source
	// registry in another account), whose requests this registry's
	// resource policies must grant, as AWS requires across accounts.
	Account string `yaml:"account"`
}

// policyDocument is a policy of the file: a YAML (or JSON) mapping, or a
// string holding the policy's JSON. Its JSON text and statement count are
// kept; err is what made it unusable.
type policyDocument struct {
	text       string
	statements int
	err        error
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *policyDocument) UnmarshalYAML(n *yaml.Node) error {
	var v any
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		d.text = n.Value
		if err := json.Unmarshal([]byte(d.text), &v); err != nil {
			d.err = fmt.Errorf("line %d: the policy string is not JSON: %w", n.Line, err)
			return nil
		}
	case n.Kind == yaml.MappingNode:
		if err := n.Decode(&v); err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			d.err = fmt.Errorf("line %d: %w", n.Line, err)
			return nil
		}
		d.text = string(b)
	default:
		d.err = fmt.Errorf("line %d: want a policy document (a mapping, or a string of JSON)", n.Line)
		return nil
	}
	if m, ok := v.(map[string]any); ok {
		switch st := m["Statement"].(type) {
		case []any:
			d.statements = len(st)
		case map[string]any:
			d.statements = 1
		}
	}
	return nil
}

// validEntityName reports whether name is an IAM-style name of at most
// max characters (policy and group names allow 128, user names 64).
func validEntityName(name string, max int) bool {
	if name == "" || len(name) > max {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("+=,.@_-", c)) {
			return false
		}
	}
	return true
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// nonNil is s, or an empty slice for nil (JSON [] rather than null).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
