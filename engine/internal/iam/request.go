package iam

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Request is what Evaluate decides: who does what to which resource, and
// the request's environment for condition keys.
type Request struct {
	// Principal is the caller.
	Principal Principal
	// Action is the action, "ecr:BatchGetImage", "kms:Decrypt".
	Action string
	// Resource is the resource's ARN,
	// arn:aws:ecr:<region>:<account>:repository/<name> or
	// arn:aws:kms:<region>:<account>:key/<id>; "*" for an action that
	// names no resource (ecr:GetAuthorizationToken), which only a
	// statement with "Resource": "*" matches.
	Resource string
	// ResourceAccount is the account that owns the resource; empty means
	// the account of the Resource ARN, or (when it has none) the
	// principal's own.
	ResourceAccount string
	// SourceIP is aws:SourceIp; the zero Addr leaves the key absent.
	SourceIP netip.Addr
	// SecureTransport is aws:SecureTransport: the request came over TLS.
	SecureTransport bool
	// Time is aws:CurrentTime and aws:EpochTime (to the second); the
	// zero Time means Clock's time, read when a condition first asks for
	// it (most decisions never do).
	Time time.Time
	// Clock tells the time of the evaluation when Time is zero; nil
	// means the system's clock.
	Clock interface{ Now() time.Time }
	// Context supplies tags when a condition asks for them; nil means the
	// request and its resource have none.
	Context Context
}

// Context supplies a request's tags lazily: Evaluate calls it only for a
// statement whose action, resource and principal match and whose
// condition names a tag key, so a resource's tags need not be loaded for
// requests no tag condition concerns. Tag keys compare case-insensitively
// (IAM: "the condition matches a resource tag key named either TagKey1 or
// tagkey1").
type Context interface {
	// ResourceTag returns the value of the resource's tag key
	// (aws:ResourceTag/<key>, ecr:ResourceTag/<key>).
	ResourceTag(key string) (value string, ok bool)
	// RequestTag returns the value of tag key that the request sets
	// (aws:RequestTag/<key>: CreateRepository, TagResource).
	RequestTag(key string) (value string, ok bool)
	// RequestTagKeys returns the keys of the tags that the request sets
	// (aws:TagKeys); nil when it sets none.
	RequestTagKeys() []string
}

// Tags is a Context over maps, for callers that have the tags at hand.
type Tags struct {
	// Resource are the resource's tags.
	Resource map[string]string
	// Request are the tags that the request sets.
	Request map[string]string
}

var _ Context = Tags{}

// ResourceTag implements Context.
func (t Tags) ResourceTag(key string) (string, bool) { return lookupFold(t.Resource, key) }

// RequestTag implements Context.
func (t Tags) RequestTag(key string) (string, bool) { return lookupFold(t.Request, key) }

// RequestTagKeys implements Context.
func (t Tags) RequestTagKeys() []string {
	if len(t.Request) == 0 {
		return nil
	}
	keys := make([]string, 0, len(t.Request))
	for k := range t.Request {
		keys = append(keys, k)
	}
	return keys
}

func lookupFold(m map[string]string, key string) (string, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// evaluation is the state of one Evaluate call; it lives on the stack.
type evaluation struct {
	req      *Request
	action   actionID
	resource [5]string // the Resource ARN's parts
	resOK    bool      // Resource is an ARN
	nowSet   bool
	nowT     time.Time
	span     TimeSpan // the times at which each comparison with nowT so far would come out the same
}

// now is aws:CurrentTime, to the second as AWS keeps it.
func (e *evaluation) now() time.Time {
	if !e.nowSet {
		t := e.req.Time
		switch {
		case !t.IsZero():
		case e.req.Clock != nil:
			t = e.req.Clock.Now()
		default:
			t = time.Now()
		}
		e.nowT, e.nowSet = time.Unix(t.Unix(), 0).UTC(), true
		e.span = TimeSpan{Timed: true, From: math.MinInt64, Until: math.MaxInt64}
	}
	return e.nowT
}

// TimeSpan is the time over which a decision stands as it was made: the
// decision read the time (a condition on aws:CurrentTime or
// aws:EpochTime) and every comparison it made with it comes out the same
// for each second s (Unix time, as aws:EpochTime) with From <= s < Until.
// A decision that did not read the time (Timed false) stands at any time.
// Until math.MaxInt64 is no end.
type TimeSpan struct {
	Timed       bool
	From, Until int64
}

// Contains reports whether the decision stands at t.
func (s TimeSpan) Contains(t time.Time) bool {
	if !s.Timed {
		return true
	}
	u := t.Unix()
	return s.From <= u && (u < s.Until || s.Until == math.MaxInt64)
}

// keepOrder narrows the span to the seconds that compare with a policy's
// value v (Unix seconds vSec and nanoseconds vNsec, 0 <= vNsec < 1e9) as
// the evaluation's time did: order is -1, 0 or 1.
func (e *evaluation) keepOrder(order int, vSec int64, vNsec int) {
	s := e.nowT.Unix()
	switch {
	case order < 0: // s < v, for the seconds below v rounded up
		until := vSec
		if vNsec > 0 && vSec < math.MaxInt64 {
			until++
		}
		e.span.Until = min(e.span.Until, until)
	case order > 0: // s > v, for the seconds from v's second on, after it
		if vSec < math.MaxInt64 {
			e.span.From = max(e.span.From, vSec+1)
		}
	default:
		e.keepSecond(s)
	}
}

// keepSecond narrows the span to second s: the exact time was used.
func (e *evaluation) keepSecond(s int64) {
	e.span.From = max(e.span.From, s)
	if s < math.MaxInt64 {
		e.span.Until = min(e.span.Until, s+1)
	}
}

// keepOrderFloat is keepOrder for a numeric value v (aws:EpochTime).
func (e *evaluation) keepOrderFloat(order int, v float64) {
	switch {
	case order == 0: // equal, or v is NaN
		e.keepSecond(e.nowT.Unix())
	case v >= 1<<63 || v < -1<<63:
		// Beyond every second an int64 counts: the order never changes.
	default:
		fl, nsec := math.Floor(v), 0
		if fl != v {
			nsec = 1
		}
		e.keepOrder(order, int64(fl), nsec)
	}
}

// stringValue returns a single-valued key's value as a string, as string
// operators and the ARN operators compare it.
func (e *evaluation) stringValue(k keyRef) (string, bool) {
	p := &e.req.Principal
	anon := p.IsAnonymous()
	switch k.id {
	case keyUsername:
		return p.UserName, !anon && p.UserName != ""
	case keyUserID:
		// IAM's principal table: an anonymous caller's aws:userid is
		// "anonymous".
		if anon {
			return "anonymous", true
		}
		return p.UserID, p.UserID != ""
	case keyPrincipalArn:
		return p.ARN, !anon
	case keyPrincipalAccount:
		if anon {
			return "anonymous", true // IAM: "For anonymous requests, the request context returns anonymous"
		}
		return p.Account, true
	case keyPrincipalType:
		if anon {
			return "Anonymous", true
		}
		return "User", true
	case keyRequestTag:
		if e.req.Context == nil {
			return "", false
		}
		return e.req.Context.RequestTag(k.tag)
	case keyResourceTag:
		if e.req.Context == nil {
			return "", false
		}
		return e.req.Context.ResourceTag(k.tag)
	}
	return "", false
}

// variable returns a policy variable's value: any single-valued key.
// The keys that are not strings are formatted (which allocates; only
// policies that use them as variables pay for it).
func (e *evaluation) variable(k keyRef) (string, bool) {
	switch k.id {
	case keySourceIP:
		if !e.req.SourceIP.IsValid() {
			return "", false
		}
		return e.req.SourceIP.Unmap().String(), true
	case keySecureTransport:
		return strconv.FormatBool(e.req.SecureTransport), true
	case keyCurrentTime:
		now := e.now()
		e.keepSecond(now.Unix())
		return now.Format(time.RFC3339), true
	case keyEpochTime:
		now := e.now()
		e.keepSecond(now.Unix())
		return strconv.FormatInt(now.Unix(), 10), true
	}
	return e.stringValue(k)
}

// present reports whether a key is in the request (the Null operator).
func (e *evaluation) present(k keyRef) bool {
	switch k.id {
	case keySourceIP:
		return e.req.SourceIP.IsValid()
	case keySecureTransport, keyCurrentTime, keyEpochTime:
		return true
	case keyTagKeys:
		return e.req.Context != nil && len(e.req.Context.RequestTagKeys()) > 0
	}
	_, ok := e.stringValue(k)
	return ok
}
