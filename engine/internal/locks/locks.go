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
}

// Init seeds the hash.
func (s *Striped) Init() { s.seed = maphash.MakeSeed() }

func (s *Striped) stripe(key string) int {
	return int(maphash.String(s.seed, key) % uint64(len(s.locks)))
}

// Lock takes key's stripe and returns its release.
func (s *Striped) Lock(key string) (unlock func()) {
	m := &s.locks[s.stripe(key)]
	m.Lock()
	return m.Unlock
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
	return func() {
		for _, i := range slices.Backward(idx) {
			s.locks[i].Unlock()
		}
	}
}
