package keycache

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// fakeNow is a clock the test moves by hand.
type fakeNow struct{ t time.Time }

func (f *fakeNow) now() time.Time { return f.t }

func key(blob, kek string) Key { return Key{Blob: blob, KEK: kek, Version: 1, Wrapped: "w-" + blob} }

func TestCacheExpires(t *testing.T) {
	clk := &fakeNow{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := New(10, time.Minute, clk.now)
	c.Put(key("a", "k"), []byte("A"))
	assert.Equal(t, []byte("A"), c.Get(key("a", "k")))
	clk.t = clk.t.Add(time.Minute)
	assert.Equal(t, []byte("A"), c.Get(key("a", "k")), "kept for the whole TTL")
	clk.t = clk.t.Add(time.Nanosecond)
	assert.Nil(t, c.Get(key("a", "k")), "gone after it")
	assert.Equal(t, 0, c.Len())
}

func TestCacheWrapIsPartOfTheKey(t *testing.T) {
	c := New(10, time.Minute, time.Now)
	k := key("a", "k")
	c.Put(k, []byte("old"))
	k2 := k
	k2.Wrapped = "another wrap of a new data key"
	assert.Nil(t, c.Get(k2))
	k3 := k
	k3.Version = 2
	assert.Nil(t, c.Get(k3))
}

func TestCacheBoundLRU(t *testing.T) {
	c := New(3, time.Hour, time.Now)
	for i := range 3 {
		c.Put(key(fmt.Sprint(i), "k"), []byte{byte(i)})
	}
	c.Get(key("0", "k")) // 0 is now the most recently used
	c.Put(key("3", "k"), []byte{3})
	assert.Equal(t, 3, c.Len())
	assert.Nil(t, c.Get(key("1", "k")), "the least recently used went")
	for _, b := range []string{"0", "2", "3"} {
		assert.NotNil(t, c.Get(key(b, "k")), b)
	}
}

func TestCacheDisabled(t *testing.T) {
	c := New(0, time.Hour, time.Now)
	c.Put(key("a", "k"), []byte("A"))
	assert.Nil(t, c.Get(key("a", "k")))
}

func TestCacheDrop(t *testing.T) {
	c := New(10, time.Hour, time.Now)
	c.Put(key("a", "team"), []byte("A"))
	c.Put(key("b", "TEAM"), []byte("B"))
	c.Put(key("c", "other"), []byte("C"))
	n := c.Drop(func(kek string) bool { return strings.EqualFold(kek, "team") })
	assert.Equal(t, 2, n)
	assert.Nil(t, c.Get(key("a", "team")))
	assert.Nil(t, c.Get(key("b", "TEAM")))
	assert.NotNil(t, c.Get(key("c", "other")))
}
