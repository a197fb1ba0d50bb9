package auth

// The login tokens checked already, by the Authorization header that
// carried them: a client sends the same header on every request of its
// login (12 hours), and a token's check (decoding the credentials and
// the token, and its HMAC) is most of what authenticating it costs.

import (
	"encoding/base64"
	"strings"
	"sync"
	"sync/atomic"
)

// tokenHeaderPrefix is how the Authorization header of every login token
// starts after "Basic ": the base64 of "AWS:berth" (nine bytes, twelve
// characters, so the encoding of what follows does not change them).
var tokenHeaderPrefix = base64.StdEncoding.EncodeToString([]byte(LoginUser + ":" + loginTokenPrefix[:5]))

// mayCarryToken reports whether Authorization header h may carry a login
// token: the headers of passwords are never looked up nor kept.
func mayCarryToken(h string) bool {
	const basic = "Basic "
	return len(h) > len(basic)+len(tokenHeaderPrefix) && strings.HasPrefix(h[len(basic):], tokenHeaderPrefix) &&
		strings.EqualFold(h[:len(basic)], basic)
}

// checkedTokens maps the Authorization header values that carried a
// login token this registry verified to what the token was minted for.
// Only verified tokens enter (never a password: the header of a password
// holds it, in base64). Each use still checks the token's expiry and
// that its user holds credentials; the map starts over once it holds
// maxAuthCache headers.
//
// Reads take no lock (sync.Map): a read lock's shared counter would
// bounce between the cores on every request.
type checkedTokens struct {
	m sync.Map     // string -> tokenClaims
	n atomic.Int64 // entries stored since the last start over
}

// get returns the claims of the token header h carried, when it was
// verified before.
func (t *checkedTokens) get(h string) (tokenClaims, bool) {
	if !mayCarryToken(h) {
		return tokenClaims{}, false
	}
	v, ok := t.m.Load(h)
	if !ok {
		return tokenClaims{}, false
	}
	return v.(tokenClaims), true
}

// put records that header h carried a token verified as c.
func (t *checkedTokens) put(h string, c tokenClaims) {
	if !mayCarryToken(h) {
		return // "basic" in another case, say: checked again each time
	}
	if t.n.Add(1) > maxAuthCache {
		t.m.Clear()
		t.n.Store(1)
	}
	t.m.Store(h, c)
}

// len is the number of headers held.
func (t *checkedTokens) len() int {
	n := 0
	t.m.Range(func(any, any) bool { n++; return true })
	return n
}
