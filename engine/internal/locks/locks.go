// Package locks holds striped mutexes: a fixed set of mutexes that
// serialise read-modify-write cycles per name or digest without a map
// entry per key. Two keys may share a stripe; that only serialises them.
package locks

import (
	"hash/maphash"
	"slices"
	"sync"
)

// Striped is 256 mutexes chosen by a key's hash. The zero value is not
// ready: call Init first.
type Striped struct {
	seed  maphash.Seed
	locks [256]sync.Mutex
	// shared, when set (InitShared), is taken after the stripe, under
	// the key prefixed with ns: the lock other processes take too.
	shared Shared
	ns     string
}

// Shared is a lock shared with other processes (several replicas over
// one database): the stripe orders this process's own holders of a key,
// Shared the processes.
type Shared interface {
	// Lock waits for name and returns its release.
	Lock(name string) (unlock func())
	// LockMany takes several names without deadlock against other
	// processes' LockMany, and returns the release of all.
	LockMany(names []string) (unlock func())
}

// Init seeds the hash.
func (s *Striped) Init() { s.seed = maphash.MakeSeed() }

// InitShared seeds the hash and makes every lock also take shared's lock
// of ns+key, after the stripe.
func (s *Striped) InitShared(shared Shared, ns string) {
	s.Init()
	s.shared, s.ns = shared, ns
}

func (s *Striped) stripe(key string) int {
	return int(maphash.String(s.seed, key) % uint64(len(s.locks)))
}

// Lock takes key's stripe and returns its release.
func (s *Striped) Lock(key string) (unlock func()) {
	m := &s.locks[s.stripe(key)]
	m.Lock()
	if s.shared == nil {
		return m.Unlock
	}
	release := s.shared.Lock(s.ns + key)
	return func() {
		release()
		m.Unlock()
	}
}

// LockMany takes the stripes of several keys, each once, in stripe order
// (no deadlock with callers holding one stripe), and returns their
// release.
func (s *Striped) LockMany(keys []string) (unlock func()) {
	idx := make([]int, 0, len(keys))
	for _, k := range keys {
		idx = append(idx, s.stripe(k))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		s.locks[i].Lock()
	}
	if s.shared != nil {
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = s.ns + k
		}
		release := s.shared.LockMany(names)
		return func() {
			release()
			for _, i := range slices.Backward(idx) {
				s.locks[i].Unlock()
			}
		}
	}
	return func() {
		for _, i := range slices.Backward(idx) {
			s.locks[i].Unlock()
		}
	}
}
