package iam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzParse: any text, as any kind of policy, either parses into a
// policy that evaluates without panicking, or is refused with a
// *PolicyError that wraps ErrInvalid.
func FuzzParse(f *testing.F) {
	f.Add(benchIdentity)
	f.Add(benchRepository)
	f.Add(`{"Version":"2008-10-17","Statement":[{"Sid":"x","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}`)
	f.Add(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::444455556666:user/Bob","444455556666"]},"NotAction":"ecr:Get?","NotResource":"arn:aws:ecr:*:*:repository/${aws:username, 'x''y'}/*"}}`)
	f.Add(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{"ForAnyValue:StringLike":{"aws:TagKeys":["a${*}","b?"]},"DateLessThanEquals":{"aws:EpochTime":"1700000000"},"IpAddress":{"aws:SourceIp":["10.0.0.0/8","::1"]},"Null":{"aws:ResourceTag/x":true}}}}`)
	f.Fuzz(func(t *testing.T, text string) {
		for _, kind := range []Kind{IdentityPolicy, RepositoryPolicy, RegistryPolicy, KeyPolicy} {
			p, err := Parse(kind, "fuzz", text)
			if err != nil {
				var pe *PolicyError
				if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) || !errors.Is(err, pe.Err) {
					t.Fatalf("%v: %v is not a PolicyError wrapping ErrInvalid", kind, err)
				}
				_ = err.Error()
				continue
			}
			if p.Len() == 0 || len(p.heads) != p.Len() {
				t.Fatalf("%v: a parsed policy with %d statements and %d heads", kind, p.Len(), len(p.heads))
			}
			for _, req := range fuzzRequests {
				r := req
				d := Evaluate(&r, []*Policy{p}, []*Policy{p})
				checkDecision(t, d, []*Policy{p})
			}
		}
	})
}

var fuzzRequests = func() []Request {
	alice, _ := NewUser("123456789012", "/", "alice", "AIDAALICE")
	bob, _ := NewUser("111122223333", "/ci/", "bob", "AIDABOB")
	tags := Tags{Resource: map[string]string{"team": "blue", "x": "1"}, Request: map[string]string{"env": "prod"}}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	return []Request{
		{Principal: alice, Action: "ecr:BatchGetImage", Resource: "arn:aws:ecr:us-east-1:123456789012:repository/app", SourceIP: netip.MustParseAddr("10.1.2.3"), SecureTransport: true, Time: now, Context: tags},
		{Principal: bob, Action: "ecr:PutImage", Resource: "arn:aws:ecr:us-east-1:123456789012:repository/bob/app", Time: now, Context: tags},
		{Action: "ecr:BatchGetImage", Resource: "arn:aws:ecr:us-east-1:123456789012:repository/public", Time: now},
		{Principal: alice, Action: "kms:Decrypt", Resource: "arn:aws:kms:us-east-1:123456789012:key/k1", Time: now, SourceIP: netip.MustParseAddr("::1")},
		{Principal: alice, Action: "ecr:GetAuthorizationToken", Resource: "*", Time: now},
		{Principal: bob, Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket/key", Time: now},
	}
}()

// checkDecision checks that a decision names statements that exist and
// say what the decision says.
func checkDecision(t *testing.T, d Decision, policies []*Policy) {
	t.Helper()
	find := func(r StatementRef) *statement {
		for _, p := range policies {
			if p != nil && p.source == r.Policy && p.kind == r.Kind && r.Index >= 0 && r.Index < len(p.statements) && p.statements[r.Index].sid == r.Sid {
				return &p.statements[r.Index]
			}
		}
		t.Fatalf("%v names %v, which is in no policy", d, r)
		return nil
	}
	switch d.Outcome {
	case ExplicitDeny:
		if d.Reason != ReasonDeny || find(d.Statement).effect != effectDeny {
			t.Fatalf("explicit deny %v does not name a Deny", d)
		}
	case Allow:
		if find(d.Statement).effect != effectAllow {
			t.Fatalf("allow %v does not name an Allow", d)
		}
		if !d.Grant.IsZero() && find(d.Grant).effect != effectAllow {
			t.Fatalf("allow %v names a grant that is no Allow", d)
		}
	case ImplicitDeny:
		if d.Reason == ReasonDeny {
			t.Fatalf("implicit deny with reason Deny: %v", d)
		}
	}
	_ = d.String()
}

// fuzzGen draws choices from the fuzzer's bytes (zeros once they run out).
type fuzzGen struct {
	b []byte
	i int
}

func (g *fuzzGen) pick(n int) int {
	if g.i >= len(g.b) {
		return 0
	}
	c := int(g.b[g.i])
	g.i++
	return c % n
}

func (g *fuzzGen) from(list []string) string { return list[g.pick(len(list))] }

var (
	fuzzAccounts   = []string{"123456789012", "111122223333"}
	fuzzUsers      = []string{"alice", "bob", "ci/builder"}
	fuzzReqActions = []string{"ecr:BatchGetImage", "ecr:PutImage", "ecr:ListImages", "ecr:GetDownloadUrlForLayer", "ecr:CreateRepository", "ecr:TagResource", "kms:Decrypt", "s3:GetObject"}
	fuzzActions    = []string{`"*"`, `"ecr:*"`, `"ecr:BatchGetImage"`, `"ecr:PutImage"`, `"ecr:Batch*"`, `"ecr:*Image"`, `["ecr:ListImages","ecr:Get?ownloadUrlForLayer"]`, `"kms:Decrypt"`, `"s3:Get*"`, `"ecr:Create*"`}
	fuzzECRActions = []string{`"*"`, `"ecr:*"`, `"ecr:BatchGetImage"`, `"ecr:PutImage"`, `"ecr:Batch*"`, `["ecr:ListImages","ecr:TagResource"]`}
	fuzzResources  = []string{
		"arn:aws:ecr:us-east-1:123456789012:repository/app",
		"arn:aws:ecr:us-east-1:123456789012:repository/alice/app",
		"arn:aws:ecr:eu-west-1:111122223333:repository/app",
		"arn:aws:ecr:us-east-1:111122223333:repository/team/x",
		"arn:aws:kms:us-east-1:123456789012:key/k1",
		"arn:aws:s3:::bucket/key",
		"*",
	}
	fuzzResourcePatterns = []string{`"*"`, `"arn:aws:ecr:*:*:repository/*"`, `"arn:aws:ecr:us-east-1:123456789012:repository/app"`, `"arn:aws:ecr:*:*:repository/${aws:username}/*"`, `["arn:aws:ecr:*:111122223333:repository/a?p","arn:aws:kms:*:*:key/*"]`, `"arn:aws:s3:::bucket/*"`, `"arn:aws:ecr:*:*:repository/team/*"`}
	fuzzPrincipals       = []string{`"*"`, `{"AWS":"*"}`, `{"AWS":"123456789012"}`, `{"AWS":"arn:aws:iam::123456789012:user/alice"}`, `{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:user/ci/builder"]}`}
	fuzzConditions       = []string{
		``,
		`"Condition":{"StringEquals":{"aws:username":["alice","bob"]}}`,
		`"Condition":{"StringNotEquals":{"aws:PrincipalAccount":"123456789012"}}`,
		`"Condition":{"StringLikeIfExists":{"aws:ResourceTag/team":"b*"}}`,
		`"Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}`,
		`"Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`,
		`"Condition":{"Bool":{"aws:SecureTransport":false}}`,
		`"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}`,
		`"Condition":{"NumericLessThan":{"aws:EpochTime":1700000000}}`,
		`"Condition":{"Null":{"aws:ResourceTag/x":"true","aws:username":"false"}}`,
		`"Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team"]}}`,
		`"Condition":{"ForAnyValue:StringLike":{"aws:TagKeys":"e*"}}`,
		`"Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/ci/*"}}`,
		`"Condition":{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:user/alice"}}`,
		`"Condition":{"StringEqualsIgnoreCase":{"aws:RequestTag/env":"PROD"}}`,
		`"Condition":{"StringLike":{"aws:ResourceTag/team":"${aws:username}*"}}`,
	}
)

// fuzzStatement writes a random statement; with deny false it is an
// Allow, else a coin decides.
func (g *fuzzGen) statement(resource, allowDeny bool, i int) string {
	effect := "Allow"
	if allowDeny && g.pick(2) == 1 {
		effect = "Deny"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"Sid":"S%d","Effect":%q`, i, effect)
	if resource {
		if effect == "Deny" && g.pick(3) == 0 {
			fmt.Fprintf(&b, `,"NotPrincipal":{"AWS":["arn:aws:iam::123456789012:user/alice","123456789012"]}`)
		} else {
			fmt.Fprintf(&b, `,"Principal":%s`, g.from(fuzzPrincipals))
		}
		verb := "Action"
		if g.pick(4) == 0 && effect == "Deny" {
			verb = "NotAction"
		}
		acts := g.from(fuzzECRActions)
		if verb == "NotAction" && acts == `"*"` {
			acts = `"ecr:PutImage"`
		}
		fmt.Fprintf(&b, `,%q:%s`, verb, acts)
		if g.pick(2) == 0 {
			fmt.Fprintf(&b, `,"Resource":%s`, g.from(fuzzResourcePatterns))
		}
	} else {
		verb := "Action"
		acts := g.from(fuzzActions)
		if g.pick(4) == 0 && acts != `"*"` {
			verb = "NotAction"
		}
		fmt.Fprintf(&b, `,%q:%s`, verb, acts)
		rverb := "Resource"
		res := g.from(fuzzResourcePatterns)
		if g.pick(4) == 0 && res != `"*"` {
			rverb = "NotResource"
		}
		fmt.Fprintf(&b, `,%q:%s`, rverb, res)
	}
	if c := g.from(fuzzConditions); c != "" {
		b.WriteString("," + c)
	}
	b.WriteString("}")
	return b.String()
}

func policyText(stmts []string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
}

// FuzzEvaluate builds random identity and repository policies and a
// random request from the fuzzer's bytes, and checks, besides the absence
// of panics and decisions that name what they say:
//   - a Deny statement built to match the request (its exact action, its
//     exact resource or none, Principal "*", a condition the request is
//     known to meet), put anywhere in any policy, makes the decision an
//     explicit deny, whatever the other statements say;
//   - without any Deny statement the decision is never an explicit deny,
//     and an Allow stays an Allow.
func FuzzEvaluate(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3, 3, 8, 3, 2, 7, 9, 5})
	f.Add([]byte("an identity policy, a repository policy and a request"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &fuzzGen{b: data}

		// The request.
		var req Request
		if g.pick(5) != 0 {
			u := g.from(fuzzUsers)
			path, name := "/", u
			if i := strings.LastIndexByte(u, '/'); i >= 0 {
				path, name = "/"+u[:i+1], u[i+1:]
			}
			p, err := NewUser(g.from(fuzzAccounts), path, name, "AIDA"+strings.ToUpper(name))
			require.NoError(t, err)
			req.Principal = p
		}
		req.Action = g.from(fuzzReqActions)
		req.Resource = g.from(fuzzResources)
		if g.pick(3) != 0 {
			req.SourceIP = netip.MustParseAddr([]string{"10.9.8.7", "192.0.2.1", "2001:db8::5"}[g.pick(3)])
		}
		req.SecureTransport = g.pick(2) == 0
		req.Time = time.Date(2025+g.pick(3), time.Month(1+g.pick(12)), 1, 0, 0, 0, 0, time.UTC)
		tags := Tags{Resource: map[string]string{}, Request: map[string]string{}}
		if g.pick(2) == 0 {
			tags.Resource["team"] = []string{"blue", "alice-team", "red"}[g.pick(3)]
		}
		if g.pick(2) == 0 {
			tags.Resource["x"] = "1"
		}
		if g.pick(2) == 0 {
			tags.Request[[]string{"env", "team", "Env"}[g.pick(3)]] = "prod"
		}
		req.Context = tags

		// The policies: one or two identity policies, zero or one
		// repository policy, each of up to six statements.
		type doc struct {
			kind  Kind
			name  string
			stmts []string
		}
		var docs []doc
		for i, n := 0, 1+g.pick(2); i < n; i++ {
			d := doc{kind: IdentityPolicy, name: fmt.Sprintf("identity-%d", i)}
			for j, m := 0, 1+g.pick(6); j < m; j++ {
				d.stmts = append(d.stmts, g.statement(false, true, j))
			}
			docs = append(docs, d)
		}
		if g.pick(3) != 0 {
			d := doc{kind: RepositoryPolicy, name: "repository"}
			for j, m := 0, 1+g.pick(6); j < m; j++ {
				d.stmts = append(d.stmts, g.statement(true, true, j))
			}
			docs = append(docs, d)
		}
		evaluate := func(docs []doc) Decision {
			var identity, resource []*Policy
			for _, d := range docs {
				if len(d.stmts) == 0 {
					continue
				}
				p, err := Parse(d.kind, d.name, policyText(d.stmts))
				require.NoError(t, err, "a generated policy is valid: %s", policyText(d.stmts))
				if d.kind == IdentityPolicy {
					identity = append(identity, p)
				} else {
					resource = append(resource, p)
				}
			}
			r := req
			dec := Evaluate(&r, identity, resource)
			checkDecision(t, dec, append(identity, resource...))
			return dec
		}
		got := evaluate(docs)

		// Without Denies: never an explicit deny, and an Allow stays.
		var allows []doc
		for _, d := range docs {
			a := doc{kind: d.kind, name: d.name}
			for _, s := range d.stmts {
				if !strings.Contains(s, `"Effect":"Deny"`) {
					a.stmts = append(a.stmts, s)
				}
			}
			allows = append(allows, a)
		}
		withoutDeny := evaluate(allows)
		if withoutDeny.Outcome == ExplicitDeny {
			t.Fatalf("explicit deny without Deny statements: %v", withoutDeny)
		}
		if got.Outcome == Allow && withoutDeny.Outcome != Allow {
			t.Fatalf("removing Deny statements took away an Allow: %v, then %v", got, withoutDeny)
		}

		// A Deny that matches the request, written from the request alone.
		cond := ``
		switch g.pick(4) {
		case 1:
			acct := req.Principal.Account
			if req.Principal.IsAnonymous() {
				acct = "anonymous"
			}
			cond = fmt.Sprintf(`,"Condition":{"StringEquals":{"aws:PrincipalAccount":%q}}`, acct)
		case 2:
			cond = fmt.Sprintf(`,"Condition":{"Bool":{"aws:SecureTransport":"%t"}}`, req.SecureTransport)
		case 3:
			cond = `,"Condition":{"Null":{"aws:PrincipalType":"false"},"DateLessThan":{"aws:CurrentTime":"2100-01-01"}}`
		}
		var deny string
		target := g.pick(len(docs) + 1)
		if target == len(docs) || req.Principal.IsAnonymous() {
			// A repository policy of its own (the only place a Deny
			// for an anonymous caller can be, as it has no identity).
			deny = `{"Sid":"Injected","Effect":"Deny","Principal":"*","Action":"` + req.Action + `"` + cond + `}`
			if !strings.HasPrefix(req.Action, "ecr:") {
				deny = `{"Sid":"Injected","Effect":"Deny","Principal":"*","Action":"*"` + cond + `}`
			}
			docs = append(docs, doc{kind: RepositoryPolicy, name: "injected", stmts: []string{deny}})
		} else {
			d := &docs[target]
			if d.kind == IdentityPolicy {
				deny = `{"Sid":"Injected","Effect":"Deny","Action":"` + req.Action + `","Resource":"` + req.Resource + `"` + cond + `}`
			} else {
				deny = `{"Sid":"Injected","Effect":"Deny","Principal":"*","Action":"*","Resource":"` + req.Resource + `"` + cond + `}`
			}
			at := g.pick(len(d.stmts) + 1)
			d.stmts = append(d.stmts[:at], append([]string{deny}, d.stmts[at:]...)...)
			for i := range d.stmts { // keep the Sids unique
				d.stmts[i] = strings.Replace(d.stmts[i], `"Sid":"S`, fmt.Sprintf(`"Sid":"N%dS`, i), 1)
			}
		}
		if d := evaluate(docs); d.Outcome != ExplicitDeny {
			t.Fatalf("a matching Deny (%s) was overridden: %v\nrequest: %+v\npolicies: %+v", deny, d, req, docs)
		}
	})
}
