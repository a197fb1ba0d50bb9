package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/pullthrough"
	"github.com/berthstore/berth/registryd/internal/request"
)

// ErrorCode is one error of the OCI Distribution API: the code that goes
// on the wire, the HTTP status it is answered with and its default
// message. Every error the server answers is one of the values below.
type ErrorCode struct {
	Code    string
	Status  int
	Message string
}

// The OCI Distribution Spec v1.1 error codes, plus the few Berth adds
// (RANGE_INVALID, UNAVAILABLE, UNKNOWN), each with its HTTP status.
var (
	CodeBlobUnknown         = ErrorCode{"BLOB_UNKNOWN", http.StatusNotFound, "blob unknown to registry"}
	CodeBlobUploadInvalid   = ErrorCode{"BLOB_UPLOAD_INVALID", http.StatusBadRequest, "blob upload invalid"}
	CodeBlobUploadRange     = ErrorCode{"BLOB_UPLOAD_INVALID", http.StatusRequestedRangeNotSatisfiable, "chunk does not start at the upload's offset"}
	CodeBlobUploadUnknown   = ErrorCode{"BLOB_UPLOAD_UNKNOWN", http.StatusNotFound, "blob upload unknown to registry"}
	CodeDigestInvalid       = ErrorCode{"DIGEST_INVALID", http.StatusBadRequest, "provided digest did not match uploaded content"}
	CodeManifestBlobUnknown = ErrorCode{"MANIFEST_BLOB_UNKNOWN", http.StatusBadRequest, "manifest references a manifest or blob unknown to registry"}
	CodeManifestInvalid     = ErrorCode{"MANIFEST_INVALID", http.StatusBadRequest, "manifest invalid"}
	CodeManifestUnknown     = ErrorCode{"MANIFEST_UNKNOWN", http.StatusNotFound, "manifest unknown to registry"}
	CodeNameInvalid         = ErrorCode{"NAME_INVALID", http.StatusBadRequest, "invalid repository name"}
	CodeNameUnknown         = ErrorCode{"NAME_UNKNOWN", http.StatusNotFound, "repository name not known to registry"}
	CodeSizeInvalid         = ErrorCode{"SIZE_INVALID", http.StatusBadRequest, "provided length did not match content length"}
	CodeTooLarge            = ErrorCode{"SIZE_INVALID", http.StatusRequestEntityTooLarge, "content exceeds the configured size limit"}
	CodeUnauthorized        = ErrorCode{"UNAUTHORIZED", http.StatusUnauthorized, "authentication required"}
	CodeDenied              = ErrorCode{"DENIED", http.StatusForbidden, "requested access to the resource is denied"}
	CodeUnsupported         = ErrorCode{"UNSUPPORTED", http.StatusMethodNotAllowed, "the operation is unsupported"}
	CodeInvalidArgument     = ErrorCode{"UNSUPPORTED", http.StatusBadRequest, "invalid set of parameters"}
	CodeTooManyRequests     = ErrorCode{"TOOMANYREQUESTS", http.StatusTooManyRequests, "too many requests"}
	CodeTagInvalid          = ErrorCode{"TAG_INVALID", http.StatusBadRequest, "manifest tag did not match URI"}
	CodeRangeInvalid        = ErrorCode{"RANGE_INVALID", http.StatusRequestedRangeNotSatisfiable, "requested range not satisfiable"}
	CodeNotFound            = ErrorCode{"NOT_FOUND", http.StatusNotFound, "no such route"}
	CodeUnavailable         = ErrorCode{"UNAVAILABLE", http.StatusServiceUnavailable, "service temporarily unavailable, retry later"}
	CodeStorageFull         = ErrorCode{"UNAVAILABLE", http.StatusInsufficientStorage, "no space left on the store's device"}
	CodeKeyDestroyed        = ErrorCode{"BLOB_UNKNOWN", http.StatusNotFound, "the encryption key of this content was destroyed"}
	CodeUnknown             = ErrorCode{"UNKNOWN", http.StatusInternalServerError, "unknown error"}
)

// errorTable maps engine sentinel errors to wire codes. It is the only
// place where that translation happens; order matters only where one
// error wraps several sentinels (ErrTagImmutable wraps ErrTagInvalid).
var errorTable = []struct {
	err  error
	code ErrorCode
}{
	{engine.ErrNameInvalid, CodeNameInvalid},
	{engine.ErrNameUnknown, CodeNameUnknown},
	{engine.ErrBlobUploadUnknown, CodeBlobUploadUnknown},
	{engine.ErrBlobUploadInvalid, CodeBlobUploadInvalid},
	{engine.ErrBlobUnknown, CodeBlobUnknown},
	{engine.ErrDigestInvalid, CodeDigestInvalid},
	{engine.ErrTooLarge, CodeTooLarge},
	{engine.ErrSizeInvalid, CodeSizeInvalid},
	{engine.ErrManifestBlobUnknown, CodeManifestBlobUnknown},
	{engine.ErrManifestUnknown, CodeManifestUnknown},
	{engine.ErrManifestInvalid, CodeManifestInvalid},
	{engine.ErrTagImmutable, CodeTagInvalid},
	{engine.ErrTagInvalid, CodeTagInvalid},
	{engine.ErrUnsupported, CodeUnsupported},
	{engine.ErrRangeInvalid, CodeRangeInvalid},
	{engine.ErrInvalidArgument, CodeInvalidArgument},
	{engine.ErrStorageFull, CodeStorageFull},
	{engine.ErrStorageUnavailable, CodeUnavailable},
	{engine.ErrMetadataUnavailable, CodeUnavailable},
	{engine.ErrKeyUnavailable, CodeUnavailable},
	{engine.ErrKeyDestroyed, CodeKeyDestroyed},
	{engine.ErrKeyNotFound, CodeInvalidArgument},
	{engine.ErrKeyExists, CodeInvalidArgument},
	{engine.ErrClosed, CodeUnavailable},
	{engine.ErrAuditUnavailable, CodeUnavailable},
	{engine.ErrCorrupt, CodeUnknown},
	{engine.ErrAccessDenied, CodeDenied},
	{engine.ErrPushToCacheRepository, CodeDenied},
	{engine.ErrSecretNotFound, CodeNotFound},
	{engine.ErrSecretInUse, CodeInvalidArgument},
	{pullthrough.ErrUpstreamAuth, CodeDenied},
	{pullthrough.ErrUpstream, CodeUnavailable},
	{request.ErrShuttingDown, CodeUnavailable},
	{context.DeadlineExceeded, CodeUnavailable},
}

// Error is an API error with its code, message and optional detail. The
// handlers return it (or an engine error, mapped through errorTable).
// The admin API answers its errors the same way.
type Error struct {
	Code   ErrorCode
	Detail any
	// Msg overrides Code.Message when not empty.
	Msg string
	// Err is the cause, logged but never sent.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	msg := e.Msg
	if msg == "" {
		msg = e.Code.Message
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code.Code, msg, e.Err)
	}
	return e.Code.Code + ": " + msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// NewError builds an *Error; msg "" is the code's message.
func NewError(code ErrorCode, msg string, detail any) *Error {
	return &Error{Code: code, Msg: msg, Detail: detail}
}

// ToError maps any error to the *Error answered on the wire: an *Error
// as it is, an engine error through errorTable, anything else UNKNOWN.
func ToError(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			out := &Error{Code: e.code, Err: err}
			if e.code.Status < 500 {
				// Client errors carry the engine's message (it names the
				// repository, tag or digest concerned).
				out.Msg = clientMessage(err, e.code)
			}
			return out
		}
	}
	return &Error{Code: CodeUnknown, Err: err}
}

// clientMessage is the message sent for a client error: the engine's
// text without its "engine: " prefixes. For an immutable tag it is the
// ECR sentence when the engine's text contains it.
func clientMessage(err error, code ErrorCode) string {
	s := err.Error()
	if i := strings.Index(s, "The image tag '"); i >= 0 {
		return s[i:]
	}
	s = strings.ReplaceAll(s, "engine: ", "")
	if s == "" {
		return code.Message
	}
	return s
}

// errorBody is the spec's error JSON.
type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// retryAfterSeconds is the Retry-After answered with retryable errors.
const retryAfterSeconds = "5"

// WriteError answers err as the spec's error JSON and returns the *Error
// answered.
func WriteError(w http.ResponseWriter, err error) *Error {
	ae := ToError(err)
	msg := ae.Msg
	if msg == "" {
		msg = ae.Code.Message
	}
	body, mErr := json.Marshal(errorBody{Errors: []errorEntry{{Code: ae.Code.Code, Message: msg, Detail: ae.Detail}}})
	if mErr != nil {
		body = []byte(`{"errors":[{"code":"UNKNOWN","message":"unknown error"}]}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Del("Content-Encoding")
	if ae.Code.Status == http.StatusServiceUnavailable || ae.Code.Status == http.StatusInsufficientStorage {
		// Retryable: a key provider or the disk may come back.
		h.Set("Retry-After", retryAfterSeconds)
	}
	w.WriteHeader(ae.Code.Status)
	_, _ = w.Write(body)
	return ae
}

// Unauthorized answers the 401 challenge of basic authentication in
// realm, with the UNAUTHORIZED error, which docker, podman, skopeo, crane,
// oras and regctl understand.
func Unauthorized(w http.ResponseWriter, realm string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	WriteError(w, NewError(CodeUnauthorized, "", nil))
}

// immutableTagMessage is ECR's message for an attempt to move an
// immutable tag.
func immutableTagMessage(tag, repo string) string {
	return fmt.Sprintf("The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the repository is immutable.", tag, repo)
}
