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
//	                    directory is not needed: S3 keys are flat), or
//	                    a reference to data/<id> (ref.go): a few
//	                    bytes whose metadata names it (empty in
//	                    stores written before, still read)
//	data/<id>           an upload's staging object: the multipart
//	                    upload its parts go to, completed at commit and
//	                    from then on the data of the blob naming it
//	uploads/<id>/head   an upload's first part-size bytes (remote.go)
//	uploads/<id>/side0  what its checkpoint holds past the parts,
//	uploads/<id>/side1  in two slots written alternately
//	uploads/<id>/open   empty, beside a staging upload started before
//	                    any checkpoint (background.go)
//	uploads/<id>/blob   the blob key a commit links data/<id> to
//
// Reads: Open GETs the object's first 256 KiB (its size, ETag and header;
// all of a small blob); a reference's metadata comes with that GET, and
// its data object's first bytes and last ones (the frame table) follow
// in two GETs at once. After that every ReadAt fetches only the frames under
// the range asked for (one ranged GET per frame), so an HTTP Range request
// or a FUSE read of a few bytes of a large layer costs one frame.
//
// Writes: an upload is streamed through package blob's writer into a
// spool directory on local disk (hashing, framing, compression and
// sealing as for the file store). Whole parts of the spool file go to
// the staging object's multipart upload while the bytes still arrive
// (background.go); each Checkpoint sends what is left of what it made
// durable (head object, parts, side object) and names them in the
// WriterState, so that any replica continues the upload from it. Commit,
// once the digest checks, uploads the finished file to its key (one PUT
// when no part was sent), or sends part 1 (the final header and the
// head) and the last part, completes the staging object and makes the
// blob's key a reference to it (no copy), and removes the spool copy
// (docs/scale-out.md).
//
// Failures: every call has a deadline (Options.RequestTimeout, per
// request); minio-go retries transient failures with backoff
// (Options.MaxRetries); what still fails transiently (5xx, throttling,
// timeouts, refused connections) is blob.ErrUnavailable, which the layers
// above answer with 503 and Retry-After. A missing object is
// blob.ErrNotFound.
package s3
