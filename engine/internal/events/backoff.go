package events

import (
	"math/rand/v2"
	"time"
)

// Backoff is the schedule of a failed delivery's retries: exponential,
// from Initial doubling up to Max, with jitter.
type Backoff struct {
	// Initial is the wait after the first failure (before jitter).
	Initial time.Duration
	// Max bounds the wait (before jitter).
	Max time.Duration
}

// Delay is the wait after the attempt-th failure (1 for the first):
// d = min(Max, Initial * 2^(attempt-1)), then a uniform draw from
// [d/2, d] ("equal jitter"), so that the waits still grow while the
// retries of many deliveries spread out instead of arriving together.
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Initial
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if d <= 1 {
		return max(d, 0)
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
