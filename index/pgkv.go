package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgreSQL as the index's kv: one table of (k bytea primary key, v
// bytea) ordered by key (bytea compares bytewise, as pebble's keys do); a
// batch is one serializable transaction, retried on a serialization
// failure; an iterator reads pages of keys in one repeatable-read
// transaction, so that it sees one point in time as pebble's do. The
// schema is versioned (pgMigrations) and brought up to date at open.
// docs/scale-out.md says what runs on CockroachDB.

// pgMigrations are the schema's versions, in order; version i+1 is
// pgMigrations[i]. Append, never edit.
var pgMigrations = []string{
	`CREATE TABLE IF NOT EXISTS berth_kv (k bytea PRIMARY KEY, v bytea NOT NULL)`,
}

// pgPageKeys is the number of keys an iterator fetches at a time.
const pgPageKeys = 256

// pgCancelGrace is how long a cancelled statement's connection waits for
// the server to confirm the cancellation before it is cut.
const pgCancelGrace = 3 * time.Second

// pgRetries bounds the attempts of a batch that meets serialization
// failures.
const pgRetries = 10

// PostgresOptions tune OpenPostgres.
type PostgresOptions struct {
	// MaxConns bounds the pool's connections. Default: pool_max_conns of
	// the URL when it has one, else 32.
	MaxConns int32
}

// OpenPostgres opens the index kept in the PostgreSQL database at url
// (postgres://user@host:port/db?sslmode=...), bringing its schema up to
// date. opts and popts may be nil; of opts only Logger is used.
func OpenPostgres(ctx context.Context, url string, opts *Options, popts *PostgresOptions) (*DB, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.EnsureDefaults()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("index: postgres: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = 32
	}
	// A caller's cancelled context cancels its statement on the server
	// (a cancel request; the connection is cut only if the server has
	// not answered within pgCancelGrace), not only the client's wait: a
	// statement waiting on a lock would otherwise run on.
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: pgCancelGrace}
	}
	if popts != nil && popts.MaxConns > 0 {
		cfg.MaxConns = popts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("index: postgres: %w", err)
	}
	if err := pgMigrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	db := &DB{dbState: &dbState{opts: o, log: o.Logger.With("component", "index", "backend", "postgres")}}
	db.kv = &pgKV{pool: pool, sender: newSender(), log: db.log}
	if err := db.checkSchema(); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// PostgresHoldsIndex reports whether the database at url holds an index
// already (its table exists and has rows), without changing anything: a
// store opening on it that has lost its keyring must be refused, not
// given a new one.
func PostgresHoldsIndex(ctx context.Context, url string) (bool, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false, fmt.Errorf("index: postgres: %w", err)
	}
	defer conn.Close(ctx)
	var held bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('berth_kv') IS NOT NULL`).Scan(&held); err != nil {
		return false, fmt.Errorf("index: postgres: %w", err)
	}
	if !held {
		return false, nil
	}
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM berth_kv)`).Scan(&held); err != nil {
		return false, fmt.Errorf("index: postgres: %w", err)
	}
	return held, nil
}

// pgMigrate applies the migrations the database lacks, under an advisory
// lock so that replicas starting together apply each once.
func pgMigrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("index: postgres: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	steps := []string{
		`SELECT pg_advisory_xact_lock(7358924101)`,
		`CREATE TABLE IF NOT EXISTS berth_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
	}
	for _, q := range steps {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("index: postgres: migrate: %w", err)
		}
	}
	var have int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM berth_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("index: postgres: migrate: %w", err)
	}
	if have > len(pgMigrations) {
		return fmt.Errorf("index: postgres: database schema version %d is newer than supported %d: %w", have, len(pgMigrations), ErrCorrupt)
	}
	for v := have + 1; v <= len(pgMigrations); v++ {
		if _, err := tx.Exec(ctx, pgMigrations[v-1]); err != nil {
			return fmt.Errorf("index: postgres: migration %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO berth_migrations (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("index: postgres: migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("index: postgres: migrate: %w", err)
	}
	return nil
}

// pgKV is a PostgreSQL database as a kv.
type pgKV struct {
	pool *pgxpool.Pool
	// counters count the work sent to the database (KVStats).
	counters pgCounters
	// coord is the coordinator of the processes sharing the database
	// (pgcoord.go), made on first use under coordMu.
	coordMu sync.Mutex
	coord   *Coordinator
	// sender names this process's change notifications; seq numbers
	// them.
	sender string
	seq    atomic.Uint64
	log    *slog.Logger
	// live is set while this process's listener listens: only then can
	// its commits hear the other processes' acknowledgements.
	live atomic.Bool
	acks ackWaits
	// watcher, when set (WatchChanges), is told of each commit's change;
	// stopListen stops its listener, listening waits for it.
	watcher    atomic.Pointer[ChangeWatcher]
	stopListen context.CancelFunc
	listening  sync.WaitGroup
}

var _ kv = (*pgKV)(nil)

func (p *pgKV) get(ctx context.Context, k []byte) ([]byte, io.Closer, error) {
	var v []byte
	p.counters.gets.Add(1)
	p.counters.op(1, 1)
	err := p.pool.QueryRow(ctx, `SELECT v FROM berth_kv WHERE k = $1`, k).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, errKVNotFound
	}
	if err != nil {
		return nil, nil, pgError(ctx, err)
	}
	return v, io.NopCloser(nil), nil
}

func (p *pgKV) newIter(ctx context.Context, lo, hi []byte) (kvIter, error) {
	p.counters.iterators.Add(1)
	p.counters.op(1, 1)
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, pgError(ctx, err)
	}
	return &pgIter{ctx: ctx, tx: tx, lo: lo, hi: hi, i: -1, counters: &p.counters}, nil
}

func (p *pgKV) newBatch() kvBatch { return &pgBatch{kv: p, points: map[string]pgPoint{}} }

// apply commits b's writes in order in one serializable transaction,
// retried with backoff when it meets a serialization failure or a
// deadlock. Every commit is durable (the sync flag saves fsyncs on
// pebble only). A ctx cancelled before the commit starts refuses it; once
// started, the commit runs to its end whatever becomes of ctx, so that a
// caller giving up never leaves its outcome in doubt (written, but
// reported failed).
//
// A batch that touches records a cache may hold (Change) also sends their
// description with pg_notify in its transaction, so that other processes
// hear of it exactly when it commits, and tells this process's watcher
// once committed.
func (p *pgKV) apply(ctx context.Context, kb kvBatch, _ bool) error {
	b := kb.(*pgBatch)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("index: commit: %w", err)
	}
	ctx = context.WithoutCancel(ctx)
	p.counters.commits.Add(1)
	var cb changeBuilder
	for _, o := range b.ops {
		if o.kind == opDelRange {
			cb.keyRange(o.k, o.hi)
		} else {
			cb.key(o.k)
		}
	}
	change, notify := cb.change()
	var (
		payload string
		acks    *ackWait
	)
	if notify {
		seq := p.seq.Add(1)
		payload = encodeChange(p.sender, seq, change)
		if p.live.Load() {
			acks = p.acks.expect(seq)
			defer p.acks.forget(seq)
		}
	}
	var (
		err       error
		listeners []string
	)
	for attempt := range pgRetries {
		if attempt > 0 {
			p.counters.commitRetries.Add(1)
			time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond)<<min(attempt, 8))) + time.Millisecond)
		}
		if listeners, err = p.applyOnce(ctx, b, payload); err == nil || !pgRetryable(err) {
			break
		}
	}
	if notify {
		// Also after a failed commit: it may have committed (a lost
		// connection at COMMIT), and a drop too many costs one read.
		if w := p.watcher.Load(); w != nil {
			(*w).Changed(change, true)
		}
	}
	if err != nil {
		if pgUnavailable(err) {
			return fmt.Errorf("index: commit: postgres: %w: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("index: commit: postgres: %w", err)
	}
	if acks != nil && len(listeners) > 0 {
		if missing := acks.wait(listeners, ackTimeout); len(missing) > 0 {
			p.log.Warn("other processes did not acknowledge a change in time: their caches may serve it stale until they drop them", "processes", missing, "waited", ackTimeout)
		}
	}
	return nil
}

// applyOnce runs b's writes in one transaction, with a notification of
// payload unless it is empty; then it returns the senders of the other
// processes listening for changes when it committed (their listeners'
// application_name), whose acknowledgements the commit waits for.
func (p *pgKV) applyOnce(ctx context.Context, b *pgBatch, payload string) ([]string, error) {
	p.counters.op(1, 1)
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			p.counters.op(1, 1)
			_ = tx.Rollback(ctx)
		}
	}()
	var q pgx.Batch
	for _, o := range b.ops {
		switch o.kind {
		case opSet:
			v := o.v
			if v == nil {
				v = []byte{}
			}
			q.Queue(`INSERT INTO berth_kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, o.k, v)
		case opDel:
			q.Queue(`DELETE FROM berth_kv WHERE k = $1`, o.k)
		case opDelRange:
			if o.hi == nil {
				q.Queue(`DELETE FROM berth_kv WHERE k >= $1`, o.k)
			} else {
				q.Queue(`DELETE FROM berth_kv WHERE k >= $1 AND k < $2`, o.k, o.hi)
			}
		}
	}
	var listeners []string
	n := int64(len(b.ops))
	if payload != "" {
		q.Queue(`SELECT pg_notify($1, $2)`, changeChannel, payload)
		q.Queue(`SELECT coalesce(array_agg(substr(application_name, $1)), '{}') FROM pg_stat_activity
			WHERE datname = current_database() AND starts_with(application_name, $2) AND application_name <> $3`,
			len(listenerAppName)+1, listenerAppName, listenerAppName+p.sender).
			QueryRow(func(row pgx.Row) error { return row.Scan(&listeners) })
		n += 2
	}
	if n > 0 {
		p.counters.op(1, n)
	}
	if err := tx.SendBatch(ctx, &q).Close(); err != nil {
		return nil, err
	}
	committed = true
	p.counters.op(1, 1)
	return listeners, tx.Commit(ctx)
}

// pgError wraps err, the failure of a statement run under ctx, with
// ctx's own error when ctx has ended: the server's "canceling statement"
// then means that the caller gave up, which errors.Is tells.
func pgError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("index: postgres: %w: %w", cerr, err)
	}
	if pgUnavailable(err) {
		return fmt.Errorf("index: postgres: %w: %w", ErrUnavailable, err)
	}
	return fmt.Errorf("index: postgres: %w", err)
}

// pgRetryable reports a serialization failure or a deadlock: the
// transaction can run again.
func pgRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func (p *pgKV) sync(context.Context) error { return nil }

func (p *pgKV) close() error {
	p.coordMu.Lock()
	if p.coord != nil {
		p.coord.close()
	}
	p.coordMu.Unlock()
	if p.stopListen != nil {
		p.stopListen()
		p.listening.Wait()
	}
	p.pool.Close()
	return nil
}

// pgIter pages through [lo, hi) in one read-only transaction.
type pgIter struct {
	ctx    context.Context
	tx     pgx.Tx
	lo, hi []byte
	page   []kvPair
	i      int
	// more: keys may follow the page (it was full, or fetched backwards).
	more bool
	err  error
	// counters count the pages fetched and the closing rollback.
	counters *pgCounters
}

type kvPair struct{ k, v []byte }

// fetch loads a page: keys > after (>= from when after is nil) and below
// below (hi when nil), ascending, or the one key before below when back.
func (it *pgIter) fetch(from, after, below []byte, back bool) bool {
	q := `SELECT k, v FROM berth_kv WHERE k >= $1`
	args := []any{it.lo}
	if from != nil && bytes.Compare(from, it.lo) > 0 {
		args[0] = from
	}
	if after != nil {
		q += ` AND k > $2`
		args = append(args, after)
	}
	hi := it.hi
	if below != nil && (hi == nil || bytes.Compare(below, hi) < 0) {
		hi = below
	}
	if hi != nil {
		q += fmt.Sprintf(` AND k < $%d`, len(args)+1)
		args = append(args, hi)
	}
	limit := pgPageKeys
	if back {
		q += ` ORDER BY k DESC LIMIT 1`
		limit = 1
	} else {
		q += fmt.Sprintf(` ORDER BY k LIMIT %d`, pgPageKeys)
	}
	it.counters.pages.Add(1)
	it.counters.op(1, 1)
	rows, err := it.tx.Query(it.ctx, q, args...)
	if err != nil {
		it.err, it.page, it.i = pgError(it.ctx, err), nil, -1
		return false
	}
	it.page = it.page[:0]
	for rows.Next() {
		var p kvPair
		if err := rows.Scan(&p.k, &p.v); err != nil {
			rows.Close()
			it.err, it.page, it.i = pgError(it.ctx, err), nil, -1
			return false
		}
		it.page = append(it.page, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		it.err, it.page, it.i = pgError(it.ctx, err), nil, -1
		return false
	}
	it.more = back || len(it.page) == limit
	if len(it.page) == 0 {
		it.i = -1
		return false
	}
	it.i = 0
	return true
}

func (it *pgIter) First() bool          { return it.fetch(nil, nil, nil, false) }
func (it *pgIter) SeekGE(k []byte) bool { return it.fetch(k, nil, nil, false) }
func (it *pgIter) Last() bool           { return it.fetch(nil, nil, nil, true) }
func (it *pgIter) SeekLT(k []byte) bool { return it.fetch(nil, nil, k, true) }

func (it *pgIter) Next() bool {
	if it.i < 0 {
		return false
	}
	if it.i+1 < len(it.page) {
		it.i++
		return true
	}
	if !it.more {
		it.i = -1
		return false
	}
	last := it.page[it.i].k
	return it.fetch(nil, last, nil, false)
}

func (it *pgIter) Key() []byte   { return it.page[it.i].k }
func (it *pgIter) Value() []byte { return it.page[it.i].v }
func (it *pgIter) Error() error  { return it.err }

func (it *pgIter) Close() error {
	it.counters.op(1, 1)
	_ = it.tx.Rollback(context.WithoutCancel(it.ctx))
	return it.err
}

// pgBatch buffers writes in order; its reads overlay them on the
// database's state.
type pgBatch struct {
	kv *pgKV
	// ctx is the context of the batch's reads (nil: Background): that of
	// the DB view that made it.
	ctx    context.Context
	ops    []pgOp
	points map[string]pgPoint
	ranges []pgOp // range deletions, with their sequence in seq
	bytes  int
}

type pgOpKind uint8

const (
	opSet pgOpKind = iota
	opDel
	opDelRange
)

type pgOp struct {
	kind     pgOpKind
	k, v, hi []byte
	seq      int
}

// pgPoint is the batch's last write of one key.
type pgPoint struct {
	v       []byte
	deleted bool
	seq     int
}

func (b *pgBatch) set(k, v []byte) error {
	k, v = bytes.Clone(k), bytes.Clone(v)
	b.ops = append(b.ops, pgOp{kind: opSet, k: k, v: v})
	b.points[string(k)] = pgPoint{v: v, seq: len(b.ops)}
	b.bytes += len(k) + len(v)
	return nil
}

func (b *pgBatch) del(k []byte) error {
	k = bytes.Clone(k)
	b.ops = append(b.ops, pgOp{kind: opDel, k: k})
	b.points[string(k)] = pgPoint{deleted: true, seq: len(b.ops)}
	b.bytes += len(k)
	return nil
}

func (b *pgBatch) delRange(lo, hi []byte) error {
	o := pgOp{kind: opDelRange, k: bytes.Clone(lo), hi: bytes.Clone(hi)}
	b.ops = append(b.ops, o)
	o.seq = len(b.ops)
	b.ranges = append(b.ranges, o)
	b.bytes += len(lo) + len(hi)
	return nil
}

// rangeSeq is the sequence of the last range deletion covering k, or 0.
func (b *pgBatch) rangeSeq(k []byte) int {
	seq := 0
	for _, r := range b.ranges {
		if bytes.Compare(k, r.k) >= 0 && (r.hi == nil || bytes.Compare(k, r.hi) < 0) {
			seq = max(seq, r.seq)
		}
	}
	return seq
}

func (b *pgBatch) get(k []byte) ([]byte, io.Closer, error) {
	rs := b.rangeSeq(k)
	if p, ok := b.points[string(k)]; ok && p.seq > rs {
		if p.deleted {
			return nil, nil, errKVNotFound
		}
		return p.v, io.NopCloser(nil), nil
	}
	if rs > 0 {
		return nil, nil, errKVNotFound
	}
	return b.kv.get(b.readCtx(), k)
}

// newIter lists [lo, hi) as the batch would leave it: the database's keys
// (read in full: a batch iterates small ranges, such as one manifest's
// tags) with the batch's writes applied.
func (b *pgBatch) newIter(lo, hi []byte) (kvIter, error) {
	it, err := b.kv.newIter(b.readCtx(), lo, hi)
	if err != nil {
		return nil, err
	}
	merged := map[string][]byte{}
	for ok := it.First(); ok; ok = it.Next() {
		if b.rangeSeq(it.Key()) == 0 {
			merged[string(it.Key())] = it.Value()
		}
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	for k, p := range b.points {
		kb := []byte(k)
		if bytes.Compare(kb, lo) < 0 || hi != nil && bytes.Compare(kb, hi) >= 0 {
			continue
		}
		if p.seq > b.rangeSeq(kb) && !p.deleted {
			merged[k] = p.v
		} else {
			delete(merged, k)
		}
	}
	s := &sliceIter{i: -1}
	for k, v := range merged {
		s.pairs = append(s.pairs, kvPair{[]byte(k), v})
	}
	sort.Slice(s.pairs, func(i, j int) bool { return bytes.Compare(s.pairs[i].k, s.pairs[j].k) < 0 })
	return s, nil
}

// readCtx is the context of the batch's reads.
func (b *pgBatch) readCtx() context.Context {
	if b.ctx != nil {
		return b.ctx
	}
	return context.Background()
}

func (b *pgBatch) size() int    { return b.bytes }
func (b *pgBatch) count() int   { return len(b.ops) }
func (b *pgBatch) close() error { return nil }

// sliceIter iterates sorted pairs in memory.
type sliceIter struct {
	pairs []kvPair
	i     int
}

func (s *sliceIter) at(i int) bool {
	if i < 0 || i >= len(s.pairs) {
		s.i = -1
		return false
	}
	s.i = i
	return true
}

func (s *sliceIter) First() bool { return s.at(0) }
func (s *sliceIter) Last() bool  { return s.at(len(s.pairs) - 1) }
func (s *sliceIter) Next() bool {
	if s.i < 0 {
		return false
	}
	return s.at(s.i + 1)
}
func (s *sliceIter) SeekGE(k []byte) bool {
	return s.at(sort.Search(len(s.pairs), func(i int) bool { return bytes.Compare(s.pairs[i].k, k) >= 0 }))
}
func (s *sliceIter) SeekLT(k []byte) bool {
	return s.at(sort.Search(len(s.pairs), func(i int) bool { return bytes.Compare(s.pairs[i].k, k) >= 0 }) - 1)
}
func (s *sliceIter) Key() []byte   { return s.pairs[s.i].k }
func (s *sliceIter) Value() []byte { return s.pairs[s.i].v }
func (s *sliceIter) Error() error  { return nil }
func (s *sliceIter) Close() error  { return nil }
