package oci

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/berthstore/berth/engine"
)

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		err    error
		code   string
		status int
	}{
		{engine.ErrNameInvalid, "NAME_INVALID", 400},
		{engine.ErrNameUnknown, "NAME_UNKNOWN", 404},
		{engine.ErrBlobUnknown, "BLOB_UNKNOWN", 404},
		{engine.ErrBlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404},
		{engine.ErrBlobUploadInvalid, "BLOB_UPLOAD_INVALID", 400},
		{engine.ErrDigestInvalid, "DIGEST_INVALID", 400},
		{engine.ErrSizeInvalid, "SIZE_INVALID", 400},
		{engine.ErrTooLarge, "SIZE_INVALID", 413},
		{engine.ErrManifestUnknown, "MANIFEST_UNKNOWN", 404},
		{engine.ErrImageArchived, "MANIFEST_UNKNOWN", 404},
		{engine.ErrBlobArchived, "BLOB_UNKNOWN", 404},
		{engine.ErrManifestInvalid, "MANIFEST_INVALID", 400},
		{engine.ErrManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN", 400},
		{engine.ErrTagInvalid, "TAG_INVALID", 400},
		{fmt.Errorf("x: %w: %w", engine.ErrTagImmutable, engine.ErrTagInvalid), "TAG_INVALID", 400},
		{engine.ErrUnsupported, "UNSUPPORTED", 405},
		{engine.ErrInvalidArgument, "UNSUPPORTED", 400},
		{engine.ErrRangeInvalid, "RANGE_INVALID", 416},
		{engine.ErrStorageFull, "UNAVAILABLE", 507},
		{engine.ErrKeyUnavailable, "UNAVAILABLE", 503},
		{engine.ErrStorageUnavailable, "UNAVAILABLE", 503},
		{fmt.Errorf("index: postgres: %w: unexpected EOF", engine.ErrMetadataUnavailable), "UNAVAILABLE", 503},
		{engine.ErrClosed, "UNAVAILABLE", 503},
		{engine.ErrCorrupt, "UNKNOWN", 500},
		{engine.ErrKeyDestroyed, "BLOB_UNKNOWN", 404},
		{engine.ErrRepositoryExists, "UNKNOWN", 500},
		{errors.New("boom"), "UNKNOWN", 500},
		{NewError(CodeDenied, "", nil), "DENIED", 403},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			wrapped := fmt.Errorf("repo x: %w", tt.err)
			ae := ToError(wrapped)
			assert.Equal(t, tt.code, ae.Code.Code)
			assert.Equal(t, tt.status, ae.Code.Status)
			rec := httptest.NewRecorder()
			WriteError(rec, wrapped)
			requireOCIError(t, rec, tt.status, tt.code)
		})
	}
}

func TestErrorMessageHidesInternals(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, fmt.Errorf("open /secret/path: %w", engine.ErrCorrupt))
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.NotContains(t, rec.Body.String(), "/secret/path")
}

func TestImmutableMessage(t *testing.T) {
	want := "The image tag 'v1' already exists in the 'team/app' repository and cannot be overwritten because the repository is immutable."
	tests := []struct {
		name string
		err  error
		rt   route
		tags []string
	}{
		{"engine sentence", fmt.Errorf("%w: %w: "+want, engine.ErrTagImmutable, engine.ErrTagInvalid), route{name: "team/app", ref: "x"}, nil},
		{"tag reference", fmt.Errorf("%w", engine.ErrTagImmutable), route{name: "team/app", ref: "v1"}, nil},
		{"named in error", fmt.Errorf("tag %q: %w", "v1", engine.ErrTagImmutable), route{name: "team/app", ref: "sha256:" + fmt.Sprintf("%064d", 0)}, []string{"v0", "v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, want, immutableMessage(tt.err, tt.rt, tt.tags))
		})
	}
}

func TestRetryableErrorsSayWhenToRetry(t *testing.T) {
	for _, err := range []error{engine.ErrKeyUnavailable, engine.ErrStorageFull} {
		rec := httptest.NewRecorder()
		WriteError(rec, fmt.Errorf("push: %w", err))
		assert.Equal(t, retryAfterSeconds, rec.Header().Get("Retry-After"), err.Error())
	}
	rec := httptest.NewRecorder()
	WriteError(rec, engine.ErrBlobUnknown)
	assert.Empty(t, rec.Header().Get("Retry-After"))
}
