package main

// Latency histogram: log-linear buckets (64 per power of two), so that any
// percentile is known within 1/128 (0.8 %) of its value whatever the
// range, in constant memory, and histograms of several workers merge by
// adding counts.

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

const subBits = 7 // values below 128 ns are exact; above, 64 buckets per power of two

const exact = 1 << subBits

const half = exact / 2

// Histogram counts durations. The zero value is ready to use. It is not
// safe for concurrent use: give each worker its own and Merge them.
type Histogram struct {
	counts [exact + 58*half]uint64
	n      uint64
	sum    float64
	max    time.Duration
}

// bucketOf maps a value in nanoseconds to its bucket.
func bucketOf(v uint64) int {
	if v < exact {
		return int(v)
	}
	e := bits.Len64(v) - subBits // >= 1; v>>e is in [half, exact)
	return exact + (e-1)*half + int(v>>uint(e)) - half
}

// bucketBounds is the range of values [lo, hi] bucket i holds.
func bucketBounds(i int) (lo, hi uint64) {
	if i < exact {
		return uint64(i), uint64(i)
	}
	j := i - exact
	e := j/half + 1
	lo = uint64(j%half+half) << uint(e)
	return lo, lo + (1 << uint(e)) - 1
}

// Record adds one duration (negative durations count as zero).
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := bucketOf(uint64(d))
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	h.counts[i]++
	h.n++
	h.sum += float64(d)
	if d > h.max {
		h.max = d
	}
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// Count is the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.n }

// Mean is the average duration (0 when empty).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Max is the largest duration recorded.
func (h *Histogram) Max() time.Duration { return h.max }

// Percentile returns the p-th percentile (0 < p <= 100) by the nearest-rank
// method: the smallest recorded value such that at least p % of the values
// are at most it, reported as the middle of its bucket (exact below 128 ns,
// within 0.8 % above). Empty histogram: 0.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.n == 0 || math.IsNaN(p) {
		return 0
	}
	p = min(max(p, 0), 100)
	rank := uint64(math.Ceil(p / 100 * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketBounds(i)
			v := time.Duration(lo + (hi-lo)/2)
			return min(v, h.max)
		}
	}
	return h.max
}

// NearestRank is the exact nearest-rank percentile of sorted values (the
// reference the histogram is tested against).
func NearestRank(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// MedianCI returns the median of xs and a distribution-free confidence
// interval of at least 95% for it: the order statistics x(l) and
// x(n+1-l), l the largest rank at which the binomial distribution
// B(n, 1/2) leaves at most 2.5% below it. It assumes nothing about how xs
// are spread, so one phase that a burst of the machine's other load
// slowed moves it by one rank, not by its size. ok is false for fewer
// than 6 values, too few for such an interval.
func MedianCI(xs []float64) (med, lo, hi float64, ok bool) {
	n := len(xs)
	if n == 0 {
		return 0, 0, 0, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	if n < 6 {
		return med, s[0], s[n-1], false
	}
	// P(B <= k) for k = 0, 1, ...: the interval [x(l), x(n+1-l)] misses
	// the median with probability 2 P(B <= l-1).
	l, cdf := 0, 0.0
	for k := 0; k <= n/2; k++ {
		lg, _ := math.Lgamma(float64(n + 1))
		lk, _ := math.Lgamma(float64(k + 1))
		lnk, _ := math.Lgamma(float64(n - k + 1))
		cdf += math.Exp(lg - lk - lnk - float64(n)*math.Ln2)
		if cdf > 0.025 {
			break
		}
		l = k + 1
	}
	l = max(l, 1)
	return med, s[l-1], s[n-l], true
}
