package index

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Coordination of several processes (replicas) sharing one PostgreSQL
// index: named locks and leases as PostgreSQL session-level advisory
// locks, held on one connection of the process's own (not the pool's).
// When the process dies, or its connection does, PostgreSQL releases
// them all. docs/scale-out.md, "Several replicas".

// ErrLeaseHeld is returned by Coordinator.TryLease when another session
// (another replica) holds the lease.
var ErrLeaseHeld = errors.New("index: lease held by another replica")

// coordApplicationName is the application_name of coordinators'
// sessions (pg_stat_activity shows them).
const coordApplicationName = "berth-coordinator"

// Coordinator timings.
const (
	// coordPingInterval is how often the lock session is checked; a lease
	// holder learns of a lost session within about this.
	coordPingInterval = time.Second
	// coordLockPollMax caps the wait between two tries of a busy lock.
	coordLockPollMax = 20 * time.Millisecond
	// coordReconnectWait caps how long a lock waits for the database when
	// its session is lost, before it goes on without the lock (logged:
	// the database is unreachable, so the guarded write fails anyway).
	coordReconnectWait = 30 * time.Second
)

// Coordinator gives the processes sharing a PostgreSQL index locks and
// leases that exclude each other across processes. It is safe for
// concurrent use; nil on a pebble index (DB.Coordinator).
//
// A lock is re-entrant within one process (it is held by the process's
// session, not by a goroutine): the caller excludes its own goroutines
// first (the engine's striped locks do), then takes the Coordinator's.
type Coordinator struct {
	cfg *pgx.ConnConfig
	log *slog.Logger

	mu     sync.Mutex // guards conn and leases; held for one statement at a time
	conn   *pgx.Conn
	leases map[int64]*Lease
	closed bool
	// sessionID counts sessions: a lease taken on one is lost with it.
	sessionID uint64
	// seqs are the sequences made ready (NextSeq), under seqMu.
	seqMu sync.Mutex
	seqs  map[string]bool

	stop chan struct{}
	done chan struct{}
}

// Lease is a lease held through a Coordinator: until Release, or until
// the holder's session is lost (then Lost is closed).
type Lease struct {
	c       *Coordinator
	name    string
	key     int64
	session uint64
	lost    chan struct{}
	once    sync.Once
}

// Coordinator returns the index's coordinator for several processes
// sharing it, nil when the index is in pebble (one process owns it). The
// first call connects; later calls return the same one, closed with the
// index.
func (db *DB) Coordinator() (*Coordinator, error) {
	p, ok := db.kv.(*pgKV)
	if !ok {
		return nil, nil
	}
	p.coordMu.Lock()
	defer p.coordMu.Unlock()
	if p.coord != nil {
		return p.coord, nil
	}
	c := &Coordinator{
		cfg: p.pool.Config().ConnConfig.Copy(), log: db.log.With("component", "coordinator"),
		leases: map[int64]*Lease{}, seqs: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
	c.cfg.RuntimeParams["application_name"] = coordApplicationName
	ctx, cancel := context.WithTimeout(context.Background(), coordReconnectWait)
	defer cancel()
	c.mu.Lock()
	err := c.connectLocked(ctx)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	go c.pinger()
	p.coord = c
	return c, nil
}

// lockKey maps a lock's name into PostgreSQL's advisory lock space.
func lockKey(name string) int64 {
	h := sha256.Sum256([]byte(name))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// connectLocked opens the session (c.mu held).
func (c *Coordinator) connectLocked(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, c.cfg)
	if err != nil {
		return fmt.Errorf("index: postgres: coordinator: %w", err)
	}
	// Every live coordinator holds the replicas' lock, shared (Peers
	// counts its holders).
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock_shared($1)`, replicasKey); err != nil {
		_ = conn.Close(ctx)
		return fmt.Errorf("index: postgres: coordinator: %w", err)
	}
	c.conn = conn
	c.sessionID++
	return nil
}

// dropLocked closes a failed session: every lease held on it is lost
// (c.mu held).
func (c *Coordinator) dropLocked(err error) {
	if c.conn == nil {
		return
	}
	c.log.Error("coordinator session lost: its locks and leases are released", "err", err, "leases", len(c.leases))
	_ = c.conn.Close(context.Background())
	c.conn = nil
	for k, l := range c.leases {
		l.markLost()
		delete(c.leases, k)
	}
}

// exec runs fn on the session, reconnecting first if it was lost; a
// connection error drops the session.
func (c *Coordinator) exec(ctx context.Context, fn func(conn *pgx.Conn) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if c.conn == nil {
		if err := c.connectLocked(ctx); err != nil {
			return err
		}
	}
	err := fn(c.conn)
	if err != nil && (c.conn.IsClosed() || !pgStatementError(err)) {
		c.dropLocked(err)
	}
	return err
}

// pgStatementError reports whether err is the server's answer to a
// statement (the session is fine), not a lost connection.
func pgStatementError(err error) bool {
	var pe interface{ SQLState() string }
	return errors.As(err, &pe)
}

// tryLock tries advisory lock key once on the session.
func (c *Coordinator) tryLock(ctx context.Context, key int64) (bool, uint64, error) {
	var ok bool
	var session uint64
	err := c.exec(ctx, func(conn *pgx.Conn) error {
		session = c.sessionID
		return conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok)
	})
	return ok, session, err
}

// unlock releases advisory lock key if the session that took it is
// still the current one (a lost session released it already).
func (c *Coordinator) unlock(key int64, session uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil || c.sessionID != session {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), coordReconnectWait)
	defer cancel()
	if _, err := c.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key); err != nil && !pgStatementError(err) {
		c.dropLocked(err)
	}
}

// Lock takes the cross-process lock name, waiting while another process
// holds it, and returns its release. Within one process the caller must
// exclude other holders of name itself (the lock is the session's). When
// the database cannot be reached for coordReconnectWait, Lock logs it and
// returns without the lock: the write it guards cannot reach the
// database either.
func (c *Coordinator) Lock(name string) (unlock func()) {
	key := lockKey(name)
	session := c.acquire(key, name)
	return func() { c.unlock(key, session) }
}

// LockMany takes the locks of several names, in one order every process
// uses (so that two LockMany never deadlock), and returns the release of
// all.
func (c *Coordinator) LockMany(names []string) (unlock func()) {
	keys := make([]int64, len(names))
	for i, n := range names {
		keys[i] = lockKey(n)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	sessions := make([]uint64, len(keys))
	for i, k := range keys {
		sessions[i] = c.acquire(k, "")
	}
	return func() {
		for i := len(keys) - 1; i >= 0; i-- {
			c.unlock(keys[i], sessions[i])
		}
	}
}

// acquire waits for advisory lock key, polling with a growing pause.
func (c *Coordinator) acquire(key int64, name string) uint64 {
	wait := 250 * time.Microsecond
	var failingSince time.Time
	for {
		ok, session, err := c.tryLock(context.Background(), key)
		switch {
		case err == nil && ok:
			return session
		case errors.Is(err, ErrClosed):
			return 0
		case err != nil:
			if failingSince.IsZero() {
				failingSince = time.Now()
			} else if time.Since(failingSince) > coordReconnectWait {
				c.log.Error("cross-replica lock not taken: database unreachable", "lock", name, "err", err)
				return 0
			}
			wait = 100 * time.Millisecond
		}
		time.Sleep(wait)
		wait = min(wait*2, coordLockPollMax)
	}
}

// TryLease takes lease name if no other process holds it: ErrLeaseHeld
// when one does. The lease lasts until Release, or until this process's
// session is lost (Lost is closed then, within about a second).
func (c *Coordinator) TryLease(ctx context.Context, name string) (*Lease, error) {
	key := lockKey("lease\x00" + name)
	c.mu.Lock()
	if _, held := c.leases[key]; held {
		c.mu.Unlock()
		return nil, ErrLeaseHeld // held by this process: the caller's own exclusion failed
	}
	c.mu.Unlock()
	ok, session, err := c.tryLock(ctx, key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrLeaseHeld
	}
	l := &Lease{c: c, name: name, key: key, session: session, lost: make(chan struct{})}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessionID != session || c.conn == nil {
		l.markLost()
		return l, nil
	}
	c.leases[key] = l
	return l, nil
}

// Lost is closed when the lease was lost with its session: another
// process may hold it now. The holder stops what the lease guards.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

func (l *Lease) markLost() { l.once.Do(func() { close(l.lost) }) }

// Release gives the lease up. Safe to call more than once.
func (l *Lease) Release() {
	c := l.c
	c.mu.Lock()
	if cur, ok := c.leases[l.key]; !ok || cur != l {
		c.mu.Unlock()
		return
	}
	delete(c.leases, l.key)
	c.mu.Unlock()
	c.unlock(l.key, l.session)
}

// SessionPID returns the server process id of the coordinator's session
// (for tests that cut it, and for logs).
func (c *Coordinator) SessionPID() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return 0
	}
	return c.conn.PgConn().PID()
}

// pinger checks the session every coordPingInterval, so that a lost one
// is noticed (and its leases' holders told) without waiting for the next
// lock.
func (c *Coordinator) pinger() {
	defer close(c.done)
	t := time.NewTicker(coordPingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.mu.Lock()
		if c.conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), coordPingInterval)
			if err := c.conn.Ping(ctx); err != nil {
				c.dropLocked(err)
			}
			cancel()
		}
		c.mu.Unlock()
	}
}

// close ends the session: every lock and lease of this process is
// released.
func (c *Coordinator) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.stop)
	if c.conn != nil {
		// Released now, not when the server notices the disconnection:
		// another replica may take a lease at once.
		ctx, cancel := context.WithTimeout(context.Background(), coordPingInterval)
		_, _ = c.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
		cancel()
		_ = c.conn.Close(context.Background())
		c.conn = nil
	}
	for k, l := range c.leases {
		l.markLost()
		delete(c.leases, k)
	}
	c.mu.Unlock()
	<-c.done
}

// NextSeq returns the next number of the database's sequence name
// (created on first use), which is above floor: numbers no two processes
// share.
func (c *Coordinator) NextSeq(ctx context.Context, name string, floor uint64) (uint64, error) {
	seq := pgx.Identifier{"berth_seq_" + name}.Sanitize()
	c.seqMu.Lock()
	ready := c.seqs[name]
	c.seqMu.Unlock()
	var n int64
	err := c.exec(ctx, func(conn *pgx.Conn) error {
		if !ready {
			// IF NOT EXISTS does not hold against a process creating it at
			// the same moment: its duplicate is this one's success.
			if _, err := conn.Exec(ctx, `CREATE SEQUENCE IF NOT EXISTS `+seq+` AS bigint MINVALUE 0`); err != nil && !pgDuplicate(err) {
				return err
			}
			// A store whose numbers came from one process's counter
			// (before replicas shared it) continues above them.
			if _, err := conn.Exec(ctx, `SELECT setval('`+seq+`', $1::bigint) FROM `+seq+` WHERE last_value < $1::bigint`, int64(floor)); err != nil {
				return err
			}
		}
		return conn.QueryRow(ctx, `SELECT nextval('`+seq+`')`).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("index: postgres: sequence %s: %w", name, err)
	}
	if !ready {
		c.seqMu.Lock()
		c.seqs[name] = true
		c.seqMu.Unlock()
	}
	return uint64(n), nil
}

// replicasKey is the advisory lock every live coordinator holds shared.
var replicasKey = lockKey("replicas")

// Peers counts the processes whose coordinators are connected to the
// database now, this one included: the holders of the replicas' shared
// lock (released at once by a coordinator that closes).
func (c *Coordinator) Peers(ctx context.Context) (int, error) {
	var n int
	hi, lo := int64(uint64(replicasKey)>>32), int64(uint32(replicasKey))
	err := c.exec(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT count(DISTINCT pid) FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND objsubid = 1
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND classid::bigint = $1 AND objid::bigint = $2`, hi, lo).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("index: postgres: %w", err)
	}
	return n, nil
}

// pgDuplicate reports that a CREATE failed because another session
// created the same object at the same time (duplicate_table, or the
// unique_violation of the catalog's own index).
func pgDuplicate(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P07" || pe.Code == "23505")
}
