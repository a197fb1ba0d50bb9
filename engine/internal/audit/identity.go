package audit

// The userIdentity element of a record, encoded once per caller: the same
// few principals make nearly every request, and an authenticated caller's
// element (type, principalId, arn, accountId, userName) is what makes its
// record longer to encode than an anonymous caller's.

import (
	"sync"
	"sync/atomic"
)

// maxIdentities bounds the memo of encoded identities: past it the memo
// starts over. An entry is a few hundred bytes.
const maxIdentities = 4096

// identityKey is what a record's userIdentity element is made of.
type identityKey struct {
	typ                        PrincipalType
	userID, arn, account, user string
}

// identityKeyOf is the userIdentity of r.
func identityKeyOf(r *Record) identityKey {
	return identityKey{typ: r.PrincipalType, userID: r.UserID, arn: r.PrincipalARN, account: r.Account, user: r.UserName}
}

// identities memoizes encoded userIdentity elements, by the caller's ARN:
// an entry is served only to a record whose every identity field is the
// entry's, so a record is written exactly as appendIdentity writes it,
// whether it is found or not. (Looking up by the ARN alone and then
// comparing the fields costs one string's hash where the whole key would
// cost five; the fields of one principal's records share their memory,
// so comparing them is mostly comparing pointers.)
//
// Reads take no lock (sync.Map).
type identities struct {
	m sync.Map     // ARN -> *identity
	n atomic.Int64 // entries stored since the last start over
}

// identity is an entry of identities: the fields and their encoding.
type identity struct {
	key identityKey
	enc []byte
}

// appendIdentity appends the userIdentity element of k, without its
// closing brace: `"userIdentity":{"type":...`, then the fields that are
// set.
func appendIdentity(b []byte, k *identityKey) []byte {
	b = append(b, `"userIdentity":{"type":`...)
	b = appendString(b, string(k.typ))
	b = appendField(b, "principalId", k.userID)
	b = appendField(b, "arn", k.arn)
	b = appendField(b, "accountId", k.account)
	return appendField(b, "userName", k.user)
}

// append appends r's userIdentity element as appendIdentity does, from
// the memo when it holds it. A nil memo encodes every time.
func (ids *identities) append(b []byte, r *Record) []byte {
	k := identityKeyOf(r)
	if ids == nil || k.typ != PrincipalIAMUser {
		// An anonymous or local caller's element is short: not worth an
		// entry.
		return appendIdentity(b, &k)
	}
	if v, ok := ids.m.Load(k.arn); ok {
		if e := v.(*identity); e.key == k {
			return append(b, e.enc...)
		}
	}
	e := &identity{key: k, enc: appendIdentity(nil, &k)}
	if ids.n.Add(1) > maxIdentities {
		ids.m.Clear()
		ids.n.Store(1)
	}
	ids.m.Store(k.arn, e)
	return append(b, e.enc...)
}
