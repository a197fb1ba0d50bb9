package audit

import (
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"
)

// BenchmarkVersusPebble is the measurement behind the choice of files
// over pebble (docs/audit.md): the same records (the line as value, its
// time and id as key) from 8 goroutines, in one run:
//
//   - audit-write: Append without sync, what an allowed read costs; it
//     survives a crash of the process (the write(2) is done);
//   - audit-sync: Append with fdatasync (denials, changes);
//   - pebble-sync: a pebble batch of one Set committed with pebble.Sync,
//     pebble's only commit that survives a crash of the process: its
//     NoSync commit returns before its WAL buffer reaches the kernel;
//   - pebble-nosync: that NoSync commit, for reference.
//
// pebble groups concurrent synced commits as the log does; ns/op is per
// record over all goroutines.
func BenchmarkVersusPebble(b *testing.B) {
	const goroutines = 8
	enc := encoder{region: "us-east-1", account: "123456789012"}
	rec := sample(1, "team-a/api")

	run := func(b *testing.B, one func(r Record) error) {
		b.ReportAllocs()
		b.ResetTimer()
		var wg sync.WaitGroup
		for g := range goroutines {
			n := b.N / goroutines
			if g < b.N%goroutines {
				n++
			}
			wg.Go(func() {
				for range n {
					if err := one(rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}

	for _, durable := range []bool{false, true} {
		name := "audit-write"
		if durable {
			name = "audit-sync"
		}
		b.Run(name, func(b *testing.B) {
			l, err := Open(b.TempDir(), &Options{Logger: quietLogger()})
			require.NoError(b, err)
			defer l.Close()
			run(b, func(r Record) error { return l.Append(r, durable) })
		})
	}
	for _, wo := range []*pebble.WriteOptions{pebble.Sync, pebble.NoSync} {
		name := "pebble-sync"
		if wo == pebble.NoSync {
			name = "pebble-nosync"
		}
		b.Run(name, func(b *testing.B) {
			db, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: quietPebble{}})
			require.NoError(b, err)
			defer db.Close()
			run(b, func(r Record) error {
				// What Append does for the record, then a batch of it.
				if err := r.normalize(); err != nil {
					return err
				}
				line := enc.encode(nil, &r)
				now := rec.Time // any time: the key only needs to be unique
				key := append([]byte(formatTime(now)), r.EventID...)
				batch := db.NewBatch()
				defer batch.Close()
				if err := batch.Set(key, line, nil); err != nil {
					return err
				}
				return batch.Commit(wo)
			})
		})
	}
}

// quietPebble keeps pebble's informational lines out of the benchmark's
// output.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic("pebble: fatal: " + format)
}
