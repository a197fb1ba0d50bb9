package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berthstore/berth/blob"
)

// A blob pushed in several requests is not copied to its key at commit
// (S3 has no rename, and a copy writes every byte once more): the staging
// object its parts were uploaded to, data/<id>, is completed where it is
// and blobs/<alg>/<hex> becomes a reference to it: an empty object whose
// metadata names the data object, its size and its ETag. Open, Stat,
// Walk and Delete follow it; a blob object is never empty (its header
// alone is blob.HeaderSize bytes), so an empty one is a reference.

// dataDir holds the staging objects of uploads, which stay there as the
// data of the blobs they became.
const dataDir = "data/"

// Metadata keys of a reference (x-amz-meta-*, as minio-go canonicalises
// them).
const (
	refMetaKey  = "Berth-Ref"
	refMetaSize = "Berth-Ref-Size"
	refMetaETag = "Berth-Ref-Etag"
)

// blobRef is what a reference names: the data object's key (under the
// prefix), its stored size and the ETag it was completed with.
type blobRef struct {
	key  string
	size int64
	etag string
}

// dataKey is the key of upload id's staging object.
func (s *Store) dataKey(id string) string { return s.opts.Prefix + dataDir + id }

// refBody is the body of a reference: what Open's first GET reads of one
// (its metadata matters, not these bytes).
const refBody = "BERTHREF"

// isRefSize reports whether an object of size bytes is a reference: a
// blob object holds at least a header.
func isRefSize(size int64) bool { return size < int64(blob.HeaderSize) }

// markerName is the object, beside an upload's other ones, that names the
// blob key its commit links to its staging object: a removal of the
// upload that finds it keeps the staging object if the blob refers to it.
const markerName = "blob"

// parseRef reads the reference in user metadata meta of a store with
// prefix. Anyone with write access to the bucket could have written it:
// every field is checked, the key must name a staging object of this
// prefix.
func parseRef(meta map[string]string, prefix string) (blobRef, error) {
	bad := func(f string, a ...any) (blobRef, error) {
		return blobRef{}, fmt.Errorf("%w: blob reference: %s", blob.ErrCorrupt, fmt.Sprintf(f, a...))
	}
	rel, ok := meta[refMetaKey]
	if !ok {
		return bad("empty object without a reference")
	}
	id, ok := strings.CutPrefix(rel, dataDir)
	if !ok || checkUploadID(id) != nil {
		return bad("key %q", rel)
	}
	size, err := strconv.ParseInt(meta[refMetaSize], 10, 64)
	if err != nil || size < int64(blob.HeaderSize) {
		return bad("size %q", meta[refMetaSize])
	}
	etag := meta[refMetaETag]
	if etag == "" || len(etag) > 256 || strings.ContainsAny(etag, "\"\r\n") {
		return bad("etag %q", etag)
	}
	return blobRef{key: prefix + rel, size: size, etag: etag}, nil
}

// meta is r as user metadata of a store with prefix.
func (r blobRef) meta(prefix string) map[string]string {
	return map[string]string{
		refMetaKey:  strings.TrimPrefix(r.key, prefix),
		refMetaSize: strconv.FormatInt(r.size, 10),
		refMetaETag: r.etag,
	}
}

// location is where a blob's stored bytes are: its own object, or the
// data object its reference names.
type location struct {
	blobKey string // blobs/<alg>/<hex>
	key     string // the object holding the bytes
	size    int64
	etag    string
	modTime time.Time
	ref     bool // blobKey is a reference to key
}

// locate reads blob key blobKey's object (a HEAD) and follows it when it
// is a reference.
func (s *Store) locate(ctx context.Context, blobKey string, what string) (location, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	oi, err := s.client.StatObject(rctx, s.opts.Bucket, blobKey, minio.StatObjectOptions{})
	if err != nil {
		return location{}, mapErr(err, what)
	}
	loc := location{blobKey: blobKey, key: blobKey, size: oi.Size, etag: oi.ETag, modTime: oi.LastModified}
	if !isRefSize(oi.Size) {
		return loc, nil
	}
	r, err := parseRef(oi.UserMetadata, s.opts.Prefix)
	if err != nil {
		return location{}, fmt.Errorf("%s: %w", what, err)
	}
	loc.key, loc.size, loc.etag, loc.ref = r.key, r.size, r.etag, true
	return loc, nil
}

// link makes blob key blobKey a reference to the completed staging object
// of upload id (etag, size bytes). The upload's marker object names
// blobKey first, so that a removal of the upload (Cancel, gc) that runs
// after a crash here keeps the staging object when the reference was
// written. A reference that blobKey held before is replaced, and its data
// object removed.
func (s *Store) link(ctx context.Context, id, blobKey, etag string, size int64) error {
	if _, err := s.putSmall(ctx, s.uploadKey(id, markerName), strings.NewReader(blobKey), int64(len(blobKey))); err != nil {
		return err
	}
	data := s.dataKey(id)
	prev, err := s.locate(ctx, blobKey, blobKey)
	if err != nil && !errors.Is(err, blob.ErrNotFound) {
		prev = location{} // unreadable or damaged: overwritten below
	}
	ref := blobRef{key: data, size: size, etag: etag}
	body := strings.NewReader(refBody)
	meta, err := putChecksum(body)
	if err != nil {
		return err
	}
	maps.Copy(meta, ref.meta(s.opts.Prefix))
	rctx, cancel := s.request(ctx)
	_, err = s.client.PutObject(rctx, s.opts.Bucket, blobKey, body, body.Size(), minio.PutObjectOptions{
		ContentType: "application/octet-stream", DisableMultipart: true, DisableContentSha256: true, UserMetadata: meta,
	})
	cancel()
	if err != nil {
		return mapErr(err, blobKey)
	}
	if prev.ref && prev.key != data {
		rctx, cancel := s.request(ctx)
		_ = s.client.RemoveObject(rctx, s.opts.Bucket, prev.key, minio.RemoveObjectOptions{})
		cancel()
	}
	return nil
}

// linkedTo reports whether upload id's marker names a blob that refers
// to the upload's staging object (its commit linked it): then the
// staging object is a blob's data and must stay.
func (s *Store) linkedTo(ctx context.Context, id string) (bool, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	obj, err := s.client.GetObject(rctx, s.opts.Bucket, s.uploadKey(id, markerName), minio.GetObjectOptions{})
	if err != nil {
		return false, mapErr(err, id)
	}
	defer obj.Close()
	b, err := io.ReadAll(io.LimitReader(obj, 1024))
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, mapErr(err, id)
	}
	blobKey := string(b)
	if !strings.HasPrefix(blobKey, s.opts.Prefix+"blobs/") {
		return false, nil
	}
	loc, err := s.locate(ctx, blobKey, blobKey)
	if err != nil {
		if errors.Is(err, blob.ErrUnavailable) {
			return false, err
		}
		return false, nil // no blob there, or not a reference
	}
	return loc.ref && loc.key == s.dataKey(id), nil
}
