package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/singleflight"
)

// ErrHtpasswd reports an unusable htpasswd file.
var ErrHtpasswd = errors.New("auth: bad htpasswd file")

// maxAuthCache bounds the cache of successful checks.
const maxAuthCache = 4096

// passwords checks basic-auth credentials against htpasswd entries
// (bcrypt only) and caches successful checks for ttl, by the
// Authorization header that carried them (never the header itself: see
// verifiedHeader), since one bcrypt of the default cost costs ~50-90 ms of
// CPU. User AWS is never among them: it is the login tokens' user, which
// no password check ever sees. A reload of the files builds a new
// passwords, with an empty cache.
type passwords struct {
	users map[string][]byte
	ttl   time.Duration
	now   func() time.Time
	// until is time.Until (a test moves the clock with now): on the
	// time an entry was stored with, it reads the monotonic clock
	// alone, half of what time.Now reads.
	until func(time.Time) time.Duration
	// compare is bcrypt.CompareHashAndPassword (a test counts its calls).
	compare func(hash, password []byte) error

	// seed keys the hash that finds a header's entry in verified: a
	// random one per passwords, so nobody outside the process can tell
	// or choose where a header lands.
	seed maphash.Seed
	// verified maps the keyed hash of an Authorization header whose
	// check succeeded (maphash, seed) to its entry; cached counts its
	// entries. Reads take no lock (sync.Map): a read lock's shared
	// counter would bounce between the cores on every request.
	verified sync.Map // uint64 -> *verifiedHeader
	cached   atomic.Int64
	// checking runs one bcrypt at a time per Authorization header: the
	// requests that come with the same credentials meanwhile (a client's
	// parallel layer downloads, all missing the cache when its entry
	// expires) wait for that one's answer instead of each spending a
	// bcrypt of their own.
	checking singleflight.Group
}

// verifiedHeader is the cache's entry for an Authorization header whose
// password was checked: the header's SHA-256, never the header (the
// header holds the password, in base64). A request's header is served
// from the entry its keyed hash finds only if the header's SHA-256 is
// the entry's (compared in constant time) and the entry has not
// expired, so a header that merely lands on the entry (a 64-bit hash
// collision, by chance or chosen) is checked with bcrypt like any other.
// What the heap holds of a verified password is therefore a SHA-256 of
// the header and a 64-bit keyed hash of it: a password is recovered
// from them only by guessing it, as from the SHA-256 the cache held
// before, and no header but the verified one matches an entry's SHA-256.
type verifiedHeader struct {
	sum     [sha256.Size]byte
	user    string
	expires time.Time
}

// loadHtpasswd reads an htpasswd file.
func loadHtpasswd(path string, ttl time.Duration) (*passwords, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHtpasswd, err)
	}
	defer f.Close()
	return parseHtpasswd(bufio.NewScanner(f), path, ttl)
}

func parseHtpasswd(sc *bufio.Scanner, path string, ttl time.Duration) (*passwords, error) {
	a := &passwords{users: map[string][]byte{}, ttl: ttl, now: time.Now, until: time.Until, compare: bcrypt.CompareHashAndPassword, seed: maphash.MakeSeed()}
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		user, hash, ok := strings.Cut(l, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("%w: %s:%d: want user:hash", ErrHtpasswd, path, line)
		}
		switch {
		case user == LoginUser:
			return nil, fmt.Errorf("%w: %s:%d: user %q is the user name of registry login tokens (docker login --username AWS with a GetAuthorizationToken token) and cannot have a password; choose another name", ErrHtpasswd, path, line, user)
		case !validUserName(user):
			return nil, fmt.Errorf("%w: %s:%d: user %q: an IAM user name is 1 to 64 of A-Z a-z 0-9 + = , . @ _ -", ErrHtpasswd, path, line, user)
		}
		if _, dup := a.users[user]; dup {
			return nil, fmt.Errorf("%w: %s:%d: user %q given twice", ErrHtpasswd, path, line, user)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: user %q: only bcrypt hashes are supported (htpasswd -B)", ErrHtpasswd, path, line, user)
		}
		a.users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrHtpasswd, path, err)
	}
	if len(a.users) == 0 {
		return nil, fmt.Errorf("%w: %s: no users", ErrHtpasswd, path)
	}
	return a, nil
}

// setClock makes now the passwords' clock (tests).
func (a *passwords) setClock(now func() time.Time) {
	a.now = now
	a.until = func(t time.Time) time.Duration { return t.Sub(now()) }
}

// cachedUser returns the user whose password Authorization header h
// carried, when a check of that header succeeded less than ttl ago. It
// decodes nothing: a keyed hash of h finds the entry, and h's SHA-256
// must be the entry's.
func (a *passwords) cachedUser(h string) (string, bool) {
	if a.ttl <= 0 || h == "" {
		return "", false
	}
	v, ok := a.verified.Load(maphash.String(a.seed, h))
	if !ok {
		return "", false
	}
	e := v.(*verifiedHeader)
	sum := headerSum(h)
	if subtle.ConstantTimeCompare(sum[:], e.sum[:]) != 1 || a.until(e.expires) <= 0 {
		return "", false
	}
	return e.user, true
}

// check reports whether user and password, decoded from Authorization
// header h, are valid. None of them is kept (the caller may reuse their
// memory); a bcrypt works on a copy of the password.
func (a *passwords) check(h string, user, password []byte) bool {
	hash, ok := a.users[string(user)]
	if !ok {
		// Spend the same time as a real check, so that timing does not
		// tell which users exist.
		_ = bcrypt.CompareHashAndPassword(dummyHash, password)
		return false
	}
	if u, ok := a.cachedUser(h); ok && u == string(user) {
		return true
	}
	sum := headerSum(h)
	pw := bytes.Clone(password)
	name := string(user)
	// The same header is the same user and password: the same answer.
	valid, _, _ := a.checking.Do(string(sum[:]), func() (any, error) {
		if a.compare(hash, pw) != nil {
			return false, nil
		}
		if a.ttl > 0 {
			if a.cached.Add(1) > maxAuthCache {
				a.verified.Clear()
				a.cached.Store(1)
			}
			a.verified.Store(maphash.String(a.seed, h), &verifiedHeader{sum: sum, user: name, expires: a.now().Add(a.ttl)})
		}
		return true, nil
	})
	return valid.(bool)
}

// headerSum is the SHA-256 of Authorization header h, computed without a
// copy on the heap for a header of up to 128 bytes (a password's).
func headerSum(h string) [sha256.Size]byte {
	var buf [128]byte
	if len(h) <= len(buf) {
		return sha256.Sum256(append(buf[:0], h...))
	}
	return sha256.Sum256([]byte(h))
}

// dummyHash is a bcrypt hash of a random string, cost 10.
var dummyHash = []byte("$2a$10$CwTycUXWue0Thq9StjUM0uJ8.6WDv5Xq5aHUo3ZP6lPW.BxTvD9mK")
