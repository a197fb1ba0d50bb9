package console

// Server-side sessions: a random id in the cookie, everything else here.

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"
)

// cookieName is the session cookie's name. With the __Host- prefix the
// browser takes the cookie only when it is Secure, has no Domain and has
// Path=/, so over TLS the plain name is replaced by __Host-berth_console.
const (
	cookieName       = "berth_console"
	secureCookieName = "__Host-berth_console"
)

// Session defaults.
const (
	// DefaultSessionIdle ends a session nobody used for this long.
	DefaultSessionIdle = 30 * time.Minute
	// DefaultSessionMaxAge ends a session this long after sign-in,
	// however busy.
	DefaultSessionMaxAge = 12 * time.Hour
	// DefaultMaxSessions bounds the sessions held at once.
	DefaultMaxSessions = 10_000
)

// errSessionsFull refuses a new session when the store holds
// MaxSessions live ones.
var errSessionsFull = errors.New("console: too many sessions")

// session is one browser's sign-in.
type session struct {
	// user is the signed-in user; "" for an anonymous session (an open
	// registry's visitor, or a browser on the sign-in form).
	user string
	// signedIn is set for a session made by a sign-in (or for an open
	// registry's anonymous visitor, who needs none).
	signedIn bool
	// csrf is the session's synchronizer token, in every form it renders.
	csrf     string
	created  time.Time
	lastSeen time.Time

	// flash is a message for the next page (what an action did).
	flashMu sync.Mutex
	flash   string
}

// setFlash keeps msg for the next page the session renders.
func (ss *session) setFlash(msg string) {
	ss.flashMu.Lock()
	ss.flash = msg
	ss.flashMu.Unlock()
}

// takeFlash returns the message an action left, once.
func (ss *session) takeFlash() string {
	ss.flashMu.Lock()
	defer ss.flashMu.Unlock()
	m := ss.flash
	ss.flash = ""
	return m
}

// sessions holds the live sessions by the SHA-256 of their id (the id
// itself is only in the browser's cookie).
type sessions struct {
	idle, maxAge time.Duration
	max          int
	now          func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]*session
}

func newSessions(idle, maxAge time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{idle: idle, maxAge: maxAge, max: max, now: now, m: map[[sha256.Size]byte]*session{}}
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func sessionKey(id string) [sha256.Size]byte { return sha256.Sum256([]byte(id)) }

// create starts a session for user and returns its id.
func (s *sessions) create(user string, signedIn bool) (string, *session, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		s.sweepLocked(now)
		if len(s.m) >= s.max {
			return "", nil, errSessionsFull
		}
	}
	id := randomToken()
	ss := &session{user: user, signedIn: signedIn, csrf: randomToken(), created: now, lastSeen: now}
	s.m[sessionKey(id)] = ss
	return id, ss, nil
}

// get returns the live session id names and marks it used; an expired
// one is dropped.
func (s *sessions) get(id string) (*session, bool) {
	if id == "" {
		return nil, false
	}
	now := s.now()
	k := sessionKey(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[k]
	if !ok {
		return nil, false
	}
	if s.expired(ss, now) {
		delete(s.m, k)
		return nil, false
	}
	ss.lastSeen = now
	return ss, true
}

// end drops the session id names.
func (s *sessions) end(id string) {
	s.mu.Lock()
	delete(s.m, sessionKey(id))
	s.mu.Unlock()
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.lastSeen) >= s.idle || now.Sub(ss.created) >= s.maxAge
}

func (s *sessions) sweepLocked(now time.Time) {
	for k, ss := range s.m {
		if s.expired(ss, now) {
			delete(s.m, k)
		}
	}
}

// validCSRF reports whether token is the session's CSRF token.
func (ss *session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(ss.csrf)) == 1
}

// sessionCookie returns the cookie that carries id: HttpOnly,
// SameSite=Strict, and over TLS Secure with the __Host- prefix.
func sessionCookie(r *http.Request, id string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: cookieName, Value: id, Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		MaxAge: int(maxAge / time.Second)}
	if r.TLS != nil {
		c.Name, c.Path, c.Secure = secureCookieName, "/", true
	}
	if id == "" {
		c.MaxAge = -1
	}
	return c
}

// sessionID returns the id of the request's session cookie.
func sessionID(r *http.Request) string {
	name := cookieName
	if r.TLS != nil {
		name = secureCookieName
	}
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}
