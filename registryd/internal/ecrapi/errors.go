package ecrapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/request"
)

// errorType is an AWS error type (the __type on the wire) and the HTTP
// status it goes with.
type errorType struct {
	Name   string
	Status int
}

// The ECR API's errors (service/ecr/types/errors.go), and the AWS
// protocol's own.
var (
	ecrRepositoryNotFound       = errorType{"RepositoryNotFoundException", 400}
	ecrRepositoryAlreadyExists  = errorType{"RepositoryAlreadyExistsException", 400}
	ecrRepositoryNotEmpty       = errorType{"RepositoryNotEmptyException", 400}
	ecrRepositoryPolicyNotFound = errorType{"RepositoryPolicyNotFoundException", 400}
	ecrRegistryPolicyNotFound   = errorType{"RegistryPolicyNotFoundException", 400}
	ecrInvalidParameter         = errorType{"InvalidParameterException", 400}
	ecrInvalidTagParameter      = errorType{"InvalidTagParameterException", 400}
	ecrTooManyTags              = errorType{"TooManyTagsException", 400}
	ecrImageNotFound            = errorType{"ImageNotFoundException", 400}
	ecrImageAlreadyExists       = errorType{"ImageAlreadyExistsException", 400}
	ecrImageTagAlreadyExists    = errorType{"ImageTagAlreadyExistsException", 400}
	ecrImageDigestDoesNotMatch  = errorType{"ImageDigestDoesNotMatchException", 400}
	ecrReferencedImagesNotFound = errorType{"ReferencedImagesNotFoundException", 400}
	ecrLayersNotFound           = errorType{"LayersNotFoundException", 400}
	ecrLayerAlreadyExists       = errorType{"LayerAlreadyExistsException", 400}
	ecrInvalidLayer             = errorType{"InvalidLayerException", 400}
	ecrInvalidLayerPart         = errorType{"InvalidLayerPartException", 400}
	ecrEmptyUpload              = errorType{"EmptyUploadException", 400}
	ecrUploadNotFound           = errorType{"UploadNotFoundException", 400}
	ecrLifecyclePolicyNotFound  = errorType{"LifecyclePolicyNotFoundException", 400}
	ecrLifecyclePreviewNotFound = errorType{"LifecyclePolicyPreviewNotFoundException", 400}
	// ecrLifecyclePreviewInProgress: StartLifecyclePolicyPreview while
	// the repository's previous preview is still evaluated.
	ecrLifecyclePreviewInProgress = errorType{"LifecyclePolicyPreviewInProgressException", 400}
	ecrTemplateNotFound           = errorType{"TemplateNotFoundException", 400}
	ecrTemplateAlreadyExists      = errorType{"TemplateAlreadyExistsException", 400}
	ecrLimitExceeded              = errorType{"LimitExceededException", 400}
	ecrKMS                        = errorType{"KmsException", 400}
	ecrKMSUnavailable             = errorType{"KmsException", http.StatusServiceUnavailable}
	ecrServer                     = errorType{"ServerException", http.StatusInternalServerError}
	ecrServiceUnavailable         = errorType{"ServerException", http.StatusServiceUnavailable}
	ecrUnknownOperation           = errorType{"UnknownOperationException", 400}
	ecrSerialization              = errorType{"SerializationException", 400}
	ecrUnrecognizedClient         = errorType{"UnrecognizedClientException", http.StatusForbidden}
	ecrInvalidSignature           = errorType{"InvalidSignatureException", http.StatusForbidden}
	ecrMissingAuth                = errorType{"MissingAuthenticationTokenException", http.StatusForbidden}
	ecrUnsupportedImageType       = errorType{"UnsupportedImageTypeException", 400}
	ecrScanNotFound               = errorType{"ScanNotFoundException", 400}
	ecrAccessDenied               = errorType{"AccessDeniedException", 400}
	ecrCacheRuleNotFound          = errorType{"PullThroughCacheRuleNotFoundException", 400}
	ecrCacheRuleExists            = errorType{"PullThroughCacheRuleAlreadyExistsException", 400}
	ecrUnsupportedUpstream        = errorType{"UnsupportedUpstreamRegistryException", 400}
	ecrSecretNotFound             = errorType{"SecretNotFoundException", 400}
	ecrUnableToAccessSecret       = errorType{"UnableToAccessSecretException", 400}
	ecrUnableToDecryptSecret      = errorType{"UnableToDecryptSecretValueException", 400}
)

// apiError is an ECR API error with its message.
type apiError struct {
	Type errorType
	Msg  string
	// Err is the cause, logged but never sent beyond Msg.
	Err error
	// Fields are the exception's members besides its message (a struct
	// with their JSON names), nil for none.
	Fields any
}

// Error implements error.
func (e *apiError) Error() string { return e.Type.Name + ": " + e.Msg }

// Unwrap returns the cause.
func (e *apiError) Unwrap() error { return e.Err }

// errorf builds an *apiError.
func errorf(t errorType, format string, args ...any) *apiError {
	return &apiError{Type: t, Msg: fmt.Sprintf(format, args...)}
}

// errorTable maps engine errors to ECR error types; the first match
// wins (ErrTagImmutable wraps ErrTagInvalid).
var errorTable = []struct {
	err error
	typ errorType
}{
	{engine.ErrNameUnknown, ecrRepositoryNotFound},
	{engine.ErrNameInvalid, ecrInvalidParameter},
	{engine.ErrRepositoryExists, ecrRepositoryAlreadyExists},
	{engine.ErrRepositoryNotEmpty, ecrRepositoryNotEmpty},
	{engine.ErrRepositoryPolicyNotFound, ecrRepositoryPolicyNotFound},
	{engine.ErrRegistryPolicyNotFound, ecrRegistryPolicyNotFound},
	{engine.ErrLifecyclePolicyNotFound, ecrLifecyclePolicyNotFound},
	{engine.ErrLifecyclePreviewNotFound, ecrLifecyclePreviewNotFound},
	{engine.ErrLifecyclePreviewInProgress, ecrLifecyclePreviewInProgress},
	{engine.ErrTemplateNotFound, ecrTemplateNotFound},
	{engine.ErrTemplateExists, ecrTemplateAlreadyExists},
	{engine.ErrTagImmutable, ecrImageTagAlreadyExists},
	{engine.ErrTagInvalid, ecrInvalidParameter},
	{engine.ErrStorageClassUpdate, ecrImageStorageClassUpdateNotSupported},
	{engine.ErrManifestUnknown, ecrImageNotFound},
	{engine.ErrManifestBlobUnknown, ecrLayersNotFound},
	{engine.ErrManifestInvalid, ecrInvalidParameter},
	{engine.ErrBlobUnknown, ecrLayersNotFound},
	{engine.ErrBlobUploadUnknown, ecrUploadNotFound},
	{engine.ErrBlobUploadInvalid, ecrInvalidLayerPart},
	{engine.ErrDigestInvalid, ecrInvalidLayer},
	{engine.ErrSizeInvalid, ecrInvalidLayer},
	{engine.ErrTooLarge, ecrLimitExceeded},
	{engine.ErrUnsupported, ecrInvalidParameter},
	{engine.ErrKeyUnavailable, ecrKMSUnavailable},
	{engine.ErrKeyDestroyed, ecrKMS},
	{engine.ErrKeyNotFound, ecrKMS},
	{engine.ErrKeyExists, ecrKMS},
	{engine.ErrInvalidArgument, ecrInvalidParameter},
	{engine.ErrStorageFull, ecrServiceUnavailable},
	{engine.ErrStorageUnavailable, ecrServiceUnavailable},
	{engine.ErrMetadataUnavailable, ecrServiceUnavailable},
	{engine.ErrClosed, ecrServiceUnavailable},
	{engine.ErrAuditUnavailable, ecrServiceUnavailable},
	{engine.ErrAccessDenied, ecrAccessDenied},
	{engine.ErrCacheRuleNotFound, ecrCacheRuleNotFound},
	{engine.ErrScanNotFound, ecrScanNotFound},
	{engine.ErrScanLimitExceeded, ecrLimitExceeded},
	{engine.ErrUnsupportedImageType, ecrUnsupportedImageType},
	{engine.ErrCacheRuleExists, ecrCacheRuleExists},
	{engine.ErrSecretNotFound, ecrSecretNotFound},
	{engine.ErrPushToCacheRepository, ecrInvalidParameter},
	{engine.ErrLimitExceeded, ecrLimitExceeded},
	{request.ErrShuttingDown, ecrServiceUnavailable},
	{context.DeadlineExceeded, ecrServiceUnavailable},
}

// toError maps any error to the ECR error answered.
func toError(err error) *apiError {
	var ee *apiError
	if errors.As(err, &ee) {
		return ee
	}
	for _, m := range errorTable {
		if errors.Is(err, m.err) {
			out := &apiError{Type: m.typ, Err: err}
			switch {
			case m.typ == ecrInvalidParameter:
				out.Msg = invalidArgumentMessage(err)
			case m.typ.Status < 500 || m.typ == ecrKMSUnavailable:
				out.Msg = strings.ReplaceAll(err.Error(), "engine: ", "")
			default:
				out.Msg = "the registry cannot serve this now; retry later"
			}
			return out
		}
	}
	return &apiError{Type: ecrServer, Msg: "internal error", Err: err}
}

// errorBody is an AWS JSON 1.1 error.
type errorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

// errorJSON is ee's body: __type, message and the exception's other
// members.
func errorJSON(ee *apiError) []byte {
	b, _ := json.Marshal(errorBody{Type: ee.Type.Name, Message: ee.Msg})
	if ee.Fields == nil {
		return b
	}
	extra, err := json.Marshal(ee.Fields)
	if err != nil || len(extra) < 2 || string(extra) == "{}" {
		return b
	}
	// {"__type":...,"message":...} and {"a":...}: one object.
	return append(append(b[:len(b)-1], ','), extra[1:]...)
}

// writeError answers err as an AWS JSON 1.1 error and returns its
// type.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) string {
	ee := toError(err)
	if ee.Type.Status >= 500 && !errors.Is(err, engine.ErrAuditUnavailable) { // the audit log logs its failures once
		a.log.Error("ECR API call failed", "target", r.Header.Get("X-Amz-Target"), "err", err)
	} else {
		a.log.Debug("ECR API call refused", "target", r.Header.Get("X-Amz-Target"), "err", err)
	}
	return WriteError(w, err)
}

// WriteError answers err as an AWS JSON 1.1 error, as the API answers
// it, and returns its type; it logs nothing.
func WriteError(w http.ResponseWriter, err error) string {
	ee := toError(err)
	b := errorJSON(ee)
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Amzn-ErrorType", ee.Type.Name)
	if ee.Type.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", retryAfterSeconds)
	}
	w.WriteHeader(ee.Type.Status)
	_, _ = w.Write(b)
	return ee.Type.Name
}
