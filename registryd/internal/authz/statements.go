package authz

import (
	"sync"

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
type statementTexts struct {
	mu sync.RWMutex
	m  map[statementKey]string
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
	s.mu.RLock()
	t, ok := s.m[k]
	s.mu.RUnlock()
	if ok {
		return t
	}
	t = prefix + d.Reason()
	s.mu.Lock()
	if s.m == nil || len(s.m) >= maxStatementTexts {
		s.m = make(map[statementKey]string)
	}
	s.m[k] = t
	s.mu.Unlock()
	return t
}
