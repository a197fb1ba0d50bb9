package index

import "sync/atomic"

// KVStats count the database work of an index whose records are in
// PostgreSQL, since it was opened: what a request costs the database, for
// capacity planning (docs/scale-out.md). An index on pebble counts
// nothing (Postgres false, every count zero): its reads are in-process.
type KVStats struct {
	// Postgres reports an index in PostgreSQL.
	Postgres bool `json:"postgres"`
	// RoundTrips counts the messages sent to the server and waited on:
	// a point read, a transaction's BEGIN and COMMIT (or ROLLBACK), an
	// iterator's page, a commit's pipelined writes (one round trip for
	// all of them).
	RoundTrips int64 `json:"roundTrips"`
	// Statements counts the SQL statements executed, BEGIN and COMMIT
	// included.
	Statements int64 `json:"statements"`
	// Gets counts point reads; Iterators the read transactions opened
	// for range reads and Pages the pages they fetched; Commits the
	// batches committed (or failed), CommitRetries the attempts run
	// again after a serialization failure or a deadlock.
	Gets          int64 `json:"gets"`
	Iterators     int64 `json:"iterators"`
	Pages         int64 `json:"pages"`
	Commits       int64 `json:"commits"`
	CommitRetries int64 `json:"commitRetries"`
}

// pgCounters are pgKV's KVStats, counted atomically.
type pgCounters struct {
	roundTrips, statements                         atomic.Int64
	gets, iterators, pages, commits, commitRetries atomic.Int64
}

// op counts n round trips carrying stmts statements.
func (c *pgCounters) op(roundTrips, stmts int64) {
	c.roundTrips.Add(roundTrips)
	c.statements.Add(stmts)
}

func (c *pgCounters) snapshot() KVStats {
	return KVStats{
		Postgres:   true,
		RoundTrips: c.roundTrips.Load(), Statements: c.statements.Load(),
		Gets: c.gets.Load(), Iterators: c.iterators.Load(), Pages: c.pages.Load(),
		Commits: c.commits.Load(), CommitRetries: c.commitRetries.Load(),
	}
}

// KVStats returns the database work counted since the index was opened
// (zero on pebble).
func (db *DB) KVStats() KVStats {
	if p, ok := db.kv.(*pgKV); ok {
		return p.counters.snapshot()
	}
	return KVStats{}
}
