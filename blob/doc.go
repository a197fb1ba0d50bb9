// Package blob is Berth's content-addressed blob store: one file per
// blob, named by its digest, in the framed format of docs/format.md.
//
// Nouns:
//   - blob: bytes named by their OCI digest; stored once per store.
//   - frame: FrameSize logical bytes of a blob (the last one may be
//     shorter), compressed with zstd when that pays, raw otherwise, then
//     sealed (AES-256-GCM under the blob's data key) or, with encryption
//     off, checksummed (CRC-32C). Frames are independent: reading any
//     byte range decodes only the frames under it.
//   - frame table: the stored length and codec of every frame, written
//     after the frames, so ReadAt finds a frame with no scan.
//   - Writer: an upload in progress, in a temporary file. It hashes while
//     bytes stream in and hands full frames to a pool of encoders; a
//     flusher writes them in order. Checkpoint makes it resumable;
//     Commit verifies the digest, fsyncs and renames it into place.
//
// The store's roles (roles.go: Provider, Ingester, IngestManager,
// Statter, Deleter, Walker, composed as Backend) are what the conformance
// suite blob/blobtest checks, over every configuration of Store here and
// over any other backend that implements them.
//
// The store does not know repositories, keys or the index: the caller
// (engine) supplies each blob's data key and records blobs in the index
// after Commit returns.
package blob
