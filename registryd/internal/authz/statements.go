package authz

import (
	"sync"
	"sync/atomic"

	"github.com/berthstore/berth/engine"
)

// maxStatementTexts bounds the memo of statement texts: far more than
// the statements a registry's policies hold; past it the memo starts
// over.
const maxStatementTexts = 4096

// statementTexts memoizes what the audit record of a decision says of its
// deciding statement (a prefix, such as why an open registry let the
// request through, and Decision.Reason): the same few statements decide
// nearly every request, and building the text costs more than the rest of
// the record (three allocations and the quoting of the policy's name and
// Sid). The text is a function of the decision's value, the resource
// aside, so equal decisions share it.
//
// Reads take no lock (sync.Map): a read lock's shared counter would bounce
// between the cores on every request.
type statementTexts struct {
	m sync.Map     // statementKey -> string
	n atomic.Int64 // entries stored since the last start over
}

// statementKey is a decision without its resource, and the prefix.
type statementKey struct {
	d      engine.Decision
	prefix string
}

// text returns prefix + d.Reason().
func (s *statementTexts) text(prefix string, d engine.Decision) string {
	d.Resource = "" // Reason does not name it: one text for every repository
	k := statementKey{d: d, prefix: prefix}
	if t, ok := s.m.Load(k); ok {
		return t.(string)
	}
	t := prefix + d.Reason()
	if s.n.Add(1) > maxStatementTexts {
		s.m.Clear()
		s.n.Store(1)
	}
	s.m.Store(k, t)
	return t
}

// len is the number of texts held.
func (s *statementTexts) len() int {
	n := 0
	s.m.Range(func(any, any) bool { n++; return true })
	return n
}
