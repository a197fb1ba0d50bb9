package locks

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestLockManySharedStripes takes many keys at once, with collisions and
// repeats, from several goroutines, while others take single keys: no
// deadlock, and the counters each lock guards add up.
func TestLockManySharedStripes(t *testing.T) {
	var s Striped
	s.Init()
	counts := make([]int, 600)  // counts[i] is guarded by key i's stripe
	keys := make([]string, 600) // more keys than stripes: collisions
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if g%2 == 0 {
					a, b := (i*7)%600, (i*13)%600
					unlock := s.LockMany([]string{keys[a], keys[b], keys[a]})
					counts[a]++
					counts[b]++
					unlock()
				} else {
					a := (i * 7) % 600
					unlock := s.Lock(keys[a])
					counts[a]++
					unlock()
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range counts {
		total += n
	}
	assert.Equal(t, 4*200*2+4*200, total)
}
