package audit

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkEncode is the caller's share of an append: a record to a line,
// an authenticated caller's (with the memo of identities, as the log
// encodes, and without it) and an anonymous one's (the same record but
// its userIdentity).
func BenchmarkEncode(b *testing.B) {
	for _, bench := range []struct {
		name      string
		anonymous bool
		ids       *identities
	}{
		{"authenticated", false, &identities{}},
		{"authenticated-unmemoized", false, nil},
		{"anonymous", true, &identities{}},
	} {
		enc := encoder{region: "us-east-1", account: "123456789012", ids: bench.ids}
		r := sample(1, "team-a/api")
		if bench.anonymous {
			r.PrincipalARN, r.Account, r.UserName, r.UserID, r.PrincipalType = "*", "", "", "", PrincipalAnonymous
		}
		require.NoError(b, r.normalize())
		b.Run(bench.name, func(b *testing.B) {
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				buf = enc.encode(buf[:0], &r)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// BenchmarkDecode is a query's cost per record it decodes.
func BenchmarkDecode(b *testing.B) {
	enc := encoder{region: "us-east-1", account: "123456789012"}
	r := sample(1, "team-a/api")
	require.NoError(b, r.normalize())
	line := enc.encode(nil, &r)
	line = line[:len(line)-1]
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRecord(line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend: records appended without sync (allowed reads) from 1
// and 8 goroutines, and with fdatasync (denials, changes) from 8. ns/op
// is the time per record across all goroutines; an append's latency is
// ns/op times the goroutines.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name       string
		goroutines int
		durable    bool
	}{
		{"write/1", 1, false},
		{"write/8", 8, false},
		{"sync/1", 1, true},
		{"sync/8", 8, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := Open(b.TempDir(), &Options{Logger: quietLogger()})
			require.NoError(b, err)
			defer l.Close()
			rec := sample(1, "team-a/api")
			b.ReportAllocs()
			cpu0 := processCPU(b)
			defer func() {
				b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			}()
			if bc.goroutines == 1 {
				for b.Loop() {
					if err := l.Append(rec, bc.durable); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			for g := range bc.goroutines {
				n := b.N / bc.goroutines
				if g < b.N%bc.goroutines {
					n++
				}
				wg.Go(func() {
					for range n {
						if err := l.Append(rec, bc.durable); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			st := l.Status()
			b.ReportMetric(float64(st.Appended)/float64(st.Writes), "records/write")
			if bc.durable {
				b.ReportMetric(float64(st.Appended)/float64(st.Syncs), "records/sync")
			}
		})
	}
}

// queryRecords is the size of the log BenchmarkQuery reads.
const queryRecords = 1_000_000

var (
	queryOnce sync.Once
	queryDir  string
)

// queryLog fills, once, a log of queryRecords records a minute apart
// (about two years, in day segments) for the query benchmarks.
func queryLog(b *testing.B) *Log {
	queryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "audit-bench-")
		require.NoError(b, err)
		queryDir = dir
		clock := newFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		clock.step = 0
		l, err := Open(dir, &Options{Now: clock.Now, MaxAge: -1, MaxBytes: 4 << 30, Logger: quietLogger()})
		require.NoError(b, err)
		for i := range queryRecords {
			clock.Advance(time.Minute / 16) // ~16 records a minute
			r := sample(i, fmt.Sprintf("team-%d/app", i%50))
			if i%100 == 7 { // 1% denials; those of team-7/app are a tenth of its records
				r.Decision = ExplicitDeny
			}
			require.NoError(b, l.Append(r, false))
		}
		require.NoError(b, l.Close())
	})
	l, err := Open(queryDir, &Options{MaxAge: -1, MaxBytes: 4 << 30, Logger: quietLogger()})
	require.NoError(b, err)
	b.Cleanup(func() { l.Close() })
	return l
}

// BenchmarkQuery reads a log of a million records: every record
// (decoded), the denials of one repository, the newest 100 of one user,
// one day of the middle, and an export of everything (the lines as
// they are). MB/s is of the log's bytes.
func BenchmarkQuery(b *testing.B) {
	l := queryLog(b)
	size := l.Status().Bytes
	mid := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(queryRecords / 2 * time.Minute / 16)
	for _, bc := range []struct {
		name   string
		q      Query
		export bool
		full   bool // reads the whole log
	}{
		{"all", Query{}, false, true},
		{"denials-of-repo", Query{Repository: "team-7/app", Decision: AnyDenial}, false, true},
		{"newest-100-of-user", Query{Principal: "user3", Limit: 100}, false, false},
		{"one-day", Query{Since: mid, Until: mid.Add(24 * time.Hour)}, false, false},
		{"export-all", Query{Order: OldestFirst}, true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.full {
				b.SetBytes(size)
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n = 0
				var err error
				if bc.export {
					err = l.Export(context.Background(), bc.q, countWriter{&n})
				} else {
					err = l.Records(context.Background(), bc.q, func(Record) error { n++; return nil })
				}
				require.NoError(b, err)
			}
			b.ReportMetric(float64(n), "records")
		})
	}
}

type countWriter struct{ n *int }

func (w countWriter) Write(p []byte) (int, error) {
	for _, c := range p {
		if c == '\n' {
			*w.n++
		}
	}
	return len(p), nil
}

var _ io.Writer = countWriter{}

// TestMain removes the query benchmark's log.
func TestMain(m *testing.M) {
	code := m.Run()
	if queryDir != "" {
		os.RemoveAll(filepath.Clean(queryDir))
	}
	os.Exit(code)
}

// BenchmarkValidate is what checking a line is JSON costs.
func BenchmarkValidate(b *testing.B) {
	enc := encoder{region: "us-east-1", account: "123456789012"}
	r := sample(1, "team-a/api")
	require.NoError(b, r.normalize())
	line := enc.encode(nil, &r)
	line = line[:len(line)-1]
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if !validLine(line) {
			b.Fatal("invalid")
		}
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
