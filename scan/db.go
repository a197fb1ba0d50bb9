package scan

import (
	"context"
	"sort"
	"sync"

	"github.com/berthstore/berth/scan/osv"
)

// DB is a vulnerability database as matching reads it: the records that
// name a package.
type DB interface {
	// Advisories returns the records with an affected entry whose
	// osv.Key is key, withdrawn ones included (matching skips them). The
	// caller does not modify the slice or the records.
	Advisories(ctx context.Context, key osv.PackageKey) ([]*osv.Record, error)
}

// MemDB is a DB in memory, indexed by package key. It is safe for
// concurrent use.
type MemDB struct {
	mu    sync.RWMutex
	byID  map[string]*osv.Record
	byKey map[osv.PackageKey][]*osv.Record
}

var _ DB = (*MemDB)(nil)

// NewMemDB returns an empty database.
func NewMemDB() *MemDB {
	return &MemDB{byID: map[string]*osv.Record{}, byKey: map[osv.PackageKey][]*osv.Record{}}
}

// Add adds a record, replacing the record of the same id.
func (m *MemDB) Add(r *osv.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.byID[r.ID]; ok {
		for _, k := range old.Keys() {
			list := m.byKey[k]
			for i, x := range list {
				if x == old {
					m.byKey[k] = append(list[:i:i], list[i+1:]...)
					break
				}
			}
		}
	}
	m.byID[r.ID] = r
	for _, k := range r.Keys() {
		m.byKey[k] = append(m.byKey[k], r)
	}
}

// Len returns the number of records.
func (m *MemDB) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.byID)
}

// Get returns the record of an id.
func (m *MemDB) Get(id string) (*osv.Record, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.byID[id]
	return r, ok
}

// IDs returns the ids of every record, sorted.
func (m *MemDB) IDs() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.byID))
	for id := range m.byID {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Advisories implements DB.
func (m *MemDB) Advisories(_ context.Context, key osv.PackageKey) ([]*osv.Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.byKey[key], nil
}
