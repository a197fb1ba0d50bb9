package ecrapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/berthstore/berth/engine"
)

// TestUnavailableIsRetryable: a blob backend or a metadata database that
// is down answers ServerException 503 with Retry-After, which the AWS
// SDKs retry.
func TestUnavailableIsRetryable(t *testing.T) {
	for _, err := range []error{engine.ErrStorageUnavailable, engine.ErrMetadataUnavailable} {
		rec := httptest.NewRecorder()
		name := WriteError(rec, fmt.Errorf("call: %w: unexpected EOF", err))
		assert.Equal(t, "ServerException", name)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Equal(t, retryAfterSeconds, rec.Header().Get("Retry-After"))
	}
}
