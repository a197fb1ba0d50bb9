package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/blob"
)

// Defaults of Options.
const (
	// DefaultRequestTimeout bounds one S3 request that moves no blob body
	// (HEAD, a frame's ranged GET, DELETE, a list page).
	DefaultRequestTimeout = 30 * time.Second
	// DefaultMaxRetries is how often minio-go retries a transient failure,
	// with exponential backoff and jitter, before it is ErrUnavailable.
	DefaultMaxRetries = 5
	// DefaultPartSize is the part size of multipart uploads (8 MiB): a
	// PATCH waits for at most one part after its body arrived (the whole
	// ones before went while it arrived), and S3's 10,000 parts still
	// hold a blob of 78 GiB (ECR's largest layer is 52,000 MiB).
	DefaultPartSize uint64 = 8 << 20
)

// Options configure a Store. Endpoint, Bucket and SpoolDir are required.
type Options struct {
	// Endpoint is host[:port] of the S3 API.
	Endpoint string
	// Bucket holds the blobs; it must exist.
	Bucket string
	// Prefix is prepended to every key (e.g. "registry/"); default none.
	Prefix string
	// AccessKey and SecretKey are static credentials; both empty: the
	// standard AWS chain (environment, shared files, instance role).
	AccessKey, SecretKey string
	// Region of the bucket; default: asked of the server.
	Region string
	// TLS uses https; the system's roots verify the server.
	TLS bool
	// Transport overrides the HTTP transport (a custom CA, a proxy);
	// default: one with DialTimeout and RequestTimeout as its response
	// header timeout.
	Transport http.RoundTripper
	// SpoolDir is the local directory uploads are written in before
	// Commit sends them.
	SpoolDir string
	// Blob configures the spool's writers (frame size, compression).
	Blob blob.Options
	// RequestTimeout: DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxRetries: DefaultMaxRetries; negative: no retry.
	MaxRetries int
	// PartSize: DefaultPartSize; at least 5 MiB (S3's minimum).
	PartSize uint64
	// Owner names the store that owns the prefix. Open records it in
	// <prefix>OWNER when the prefix has none, and refuses (ErrOwned) a
	// prefix another store owns. Empty: no check.
	Owner string
}

func (o *Options) ensureDefaults() {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Endpoint == "" {
		errs = append(errs, errors.New("blob: s3: Endpoint is required"))
	}
	if o.Bucket == "" {
		errs = append(errs, errors.New("blob: s3: Bucket is required"))
	}
	if o.SpoolDir == "" {
		errs = append(errs, errors.New("blob: s3: SpoolDir is required"))
	}
	if o.PartSize < 5<<20 {
		errs = append(errs, fmt.Errorf("blob: s3: PartSize %d is below S3's minimum of 5 MiB", o.PartSize))
	}
	if (o.AccessKey == "") != (o.SecretKey == "") {
		errs = append(errs, errors.New("blob: s3: give both AccessKey and SecretKey, or neither"))
	}
	return errors.Join(errs...)
}

// Store is a blob backend on one bucket. It is safe for concurrent use;
// commits of one digest must be serialised by the caller (as for the file
// store).
type Store struct {
	opts   Options
	client *minio.Client
	core   minio.Core
	spool  *blob.Store
	// instance names this Store's spool in the uploads' states: a resume
	// on the instance that checkpointed reads its own spool file.
	instance string
}

var (
	_ blob.Backend[*blob.Reader, *Writer] = (*Store)(nil)
	_ blob.Inventory                      = (*Store)(nil)
)

// Open connects to the bucket (checking that it exists) and opens the
// spool.
func Open(ctx context.Context, opts Options) (*Store, error) {
	o := opts
	o.ensureDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	creds := credentials.NewStaticV4(o.AccessKey, o.SecretKey, "")
	if o.AccessKey == "" {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}, &credentials.IAM{},
		})
	}
	tr := o.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.ResponseHeaderTimeout = o.RequestTimeout
		t.MaxIdleConnsPerHost = 64
		tr = t
	}
	retries := max(o.MaxRetries, 0) + 1
	client, err := minio.New(o.Endpoint, &minio.Options{
		Creds: creds, Secure: o.TLS, Region: o.Region, Transport: tr, MaxRetries: retries,
		// Bodies carry a CRC32C instead of a payload signature
		// (checksum.go).
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: s3: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
	defer cancel()
	ok, err := client.BucketExists(cctx, o.Bucket)
	if err != nil {
		return nil, mapErr(err, "bucket "+o.Bucket)
	}
	if !ok {
		return nil, fmt.Errorf("blob: s3: bucket %q does not exist", o.Bucket)
	}
	var inst [12]byte
	if _, err := rand.Read(inst[:]); err != nil {
		return nil, fmt.Errorf("blob: s3: %w", err)
	}
	s := &Store{opts: o, client: client, core: minio.Core{Client: client}, instance: hex.EncodeToString(inst[:])}
	if o.Owner != "" {
		if err := s.claimOwner(ctx, o.Owner); err != nil {
			return nil, err
		}
	}
	// The spool's bytes are made durable in the bucket (a checkpoint's
	// parts and side object, a commit's object) before any answer says
	// so, and a replica that lost its spool resumes from the bucket:
	// the spool itself need not be fsynced, nor written back to disk
	// before it is removed.
	o.Blob.NoSync = true
	if s.spool, err = blob.Open(o.SpoolDir, &o.Blob); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops the spool's encoders. Writers must be finished first.
func (s *Store) Close() error { return s.spool.Close() }

// Key is the object key of blob d.
func (s *Store) Key(d digest.Digest) (string, error) {
	if err := blob.CheckDigest(d); err != nil {
		return "", err
	}
	return s.opts.Prefix + "blobs/" + string(d.Algorithm()) + "/" + d.Encoded(), nil
}

// request is ctx bounded by the request timeout.
func (s *Store) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.RequestTimeout)
}

// head locates blob d's stored bytes: its object, or the data object
// its reference names (one HEAD either way).
func (s *Store) head(ctx context.Context, d digest.Digest) (location, error) {
	key, err := s.Key(d)
	if err != nil {
		return location{}, err
	}
	return s.locate(ctx, key, string(d))
}

// Stat describes blob d from its object's size and time and its header
// (one HEAD and one ranged GET).
func (s *Store) Stat(ctx context.Context, d digest.Digest) (blob.Info, error) {
	loc, err := s.head(ctx, d)
	if err != nil {
		return blob.Info{}, err
	}
	src := &objectSource{s: s, ctx: ctx, key: loc.key, size: loc.size, etag: loc.etag}
	hb := make([]byte, blob.HeaderSize)
	if _, err := src.ReadAt(hb, 0); err != nil {
		if errors.Is(err, blob.ErrUnavailable) || errors.Is(err, blob.ErrNotFound) {
			return blob.Info{}, err
		}
		return blob.Info{Digest: d, StoredSize: loc.size, ModTime: loc.modTime},
			fmt.Errorf("%w: %s: reading header: %v", blob.ErrCorrupt, d, err)
	}
	return blob.InfoFromHeader(d, hb, loc.size, loc.modTime)
}

// Open opens blob d for reading: every read fetches only the frames it
// needs.
func (s *Store) Open(ctx context.Context, d digest.Digest, dataKey []byte) (*blob.Reader, error) {
	key, err := s.Key(d)
	if err != nil {
		return nil, err
	}
	// A blob sent in one PUT is its own object: one ranged GET of its
	// first bytes tells its size and ETag and holds its header (and, for
	// a small blob, its frames and table too). A reference (a blob sent
	// in parts) is a few bytes whose metadata, which that GET returns
	// too, names its data object: a second GET, of the same kind, opens
	// that. An empty object, a reference as stores wrote them before,
	// cannot be read by range: a HEAD follows it.
	src, meta, err := s.openPrefix(ctx, key, string(d), "", openPrefixSize)
	if err != nil {
		return nil, err
	}
	if meta != nil {
		ref, err := parseRef(meta, s.opts.Prefix)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d, err)
		}
		if src, err = s.openRef(ctx, ref, string(d)); err != nil {
			return nil, err
		}
	}
	if src != nil {
		return blob.NewReader(src, src.size, d, dataKey)
	}
	loc, err := s.locate(ctx, key, string(d))
	if err != nil {
		return nil, err
	}
	r, err := blob.NewReader(&objectSource{s: s, ctx: context.WithoutCancel(ctx), key: loc.key, size: loc.size, etag: loc.etag}, loc.size, d, dataKey)
	if err != nil && loc.ref {
		// A reference whose data object is gone (a Delete stopped
		// between the two) is a missing blob, not a damaged one.
		rctx, cancel := s.request(ctx)
		_, serr := s.client.StatObject(rctx, s.opts.Bucket, loc.key, minio.StatObjectOptions{})
		cancel()
		if isNotFound(serr) {
			return nil, fmt.Errorf("%w: %s", blob.ErrNotFound, d)
		}
	}
	return r, err
}

// Delete removes blob d; a missing blob is ErrNotFound. A reference's
// data object goes first: a Delete stopped between the two leaves a
// reference to nothing, which reads as a missing blob and which gc's next
// walk deletes, never a data object that nothing names.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	loc, err := s.head(ctx, d)
	if err != nil {
		if !errors.Is(err, blob.ErrCorrupt) {
			return err
		}
		// A damaged reference: remove it.
		if loc.blobKey, err = s.Key(d); err != nil {
			return err
		}
	}
	if loc.ref {
		rctx, cancel := s.request(ctx)
		err := s.client.RemoveObject(rctx, s.opts.Bucket, loc.key, minio.RemoveObjectOptions{})
		cancel()
		if err != nil && !isNotFound(err) {
			return mapErr(err, string(d))
		}
	}
	rctx, cancel := s.request(ctx)
	defer cancel()
	return mapErr(s.client.RemoveObject(rctx, s.opts.Bucket, loc.blobKey, minio.RemoveObjectOptions{}), string(d))
}

// Walk lists the committed blobs, in key order; fn's error stops it.
func (s *Store) Walk(ctx context.Context, fn func(d digest.Digest, storedSize int64) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	root := s.opts.Prefix + "blobs/"
	for oi := range s.client.ListObjects(ctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: root, Recursive: true}) {
		if oi.Err != nil {
			return mapErr(oi.Err, "listing "+root)
		}
		alg, hex, ok := strings.Cut(strings.TrimPrefix(oi.Key, root), "/")
		if !ok {
			continue
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
		if blob.CheckDigest(d) != nil || path.Base(oi.Key) != hex {
			continue
		}
		size := oi.Size
		if isRefSize(size) {
			// A reference: the size is its data object's.
			loc, err := s.locate(ctx, oi.Key, string(d))
			switch {
			case err == nil:
				size = loc.size
			case errors.Is(err, blob.ErrUnavailable):
				return err
			}
		}
		if err := fn(d, size); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Uploads lists the uploads with files in the spool or objects (or
// multipart uploads) in the bucket.
func (s *Store) Uploads(ctx context.Context) ([]string, error) {
	ids, err := s.spool.Uploads(ctx)
	if err != nil {
		return nil, err
	}
	remote, err := s.remoteUploads(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
	}
	for id := range remote {
		if !seen[id] {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// UploadModTime is when upload id was last written: its spool file's
// time or, without one, the latest of its objects and multipart uploads.
func (s *Store) UploadModTime(ctx context.Context, id string) (time.Time, error) {
	t, err := s.spool.UploadModTime(ctx, id)
	if err == nil || !errors.Is(err, blob.ErrNotFound) {
		return t, err
	}
	if checkUploadID(id) != nil {
		return time.Time{}, err
	}
	remote, rerr := s.remoteUploadsOf(ctx, id)
	if rerr != nil {
		return time.Time{}, rerr
	}
	if remote.IsZero() {
		return time.Time{}, err
	}
	return remote, nil
}

// RemoveUpload removes upload id's spool files, objects and multipart
// uploads.
func (s *Store) RemoveUpload(id string) error {
	err := s.spool.RemoveUpload(id)
	if checkUploadID(id) != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*s.opts.RequestTimeout)
	defer cancel()
	if rerr := s.removeRemote(ctx, id, false); err == nil {
		err = rerr
	}
	return err
}

// Spool is the local file store uploads are written in before they
// commit.
func (s *Store) Spool() *blob.Store { return s.spool }
