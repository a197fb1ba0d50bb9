package iam

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// timedPolicy is an identity policy whose only statement allows on a
// condition over the time.
func timedPolicy(t testing.TB, condition string) *Policy {
	t.Helper()
	p, err := Parse(IdentityPolicy, "timed", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":`+condition+`}]}`)
	require.NoError(t, err)
	return p
}

// TestTimeSpan: the span of a decision is the seconds over which each of
// its comparisons with the time comes out as it did.
func TestTimeSpan(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	sec := at.Unix()
	inf, ninf := int64(math.MaxInt64), int64(math.MinInt64)
	tests := []struct {
		name, condition string
		allowed         bool
		span            TimeSpan
	}{
		{"no time", `{"StringEquals":{"aws:username":"alice"}}`, true, TimeSpan{}},
		{"before a date", `{"DateLessThan":{"aws:CurrentTime":"2027-01-01T00:00:00Z"}}`, true,
			TimeSpan{Timed: true, From: ninf, Until: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Unix()}},
		{"before a fraction of a second", `{"DateLessThan":{"aws:CurrentTime":"2026-12-02T12:00:05.5Z"}}`, true,
			TimeSpan{Timed: true, From: ninf, Until: sec + 6}},
		{"after a date", `{"DateGreaterThan":{"aws:CurrentTime":"2026-12-01T00:00:00Z"}}`, true,
			TimeSpan{Timed: true, From: time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC).Unix(), Until: inf}},
		{"not yet after a date", `{"DateGreaterThan":{"aws:CurrentTime":"2099-01-01T00:00:00Z"}}`, false,
			TimeSpan{Timed: true, From: ninf, Until: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).Unix()}},
		{"within a window", `{"DateGreaterThanEquals":{"aws:CurrentTime":"2026-12-02T08:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2026-12-02T18:00:00Z"}}`, true,
			TimeSpan{Timed: true, From: sec - 4*3600 + 1, Until: sec + 6*3600}},
		{"the very second", `{"DateEquals":{"aws:CurrentTime":"2026-12-02T12:00:00Z"}}`, true,
			TimeSpan{Timed: true, From: sec, Until: sec + 1}},
		{"epoch time", `{"NumericLessThan":{"aws:EpochTime":"1800000000.5"}}`, true,
			TimeSpan{Timed: true, From: ninf, Until: 1800000001}},
		{"the first value that matches", `{"DateLessThan":{"aws:CurrentTime":["2026-12-03T00:00:00Z","2028-01-01T00:00:00Z"]}}`, true,
			TimeSpan{Timed: true, From: ninf, Until: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC).Unix()}},
		{"a variable", `{"StringLike":{"aws:username":"${aws:EpochTime}"}}`, false,
			TimeSpan{Timed: true, From: sec, Until: sec + 1}},
	}
	alice, err := NewUser("123456789012", "/", "alice", "AIDAALICE")
	require.NoError(t, err)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := Request{Principal: alice, Action: "ecr:BatchGetImage", Resource: "arn:aws:ecr:us-east-1:123456789012:repository/app", Time: at}
			d, span := EvaluateTimed(&req, []*Policy{timedPolicy(t, tc.condition)}, nil)
			assert.Equal(t, tc.allowed, d.Allowed())
			assert.Equal(t, tc.span, span)
			assert.True(t, span.Contains(at))
		})
	}
}

// FuzzTimeSpan: a decision made at one time is made the same at every
// other time its span contains, and its span contains the time it was
// made at.
func FuzzTimeSpan(f *testing.F) {
	f.Add(`{"DateLessThan":{"aws:CurrentTime":"2027-01-01T00:00:00Z"}}`, int64(1796000000), int64(1798761599))
	f.Add(`{"DateGreaterThanEquals":{"aws:CurrentTime":"2026-12-02T08:00:00.25Z"},"DateLessThan":{"aws:CurrentTime":"2026-12-02T18:00:00Z"}}`, int64(1796212800), int64(1796198400))
	f.Add(`{"NumericGreaterThan":{"aws:EpochTime":["1700000000.9","-5"]}}`, int64(1700000001), int64(1700000000))
	f.Add(`{"DateNotEquals":{"aws:CurrentTime":"1970-01-01T00:00:00Z"}}`, int64(0), int64(1))
	f.Add(`{"NumericLessThanEquals":{"aws:EpochTime":"1e300"}}`, int64(1<<40), int64(-1<<40))
	f.Add(`{"StringLike":{"aws:username":"${aws:CurrentTime}"}}`, int64(5), int64(6))
	alice, err := NewUser("123456789012", "/", "alice", "AIDAALICE")
	require.NoError(f, err)
	zero := time.Time{}.Unix()
	f.Fuzz(func(t *testing.T, condition string, at, other int64) {
		p, err := Parse(IdentityPolicy, "timed", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":`+condition+`}]}`)
		if err != nil {
			return
		}
		decide := func(sec int64) (Decision, TimeSpan) {
			req := Request{Principal: alice, Action: "ecr:BatchGetImage", Resource: "arn:aws:ecr:us-east-1:123456789012:repository/app", Time: time.Unix(sec, 0)}
			return EvaluateTimed(&req, []*Policy{p}, nil)
		}
		// The times a time.Time holds (about ±35,000 years here), but the
		// zero Time, which is the clock's.
		usable := func(s int64) bool { return s != zero && s >= -1<<40 && s <= 1<<40 }
		if !usable(at) {
			return
		}
		d, span := decide(at)
		if span.Timed && !span.Contains(time.Unix(at, 0)) {
			t.Fatalf("the span %+v of a decision at %d does not contain it", span, at)
		}
		for _, s := range []int64{other, span.From, span.Until - 1, at + 1, at - 1} {
			if !usable(s) || !span.Contains(time.Unix(s, 0)) {
				continue
			}
			if got, _ := decide(s); got != d {
				t.Fatalf("decided %v at %d, %v at %d, within the span %+v", d, at, got, s, span)
			}
		}
	})
}
