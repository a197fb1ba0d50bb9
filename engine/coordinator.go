package engine

// Several processes (replicas) over one store: the seam through which
// they coordinate. On pebble (one process owns the store) there is none:
// e.coord is nil, the striped locks are the in-process mutexes they have
// always been and every check below is one nil test. On PostgreSQL the
// index's Coordinator makes the repository, digest and upload locks
// cross-process (advisory locks), gives the leases that run gc,
// lifecycle and each background queue on one replica at a time, and the
// gc write barrier records its marks in the database. docs/scale-out.md,
// "Several replicas".

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/index"
)

// Lease names: one holder across the replicas for each.
const (
	leaseGC        = "gc"
	leaseLifecycle = "lifecycle"
)

// openCoordinator connects the cross-process locks when the index is
// shared (PostgreSQL), else seeds the in-process ones only.
func (e *Engine) openCoordinator() error {
	c, err := e.db.Coordinator()
	if err != nil {
		return err
	}
	if c == nil {
		e.repoLocks.Init()
		e.digestLocks.Init()
		return nil
	}
	e.coord = c
	e.repoLocks.InitShared(c, "repo\x00")
	e.digestLocks.InitShared(c, "digest\x00")
	return nil
}

// coordinated reports whether other processes may use the store meanwhile.
func (e *Engine) coordinated() bool { return e.coord != nil }

// errLeaseHeld tells that another replica holds a lease.
var errLeaseHeld = index.ErrLeaseHeld

// tryLease takes lease name across the replicas: (nil, nil) when the
// store is not shared (the caller's in-process exclusion is all there
// is), errLeaseHeld when another replica holds it. The returned context
// is ctx, cancelled too when the lease is lost (its session died: another
// replica may take it); call release when done.
func (e *Engine) tryLease(ctx context.Context, name string) (context.Context, func(), error) {
	if e.coord == nil {
		return ctx, func() {}, nil
	}
	l, err := e.coord.TryLease(ctx, name)
	if err != nil {
		if !errors.Is(err, index.ErrLeaseHeld) {
			err = storageErr(err)
		}
		return ctx, nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-l.Lost():
			e.log.Warn("lease lost with the database session; stopping", "lease", name)
			cancel()
		case <-lctx.Done():
		}
	}()
	return lctx, func() { cancel(); l.Release() }, nil
}

// putShades records, in b, that ds are referenced now: the gc write
// barrier other replicas' collections see (their sweep reads it under
// the digest's lock, which the caller holds). No-op when not shared.
func (e *Engine) putShades(b *index.Batch, ds ...digest.Digest) error {
	if e.coord == nil {
		return nil
	}
	now := time.Now()
	for _, d := range ds {
		if err := b.PutShade(d, now); err != nil {
			return storageErr(err)
		}
	}
	return nil
}

// shaded reports whether blob d carries a mark (the write barrier of
// the other replicas): a sweep under d's lock spares it. A mark that
// cannot be read spares it too.
func (e *Engine) shaded(d digest.Digest) bool {
	_, err := e.db.Shade(d)
	return !errors.Is(err, index.ErrNotFound)
}

// dropShades removes every mark, at the start of a collection (under the
// gc lease), before its mark phase: a mark removed was committed before,
// and so was the reference it marks, which the mark phase then reads from
// the index; a mark committed after its removal stays until the next
// collection and spares its blob in this one's sweep. No clock is
// compared: the order of the commits is all it takes.
func (e *Engine) dropShades() error {
	var all []digest.Digest
	err := e.db.WalkShades(func(d digest.Digest, _ time.Time) error {
		all = append(all, d)
		return nil
	})
	if err != nil {
		return storageErr(err)
	}
	for len(all) > 0 {
		n := min(len(all), 512)
		b := e.db.NewBatch()
		for _, d := range all[:n] {
			if err := b.DeleteShade(d); err != nil {
				b.Close()
				return storageErr(err)
			}
		}
		err := b.Commit(true)
		b.Close()
		if err != nil {
			return storageErr(err)
		}
		all = all[n:]
	}
	return nil
}

// storeIDSetting is the registry setting that records, in a shared
// database, the store identity the bucket is claimed under.
const storeIDSetting = "storeId"

// ErrStoreMismatch is returned by Open when the store's directory and its
// shared metadata database belong to different stores.
var ErrStoreMismatch = errors.New("engine: the data directory and the metadata database belong to different stores")

// adoptStoreIdentity makes dir's store identity (storeIDFile) the one
// the shared database records: a replica's new data directory adopts it,
// the first store on a database records its own (made now if it has
// none), and a directory with another identity is refused
// (ErrStoreMismatch), never silently given a second claim on the bucket.
func adoptStoreIdentity(db *index.DB, dir string) error {
	c, err := db.Coordinator()
	if err != nil {
		return storageErr(fmt.Errorf("engine: %w", err))
	}
	defer c.Lock("store-id")()
	local, err := readStoreIdentity(dir)
	if err != nil {
		return storageErr(err)
	}
	recorded, err := db.RegistrySetting(storeIDSetting)
	switch {
	case err == nil:
		id := string(recorded)
		if local == "" {
			return storageErr(writeStoreIdentity(dir, id))
		}
		if local != id {
			return fmt.Errorf("%w: %s/%s is %s, the database's store is %s (give each replica a new data directory, or the store's own)",
				ErrStoreMismatch, dir, storeIDFile, local, id)
		}
		return nil
	case !errors.Is(err, index.ErrNotFound):
		return storageErr(err)
	}
	if local == "" {
		if local, err = storeIdentity(dir); err != nil {
			return storageErr(err)
		}
	}
	b := db.NewBatch()
	defer b.Close()
	if err := b.PutRegistrySetting(storeIDSetting, []byte(local)); err != nil {
		return storageErr(err)
	}
	return storageErr(b.Commit(true))
}

// sharedPollInterval is how often, when replicas share the store, each
// looks at the queues for work another replica queued or left (its own
// pushes wake it at once).
const sharedPollInterval = 2 * time.Second

// startSharedPoll wakes the queue workers every sharedPollInterval of
// real time when the store is shared.
func (e *Engine) startSharedPoll() {
	if e.coord == nil {
		return
	}
	e.goBackground(func(ctx context.Context) {
		t := time.NewTicker(sharedPollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			e.wakeScanner()
			e.wakeTiers()
			e.kickEvents()
			e.rescanReplication()
		}
	})
}

// nextEventSeq numbers a queued event: the process's counter, or when
// replicas share the store the database's sequence (two replicas must
// never number two events alike: the number is the event's key).
func (e *Engine) nextEventSeq() (uint64, error) {
	if e.coord == nil {
		return e.ev.seq.Add(1), nil
	}
	n, err := e.coord.NextSeq(context.Background(), "events", e.ev.seq.Load())
	if err != nil {
		return 0, storageErr(err)
	}
	return n, nil
}

// keyringSetting is the registry setting that records, in a shared
// database, the keyring keys the replicas use: name -> versions and state.
const keyringSetting = "keyringKeys"

// ErrKeyringStale is returned by Open when replicas share the store and
// this replica's keyring lacks a key, or a key's version or state, that
// the database records as in use: every replica needs the same keyring.
var ErrKeyringStale = errors.New("engine: the keyring differs from the one the store's replicas use")

// sharedKey is what the database records of one keyring key.
type sharedKey struct {
	Versions       int            `json:"versions"`
	PrimaryVersion uint32         `json:"primaryVersion"`
	State          crypt.KeyState `json:"state"`
	// Probe is a wrap of keyProbe under the key's primary version when
	// recorded (none for a key that is not enabled): a keyring whose key
	// of that name is other material fails to unwrap it.
	Probe *crypt.WrappedKey `json:"probe,omitempty"`
}

// keyProbe is the data key the keyring's probes wrap, and keyProbeAD
// their associated data.
var (
	keyProbe   = make([]byte, 32)
	keyProbeAD = []byte("berth keyring probe")
)

// keyringKeys lists the keyring's own keys (not an HSM's, which every
// replica shares by nature).
func (e *Engine) keyringKeys(ctx context.Context) (map[string]sharedKey, error) {
	infos, err := e.keys.Keys(ctx)
	if err != nil {
		return nil, keyErr(err)
	}
	out := map[string]sharedKey{}
	for _, k := range infos {
		if strings.HasPrefix(k.Name, crypt.PKCS11Scheme) {
			continue
		}
		out[crypt.CanonicalKeyName(k.Name)] = sharedKey{Versions: k.Versions, PrimaryVersion: k.PrimaryVersion, State: k.State}
	}
	return out, nil
}

// checkSharedKeyring refuses (ErrKeyringStale) a keyring that lacks what
// the database records of the replicas' keyring, and records this one's
// when it is the first or is ahead (a key made before replicas shared
// the store). No-op when the store is not shared or keys come from
// Options.KeyProvider.
func (e *Engine) checkSharedKeyring(ctx context.Context) error {
	if e.coord == nil || e.opts.KeyProvider != nil {
		return nil
	}
	defer e.repoLocks.Lock("keyring\x00")()
	local, err := e.keyringKeys(ctx)
	if err != nil {
		return err
	}
	recorded := map[string]sharedKey{}
	if b, err := e.db.RegistrySetting(keyringSetting); err == nil {
		if err := json.Unmarshal(b, &recorded); err != nil {
			return fmt.Errorf("%w: registry setting %s: %v", ErrCorrupt, keyringSetting, err)
		}
	} else if !errors.Is(err, index.ErrNotFound) {
		return storageErr(err)
	}
	ahead := false
	for name, r := range recorded {
		l, ok := local[name]
		switch {
		case !ok:
			return fmt.Errorf("%w: it has no key %q, which the other replicas use: give every replica the same keyring file", ErrKeyringStale, name)
		case l.Versions < r.Versions || l.PrimaryVersion != r.PrimaryVersion && l.Versions == r.Versions:
			return fmt.Errorf("%w: key %q has %d versions (primary %d) here, %d (primary %d) on the other replicas: give every replica the same keyring file",
				ErrKeyringStale, name, l.Versions, l.PrimaryVersion, r.Versions, r.PrimaryVersion)
		case l.Versions == r.Versions && l.State != r.State:
			return fmt.Errorf("%w: key %q is %s here, %s on the other replicas: give every replica the same keyring file", ErrKeyringStale, name, l.State, r.State)
		case l.Versions > r.Versions:
			ahead = true
		}
		if r.Probe != nil {
			if _, err := e.keys.Unwrap(ctx, *r.Probe, keyProbeAD); err != nil && !errors.Is(err, crypt.ErrKeyDisabled) && !errors.Is(err, crypt.ErrKeyDestroyed) {
				return fmt.Errorf("%w: its key %q is not the other replicas' (%v): give every replica the same keyring file", ErrKeyringStale, name, err)
			}
		}
	}
	if len(local) > len(recorded) {
		ahead = true
	}
	if !ahead && len(recorded) > 0 {
		return nil
	}
	return e.recordKeyring(ctx, local)
}

// recordKeyring writes what the database records of the keyring, with a
// probe of each enabled key.
func (e *Engine) recordKeyring(ctx context.Context, keys map[string]sharedKey) error {
	for name, k := range keys {
		if k.State != crypt.KeyEnabled {
			continue
		}
		w, err := e.keys.Wrap(ctx, name, keyProbe, keyProbeAD)
		if err != nil {
			return keyErr(err)
		}
		k.Probe = &w
		keys[name] = k
	}
	v, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutRegistrySetting(keyringSetting, v); err != nil {
		return storageErr(err)
	}
	return storageErr(b.Commit(true))
}

// keyChangeAllowed refuses a change of keyring key name (create, rotate,
// disable, enable, destroy) while other replicas share the store: each
// holds its own copy of the keyring, which would silently diverge. A
// PKCS#11 key is one for every replica: allowed.
func (e *Engine) keyChangeAllowed(ctx context.Context, name string) error {
	if e.coord == nil || e.opts.KeyProvider != nil || strings.HasPrefix(name, crypt.PKCS11Scheme) {
		return nil
	}
	n, err := e.coord.Peers(ctx)
	if err != nil {
		return storageErr(err)
	}
	if n > 1 {
		return fmt.Errorf("%w: %d replicas share this store, each with its own copy of the keyring: stop the others, change key %q on one, give every replica the changed keyring, then start them (a PKCS#11 key changes in place for all)",
			ErrUnsupported, n, name)
	}
	return nil
}

// keyringChanged records the keyring after a key change, so that a
// replica started later with an older copy is refused.
func (e *Engine) keyringChanged(ctx context.Context, name string) {
	if e.coord == nil || e.opts.KeyProvider != nil || strings.HasPrefix(name, crypt.PKCS11Scheme) {
		return
	}
	defer e.repoLocks.Lock("keyring\x00")()
	local, err := e.keyringKeys(ctx)
	if err == nil {
		err = e.recordKeyring(ctx, local)
	}
	if err != nil {
		e.log.Error("the shared record of the keyring is not updated: replicas started with an older keyring are not refused", "key", name, "err", err)
	}
}
