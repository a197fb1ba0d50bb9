package audit

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// TestAppendTime: the hand-written eventTime is what time's own
// formatting writes, at the ends of the range too, and the times outside
// it are clamped.
func TestAppendTime(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 23, 10, 15, 0, 123456789, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.FixedZone("UTC-5", -5*3600)),
		time.Date(2028, 2, 29, 1, 2, 3, 4, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(253402300800), r.Int64N(1e9)).In(time.FixedZone("x", int(r.Int64N(86400))-43200)))
	}
	for _, tt := range times {
		require.Equal(t, tt.UTC().Format(timeLayout), string(appendTime(nil, tt)), "%v", tt)
	}
	require.Equal(t, "0000-01-01T00:00:00.000000000Z", formatTime(time.Date(-3, 5, 1, 0, 0, 0, 0, time.UTC)))
	require.Equal(t, "9999-12-31T23:59:59.999999999Z", formatTime(time.Date(10000, 1, 1, 0, 0, 0, 1, time.UTC)))
	require.Len(t, formatTime(time.Now()), timeLen)
}

// BenchmarkStampTime is the time stamp every append writes under the
// queue's lock.
func BenchmarkStampTime(b *testing.B) {
	line := append([]byte(linePrefix), zeroTime...)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		stampTime(line, now)
	}
}

// appendStringOneByOne is appendString as it was before it skipped eight
// bytes at a time: the reference the fast one must match byte for byte.
func appendStringOneByOne(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// TestAppendString: the escapes, wherever they fall against the eight
// bytes the fast path reads at a time, and the JSON they make reads back.
func TestAppendString(t *testing.T) {
	specials := []string{"\"", "\\", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", " ", "é", "\u2028", "\u2029", "\xff", "\xe2\x80", "😀", "<&>"}
	var inputs []string
	for _, sp := range specials {
		for pre := range 18 {
			for post := range 3 {
				inputs = append(inputs, strings.Repeat("a", pre)+sp+strings.Repeat("b", post*5))
			}
		}
	}
	inputs = append(inputs, "", "arn:aws:iam::123456789012:user/alice", "containerd/2.0.0+unknown", strings.Repeat("x\"", 40))
	for _, s := range inputs {
		got := appendString(nil, s)
		require.Equal(t, string(appendStringOneByOne(nil, s)), string(got), "%q", s)
		var back string
		require.NoError(t, json.Unmarshal(got, &back), "%q", s)
		if utf8.ValidString(s) {
			require.Equal(t, s, back)
		}
	}
}

// FuzzAppendString: the fast path writes what the byte-by-byte one does.
func FuzzAppendString(f *testing.F) {
	f.Add("arn:aws:iam::123456789012:user/alice")
	f.Add("a\"b\\c\nd\x00e\u2028f\xffg😀")
	f.Fuzz(func(t *testing.T, s string) {
		require.Equal(t, string(appendStringOneByOne(nil, s)), string(appendString(nil, s)))
	})
}

// TestIdentityMemo: a line is the same whether its userIdentity element
// comes from the memo or is encoded in place, for every kind of caller,
// names that need escaping, callers that differ from a memoized one in
// one field only (the same ARN), and after the memo starts over.
func TestIdentityMemo(t *testing.T) {
	plain := encoder{region: "us-east-1", account: "123456789012"}
	memo := encoder{region: "us-east-1", account: "123456789012", ids: &identities{}}
	var recs []Record
	for i := range 3 {
		r := sample(i, "team-a/api")
		recs = append(recs, r)
		r.UserName = "al\"ice\u2028" + r.UserName
		recs = append(recs, r)
		r.UserID = ""
		recs = append(recs, r)
		r.PrincipalARN, r.Account, r.UserName, r.UserID, r.PrincipalType = "*", "", "", "", PrincipalAnonymous
		recs = append(recs, r)
		r.UserName, r.UserID, r.PrincipalType = "root", "uid:0", PrincipalLocal
		recs = append(recs, r)
	}
	count := func() int {
		n := 0
		memo.ids.m.Range(func(any, any) bool { n++; return true })
		require.LessOrEqual(t, int64(n), memo.ids.n.Load(), "the bound counts every entry stored")
		return n
	}
	for round := range 2 {
		for i := range recs {
			want := plain.encode(nil, &recs[i])
			got := memo.encode(nil, &recs[i])
			require.Equal(t, string(want), string(got), "round %d, record %d", round, i)
			back, err := decodeRecord(got[:len(got)-1])
			require.NoError(t, err)
			require.Equal(t, recs[i].PrincipalARN, back.PrincipalARN)
			require.Equal(t, recs[i].UserName, back.UserName)
		}
		require.Equal(t, 3+round, count(), "authenticated callers only, one entry an ARN")
		// The memo is full: the next caller starts it over.
		memo.ids.n.Store(maxIdentities)
		other := sample(0, "team-b/web")
		other.UserName = fmt.Sprint("carol", round)
		other.PrincipalARN = "arn:aws:iam::123456789012:user/" + other.UserName
		memo.encode(nil, &other)
		require.Equal(t, 1, count())
	}
}
