package engine

// The engine's sentinel errors, and the translation of its packages'
// errors into them.

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/engine/internal/errdefs"
	"github.com/berthstore/berth/index"
)

// Sentinel errors returned (wrapped, with the name or digest concerned) by
// the engine. Test them with errors.Is. registryd maps each to the OCI
// Distribution error code named in its comment.
var (
	// ErrNameInvalid: the repository name does not match the OCI grammar
	// or is longer than 256 characters (NAME_INVALID).
	ErrNameInvalid = errdefs.ErrNameInvalid
	// ErrNameUnknown: the repository does not exist and may not be
	// created by this operation (NAME_UNKNOWN).
	ErrNameUnknown = errors.New("engine: repository name not known to registry")
	// ErrRepositoryExists: CreateRepository on a name already in use.
	ErrRepositoryExists = errors.New("engine: repository already exists")
	// ErrRepositoryNotEmpty: DeleteRepository without force on a
	// repository that still holds images.
	ErrRepositoryNotEmpty = errors.New("engine: repository is not empty")
	// ErrBlobUnknown: the blob is not linked to the repository (BLOB_UNKNOWN).
	ErrBlobUnknown = errors.New("engine: blob unknown to registry")
	// ErrBlobUploadUnknown: no such upload session (BLOB_UPLOAD_UNKNOWN).
	ErrBlobUploadUnknown = errors.New("engine: blob upload unknown to registry")
	// ErrBlobUploadInvalid: the upload cannot accept this operation, e.g.
	// a chunk at the wrong offset (BLOB_UPLOAD_INVALID).
	ErrBlobUploadInvalid = errors.New("engine: blob upload invalid")
	// ErrDigestInvalid: the digest is malformed, uses an unsupported
	// algorithm, or does not match the content (DIGEST_INVALID).
	ErrDigestInvalid = errdefs.ErrDigestInvalid
	// ErrSizeInvalid: the content length does not match the declared
	// size, or exceeds a configured limit (SIZE_INVALID).
	ErrSizeInvalid = errors.New("engine: provided length did not match content length")
	// ErrTooLarge: the blob or manifest exceeds the configured limit
	// (SIZE_INVALID on the wire, HTTP 413).
	ErrTooLarge = errdefs.ErrTooLarge
	// ErrManifestUnknown: no manifest with this tag or digest (MANIFEST_UNKNOWN).
	ErrManifestUnknown = errors.New("engine: manifest unknown to registry")
	// ErrManifestInvalid: the manifest does not parse or validate (MANIFEST_INVALID).
	ErrManifestInvalid = errdefs.ErrManifestInvalid
	// ErrManifestBlobUnknown: the manifest references a blob or child
	// manifest that the repository does not hold (MANIFEST_BLOB_UNKNOWN).
	ErrManifestBlobUnknown = errors.New("engine: manifest references a manifest or blob unknown to registry")
	// ErrTagInvalid: the tag is malformed (TAG_INVALID).
	ErrTagInvalid = errdefs.ErrTagInvalid
	// ErrTagImmutable: the tag exists, points to another digest, and the
	// repository's tag mutability forbids moving it. It wraps ErrTagInvalid
	// too, since the OCI code for it is TAG_INVALID.
	ErrTagImmutable = errors.New("engine: tag is immutable")
	// ErrUnsupported: the operation or media type is not supported (UNSUPPORTED).
	ErrUnsupported = errdefs.ErrUnsupported
	// ErrRangeInvalid: a byte range outside the blob (HTTP 416).
	ErrRangeInvalid = errors.New("engine: requested range not satisfiable")
	// ErrStorageFull: the store ran out of disk space; nothing was written.
	// Retry once space is freed.
	ErrStorageFull = errors.New("engine: no space left on the store's device")
	// ErrStorageUnavailable: the blob backend (an object store) did not
	// answer in time or failed transiently; nothing was changed, and the
	// call can be retried (the APIs answer 503 with Retry-After).
	ErrStorageUnavailable = errors.New("engine: blob storage temporarily unavailable")
	// ErrMetadataUnavailable: the metadata database (PostgreSQL) could not
	// be reached or dropped the connection (a restart, a failover); the
	// call can be retried (the APIs answer 503 with Retry-After). A change
	// that failed so may have been made: the registry's changes are the
	// same when repeated. It is the index's own sentinel, so that
	// errors.Is finds it however the error was wrapped on its way up.
	ErrMetadataUnavailable = index.ErrUnavailable
	// ErrKeyUnavailable: the key needed to seal or open a blob cannot be
	// reached right now (HSM or KMS down, key disabled). Retryable (HTTP 503).
	ErrKeyUnavailable = errors.New("engine: encryption key unavailable")
	// ErrKeyDestroyed: the key a blob's data key is wrapped under was
	// destroyed (crypto-shredding): the blob can never be read through it.
	// Not retryable.
	ErrKeyDestroyed = errors.New("engine: encryption key destroyed")
	// ErrKeyNotFound: no key-encryption key of that name.
	ErrKeyNotFound = errors.New("engine: encryption key not found")
	// ErrKeyringMissing: Open found an existing store (its index) but not
	// its keyring file, or not the keyring's directory (an unmounted
	// volume). Nothing was written: a new keyring would make every blob
	// sealed under the old one unreadable. Restore the keyring (or mount
	// its volume) and open again.
	ErrKeyringMissing = errors.New("engine: the store's keyring is missing")
	// ErrKeyExists: CreateKey with a name already in use.
	ErrKeyExists = errors.New("engine: encryption key already exists")
	// ErrCorrupt: stored data failed authentication or verification; the
	// engine never returns such bytes.
	ErrCorrupt = errdefs.ErrCorrupt
	// ErrClosed: the engine has been closed.
	ErrClosed = errors.New("engine: closed")
	// ErrInvalidArgument: a setting or parameter is out of its domain.
	ErrInvalidArgument = errdefs.ErrInvalidArgument
	// ErrTemplateNotFound: no repository creation template has the prefix.
	ErrTemplateNotFound = errors.New("engine: repository creation template not found")
	// ErrTemplateExists: a repository creation template has the prefix already.
	ErrTemplateExists = errors.New("engine: repository creation template already exists")
	// ErrImageReferenced: the manifest is a child of an index in the
	// repository and cannot be deleted on its own (ECR's
	// ImageReferencedByManifestList).
	ErrImageReferenced = errors.New("engine: image is referenced by a manifest list")
	// ErrAccessDenied: the repository's policy denies the caller the
	// action (Authorize, Decision.Err).
	ErrAccessDenied = errors.New("engine: access denied")
	// ErrLayerRefused is returned (wrapped, with the layer and the reason)
	// when a layer cannot be indexed: malformed or truncated tar, a broken
	// compressed stream, or more entries than LayerOptions.MaxEntries.
	ErrLayerRefused = errdefs.ErrLayerRefused
	// ErrRepositoryPolicyNotFound: the repository has no repository policy.
	ErrRepositoryPolicyNotFound = errors.New("engine: repository policy not found")
	// ErrRegistryPolicyNotFound: the registry has no registry policy.
	ErrRegistryPolicyNotFound = errors.New("engine: registry policy not found")
)

// ErrLifecyclePolicyNotFound: the repository has no lifecycle policy
// (ECR's LifecyclePolicyNotFoundException).
var ErrLifecyclePolicyNotFound = errors.New("engine: lifecycle policy not found")

// ErrManifestChildUnknown: an index lists a child manifest that the
// repository does not hold (ECR's ReferencedImagesNotFoundException). An
// error that wraps it wraps ErrManifestBlobUnknown too
// (MANIFEST_BLOB_UNKNOWN on the OCI API): see UnknownReferenceError.
var ErrManifestChildUnknown = errors.New("engine: index references a manifest unknown to registry")

// UnknownReferenceError is PutManifest's error for a reference the
// repository does not hold: a blob of an image manifest, or a child
// manifest of an index (Child). It is ErrManifestBlobUnknown, and a
// child's is ErrManifestChildUnknown as well (errors.Is).
type UnknownReferenceError struct {
	// Digest is the missing blob or manifest.
	Digest digest.Digest
	// Child reports a child manifest of an index (not a blob).
	Child bool
}

// Error implements error.
func (e *UnknownReferenceError) Error() string {
	if e.Child {
		return ErrManifestBlobUnknown.Error() + ": manifest " + string(e.Digest)
	}
	return ErrManifestBlobUnknown.Error() + ": blob " + string(e.Digest)
}

// Is reports ErrManifestBlobUnknown, and ErrManifestChildUnknown for a
// child manifest.
func (e *UnknownReferenceError) Is(target error) bool {
	return target == ErrManifestBlobUnknown || e.Child && target == ErrManifestChildUnknown
}

// ErrLimitExceeded: the change would exceed a quota of the registry,
// such as the number of pull-through cache rules (ECR's
// LimitExceededException).
var ErrLimitExceeded = errors.New("engine: a registry limit would be exceeded")

// ErrCacheRuleNotFound: no pull-through cache rule has the prefix.
var ErrCacheRuleNotFound = errors.New("engine: pull-through cache rule not found")

// ErrCacheRuleExists: a pull-through cache rule has the prefix already.
var ErrCacheRuleExists = errors.New("engine: pull-through cache rule already exists")

// ErrAuditUnavailable: the audit log could not write (or sync) a record
// (RecordAudit). The request it records must be refused, as a retryable
// failure (HTTP 503); the log recovers when the disk does. The cause,
// such as syscall.ENOSPC, is wrapped too.
var ErrAuditUnavailable = errors.New("engine: the audit log cannot record")

// ErrAuditDisabled: the store keeps no audit log (Options.DisableAudit),
// so there is nothing to query.
var ErrAuditDisabled = errors.New("engine: the audit log is disabled")

// storageErr adds ErrStorageFull to errors caused by a full device, and
// ErrStorageUnavailable to a blob backend's transient failures.
func storageErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, blob.ErrUnavailable) && !errors.Is(err, ErrStorageUnavailable) {
		return fmt.Errorf("%w: %w", ErrStorageUnavailable, err)
	}
	if errors.Is(err, blob.ErrNoSpace) || errors.Is(err, index.ErrNoSpace) || errors.Is(err, syscall.ENOSPC) {
		if !errors.Is(err, ErrStorageFull) {
			return fmt.Errorf("%w: %w", ErrStorageFull, err)
		}
	}
	return err
}

// blobErr translates package blob's errors into the engine's.
func blobErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, blob.ErrDigestMismatch), errors.Is(err, blob.ErrUnsupportedDigest):
		return fmt.Errorf("%w: %w", ErrDigestInvalid, err)
	case errors.Is(err, blob.ErrSizeMismatch):
		return fmt.Errorf("%w: %w", ErrSizeInvalid, err)
	case errors.Is(err, blob.ErrTooLarge):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, blob.ErrCorrupt):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	case errors.Is(err, blob.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrBlobUnknown, err)
	case errors.Is(err, blob.ErrBadState):
		return fmt.Errorf("%w: %w", ErrBlobUploadInvalid, err)
	}
	return storageErr(err)
}

// keyErr translates key provider errors: an unreachable or disabled key
// is retryable (ErrKeyUnavailable); a destroyed one is lost data.
func keyErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, crypt.ErrUnavailable), errors.Is(err, crypt.ErrKeyDisabled):
		return fmt.Errorf("%w: %w", ErrKeyUnavailable, err)
	case errors.Is(err, crypt.ErrKeyDestroyed):
		return fmt.Errorf("%w: %w", ErrKeyDestroyed, err)
	case errors.Is(err, crypt.ErrUnauthenticated):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// keyOpErr translates provider errors of key management calls.
func keyOpErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, crypt.ErrKeyNotFound):
		return fmt.Errorf("%w: %w", ErrKeyNotFound, err)
	case errors.Is(err, crypt.ErrKeyExists):
		return fmt.Errorf("%w: %w", ErrKeyExists, err)
	case errors.Is(err, crypt.ErrInvalidKey):
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	case errors.Is(err, crypt.ErrUnsupported):
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return keyErr(err)
}
