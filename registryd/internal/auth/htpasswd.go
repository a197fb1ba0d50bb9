package auth

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
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
// (bcrypt only) and caches successful checks for ttl, keyed by a SHA-256
// of user and password (never the password itself), since one bcrypt of
// the default cost costs ~50-90 ms of CPU. User AWS is never among them:
// it is the login tokens' user, which no password check ever sees.
type passwords struct {
	users map[string][]byte
	ttl   time.Duration
	now   func() time.Time
	// compare is bcrypt.CompareHashAndPassword (a test counts its calls).
	compare func(hash, password []byte) error

	// cache maps the key of user and password to when the entry
	// expires; cached counts its entries. Reads take no lock (sync.Map):
	// a read lock's shared counter would bounce between the cores on
	// every request.
	cache  sync.Map // [sha256.Size]byte -> time.Time
	cached atomic.Int64
	// checking runs one bcrypt at a time per user and password: the
	// requests that come with the same credentials meanwhile (a client's
	// parallel layer downloads, all missing the cache when its entry
	// expires) wait for that one's answer instead of each spending a
	// bcrypt of their own.
	checking singleflight.Group
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
	a := &passwords{users: map[string][]byte{}, ttl: ttl, now: time.Now, compare: bcrypt.CompareHashAndPassword}
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

// check reports whether user and password are valid.
func (a *passwords) check(user, password string) bool {
	hash, ok := a.users[user]
	if !ok {
		// Spend the same time as a real check, so that timing does not
		// tell which users exist.
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	key := cacheKey(user, password)
	if a.ttl > 0 {
		if exp, hit := a.cache.Load(key); hit && a.now().Before(exp.(time.Time)) {
			return true
		}
	}
	// The same key is the same user and password: the same answer.
	valid, _, _ := a.checking.Do(string(key[:]), func() (any, error) {
		if a.compare(hash, []byte(password)) != nil {
			return false, nil
		}
		if a.ttl > 0 {
			if a.cached.Add(1) > maxAuthCache {
				a.cache.Clear()
				a.cached.Store(1)
			}
			a.cache.Store(key, a.now().Add(a.ttl))
		}
		return true, nil
	})
	return valid.(bool)
}

// cacheKey is the key of user and password in the cache of successful
// checks: a SHA-256 of both, computed without a copy on the heap.
func cacheKey(user, password string) [sha256.Size]byte {
	var buf [128]byte
	b := append(buf[:0], user...)
	b = append(b, 0)
	b = append(b, password...)
	return sha256.Sum256(b)
}

// dummyHash is a bcrypt hash of a random string, cost 10.
var dummyHash = []byte("$2a$10$CwTycUXWue0Thq9StjUM0uJ8.6WDv5Xq5aHUo3ZP6lPW.BxTvD9mK")
