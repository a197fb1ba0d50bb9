package index

// Listening for the changes other processes commit to a shared index
// (PostgreSQL LISTEN/NOTIFY through pgxlisten), so that each can drop
// what its caches hold of them; and acknowledging them, so that a commit
// returns only once every other listening process has dropped what it
// changed (read-your-writes across processes, also for a tag moved or
// deleted).
//
// A process's listener connection, once it listens, is named
// "berth-listen <sender>" (its application_name). A commit that notifies
// reads, in its transaction, the names of the other listeners, and once
// committed waits (up to ackTimeout) until each has acknowledged its
// notification on the acknowledgement channel. A process whose listener
// is down does not cache (the watcher's Listening(false)), so it is not
// waited for; one that cannot be heard from within ackTimeout is still
// bounded by its TTL.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgxlisten"
)

// The notification channels: commits' changes, and their
// acknowledgements ("<change's sender> <seq> <acknowledging sender>").
const (
	changeChannel = "berth_kv_changes"
	ackChannel    = "berth_kv_acks"
)

// listenerAppName prefixes the application_name of a listening
// process's listener connection; its sender follows.
const listenerAppName = "berth-listen "

// listenRetry is how long the listener waits before it connects again
// after losing its connection.
const listenRetry = 250 * time.Millisecond

// ackTimeout bounds how long a commit waits for the other processes'
// acknowledgements.
const ackTimeout = time.Second

// ChangeWatcher is told what the commits to the index touched.
type ChangeWatcher interface {
	// Changed reports a committed change. local: this process's, told
	// synchronously after its commit and before Commit returns, by the
	// committing goroutine (which may hold the committer's locks:
	// Changed must take none of them); otherwise another process's, told
	// by the listener's goroutine once notified, which acknowledges it
	// when Changed returns (the other process's commit waits for that:
	// Changed must not block, nor take a lock a committer may hold).
	Changed(c Change, local bool)
	// Listening reports the listener's state: false when its
	// connection is lost (from then on, other processes' changes may go
	// unnoticed), true once it listens again (what changed meanwhile is
	// unknown). Told by the listener's goroutine; the first call is
	// Listening(true) once the listener is up.
	Listening(on bool)
}

// WatchChanges starts telling w what commits touch, until Close. It
// returns false, doing nothing, when the index is not shared (pebble:
// one process owns it and its writers drop their own caches).
func (db *DB) WatchChanges(w ChangeWatcher) bool {
	p, ok := db.kv.(*pgKV)
	if !ok || w == nil {
		return false
	}
	p.watcher.Store(&w)
	ctx, cancel := context.WithCancel(context.Background())
	p.stopListen = cancel
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			cfg := p.pool.Config().ConnConfig.Copy()
			// Its only wait is for notifications: there is no statement for
			// a cancel request to stop (the pool's handler would wait
			// pgCancelGrace for the server to confirm one), so the end of
			// ctx cuts the connection at once, and Close does not wait.
			cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
				return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
			}
			return pgx.ConnectConfig(ctx, cfg)
		},
		LogError: func(ctx context.Context, err error) {
			p.live.Store(false)
			w.Listening(false)
			if ctx.Err() == nil {
				db.log.Warn("listening for other processes' changes: connection lost; caches off until it is back", "err", err)
			}
		},
		ReconnectDelay: listenRetry,
	}
	l.Handle(ackChannel, ackHandler{p: p})
	l.Handle(changeChannel, changeHandler{p: p, w: w})
	p.listening.Add(1)
	go func() {
		defer p.listening.Done()
		_ = l.Listen(ctx)
	}()
	return true
}

// changeHandler passes the notifications of other processes' commits to
// a ChangeWatcher and acknowledges them.
type changeHandler struct {
	p *pgKV
	w ChangeWatcher
}

// HandleNotification tells the watcher of another process's change,
// then acknowledges it.
func (h changeHandler) HandleNotification(ctx context.Context, n *pgconn.Notification, conn *pgx.Conn) error {
	sender, seq, c := decodeChange(n.Payload)
	if sender == h.p.sender {
		return nil
	}
	h.w.Changed(c, false)
	if sender == "" {
		return nil
	}
	_, err := conn.Exec(ctx, `SELECT pg_notify($1, $2)`, ackChannel, sender+" "+strconv.FormatUint(seq, 10)+" "+h.p.sender)
	return err
}

// HandleBacklog runs once the listener listens (again): it also listens
// for acknowledgements, names the connection so that other processes'
// commits wait for it, and tells the watcher (what changed while it did
// not listen is unknown).
func (h changeHandler) HandleBacklog(ctx context.Context, _ string, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ackChannel}.Sanitize()); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "SELECT set_config('application_name', $1, false)", listenerAppName+h.p.sender); err != nil {
		return err
	}
	h.w.Listening(true)
	h.p.live.Store(true)
	return nil
}

// ackHandler passes acknowledgements of this process's changes to the
// commits waiting for them.
type ackHandler struct{ p *pgKV }

// HandleNotification records an acknowledgement.
func (h ackHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	f := strings.Fields(n.Payload)
	if len(f) != 3 || f[0] != h.p.sender {
		return nil
	}
	// A payload it cannot read is ignored (returning an error would be
	// taken for a lost connection): its commit waits out ackTimeout.
	if seq, err := strconv.ParseUint(f[1], 10, 64); err == nil {
		h.p.acks.acked(seq, f[2])
	}
	return nil
}

// ackWaits are the commits waiting for acknowledgements, by sequence.
type ackWaits struct {
	mu sync.Mutex
	m  map[uint64]*ackWait
}

// ackWait is one commit's acknowledgements.
type ackWait struct {
	mu   sync.Mutex
	got  map[string]bool
	kick chan struct{} // buffered 1: an acknowledgement came
}

// expect registers commit seq, before it commits (an acknowledgement
// can come before the commit has read who listens).
func (a *ackWaits) expect(seq uint64) *ackWait {
	w := &ackWait{got: map[string]bool{}, kick: make(chan struct{}, 1)}
	a.mu.Lock()
	if a.m == nil {
		a.m = map[uint64]*ackWait{}
	}
	a.m[seq] = w
	a.mu.Unlock()
	return w
}

// forget unregisters commit seq.
func (a *ackWaits) forget(seq uint64) {
	a.mu.Lock()
	delete(a.m, seq)
	a.mu.Unlock()
}

// acked records that sender acknowledged commit seq.
func (a *ackWaits) acked(seq uint64, sender string) {
	a.mu.Lock()
	w := a.m[seq]
	a.mu.Unlock()
	if w == nil {
		return
	}
	w.mu.Lock()
	w.got[sender] = true
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// wait waits until every one of senders acknowledged, or for timeout;
// it returns those that did not.
func (w *ackWait) wait(senders []string, timeout time.Duration) []string {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		var missing []string
		w.mu.Lock()
		for _, s := range senders {
			if !w.got[s] {
				missing = append(missing, s)
			}
		}
		w.mu.Unlock()
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-w.kick:
		case <-deadline.C:
			return missing
		}
	}
}

// newSender is a random name for this process's notifications, by which
// its listener knows its own.
func newSender() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
