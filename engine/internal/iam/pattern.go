package iam

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokKind is the kind of one piece of a compiled pattern.
type tokKind uint8

const (
	tokLit  tokKind = iota // literal text
	tokStar                // '*': any run of characters
	tokOne                 // '?': any one character
	tokVar                 // a policy variable, replaced by a literal
)

// token is one piece of a pattern.
type token struct {
	kind tokKind
	// text is a literal's text, or a variable's default value.
	text string
	// key is a variable's condition key.
	key keyRef
	// hasDefault: the variable has a default value (text), used when the
	// key has no value in the request.
	hasDefault bool
	// vi is a variable's index among the pattern's variables.
	vi uint8
}

// maxVars bounds the variables of one pattern, so that matching resolves
// them into a fixed array on the stack.
const maxVars = 8

// pattern is a string of a policy compiled once: literal text, wildcards
// ('*' and '?', where the element allows them) and policy variables
// (${aws:username}, where the policy's version allows them). The escapes
// ${*}, ${?} and ${$} are literal characters.
type pattern struct {
	toks []token
	// lit is the pattern when it is one literal (the common case), or
	// the literal before a final '*' (isPrefix: "repository/*").
	lit      string
	isLit    bool
	isPrefix bool
	isAny    bool // "*"
	nvars    int
}

// compilePattern reads s. With wild, '*' and '?' are wildcards; with
// vars, "${...}" is a policy variable (or escape).
func compilePattern(field, s string, wild, vars bool) (pattern, error) {
	var p pattern
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p.toks = append(p.toks, token{kind: tokLit, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case wild && c == '*':
			flush()
			if n := len(p.toks); n == 0 || p.toks[n-1].kind != tokStar { // "**" is "*"
				p.toks = append(p.toks, token{kind: tokStar})
			}
			i++
		case wild && c == '?':
			flush()
			p.toks = append(p.toks, token{kind: tokOne})
			i++
		case vars && c == '$' && i+1 < len(s) && s[i+1] == '{':
			t, n, err := parseVariable(field, s[i:])
			if err != nil {
				return p, err
			}
			i += n
			if t.kind == tokLit {
				lit.WriteString(t.text)
				continue
			}
			flush()
			if p.nvars == maxVars {
				return p, errorf(ErrUnsupported, field, "%s: at most %d policy variables in one value", quote(s), maxVars)
			}
			t.vi = uint8(p.nvars)
			p.nvars++
			p.toks = append(p.toks, t)
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	switch {
	case len(p.toks) == 0:
		p.isLit = true
	case len(p.toks) == 1 && p.toks[0].kind == tokLit:
		p.isLit, p.lit = true, p.toks[0].text
	case len(p.toks) == 1 && p.toks[0].kind == tokStar:
		p.isAny = true
	case len(p.toks) == 2 && p.toks[0].kind == tokLit && p.toks[1].kind == tokStar:
		p.isPrefix, p.lit = true, p.toks[0].text
	}
	return p, nil
}

// parseVariable reads "${...}" at the start of s: an escape (${*}, ${?},
// ${$}, returned as a literal token) or a variable with an optional
// default value (${aws:username, 'nobody'}, a quote doubled inside it).
// It returns the token and the length read.
func parseVariable(field, s string) (token, int, error) {
	i := 2 // after "${"
	switch {
	case strings.HasPrefix(s[i:], "*}"), strings.HasPrefix(s[i:], "?}"), strings.HasPrefix(s[i:], "$}"):
		return token{kind: tokLit, text: s[i : i+1]}, i + 2, nil
	}
	skip := func() {
		for i < len(s) && s[i] == ' ' {
			i++
		}
	}
	skip()
	start := i
	for i < len(s) && s[i] != '}' && s[i] != ',' && s[i] != ' ' {
		i++
	}
	name := s[start:i]
	skip()
	var t token
	if i < len(s) && s[i] == ',' {
		i++
		skip()
		if i >= len(s) || s[i] != '\'' {
			return t, 0, errorf(ErrSyntax, field, "policy variable %s: a default value is quoted with ' '", quote(s))
		}
		i++
		var def strings.Builder
		closed := false
		for i < len(s) {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					def.WriteByte('\'')
					i += 2
					continue
				}
				i++
				closed = true
				break
			}
			def.WriteByte(s[i])
			i++
		}
		if !closed {
			return t, 0, errorf(ErrSyntax, field, "policy variable %s: unterminated default value", quote(s))
		}
		t.text, t.hasDefault = def.String(), true
		skip()
	}
	if i >= len(s) || s[i] != '}' {
		return t, 0, errorf(ErrSyntax, field, "policy variable %s is not closed with '}' (write ${$} for a literal '$')", quote(s))
	}
	i++
	if name == "" {
		return t, 0, errorf(ErrSyntax, field, "empty policy variable in %s", quote(s))
	}
	ref, info, err := lookupKey(name)
	if err != nil {
		return t, 0, errorf(ErrUnsupported, field, "policy variable ${%s}: %v", name, err)
	}
	if info.multi {
		return t, 0, errorf(ErrUnsupported, field, "policy variable ${%s}: a multivalued key cannot be a variable", name)
	}
	t.kind, t.key = tokVar, ref
	return t, i, nil
}

// literalPrefix is the literal text before the first wildcard or
// variable.
func (p *pattern) literalPrefix() string {
	if p.isLit {
		return p.lit
	}
	if len(p.toks) > 0 && p.toks[0].kind == tokLit {
		return p.toks[0].text
	}
	return ""
}

// match reports whether s matches the pattern, with the request's values
// for its variables. A variable with no value in the request and no
// default makes the pattern match nothing, as AWS documents ("Policy
// variables with no value"). fold compares letters case-insensitively.
func (e *evaluation) match(p *pattern, s string, fold bool) bool {
	switch {
	case p.isAny:
		return true
	case p.isLit && fold:
		return strings.EqualFold(p.lit, s)
	case p.isLit:
		return p.lit == s
	case p.isPrefix && !fold:
		return strings.HasPrefix(s, p.lit)
	}
	var vals [maxVars]string
	if p.nvars > 0 {
		for i := range p.toks {
			t := &p.toks[i]
			if t.kind != tokVar {
				continue
			}
			v, ok := e.variable(t.key)
			if !ok {
				if !t.hasDefault {
					return false
				}
				v = t.text
			}
			vals[t.vi] = v
		}
	}
	toks := p.toks
	ti, si := 0, 0
	starTi, starSi := -1, 0
	for {
		if ti < len(toks) {
			t := &toks[ti]
			switch t.kind {
			case tokStar:
				starTi, starSi = ti, si
				ti++
				continue
			case tokOne:
				if si < len(s) {
					_, w := utf8.DecodeRuneInString(s[si:])
					si += w
					ti++
					continue
				}
			default:
				lit := t.text
				if t.kind == tokVar {
					lit = vals[t.vi]
				}
				if n, ok := hasPrefix(s[si:], lit, fold); ok {
					si += n
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		// Mismatch: let the last '*' take one more character.
		if starTi < 0 || starSi >= len(s) {
			return false
		}
		_, w := utf8.DecodeRuneInString(s[starSi:])
		starSi += w
		si, ti = starSi, starTi+1
	}
}

// hasPrefix reports whether s begins with prefix, and how many bytes of s
// the prefix covers (with fold, letters compare as Unicode simple case
// folding does, as strings.EqualFold).
func hasPrefix(s, prefix string, fold bool) (int, bool) {
	if !fold {
		if strings.HasPrefix(s, prefix) {
			return len(prefix), true
		}
		return 0, false
	}
	i := 0
	for _, pr := range prefix {
		if i >= len(s) {
			return 0, false
		}
		sr, w := utf8.DecodeRuneInString(s[i:])
		if !equalFoldRune(sr, pr) {
			return 0, false
		}
		i += w
	}
	return i, true
}

func equalFoldRune(a, b rune) bool {
	if a == b {
		return true
	}
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		return lowerASCII(byte(a)) == lowerASCII(byte(b))
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// globFold matches s against pattern, where '*' is any run of characters
// and '?' any one, comparing ASCII letters case-insensitively; pattern
// is lower-case. It serves action names, which are ASCII.
func globFold(pattern, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pattern) && (pattern[pi] == '?' || pattern[pi] == lowerASCII(s[si])):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}
