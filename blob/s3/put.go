package s3

import (
	"context"
	"io"
	"time"

	"github.com/minio/minio-go/v7"
)

// timeNow is the clock of commit times.
var timeNow = time.Now

// putFile uploads the size bytes of f (a committed spool file) as key.
// The stored bytes are already compressed and sealed, so no content type
// or encoding is claimed. Up to a part it is one PUT with the CRC32C as a
// header; past that a multipart upload created with CRC32C, its parts
// sent partsInFlight at a time with a CRC32C trailer each (minio-go
// retries each from its start), completed, or aborted when a part or the
// completion fails.
func (s *Store) putFile(ctx context.Context, key string, f io.ReadSeeker, ra io.ReaderAt, size int64) error {
	if size <= int64(s.opts.PartSize) {
		sum, err := putChecksum(f)
		if err != nil {
			return err
		}
		_, err = s.client.PutObject(ctx, s.opts.Bucket, key, f, size, minio.PutObjectOptions{
			ContentType: "application/octet-stream", DisableMultipart: true, DisableContentSha256: true, UserMetadata: sum,
		})
		return mapErr(err, key)
	}
	rctx, cancel := s.request(ctx)
	mpu, err := s.core.NewMultipartUpload(rctx, s.opts.Bucket, key, checksummedUpload())
	cancel()
	if err != nil {
		return mapErr(err, key)
	}
	ps := int64(s.opts.PartSize)
	var parts []part
	for off := int64(0); off < size; off += ps {
		parts = append(parts, part{num: len(parts) + 1, data: ra, off: off, size: min(ps, size-off)})
	}
	err = s.putParts(ctx, key, mpu, true, parts)
	if err == nil {
		done := make([]minio.CompletePart, len(parts))
		for i, p := range parts {
			done[i] = completePart(p.num, p.etag, p.sum)
		}
		rctx, cancel := s.bodyRequest(ctx, size)
		_, err = s.core.CompleteMultipartUpload(rctx, s.opts.Bucket, key, mpu, done, minio.PutObjectOptions{})
		cancel()
		err = mapErr(err, key)
	}
	if err != nil {
		rctx, cancel := s.request(context.WithoutCancel(ctx))
		_ = s.core.AbortMultipartUpload(rctx, s.opts.Bucket, key, mpu)
		cancel()
	}
	return err
}
