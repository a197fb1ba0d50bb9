package s3

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWindowsHoldWholeFrames: the read-ahead's windows cover the object
// exactly, one after another, and, when the frames were aligned (and
// are no larger than a window), each frame lies in one window; otherwise
// they are aheadWindow bytes each, as before.
func TestWindowsHoldWholeFrames(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cases := []struct{ first, stride, size int64 }{
		{0, 0, 9 << 20},
		{160, 1<<20 + 24, 29<<20 + 12345},
		{160, 1<<20 + 12, 8 << 20},
		{160, 64<<10 + 24, 40 << 20},
		{160, 16<<20 + 24, 70 << 20}, // frames larger than a window
		{160, 4<<20 + 24, 13 << 20},
	}
	for range 200 {
		stride := 4<<10 + r.Int64N(17<<20)
		cases = append(cases, struct{ first, stride, size int64 }{160, stride, 160 + r.Int64N(40*stride) + 1})
	}
	for _, c := range cases {
		o := &objectSource{size: c.size, first: c.first, stride: c.stride}
		ra := o.newReadAhead(nil, nil)
		aligned := c.stride > 0 && c.stride <= aheadWindow
		last := ra.index(c.size - 1)
		var at int64
		for i := int64(0); i <= last; i++ {
			require.Equal(t, at, ra.start(i), "%+v: window %d starts where %d ended", c, i, i-1)
			n := ra.length(i)
			require.Positive(t, n, "%+v: window %d", c, i)
			require.Equal(t, i, ra.index(at), "%+v", c)
			require.Equal(t, i, ra.index(at+n-1), "%+v", c)
			if aligned {
				require.LessOrEqual(t, n, int64(windowPoolSize), "%+v: window %d", c, i)
			} else {
				require.True(t, n == aheadWindow || i == last, "%+v: window %d of %d bytes", c, i, n)
			}
			at += n
		}
		require.Equal(t, c.size, at, "%+v: the windows cover the object", c)
		if aligned {
			for f := c.first; f < c.size; f += c.stride {
				end := min(f+c.stride, c.size) - 1
				require.Equal(t, ra.index(f), ra.index(end), "%+v: frame at %d straddles", c, f)
			}
		}
	}
}
