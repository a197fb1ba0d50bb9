package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/minio/minio-go/v7"

	"github.com/berthstore/berth/blob"
)

// ErrOwned: the bucket prefix belongs to another store.
var ErrOwned = errors.New("blob: s3: prefix owned by another store")

// transientCodes are the S3 error codes of failures that a retry may
// clear.
var transientCodes = map[string]bool{
	"SlowDown": true, "SlowDownRead": true, "SlowDownWrite": true, "ServiceUnavailable": true,
	"InternalError": true, "RequestTimeout": true, "XMinioServerNotInitialized": true, "OperationTimedOut": true,
	// The object was replaced while a reader had it open: reopen.
	"PreconditionFailed": true,
}

// mapErr turns an error of minio-go into package blob's: ErrNotFound for
// a missing object, ErrUnavailable for a transient failure (with
// ErrChecksum for a body refused as changed in transit), ErrNoSpace for
// a full server; others keep their message. what names the call.
func mapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrChecksum) {
		return fmt.Errorf("%w: %s: %w", blob.ErrUnavailable, what, err)
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case checksumCodes[resp.Code]:
		return fmt.Errorf("%w: %w: %s: %v", blob.ErrUnavailable, ErrChecksum, what, err)
	case resp.Code == "NoSuchKey" || resp.Code == "NotFound" || resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket":
		return fmt.Errorf("%w: %s", blob.ErrNotFound, what)
	case resp.Code == "XMinioStorageFull":
		return fmt.Errorf("%w: %s: %v", blob.ErrNoSpace, what, err)
	case transientCodes[resp.Code] || resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("%w: %s: %v", blob.ErrUnavailable, what, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: %v", blob.ErrUnavailable, what, err)
	}
	return fmt.Errorf("blob: s3: %s: %w", what, err)
}
