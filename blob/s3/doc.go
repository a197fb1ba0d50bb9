// Package s3 is a blob backend on an S3-compatible object store (AWS S3,
// MinIO, Ceph RGW, ...), through minio-go. A blob's object holds exactly
// the bytes the file store's file would (the same framed, sealed,
// zstd-where-it-pays format, written by package blob's writer), so that a
// blob moves between the two backends as it is and every reader check
// applies unchanged.
//
// Layout in the bucket, under Options.Prefix:
//
//	blobs/<alg>/<hex>   committed blobs (the file store's fan-out
//	                    directory is not needed: S3 keys are flat)
//	uploads/<id>/head   an upload's first part-size bytes (remote.go)
//	uploads/<id>/data   the staging object its parts are uploaded to
//	uploads/<id>/side0  what its checkpoint holds past the parts,
//	uploads/<id>/side1  in two slots written alternately
//
// Reads: Open heads the object and reads its header and frame table with
// two ranged GETs; after that every ReadAt fetches only the frames under
// the range asked for (one ranged GET per frame), so an HTTP Range request
// or a FUSE read of a few bytes of a large layer costs one frame.
//
// Writes: an upload is streamed through package blob's writer into a
// spool directory on local disk (hashing, framing, compression and
// sealing as for the file store). Each Checkpoint also sends what it made
// durable to the bucket (head object, parts of the staging object's
// multipart upload, side object) and names them in the WriterState, so
// that any replica continues the upload from it. Commit, once the digest
// checks, uploads the finished file to its key (one PUT when nothing was
// sent yet), or completes the staging object and copies it to its key,
// and removes the spool copy (docs/scale-out.md).
//
// Failures: every call has a deadline (Options.RequestTimeout, per
// request); minio-go retries transient failures with backoff
// (Options.MaxRetries); what still fails transiently (5xx, throttling,
// timeouts, refused connections) is blob.ErrUnavailable, which the layers
// above answer with 503 and Retry-After. A missing object is
// blob.ErrNotFound.
package s3
