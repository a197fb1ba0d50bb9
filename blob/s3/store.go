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
	// DefaultPartSize is the part size of multipart uploads (16 MiB).
	DefaultPartSize uint64 = 16 << 20
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

// head returns blob d's object's size and modification time.
func (s *Store) head(ctx context.Context, d digest.Digest) (string, minio.ObjectInfo, error) {
	key, err := s.Key(d)
	if err != nil {
		return "", minio.ObjectInfo{}, err
	}
	rctx, cancel := s.request(ctx)
	defer cancel()
	oi, err := s.client.StatObject(rctx, s.opts.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return "", oi, mapErr(err, string(d))
	}
	return key, oi, nil
}

// Stat describes blob d from its object's size and time and its header
// (one HEAD and one ranged GET).
func (s *Store) Stat(ctx context.Context, d digest.Digest) (blob.Info, error) {
	key, oi, err := s.head(ctx, d)
	if err != nil {
		return blob.Info{}, err
	}
	src := &objectSource{s: s, ctx: ctx, key: key, size: oi.Size}
	hb := make([]byte, blob.HeaderSize)
	if _, err := src.ReadAt(hb, 0); err != nil {
		if errors.Is(err, blob.ErrUnavailable) || errors.Is(err, blob.ErrNotFound) {
			return blob.Info{}, err
		}
		return blob.Info{Digest: d, StoredSize: oi.Size, ModTime: oi.LastModified},
			fmt.Errorf("%w: %s: reading header: %v", blob.ErrCorrupt, d, err)
	}
	return blob.InfoFromHeader(d, hb, oi.Size, oi.LastModified)
}

// Open opens blob d for reading: every read fetches only the frames it
// needs.
func (s *Store) Open(ctx context.Context, d digest.Digest, dataKey []byte) (*blob.Reader, error) {
	key, oi, err := s.head(ctx, d)
	if err != nil {
		return nil, err
	}
	return blob.NewReader(&objectSource{s: s, ctx: context.WithoutCancel(ctx), key: key, size: oi.Size, etag: oi.ETag}, oi.Size, d, dataKey)
}

// Delete removes blob d; a missing blob is ErrNotFound.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	key, _, err := s.head(ctx, d)
	if err != nil {
		return err
	}
	rctx, cancel := s.request(ctx)
	defer cancel()
	return mapErr(s.client.RemoveObject(rctx, s.opts.Bucket, key, minio.RemoveObjectOptions{}), string(d))
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
		if err := fn(d, oi.Size); err != nil {
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
	if rerr := s.removeRemote(ctx, id); err == nil {
		err = rerr
	}
	return err
}

// Spool is the local file store uploads are written in before they
// commit.
func (s *Store) Spool() *blob.Store { return s.spool }
