// Package engine is Berth's one public facade: a content-addressed store
// of container images that registryd serves over HTTP, the FUSE view
// mounts, and Go programs embed. Everything below it (blob files, the
// pebble index, keys, the collector) is reached through this package
// alone.
//
// # Nouns
//
//   - Store: one directory, opened by Open and owned by one process
//     (pebble locks it). It holds blob files, the index of all metadata,
//     and by default the keyring. An *Engine is an open store.
//   - Repository: a name (library/alpine) with settings (tag mutability,
//     encryption, scan on push, lifecycle and repository policies,
//     resource tags). A repository sees only the blobs linked to it and
//     the manifests pushed into it.
//   - Blob: bytes addressed by their digest, stored once per store
//     whatever the number of repositories linking it, in frames that are
//     compressed where it pays and sealed with a data key. OpenBlob reads
//     one; ReadAt costs one frame.
//   - Upload: a blob being pushed (BeginUpload, ResumeUpload), in one or
//     many requests, resumable after a restart, committed under its digest.
//   - Manifest: an image manifest or index, kept whole in the index and
//     validated on push (PutManifest): every blob it names must be linked
//     to the repository, every child present. A manifest may have a
//     subject (OCI 1.1): it is then one of that subject's Referrers.
//   - Tag: a name for a manifest in a repository. The repository's tag
//     mutability decides whether a tag may move.
//   - Layer table: the table of contents of a layer's tar (LayerTOC),
//     built once and kept in the index, with which the FUSE view lists an
//     image's files and reads one without decompressing its layer.
//   - Creation template: the settings that repositories created on push
//     (or by a pull-through cache) get, chosen by the longest prefix of
//     their name.
//   - Pull-through cache rule: a repository prefix that mirrors an
//     upstream registry; registryd fetches what is missing.
//   - Keys: every blob has a random data key, stored only wrapped by a
//     key-encryption key (KEK) from a KeyProvider (the keyring, an HSM, a
//     KMS). A repository's KEK is its encryption setting; a blob linked to
//     repositories of several KEKs has a wrap under each. Rotating a KEK
//     rewraps data keys and no blob; destroying one shreds the blobs that
//     only it wraps.
//   - Garbage collection: CollectGarbage marks every blob a manifest
//     needs and sweeps the others, online, while pushes go on (a write
//     barrier and a grace period keep what a push is about to reference).
//   - Lifecycle: an ECR lifecycle policy per repository, previewed
//     (LifecyclePreview) or applied (LifecycleApply), expiring images;
//     their blobs go at the next collection.
//   - Fsck: a check of the whole store: every blob against its record and
//     digest, every reference resolvable, orphans listed.
//   - Audit log: every access decision and every change, one
//     CloudTrail-shaped record each (AuditRecord), in Options.AuditDir
//     (<dir>/audit). The caller that decides (registryd's authorization
//     seam) or changes (a local command) writes it with RecordAudit before
//     it answers or acts, and refuses when it cannot; AuditRecords and
//     ExportAudit query it; retention bounds it by age and size
//     (docs/audit.md).
//
// How they relate: a push uploads blobs into a repository (linking them),
// then puts a manifest that names them and tags it; a pull resolves a tag
// to a manifest and reads the blobs it names. Templates decide how a
// repository created on push is set up; its settings decide which tags may
// move and which KEK wraps its blobs' data keys. Lifecycle removes
// manifests; the collector then removes the blobs nothing references.
//
// Time comes from Options.Clock (Clock); tests use a manual clock from
// package engine/enginetest. Errors are the sentinel errors of this
// package, wrapped with the name or digest concerned; test them with
// errors.Is. docs/engine.md records the design.
package engine
