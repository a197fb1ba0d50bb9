package crypt

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// PKCS11Scheme starts every key name served by a hardware security module.
const PKCS11Scheme = "pkcs11:"

// PKCS11URI is the part of an RFC 7512 PKCS#11 URI that names a
// key-encryption key: the token's label and the key object's label, as
// in pkcs11:token=berth;object=team-a.
//
// Berth accepts the path attributes token and object (both required)
// and type (which must be secret-key). It refuses id (Berth numbers key
// versions with CKA_ID), every other attribute and every query
// attribute: a key name is stored in repository settings, so a
// pin-value there would leak the PIN, and a module-path would let a
// repository setting choose the code the daemon loads.
type PKCS11URI struct {
	// Token is the token label (CKA_LABEL of the token, at most 32 bytes).
	Token string
	// Object is the label (CKA_LABEL) shared by every version of the key.
	Object string
}

// IsPKCS11URI reports whether name is a pkcs11: URI (by its scheme; it
// may still be malformed).
func IsPKCS11URI(name string) bool {
	return len(name) >= len(PKCS11Scheme) && strings.EqualFold(name[:len(PKCS11Scheme)], PKCS11Scheme)
}

// ParsePKCS11URI parses an RFC 7512 URI naming a key. Errors wrap
// ErrInvalidKey.
func ParsePKCS11URI(s string) (PKCS11URI, error) {
	var u PKCS11URI
	if !IsPKCS11URI(s) {
		return u, fmt.Errorf("%w: %q is not a pkcs11: URI", ErrInvalidKey, s)
	}
	rest := s[len(PKCS11Scheme):]
	if strings.ContainsAny(rest, "?#") {
		return u, fmt.Errorf("%w: %q: query and fragment attributes are not accepted in a key name", ErrInvalidKey, s)
	}
	seen := map[string]bool{}
	for _, attr := range strings.Split(rest, ";") {
		if attr == "" {
			continue
		}
		name, raw, ok := strings.Cut(attr, "=")
		if !ok {
			return u, fmt.Errorf("%w: %q: attribute %q has no value", ErrInvalidKey, s, attr)
		}
		name = strings.ToLower(name)
		if seen[name] {
			return u, fmt.Errorf("%w: %q: attribute %q repeated", ErrInvalidKey, s, name)
		}
		seen[name] = true
		v, err := url.PathUnescape(raw)
		if err != nil {
			return u, fmt.Errorf("%w: %q: attribute %q: %v", ErrInvalidKey, s, name, err)
		}
		switch name {
		case "token":
			u.Token = v
		case "object":
			u.Object = v
		case "type":
			if v != "secret-key" {
				return u, fmt.Errorf("%w: %q: type %q (a key-encryption key is a secret-key)", ErrInvalidKey, s, v)
			}
		default:
			return u, fmt.Errorf("%w: %q: attribute %q is not supported (use token and object)", ErrInvalidKey, s, name)
		}
	}
	switch {
	case u.Token == "":
		return u, fmt.Errorf("%w: %q: token attribute required", ErrInvalidKey, s)
	case u.Object == "":
		return u, fmt.Errorf("%w: %q: object attribute required", ErrInvalidKey, s)
	case len(u.Token) > 32:
		return u, fmt.Errorf("%w: %q: token label longer than 32 bytes", ErrInvalidKey, s)
	}
	return u, nil
}

// String returns the canonical form pkcs11:token=T;object=O, every byte
// outside RFC 3986's unreserved set percent-encoded.
func (u PKCS11URI) String() string {
	return PKCS11Scheme + "token=" + pctEncode(u.Token) + ";object=" + pctEncode(u.Object)
}

func pctEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// PKCS11Config configures a PKCS11Provider: which module to load, which
// token to use and how to log in.
type PKCS11Config struct {
	// Module is the path of the PKCS#11 module (a shared library), e.g.
	// /usr/lib/softhsm/libsofthsm2.so. Required.
	Module string
	// Token is the label of the token holding the keys. Key names must
	// name this token. Default "berth".
	Token string
	// PIN is the user PIN of the token.
	PIN string
	// MaxSessions bounds the sessions opened on the token (one operation
	// runs in a session at a time). Default 4.
	MaxSessions int
	// ReconnectInterval is the least time between two attempts to reach
	// the module again after it failed; calls in between fail at once
	// with ErrUnavailable. Default 1 second.
	ReconnectInterval time.Duration
	// KeyInfoTTL bounds how long the provider trusts what it learned of
	// a key (object handles, versions, state) before asking the token
	// again, so that a rotation made by another process is seen.
	// Default 30 seconds.
	KeyInfoTTL time.Duration
	// FaultInjector is a test seam: when set, it is called before each
	// call into the module with the call's name (e.g. "Encrypt"), and an
	// error it returns is taken as the token being unreachable (as if
	// the module had answered CKR_DEVICE_REMOVED). Default nil.
	FaultInjector func(op string) error
	// Now is the provider's clock: ReconnectInterval and KeyInfoTTL are
	// measured on it, and a destroyed key's tombstone is dated by it.
	// Default time.Now; tests pass a manual clock's Now to let an interval
	// pass without waiting for it.
	Now func() time.Time
}

func (c *PKCS11Config) ensureDefaults() {
	if c.Token == "" {
		c.Token = "berth"
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 4
	}
	if c.ReconnectInterval == 0 {
		c.ReconnectInterval = time.Second
	}
	if c.KeyInfoTTL == 0 {
		c.KeyInfoTTL = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}
