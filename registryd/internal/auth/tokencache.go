package auth

// The login tokens checked already, by the Authorization header that
// carried them: a client sends the same header on every request of its
// login (12 hours), and a token's check (decoding the credentials and
// the token, and its HMAC) is most of what authenticating it costs.

import (
	"encoding/base64"
	"strings"
	"sync"
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
type checkedTokens struct {
	mu sync.RWMutex
	m  map[string]tokenClaims
}

// get returns the claims of the token header h carried, when it was
// verified before.
func (t *checkedTokens) get(h string) (tokenClaims, bool) {
	if !mayCarryToken(h) {
		return tokenClaims{}, false
	}
	t.mu.RLock()
	c, ok := t.m[h]
	t.mu.RUnlock()
	return c, ok
}

// put records that header h carried a token verified as c.
func (t *checkedTokens) put(h string, c tokenClaims) {
	if !mayCarryToken(h) {
		return // "basic" in another case, say: checked again each time
	}
	t.mu.Lock()
	if t.m == nil || len(t.m) >= maxAuthCache {
		t.m = make(map[string]tokenClaims)
	}
	t.m[h] = c
	t.mu.Unlock()
}
