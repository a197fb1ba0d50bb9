package iam

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// opFamily is the kind of comparison a condition operator makes.
type opFamily uint8

const (
	famString opFamily = iota
	famArn
	famNumeric
	famDate
	famBool
	famIP
	famNull
)

// cmpKind is how an operator compares.
type cmpKind uint8

const (
	cmpEq   cmpKind = iota // equal (StringEquals, NumericEquals, DateEquals, Bool, IpAddress, ArnEquals/ArnLike)
	cmpFold                // equal ignoring case
	cmpLike                // with wildcards
	cmpLT
	cmpLE
	cmpGT
	cmpGE
)

// operator is a condition operator without its qualifiers.
type operator struct {
	fam    opFamily
	cmp    cmpKind
	negate bool // the Not... operators: true when no value matches
}

// operators are the condition operators Berth evaluates, named as the
// IAM User Guide's "Condition operators" names them (case-sensitive).
// BinaryEquals is not among them: no key Berth supports is binary.
var operators = map[string]operator{
	"StringEquals":              {famString, cmpEq, false},
	"StringNotEquals":           {famString, cmpEq, true},
	"StringEqualsIgnoreCase":    {famString, cmpFold, false},
	"StringNotEqualsIgnoreCase": {famString, cmpFold, true},
	"StringLike":                {famString, cmpLike, false},
	"StringNotLike":             {famString, cmpLike, true},
	"NumericEquals":             {famNumeric, cmpEq, false},
	"NumericNotEquals":          {famNumeric, cmpEq, true},
	"NumericLessThan":           {famNumeric, cmpLT, false},
	"NumericLessThanEquals":     {famNumeric, cmpLE, false},
	"NumericGreaterThan":        {famNumeric, cmpGT, false},
	"NumericGreaterThanEquals":  {famNumeric, cmpGE, false},
	"DateEquals":                {famDate, cmpEq, false},
	"DateNotEquals":             {famDate, cmpEq, true},
	"DateLessThan":              {famDate, cmpLT, false},
	"DateLessThanEquals":        {famDate, cmpLE, false},
	"DateGreaterThan":           {famDate, cmpGT, false},
	"DateGreaterThanEquals":     {famDate, cmpGE, false},
	"Bool":                      {famBool, cmpEq, false},
	"IpAddress":                 {famIP, cmpEq, false},
	"NotIpAddress":              {famIP, cmpEq, true},
	"ArnEquals":                 {famArn, cmpEq, false},
	"ArnLike":                   {famArn, cmpEq, false},
	"ArnNotEquals":              {famArn, cmpEq, true},
	"ArnNotLike":                {famArn, cmpEq, true},
	"Null":                      {famNull, cmpEq, false},
}

// setKind is a condition's set qualifier.
type setKind uint8

const (
	setNone   setKind = iota
	setForAll         // ForAllValues:
	setForAny         // ForAnyValue:
)

// condition is one key of one operator of a Condition block; a
// statement's conditions are ANDed, a condition's values ORed (for a
// Not... operator: none may match).
type condition struct {
	op       operator
	ifExists bool
	set      setKind
	key      keyRef
	strs     []pattern      // famString
	arns     []arnPattern   // famArn
	nums     []float64      // famNumeric
	times    []time.Time    // famDate
	bools    []bool         // famBool; famNull (true: the key must be absent)
	nets     []netip.Prefix // famIP
}

// parseConditions reads a Condition element. vars: the policy's version
// has policy variables.
func parseConditions(v *jvalue, vars bool) ([]condition, error) {
	if v.kind != jObject {
		return nil, errorf(ErrSyntax, "Condition", "must be an object of operators")
	}
	var out []condition
	for _, om := range v.members {
		field := "Condition." + om.key
		name := om.key
		set := setNone
		if rest, ok := strings.CutPrefix(name, "ForAllValues:"); ok {
			set, name = setForAll, rest
		} else if rest, ok := strings.CutPrefix(name, "ForAnyValue:"); ok {
			set, name = setForAny, rest
		}
		ifExists := false
		if rest, ok := strings.CutSuffix(name, "IfExists"); ok {
			ifExists, name = true, rest
		}
		op, ok := operators[name]
		if !ok {
			return nil, errorf(ErrUnsupported, field, "unknown condition operator (Berth evaluates String*, Numeric*, Date*, Bool, IpAddress, NotIpAddress, Arn* and Null, with ...IfExists and ForAllValues:/ForAnyValue:)")
		}
		if op.fam == famNull && (ifExists || set != setNone) {
			return nil, errorf(ErrSyntax, field, "Null takes neither IfExists nor a set qualifier")
		}
		if set != setNone && op.fam != famString && op.fam != famArn {
			return nil, errorf(ErrUnsupported, field, "ForAllValues: and ForAnyValue: apply to string and ARN operators")
		}
		if om.val.kind != jObject || len(om.val.members) == 0 {
			return nil, errorf(ErrSyntax, field, "must be a non-empty object of condition keys")
		}
		for _, km := range om.val.members {
			kfield := field + "." + km.key
			c, err := parseCondition(kfield, op, set, ifExists, km.key, &km.val, vars)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func parseCondition(field string, op operator, set setKind, ifExists bool, keyName string, v *jvalue, vars bool) (condition, error) {
	c := condition{op: op, set: set, ifExists: ifExists}
	ref, info, err := lookupKey(keyName)
	if err != nil {
		return c, errorf(ErrUnsupported, field, "%v", err)
	}
	c.key = ref
	if !operatorFits(op.fam, info.typ) {
		return c, errorf(ErrUnsupported, field, "%s cannot be compared with this operator (it would never match)", info.name)
	}
	if info.multi && set == setNone && op.fam != famNull {
		return c, errorf(ErrUnsupported, field, "%s is multivalued: qualify the operator with ForAllValues: or ForAnyValue:", info.name)
	}
	values, err := v.scalars(field)
	if err != nil {
		return c, err
	}
	for _, s := range values {
		switch op.fam {
		case famString:
			p, err := compilePattern(field, s, op.cmp == cmpLike, vars)
			if err != nil {
				return c, err
			}
			c.strs = append(c.strs, p)
		case famArn:
			p, err := compileARN(field, s, vars, false)
			if err != nil {
				return c, err
			}
			c.arns = append(c.arns, p)
		case famNumeric:
			n, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
				return c, errorf(ErrBadValue, field, "%s is not a number", quote(s))
			}
			c.nums = append(c.nums, n)
		case famDate:
			t, err := parseDate(s)
			if err != nil {
				return c, errorf(ErrBadValue, field, "%s is not an ISO 8601 date (W3C: 2006-01-02, 2006-01-02T15:04Z, 2006-01-02T15:04:05Z, with a zone) or epoch seconds", quote(s))
			}
			c.times = append(c.times, t)
		case famBool, famNull:
			switch strings.ToLower(s) {
			case "true":
				c.bools = append(c.bools, true)
			case "false":
				c.bools = append(c.bools, false)
			default:
				return c, errorf(ErrBadValue, field, "%s is neither true nor false", quote(s))
			}
		case famIP:
			p, err := parseIPRange(s)
			if err != nil {
				return c, errorf(ErrBadValue, field, "%s is not an IP address or a CIDR range", quote(s))
			}
			c.nets = append(c.nets, p)
		}
	}
	return c, nil
}

// operatorFits says which operators a key's type takes: a comparison
// that could never match is refused rather than kept.
func operatorFits(f opFamily, t keyType) bool {
	switch f {
	case famNull:
		return true
	case famString:
		return t == typeString || t == typeARN
	case famArn:
		return t == typeARN
	case famNumeric:
		return t == typeEpoch
	case famDate:
		return t == typeDate || t == typeEpoch
	case famBool:
		return t == typeBool
	case famIP:
		return t == typeIP
	}
	return false
}

// dateLayouts are the W3C profile of ISO 8601 that IAM documents for
// date conditions (a time of day carries its zone).
var dateLayouts = []string{
	"2006-01-02",
	"2006-01",
	"2006-01-02T15:04Z07:00",
	time.RFC3339Nano, // also without fractional seconds
}

// parseDate reads a date condition value: ISO 8601 (W3C) or epoch
// seconds (all digits).
func parseDate(s string) (time.Time, error) {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, err
		}
		return time.Unix(n, 0).UTC(), nil
	}
	var err error
	for _, l := range dateLayouts {
		var t time.Time
		if t, err = time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

// parseIPRange reads a CIDR range, or one address (IAM: "If you specify
// an IP address without the associated routing prefix, IAM uses the
// default prefix value of /32", /128 for IPv6).
func parseIPRange(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// holds reports whether the condition holds for the request.
func (e *evaluation) holds(c *condition) bool {
	if c.op.fam == famNull {
		absent := !e.present(c.key)
		for _, want := range c.bools {
			if want == absent {
				return true
			}
		}
		return false
	}
	if c.set != setNone {
		return e.holdsForSet(c)
	}
	var matched bool
	switch c.op.fam {
	case famString, famArn:
		s, ok := e.stringValue(c.key)
		if !ok {
			return c.whenAbsent()
		}
		matched = e.matchesAny(c, s)
	case famIP:
		ip := e.req.SourceIP
		if !ip.IsValid() {
			return c.whenAbsent()
		}
		ip = ip.Unmap()
		for _, n := range c.nets {
			if n.Contains(ip) {
				matched = true
				break
			}
		}
	case famBool:
		b := e.req.SecureTransport
		for _, want := range c.bools {
			if want == b {
				matched = true
				break
			}
		}
	case famDate:
		now := e.now()
		for _, t := range c.times {
			order := now.Compare(t)
			e.keepOrder(order, t.Unix(), t.Nanosecond())
			if compare(order, c.op.cmp) {
				matched = true
				break
			}
		}
	case famNumeric:
		n := float64(e.now().Unix())
		for _, v := range c.nums {
			order := cmpFloat(n, v)
			e.keepOrderFloat(order, v)
			if compare(order, c.op.cmp) {
				matched = true
				break
			}
		}
	}
	return matched != c.op.negate
}

// whenAbsent is a condition's result when its key is not in the request:
// true with ...IfExists; otherwise false, but true for a negated operator
// (IAM: "If the policy condition requires that the key is not matched,
// such as StringNotLike or ArnNotLike, and the right key is not present,
// the condition is true").
func (c *condition) whenAbsent() bool { return c.ifExists || c.op.negate }

// holdsForSet evaluates ForAllValues: and ForAnyValue: over the
// request's values of the key (a single-valued key is a set of one).
// ForAllValues holds for no values, ForAnyValue does not (IAM: "If the
// key values in the request resolve to an empty data set ... ForAllValues
// returns true. A condition operator modified by ForAnyValue returns
// false").
func (e *evaluation) holdsForSet(c *condition) bool {
	var one [1]string
	var vals []string
	if c.key.id == keyTagKeys {
		if e.req.Context != nil {
			vals = e.req.Context.RequestTagKeys()
		}
	} else if s, ok := e.stringValue(c.key); ok {
		one[0] = s
		vals = one[:]
	}
	if len(vals) == 0 {
		if c.ifExists {
			return true
		}
		return c.set == setForAll
	}
	for _, r := range vals {
		m := e.matchesAny(c, r) != c.op.negate
		if c.set == setForAny && m {
			return true
		}
		if c.set == setForAll && !m {
			return false
		}
	}
	return c.set == setForAll
}

// matchesAny reports whether request value s matches one of the
// condition's string or ARN values.
func (e *evaluation) matchesAny(c *condition, s string) bool {
	if c.op.fam == famArn {
		parts, ok := splitARN(s)
		if !ok {
			return false
		}
		for i := range c.arns {
			if e.matchARN(&c.arns[i], &parts) {
				return true
			}
		}
		return false
	}
	fold := c.op.cmp == cmpFold
	for i := range c.strs {
		if e.match(&c.strs[i], s, fold) {
			return true
		}
	}
	return false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compare applies an ordering comparison to the result of comparing the
// request's value with the policy's (-1, 0, 1).
func compare(order int, k cmpKind) bool {
	switch k {
	case cmpLT:
		return order < 0
	case cmpLE:
		return order <= 0
	case cmpGT:
		return order > 0
	case cmpGE:
		return order >= 0
	}
	return order == 0
}
