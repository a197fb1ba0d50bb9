package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/s3"
	"github.com/berthstore/berth/index"
)

// ObjectStoreOptions put a store's blobs (the hot tier) in an
// S3-compatible bucket instead of <dir>/blobs; uploads are spooled in
// <dir> until they commit. Metadata stays in the store's index.
type ObjectStoreOptions struct {
	// Endpoint is host[:port] of the S3 API.
	Endpoint string
	// Bucket holds the blobs; it must exist.
	Bucket string
	// Prefix is prepended to every key; default none.
	Prefix string
	// AccessKey and SecretKey are static credentials; both empty: the
	// AWS chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, shared
	// files, the instance role).
	AccessKey, SecretKey string
	// Region of the bucket; default: asked of the server.
	Region string
	// TLS uses https.
	TLS bool
}

func (o *ObjectStoreOptions) validate() error {
	if o.Endpoint == "" || o.Bucket == "" {
		return fmt.Errorf("%w: ObjectStore needs Endpoint and Bucket", ErrInvalidArgument)
	}
	if (o.AccessKey == "") != (o.SecretKey == "") {
		return fmt.Errorf("%w: ObjectStore: give both AccessKey and SecretKey, or neither", ErrInvalidArgument)
	}
	return nil
}

// blobBackend is what the engine asks of a blob tier: every role of
// package blob's backends, with its readers and writers as the engine
// uses them. The file store and the object store both serve it.
type blobBackend interface {
	blob.Inventory
	Open(ctx context.Context, d digest.Digest, dataKey []byte) (*blob.Reader, error)
	NewWriter(ctx context.Context, id string, o blob.WriterOptions) (blobIngest, error)
	ResumeWriter(ctx context.Context, id string, st blob.WriterState, o blob.WriterOptions) (blobIngest, error)
	Close() error
}

// blobIngest is an upload as the engine drives it.
type blobIngest interface {
	blob.Ingest
	// Digest is the digest of what was written so far.
	Digest() digest.Digest
	// Verify checks the upload against d and size without committing.
	Verify(d digest.Digest, size int64) error
}

// fileBackend is the file store as a blobBackend.
type fileBackend struct{ *blob.Store }

func (f fileBackend) NewWriter(ctx context.Context, id string, o blob.WriterOptions) (blobIngest, error) {
	w, err := f.Store.NewWriter(ctx, id, o)
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (f fileBackend) ResumeWriter(ctx context.Context, id string, st blob.WriterState, o blob.WriterOptions) (blobIngest, error) {
	w, err := f.Store.ResumeWriter(ctx, id, st, o)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// objectBackend is the object store as a blobBackend.
type objectBackend struct{ *s3.Store }

func (b objectBackend) NewWriter(ctx context.Context, id string, o blob.WriterOptions) (blobIngest, error) {
	w, err := b.Store.NewWriter(ctx, id, o)
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (b objectBackend) ResumeWriter(ctx context.Context, id string, st blob.WriterState, o blob.WriterOptions) (blobIngest, error) {
	w, err := b.Store.ResumeWriter(ctx, id, st, o)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// openHot opens the hot tier: the file store in dir, or the object store
// of o.ObjectStore with its spool in dir. files is the file store (the
// object store's spool), which the store's tests and the FUSE view's
// statistics look at.
func openHot(ctx context.Context, dir string, o *Options) (hot blobBackend, files *blob.Store, err error) {
	bo := blob.Options{FrameSize: o.FrameSize, DisableCompression: o.DisableCompression, FS: o.FS}
	if o.ObjectStore == nil {
		bs, err := blob.Open(dir, &bo)
		if err != nil {
			return nil, nil, err
		}
		return fileBackend{bs}, bs, nil
	}
	owner, err := storeIdentity(dir)
	if err != nil {
		return nil, nil, err
	}
	ss, err := s3.Open(ctx, objectStoreOptions(o.ObjectStore, o.ObjectStore.Prefix, dir, bo, owner))
	if err != nil {
		return nil, nil, err
	}
	return objectBackend{ss}, ss.Spool(), nil
}

// objectStoreOptions are the options of an object store on oo's bucket
// under prefix, spooled in spool, owned by owner.
func objectStoreOptions(oo *ObjectStoreOptions, prefix, spool string, bo blob.Options, owner string) s3.Options {
	return s3.Options{
		Endpoint: oo.Endpoint, Bucket: oo.Bucket, Prefix: prefix, AccessKey: oo.AccessKey, SecretKey: oo.SecretKey,
		Region: oo.Region, TLS: oo.TLS, SpoolDir: filepath.Clean(spool), Blob: bo, Owner: owner,
	}
}

// openIndex opens the store's metadata: pebble under <dir>/index, or the
// PostgreSQL database of o.Metadata.
func openIndex(dir string, o *Options) (*index.DB, error) {
	if o.Metadata != "" {
		return index.OpenPostgres(context.Background(), o.Metadata, &index.Options{Logger: o.Logger}, nil)
	}
	return index.Open(filepath.Join(dir, "index"), &index.Options{Logger: o.Logger, CacheSize: o.IndexCacheSize, FS: o.FS})
}

// StoreExists reports whether a store lives at dir with the metadata o
// names: an index directory under dir with something in it, or, when
// o.Metadata names a PostgreSQL database, an index in that database. The
// offline commands ask it before opening a store they must not create.
func StoreExists(ctx context.Context, dir string, o *Options) (bool, error) {
	if o != nil && o.Metadata != "" {
		held, err := index.PostgresHoldsIndex(ctx, o.Metadata)
		if err != nil {
			return false, fmt.Errorf("engine: %w", err)
		}
		return held, nil
	}
	return storeExists(dir)
}

// MetadataStats count the database work of a store whose metadata is in
// PostgreSQL since Open: round trips, statements, point reads, range
// reads and their pages, commits and their retries. Zero on pebble.
type MetadataStats = index.KVStats

// MetadataStats returns the database work counted since Open (zero when
// the metadata is in pebble): with a request count, what each request
// costs the database.
func (e *Engine) MetadataStats() MetadataStats { return e.db.KVStats() }

// dbFor is the index as a request with context ctx reads it: on
// PostgreSQL a view that passes ctx to its SQL (a request given up
// cancels its queries); on pebble the index itself, at no cost (pebble
// does not look at contexts, and the view would be an allocation).
func (e *Engine) dbFor(ctx context.Context) *index.DB {
	if e.opts.Metadata == "" {
		return e.db
	}
	return e.db.WithContext(ctx)
}

// storeIDFile holds the store's random identity, made at the first open
// with an object store: the bucket prefix is claimed in its name.
const storeIDFile = "store-id"

// storeIdentity returns the identity of the store in dir, making it on
// first use.
func storeIdentity(dir string) (string, error) {
	id, err := readStoreIdentity(dir)
	if err != nil || id != "" {
		return id, err
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id = hex.EncodeToString(raw[:])
	return id, writeStoreIdentity(dir, id)
}

// readStoreIdentity returns the identity of the store in dir, "" when it
// has none yet.
func readStoreIdentity(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, storeIDFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("engine: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// writeStoreIdentity records id as the identity of the store in dir.
func writeStoreIdentity(dir, id string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if err := writeFileSync(filepath.Join(dir, storeIDFile), []byte(id+"\n")); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	return nil
}

// writeFileSync writes a new file and syncs it and its directory.
func writeFileSync(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

var (
	_ blobBackend = fileBackend{}
	_ blobBackend = objectBackend{}
)
