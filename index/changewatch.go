package index

// Listening for the changes other processes commit to a shared index
// (PostgreSQL LISTEN/NOTIFY through pgxlisten), so that each can drop
// what its caches hold of them.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"
)

// changeChannel is the notification channel of commits.
const changeChannel = "berth_kv_changes"

// listenRetry is how long the listener waits before it connects again
// after losing its connection.
const listenRetry = 250 * time.Millisecond

// ChangeWatcher is told what the commits to the index touched.
type ChangeWatcher interface {
	// Changed reports a committed change. local: this process's, told
	// synchronously after its commit and before Commit returns, by the
	// committing goroutine (which may hold the committer's locks:
	// Changed must take none of them); otherwise another process's, told
	// by the listener's goroutine once notified.
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
			return pgx.ConnectConfig(ctx, p.pool.Config().ConnConfig.Copy())
		},
		LogError: func(ctx context.Context, err error) {
			w.Listening(false)
			if ctx.Err() == nil {
				db.log.Warn("listening for other processes' changes: connection lost; caches off until it is back", "err", err)
			}
		},
		ReconnectDelay: listenRetry,
	}
	l.Handle(changeChannel, changeHandler{self: p.sender, w: w})
	p.listening.Add(1)
	go func() {
		defer p.listening.Done()
		_ = l.Listen(ctx)
	}()
	return true
}

// changeHandler passes the notifications of other processes' commits to
// a ChangeWatcher.
type changeHandler struct {
	self string
	w    ChangeWatcher
}

// HandleNotification tells the watcher of another process's change.
func (h changeHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	sender, c := decodeChange(n.Payload)
	if sender != h.self {
		h.w.Changed(c, false)
	}
	return nil
}

// HandleBacklog runs once the listener listens (again): what changed
// while it did not is unknown.
func (h changeHandler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h.w.Listening(true)
	return nil
}

// newSender is a random name for this process's notifications, by which
// its listener knows its own.
func newSender() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
