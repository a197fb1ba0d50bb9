package s3

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"

	"github.com/minio/minio-go/v7"
)

// Integrity in transit. Every body sent to the bucket carries its CRC32C
// (x-amz-checksum-crc32c), which the object store checks before it keeps
// the bytes, and no payload signature (X-Amz-Content-Sha256 is
// UNSIGNED-PAYLOAD or STREAMING-UNSIGNED-PAYLOAD-TRAILER, as the AWS SDKs
// send by default): over plain HTTP minio-go would otherwise sign every
// 64 KiB chunk with SHA-256 and the server hash it again, a second and
// third SHA-256 of every byte besides the blob's own digest. At rest the
// bytes are protected by their format (an AEAD tag or a CRC32C per frame,
// docs/format.md); in transit the CRC32C catches what a signature of the
// payload would (bytes changed on the way), and the request's headers
// (the checksum among them) are still signed.
//
// A part of a multipart upload carries its CRC32C as a trailer, computed
// while its body is read (checksumBody); a single PUT carries it as a
// header, computed before (putChecksum), because minio-go's own trailer
// for a single PUT does not start again when it retries a request. The
// multipart uploads are created with CRC32C as their checksum algorithm
// (AWS refuses part checksums of an upload created without one) and
// completed with each part's CRC32C beside its ETag.

// ErrChecksum: the object store refused a body whose checksum did not
// match its bytes (they changed in transit). It comes wrapped with
// blob.ErrUnavailable: sending again may succeed.
var ErrChecksum = errors.New("blob: s3: checksum mismatch in transit")

// checksumCodes are the S3 error codes of a body that does not match its
// checksum or signature.
var checksumCodes = map[string]bool{
	"BadDigest": true, "XAmzContentChecksumMismatch": true, "XAmzContentSHA256Mismatch": true, "InvalidDigest": true,
}

// crc32c is the Castagnoli table, computed with SSE 4.2 on amd64.
var crc32c = crc32.MakeTable(crc32.Castagnoli)

// checksumKey is the header and trailer of a CRC32C, the algorithm's
// name the header of a new multipart upload.
var (
	checksumKey       = minio.ChecksumCRC32C.Key()
	checksumAlgorithm = minio.ChecksumCRC32C.String()
)

// encodeCRC is sum as S3 writes a CRC32C: base64 of its 4 big-endian
// bytes.
func encodeCRC(h hash.Hash32) string { return base64.StdEncoding.EncodeToString(h.Sum(nil)) }

// checksumBody is the body of a part: it computes the CRC32C of what it
// reads and sets it in its trailer at EOF. It is an io.Seeker, so that
// minio-go retries a request with it (each attempt starts from offset 0
// and the sum starts again).
type checksumBody struct {
	r       *io.SectionReader
	h       hash.Hash32
	trailer http.Header
}

// newChecksumBody reads r, whose CRC32C goes into its trailer.
func newChecksumBody(r *io.SectionReader) *checksumBody {
	b := &checksumBody{r: r, h: crc32.New(crc32c), trailer: make(http.Header, 1)}
	b.trailer.Set(checksumKey, encodeCRC(b.h))
	return b
}

// Read reads from the part and sets the trailer once it is read whole.
func (b *checksumBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF {
		b.trailer.Set(checksumKey, encodeCRC(b.h))
	}
	return n, err
}

// Seek moves in the part; a seek to its start starts the sum again.
func (b *checksumBody) Seek(off int64, whence int) (int64, error) {
	n, err := b.r.Seek(off, whence)
	if err == nil && n == 0 {
		b.h.Reset()
	}
	return n, err
}

// sum is the part's CRC32C, once it was read whole.
func (b *checksumBody) sum() string { return b.trailer.Get(checksumKey) }

// putPart uploads r as part num of upload mpu of key, with its CRC32C in
// a trailer, and returns the part's ETag and CRC32C.
func (s *Store) putPart(rctx context.Context, key, mpu string, num int, r *io.SectionReader) (etag, sum string, err error) {
	body := newChecksumBody(r)
	op, err := s.core.PutObjectPart(rctx, s.opts.Bucket, key, mpu, num, body, r.Size(),
		minio.PutObjectPartOptions{DisableContentSha256: true, Trailer: body.trailer})
	if err != nil {
		return "", "", err
	}
	sum = body.sum()
	if op.ChecksumCRC32C != "" && op.ChecksumCRC32C != sum {
		return "", "", fmt.Errorf("%w: part %d of %s: sent %s, stored %s", ErrChecksum, num, key, sum, op.ChecksumCRC32C)
	}
	return op.ETag, sum, nil
}

// putChecksum is the user metadata that sends r's CRC32C as a header of
// a single PUT (r is read once and sought back to its start).
func putChecksum(r io.ReadSeeker) (map[string]string, error) {
	h := crc32.New(crc32c)
	if _, err := io.Copy(h, r); err != nil {
		return nil, fmt.Errorf("blob: s3: %w", err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("blob: s3: %w", err)
	}
	return map[string]string{checksumKey: encodeCRC(h)}, nil
}

// checksummedUpload are the options of a new multipart upload whose parts
// carry a CRC32C each.
func checksummedUpload() minio.PutObjectOptions {
	return minio.PutObjectOptions{
		ContentType:  "application/octet-stream",
		UserMetadata: map[string]string{"X-Amz-Checksum-Algorithm": checksumAlgorithm},
	}
}

// sendPart uploads r as part num of upload mpu of key: with its CRC32C
// when the upload was created with the algorithm (crc), otherwise as
// before parts carried checksums (a payload signature over plain HTTP).
func (s *Store) sendPart(rctx context.Context, key, mpu string, crc bool, num int, r *io.SectionReader) (etag, sum string, err error) {
	if crc {
		return s.putPart(rctx, key, mpu, num, r)
	}
	op, err := s.core.PutObjectPart(rctx, s.opts.Bucket, key, mpu, num, r, r.Size(), minio.PutObjectPartOptions{})
	if err != nil {
		return "", "", err
	}
	return op.ETag, "", nil
}

// completePart is a part sent as CompleteMultipartUpload names it (sum
// empty: a part without a checksum).
func completePart(num int, etag, sum string) minio.CompletePart {
	return minio.CompletePart{PartNumber: num, ETag: etag, ChecksumCRC32C: sum}
}
