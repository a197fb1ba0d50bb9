package auth

// Signing in to the console with the registry's identities: an htpasswd
// user and password (as the OCI API's basic credentials), or an ECR
// access key ID and its secret access key (the key's user).

import (
	"crypto/subtle"

	"github.com/berthstore/berth/engine"
)

// SignIn returns the principal of user and password: an htpasswd user
// with its password, or an ECR access key ID with its secret access key
// (the principal is then the key's user, as on the ECR API). Login tokens
// (user AWS) do not sign in: they are for registry clients. A refusal
// wraps ErrUnauthenticated; with authentication off, no one signs in
// (the console is then open, as the APIs are).
func (a *Authenticator) SignIn(user, password string) (engine.Principal, error) {
	if !a.enabled || user == "" || user == LoginUser {
		return engine.Principal{}, ErrUnauthenticated
	}
	c := a.current.Load()
	if c.keys != nil {
		if secret, ok := c.keys.lookup(user); ok {
			if subtle.ConstantTimeCompare([]byte(secret), []byte(password)) == 1 {
				return c.principals[c.keys.user(user)], nil
			}
			return engine.Principal{}, ErrUnauthenticated
		}
	}
	if c.passwords != nil && c.passwords.check(basicHeader(user, password), []byte(user), []byte(password)) {
		return c.principals[user], nil
	}
	return engine.Principal{}, ErrUnauthenticated
}

// Anonymous is the principal of an anonymous caller (an open registry's).
func (a *Authenticator) Anonymous() engine.Principal { return a.anonymous() }

// Holds reports whether user still holds credentials (a password or an
// access key) in the files in force: a console session of a user a
// reload removed ends.
func (a *Authenticator) Holds(user string) bool { return a.current.Load().holders[user] }
