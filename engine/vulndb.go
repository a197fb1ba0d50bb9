package engine

// The vulnerability database: OSV records imported from files the
// operator brings (docs/scanning.md). An import writes every record under
// a new version number, then makes that version current in one synced
// batch; the version before it is kept for a rollback, older ones are
// deleted. An import that fails (an invalid record, a corrupt zip, a
// full disk) leaves the current version serving and deletes what it
// wrote; what a crash left is deleted by the next import, before it
// writes.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/berthstore/berth/engine/internal/record"
	"github.com/berthstore/berth/index"
	"github.com/berthstore/berth/scan"
	"github.com/berthstore/berth/scan/osv"
)

// ErrVulnDataInvalid is returned (wrapped, with the file and record) when
// vulnerability data cannot be imported: a record that is not valid OSV,
// a corrupt zip, a file that cannot be read. The database in use is
// unchanged.
var ErrVulnDataInvalid = errors.New("engine: vulnerability data refused")

// ErrNoVulnDatabase is returned when there is no database version to
// serve or to roll back to.
var ErrNoVulnDatabase = errors.New("engine: no vulnerability database")

// vulnDatabaseSetting names the registry setting holding the database's
// state (record.VulnDatabase).
const vulnDatabaseSetting = "vulnDatabase"

// vulnBatchBytes bounds an import's batches (committed without sync; the
// synced batch that makes the version current makes them durable).
const vulnBatchBytes = 4 << 20

// VulnDatabaseVersion describes one imported version of the
// vulnerability database.
type VulnDatabaseVersion = record.VulnVersion

// VulnDatabaseStatus is the database served and the one a rollback
// returns to (nil when there is none).
type VulnDatabaseStatus struct {
	Current  *VulnDatabaseVersion
	Previous *VulnDatabaseVersion
}

// VulnImport is the result of an import.
type VulnImport struct {
	// Version is the version now current.
	Version VulnDatabaseVersion
	// Changed is false when the data equals the current version's (ids
	// and modification times): nothing was written, nothing re-matched.
	Changed bool
	// Rematched is the number of images queued for a re-match under a
	// continuous scanning rule.
	Rematched int
}

// vulnState serializes imports and rollbacks, and caches the records
// read for matching.
type vulnState struct {
	mu sync.Mutex

	cacheMu  sync.Mutex
	cacheVer uint64
	cache    map[osv.PackageKey][]*osv.Record
}

// vulnCacheKeys bounds the package keys whose records stay decoded (a
// Debian release has about 30,000 source packages; the images of one
// registry share most of theirs). Past it the cache starts again.
const vulnCacheKeys = 32768

// cached returns the records of key in version ver, if decoded already.
func (s *vulnState) cached(ver uint64, key osv.PackageKey) ([]*osv.Record, bool) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.cacheVer != ver {
		return nil, false
	}
	r, ok := s.cache[key]
	return r, ok
}

// remember keeps the records of key in version ver.
func (s *vulnState) remember(ver uint64, key osv.PackageKey, recs []*osv.Record) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.cacheVer != ver || s.cache == nil || len(s.cache) >= vulnCacheKeys {
		s.cacheVer, s.cache = ver, map[osv.PackageKey][]*osv.Record{}
	}
	s.cache[key] = recs
}

func (e *Engine) loadVulnDatabase() (record.VulnDatabase, error) {
	b, err := e.db.RegistrySetting(vulnDatabaseSetting)
	if errors.Is(err, index.ErrNotFound) {
		return record.VulnDatabase{Next: 1}, nil
	}
	if err != nil {
		return record.VulnDatabase{}, storageErr(err)
	}
	st, err := record.DecodeVulnDatabase(b)
	if err != nil {
		return record.VulnDatabase{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return st, nil
}

// keptVersions lists the versions st refers to.
func keptVersions(st record.VulnDatabase) []uint64 {
	var out []uint64
	for _, v := range []*record.VulnVersion{st.Current, st.Previous} {
		if v != nil {
			out = append(out, v.Version)
		}
	}
	return out
}

// VulnDatabaseStatus returns the versions of the vulnerability database.
func (e *Engine) VulnDatabaseStatus(ctx context.Context) (VulnDatabaseStatus, error) {
	st, err := e.loadVulnDatabase()
	if err != nil {
		return VulnDatabaseStatus{}, err
	}
	return VulnDatabaseStatus{Current: st.Current, Previous: st.Previous}, nil
}

// ImportVulnerabilities imports the OSV records of path: a zip export as
// the OSV project publishes them (ecosystem/all.zip), a JSON record, or a
// directory of either (walked). Every record is validated; the first
// invalid one refuses the whole import (ErrVulnDataInvalid, naming the
// file and record) and the database in use is unchanged. On success the
// import is the current version and the version before it is kept for
// RollbackVulnDatabase; images under a continuous scanning rule are
// queued for a re-match when the data changed.
func (e *Engine) ImportVulnerabilities(ctx context.Context, path string) (*VulnImport, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	e.vulns.mu.Lock()
	defer e.vulns.mu.Unlock()
	st, err := e.loadVulnDatabase()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVulnDataInvalid, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVulnDataInvalid, err)
	}
	fsys, root := os.DirFS(filepath.Dir(abs)), filepath.Base(abs)
	if fi.IsDir() {
		fsys, root = os.DirFS(abs), "."
	}
	ver := st.Next
	if ver == 0 {
		ver = 1
	}
	// Leftovers of an interrupted import go first.
	if err := e.deleteVulnVersionsExcept(keptVersions(st)...); err != nil {
		return nil, err
	}
	w := &vulnWriter{e: e, ver: ver, b: e.db.NewBatch(), modified: map[string]string{}, ecosystems: map[string]int{}}
	err = osv.ReadFS(fsys, root, func(name string, rec *osv.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return w.add(rec)
	})
	if err == nil {
		err = w.flush()
	}
	w.b.Close()
	if err != nil {
		// Nothing of this version is served: delete what was written.
		if derr := e.deleteVulnVersionsExcept(keptVersions(st)...); derr != nil {
			e.log.Warn("deleting an interrupted import", "err", derr)
		}
		if ctx.Err() != nil || errors.Is(err, ErrStorageFull) || errors.Is(err, ErrClosed) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrVulnDataInvalid, path, err)
	}
	v := record.VulnVersion{
		Version: ver, ImportedAt: e.now(), Source: abs, Digest: w.digest(),
		Records: len(w.modified), Withdrawn: w.withdrawn, Ecosystems: w.ecosystems,
	}
	if st.Current != nil && st.Current.Digest == v.Digest {
		if err := e.deleteVulnVersionsExcept(keptVersions(st)...); err != nil {
			return nil, err
		}
		e.log.Info("vulnerability data imported: unchanged", "source", abs, "records", v.Records, "version", st.Current.Version)
		return &VulnImport{Version: *st.Current}, nil
	}
	next := record.VulnDatabase{Current: &v, Previous: st.Current, Next: ver + 1}
	if err := e.storeVulnDatabase(next); err != nil {
		return nil, err
	}
	e.log.Info("vulnerability data imported", "source", abs, "records", v.Records, "withdrawn", v.Withdrawn, "version", ver)
	n, err := e.queueRematches(ctx)
	if err != nil {
		return nil, err
	}
	return &VulnImport{Version: v, Changed: true, Rematched: n}, nil
}

// RollbackVulnDatabase makes the previous version current again and
// deletes the one it replaces; images under a continuous scanning rule
// are queued for a re-match. ErrNoVulnDatabase when there is no
// previous version.
func (e *Engine) RollbackVulnDatabase(ctx context.Context) (*VulnDatabaseVersion, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	e.vulns.mu.Lock()
	defer e.vulns.mu.Unlock()
	st, err := e.loadVulnDatabase()
	if err != nil {
		return nil, err
	}
	if st.Previous == nil {
		return nil, fmt.Errorf("%w: no previous version to roll back to", ErrNoVulnDatabase)
	}
	next := record.VulnDatabase{Current: st.Previous, Next: st.Next}
	if err := e.storeVulnDatabase(next); err != nil {
		return nil, err
	}
	e.log.Info("vulnerability database rolled back", "from", st.Current.Version, "to", st.Previous.Version)
	if _, err := e.queueRematches(ctx); err != nil {
		return nil, err
	}
	return st.Previous, nil
}

// storeVulnDatabase makes st the database's state and deletes every
// version it does not refer to, in one synced batch.
func (e *Engine) storeVulnDatabase(st record.VulnDatabase) error {
	val, err := record.EncodeVulnDatabase(st)
	if err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutRegistrySetting(vulnDatabaseSetting, val); err != nil {
		return storageErr(err)
	}
	if err := b.DeleteVulnVersionsExcept(keptVersions(st)...); err != nil {
		return storageErr(err)
	}
	return storageErr(b.Commit(true))
}

func (e *Engine) deleteVulnVersionsExcept(keep ...uint64) error {
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteVulnVersionsExcept(keep...); err != nil {
		return storageErr(err)
	}
	return storageErr(b.Commit(false))
}

// vulnWriter writes the records of one import in batches.
type vulnWriter struct {
	e          *Engine
	ver        uint64
	b          *index.Batch
	modified   map[string]string // id -> modified, for the digest
	ecosystems map[string]int
	withdrawn  int
}

func (w *vulnWriter) add(rec *osv.Record) error {
	val, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := w.b.PutVulnRecord(w.ver, rec.ID, val); err != nil {
		return fmt.Errorf("record %s: %w", rec.ID, err)
	}
	for _, k := range rec.Keys() {
		if err := w.b.PutVulnKey(w.ver, k.Ecosystem, k.Name, rec.ID); err != nil {
			return fmt.Errorf("record %s: %w", rec.ID, err)
		}
		w.ecosystems[k.Ecosystem]++
	}
	if _, dup := w.modified[rec.ID]; !dup && rec.Withdrawn != nil {
		w.withdrawn++
	}
	w.modified[rec.ID] = rec.Modified.UTC().Format("2006-01-02T15:04:05.999999999Z")
	if w.b.Len() >= vulnBatchBytes {
		return w.flush()
	}
	return nil
}

func (w *vulnWriter) flush() error {
	if err := w.b.Commit(false); err != nil {
		return storageErr(err)
	}
	w.b = w.e.db.NewBatch()
	return nil
}

func (w *vulnWriter) digest() string {
	ids := make([]string, 0, len(w.modified))
	for id := range w.modified {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	h := sha256.New()
	for _, id := range ids {
		fmt.Fprintf(h, "%s\x00%s\n", id, w.modified[id])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// vulnView serves one version of the database to scan.Match.
type vulnView struct {
	e   *Engine
	ver uint64
}

var _ scan.DB = (*vulnView)(nil)

// Advisories returns the records with an entry for key. The records of
// a version never change, so they are decoded once and shared by the
// matches that ask for them (scan.Match only reads them).
func (v *vulnView) Advisories(ctx context.Context, key osv.PackageKey) ([]*osv.Record, error) {
	if recs, ok := v.e.vulns.cached(v.ver, key); ok {
		return recs, nil
	}
	complete := true
	var ids []string
	if err := v.e.db.VulnIDs(v.ver, key.Ecosystem, key.Name, func(id string) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		return nil, storageErr(err)
	}
	out := make([]*osv.Record, 0, len(ids))
	for _, id := range ids {
		b, err := v.e.db.VulnRecord(v.ver, id)
		if err != nil {
			if errors.Is(err, index.ErrNotFound) {
				complete = false
				continue // a rollback deleted this version under the matcher, which matches again
			}
			return nil, storageErr(err)
		}
		rec := new(osv.Record)
		if err := json.Unmarshal(b, rec); err != nil {
			return nil, fmt.Errorf("%w: vulnerability %s: %v", ErrCorrupt, id, err)
		}
		out = append(out, rec)
	}
	if complete {
		v.e.vulns.remember(v.ver, key, out)
	}
	return out, ctx.Err()
}
