package server

// The ECR management API: the AWS JSON 1.1 protocol that the `aws ecr`
// CLI and the AWS SDKs speak (POST / with X-Amz-Target:
// AmazonEC2ContainerRegistry_V20150921.<Operation>), over the same store
// as the OCI API. docs/ecr-api.md lists the operations and the choices.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
)

const (
	// ecrTargetPrefix starts the X-Amz-Target header of every ECR call.
	ecrTargetPrefix = "AmazonEC2ContainerRegistry_V20150921."
	// ecrContentType is the AWS JSON 1.1 media type.
	ecrContentType = "application/x-amz-json-1.1"
	// maxECRBody bounds a request body; an UploadLayerPart carries its
	// part base64-encoded, so a part may be up to 48 MiB.
	maxECRBody = 64 << 20
	// DefaultECRRegion is the region the ECR API answers for.
	DefaultECRRegion = "us-east-1"
	// DefaultECRAccountID is the registry ID (an AWS account ID) the ECR
	// API answers for.
	DefaultECRAccountID = "000000000000"
)

// ecrStore is what the ECR API needs of the store; *engine.Engine has it.
type ecrStore interface {
	Store
	CreateRepository(ctx context.Context, name string, s engine.RepositorySettings) (*engine.Repository, error)
	Repository(ctx context.Context, name string) (*engine.Repository, error)
	DeleteRepository(ctx context.Context, name string, force bool) error
	SetTagMutability(ctx context.Context, name, mutability string, exclusions []engine.TagFilter) error
	SetScanOnPush(ctx context.Context, repo string, scanOnPush bool) error
	SetRepositoryPolicy(ctx context.Context, repo, policy string) error
	GetRepositoryPolicy(ctx context.Context, repo string) (string, error)
	DeleteRepositoryPolicy(ctx context.Context, repo string) (string, error)
	TagRepository(ctx context.Context, repo string, tags []engine.ResourceTag) error
	UntagRepository(ctx context.Context, repo string, keys []string) error
	Images(ctx context.Context, repo string) ([]engine.ImageDetail, error)
	Image(ctx context.Context, repo, reference string) (*engine.ImageDetail, error)
	UntagImage(ctx context.Context, repo, tag string) (digest.Digest, bool, error)
	DeleteImage(ctx context.Context, repo string, d digest.Digest) error
	PutLifecyclePolicy(ctx context.Context, repo, policy string) error
	GetLifecyclePolicy(ctx context.Context, repo string) (string, error)
	DeleteLifecyclePolicy(ctx context.Context, repo string) (string, error)
	LifecyclePreview(ctx context.Context, repo, policyOverride string) ([]engine.Expiry, error)
	CreateCreationTemplate(ctx context.Context, t engine.CreationTemplate) error
	UpdateCreationTemplate(ctx context.Context, t engine.CreationTemplate) error
	DeleteCreationTemplate(ctx context.Context, prefix string) error
	CreationTemplates(ctx context.Context) ([]engine.CreationTemplate, error)
}

var _ ecrStore = (*engine.Engine)(nil)

// isECRRequest reports whether r is an ECR API call.
func isECRRequest(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("X-Amz-Target"), ecrTargetPrefix)
}

// ecrCall is one ECR API request being served.
type ecrCall struct {
	r    *http.Request
	body []byte
	// host is the registry's host as the client addresses it; scheme is
	// http or https.
	host, scheme string
	// op is the operation; who the caller.
	op  string
	who engine.Principal
}

// allowed refuses the call when repo's policy denies its operation to
// the caller.
func (s *Server) allowed(c *ecrCall, repo string) error {
	return s.checkRepoPolicy(c.r.Context(), c.who, repo, "ecr:"+c.op)
}

// decode unmarshals the request body into in; an empty body is {}.
func (c *ecrCall) decode(in any) error {
	if len(c.body) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.body, in); err != nil {
		return ecrErrf(ecrSerialization, "request body: %v", err)
	}
	return nil
}

// ecrOp serves one operation: it decodes its input from the call and
// returns the output to answer as JSON.
type ecrOp func(s *Server, st ecrStore, c *ecrCall) (any, error)

// serveECR answers one ECR API call: it authenticates the request's
// signature, dispatches on X-Amz-Target and answers JSON or an AWS error.
func (s *Server) serveECR(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Amzn-RequestId", newRequestID())
	result := "ok"
	defer func() {
		s.metrics.observeECR(strings.TrimPrefix(r.Header.Get("X-Amz-Target"), ecrTargetPrefix), result)
	}()
	st, ok := s.store.(ecrStore)
	if !ok {
		result = s.writeECRError(w, r, ecrErrf(ecrUnknownOperation, "this store has no ECR management API"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxECRBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			result = s.writeECRError(w, r, ecrErrf(ecrLimitExceeded, "request body larger than %d bytes", maxECRBody))
			return
		}
		result = s.writeECRError(w, r, ecrErrf(ecrSerialization, "reading the request body: %v", err))
		return
	}
	who, err := s.authenticateECR(r, body)
	if err != nil {
		result = s.writeECRError(w, r, err)
		return
	}
	name := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), ecrTargetPrefix)
	op, ok := ecrOps[name]
	if !ok {
		result = s.writeECRError(w, r, ecrErrf(ecrUnknownOperation, "operation %q is not implemented by Berth (docs/ecr-api.md lists the ones that are)", truncate(name, 100)))
		return
	}
	c := &ecrCall{r: r, body: body, host: r.Host, scheme: "http", op: name, who: who}
	if r.TLS != nil {
		c.scheme = "https"
	}
	out, err := op(s, st, c)
	if err != nil {
		result = s.writeECRError(w, r, err)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		result = s.writeECRError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ecrContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// authenticateECR checks the call's SigV4 signature when the server has
// ECR credentials and returns the key's user. Without them the API is
// open, to anonymous callers, only when the OCI API is (no htpasswd
// file), as a local development registry is.
func (s *Server) authenticateECR(r *http.Request, body []byte) (engine.Principal, error) {
	if s.ecrCreds == nil {
		if s.auth != nil {
			return engine.Principal{}, ecrErrf(ecrUnrecognizedClient, "this registry requires authentication and has no ECR API credentials configured (registryd --ecr-credentials)")
		}
		return s.principal(""), nil
	}
	id, err := verifySigV4(r, body, s.ecrCreds.lookup, time.Now())
	switch {
	case err == nil:
		return s.principal(s.ecrCreds.user(id.AccessKeyID)), nil
	case errors.Is(err, errSigUnknownKey):
		return engine.Principal{}, ecrErrf(ecrUnrecognizedClient, "The security token included in the request is invalid: %v", err)
	case errors.Is(err, errSigExpired):
		return engine.Principal{}, ecrErrf(ecrInvalidSignature, "Signature expired: %v", err)
	case errors.Is(err, errSigMissing):
		return engine.Principal{}, ecrErrf(ecrMissingAuth, "Missing Authentication Token: %v", err)
	default:
		return engine.Principal{}, ecrErrf(ecrInvalidSignature, "The request signature we calculated does not match the signature you provided: %v", err)
	}
}

// ecrErrorType is an AWS error type (the __type on the wire) and the HTTP
// status it goes with.
type ecrErrorType struct {
	Name   string
	Status int
}

// The ECR API's errors (service/ecr/types/errors.go), and the AWS
// protocol's own.
var (
	ecrRepositoryNotFound       = ecrErrorType{"RepositoryNotFoundException", 400}
	ecrRepositoryAlreadyExists  = ecrErrorType{"RepositoryAlreadyExistsException", 400}
	ecrRepositoryNotEmpty       = ecrErrorType{"RepositoryNotEmptyException", 400}
	ecrRepositoryPolicyNotFound = ecrErrorType{"RepositoryPolicyNotFoundException", 400}
	ecrInvalidParameter         = ecrErrorType{"InvalidParameterException", 400}
	ecrInvalidTagParameter      = ecrErrorType{"InvalidTagParameterException", 400}
	ecrTooManyTags              = ecrErrorType{"TooManyTagsException", 400}
	ecrImageNotFound            = ecrErrorType{"ImageNotFoundException", 400}
	ecrImageAlreadyExists       = ecrErrorType{"ImageAlreadyExistsException", 400}
	ecrImageTagAlreadyExists    = ecrErrorType{"ImageTagAlreadyExistsException", 400}
	ecrImageDigestDoesNotMatch  = ecrErrorType{"ImageDigestDoesNotMatchException", 400}
	ecrReferencedImagesNotFound = ecrErrorType{"ReferencedImagesNotFoundException", 400}
	ecrLayersNotFound           = ecrErrorType{"LayersNotFoundException", 400}
	ecrLayerAlreadyExists       = ecrErrorType{"LayerAlreadyExistsException", 400}
	ecrInvalidLayer             = ecrErrorType{"InvalidLayerException", 400}
	ecrInvalidLayerPart         = ecrErrorType{"InvalidLayerPartException", 400}
	ecrEmptyUpload              = ecrErrorType{"EmptyUploadException", 400}
	ecrUploadNotFound           = ecrErrorType{"UploadNotFoundException", 400}
	ecrLifecyclePolicyNotFound  = ecrErrorType{"LifecyclePolicyNotFoundException", 400}
	ecrLifecyclePreviewNotFound = ecrErrorType{"LifecyclePolicyPreviewNotFoundException", 400}
	ecrTemplateNotFound         = ecrErrorType{"TemplateNotFoundException", 400}
	ecrTemplateAlreadyExists    = ecrErrorType{"TemplateAlreadyExistsException", 400}
	ecrLimitExceeded            = ecrErrorType{"LimitExceededException", 400}
	ecrKMS                      = ecrErrorType{"KmsException", 400}
	ecrKMSUnavailable           = ecrErrorType{"KmsException", http.StatusServiceUnavailable}
	ecrServer                   = ecrErrorType{"ServerException", http.StatusInternalServerError}
	ecrServiceUnavailable       = ecrErrorType{"ServerException", http.StatusServiceUnavailable}
	ecrUnknownOperation         = ecrErrorType{"UnknownOperationException", 400}
	ecrSerialization            = ecrErrorType{"SerializationException", 400}
	ecrUnrecognizedClient       = ecrErrorType{"UnrecognizedClientException", http.StatusForbidden}
	ecrInvalidSignature         = ecrErrorType{"InvalidSignatureException", http.StatusForbidden}
	ecrMissingAuth              = ecrErrorType{"MissingAuthenticationTokenException", http.StatusForbidden}
	ecrUnsupportedImageType     = ecrErrorType{"UnsupportedImageTypeException", 400}
	ecrAccessDenied             = ecrErrorType{"AccessDeniedException", 400}
	ecrCacheRuleNotFound        = ecrErrorType{"PullThroughCacheRuleNotFoundException", 400}
	ecrCacheRuleExists          = ecrErrorType{"PullThroughCacheRuleAlreadyExistsException", 400}
	ecrUnsupportedUpstream      = ecrErrorType{"UnsupportedUpstreamRegistryException", 400}
)

// ecrError is an ECR API error with its message.
type ecrError struct {
	Type ecrErrorType
	Msg  string
	// Err is the cause, logged but never sent beyond Msg.
	Err error
}

// Error implements error.
func (e *ecrError) Error() string { return e.Type.Name + ": " + e.Msg }

// Unwrap returns the cause.
func (e *ecrError) Unwrap() error { return e.Err }

// ecrErrf builds an *ecrError.
func ecrErrf(t ecrErrorType, format string, args ...any) *ecrError {
	return &ecrError{Type: t, Msg: fmt.Sprintf(format, args...)}
}

// ecrErrorTable maps engine errors to ECR error types; the first match
// wins (ErrTagImmutable wraps ErrTagInvalid).
var ecrErrorTable = []struct {
	err error
	typ ecrErrorType
}{
	{engine.ErrNameUnknown, ecrRepositoryNotFound},
	{engine.ErrNameInvalid, ecrInvalidParameter},
	{engine.ErrRepositoryExists, ecrRepositoryAlreadyExists},
	{engine.ErrRepositoryNotEmpty, ecrRepositoryNotEmpty},
	{engine.ErrRepositoryPolicyNotFound, ecrRepositoryPolicyNotFound},
	{engine.ErrLifecyclePolicyNotFound, ecrLifecyclePolicyNotFound},
	{engine.ErrTemplateNotFound, ecrTemplateNotFound},
	{engine.ErrTemplateExists, ecrTemplateAlreadyExists},
	{engine.ErrTagImmutable, ecrImageTagAlreadyExists},
	{engine.ErrTagInvalid, ecrInvalidParameter},
	{engine.ErrManifestUnknown, ecrImageNotFound},
	{engine.ErrManifestBlobUnknown, ecrLayersNotFound},
	{engine.ErrManifestInvalid, ecrInvalidParameter},
	{engine.ErrBlobUnknown, ecrLayersNotFound},
	{engine.ErrBlobUploadUnknown, ecrUploadNotFound},
	{engine.ErrBlobUploadInvalid, ecrInvalidLayerPart},
	{engine.ErrDigestInvalid, ecrInvalidLayer},
	{engine.ErrSizeInvalid, ecrInvalidLayer},
	{engine.ErrTooLarge, ecrLimitExceeded},
	{engine.ErrUnsupported, ecrUnsupportedImageType},
	{engine.ErrKeyUnavailable, ecrKMSUnavailable},
	{engine.ErrKeyDestroyed, ecrKMS},
	{engine.ErrKeyNotFound, ecrKMS},
	{engine.ErrKeyExists, ecrKMS},
	{engine.ErrInvalidArgument, ecrInvalidParameter},
	{engine.ErrStorageFull, ecrServiceUnavailable},
	{engine.ErrClosed, ecrServiceUnavailable},
	{engine.ErrAccessDenied, ecrAccessDenied},
	{engine.ErrCacheRuleNotFound, ecrCacheRuleNotFound},
	{engine.ErrCacheRuleExists, ecrCacheRuleExists},
	{errShuttingDown, ecrServiceUnavailable},
	{context.DeadlineExceeded, ecrServiceUnavailable},
}

// toECRError maps any error to the ECR error answered.
func toECRError(err error) *ecrError {
	var ee *ecrError
	if errors.As(err, &ee) {
		return ee
	}
	for _, m := range ecrErrorTable {
		if errors.Is(err, m.err) {
			out := &ecrError{Type: m.typ, Err: err}
			if m.typ.Status < 500 || m.typ == ecrKMSUnavailable {
				out.Msg = strings.ReplaceAll(err.Error(), "engine: ", "")
			} else {
				out.Msg = "the registry cannot serve this now; retry later"
			}
			return out
		}
	}
	return &ecrError{Type: ecrServer, Msg: "internal error", Err: err}
}

// ecrErrorBody is an AWS JSON 1.1 error.
type ecrErrorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

// writeECRError answers err as an AWS JSON 1.1 error and returns its
// type.
func (s *Server) writeECRError(w http.ResponseWriter, r *http.Request, err error) string {
	ee := toECRError(err)
	if ee.Type.Status >= 500 {
		s.log.Error("ECR API call failed", "target", r.Header.Get("X-Amz-Target"), "err", err)
	} else {
		s.log.Debug("ECR API call refused", "target", r.Header.Get("X-Amz-Target"), "err", err)
	}
	b, _ := json.Marshal(ecrErrorBody{Type: ee.Type.Name, Message: ee.Msg})
	h := w.Header()
	h.Set("Content-Type", ecrContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Amzn-ErrorType", ee.Type.Name)
	if ee.Type.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", retryAfterSeconds)
	}
	w.WriteHeader(ee.Type.Status)
	_, _ = w.Write(b)
	return ee.Type.Name
}

// newRequestID returns a random request ID in the UUID form AWS uses.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// awsTime is a timestamp as AWS JSON 1.1 sends it: seconds since the
// epoch, with milliseconds.
type awsTime time.Time

// MarshalJSON implements json.Marshaler.
func (t awsTime) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(time.Time(t).UnixMilli())/1000, 'f', 3, 64)), nil
}

// IsZero lets omitzero leave unset times out.
func (t awsTime) IsZero() bool { return time.Time(t).IsZero() }

// pageToken is an opaque nextToken: the key of the last item answered.
func pageToken(lastKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastKey))
}

// parsePageToken decodes a nextToken.
func parsePageToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", ecrErrf(ecrInvalidParameter, "nextToken is not one this registry issued")
	}
	return string(b), nil
}

// pageSize checks maxResults (1 to limit; ECR answers 100 when it is not
// given).
func pageSize(maxResults *int, limit int) (int, error) {
	if maxResults == nil {
		return 100, nil
	}
	if *maxResults < 1 || *maxResults > limit {
		return 0, ecrErrf(ecrInvalidParameter, "maxResults must be between 1 and %d", limit)
	}
	return *maxResults, nil
}

// paginate returns the page of items (sorted by key) that follows the
// token, at most n, and the token of the next page ("" at the end).
func paginate[T any](items []T, key func(T) string, token string, n int) ([]T, string, error) {
	start := 0
	if token != "" {
		last, err := parsePageToken(token)
		if err != nil {
			return nil, "", err
		}
		for start < len(items) && key(items[start]) <= last {
			start++
		}
	}
	end := min(start+n, len(items))
	page := items[start:end]
	next := ""
	if end < len(items) {
		next = pageToken(key(items[end-1]))
	}
	return page, next, nil
}

// withNextToken adds nextToken to a paged answer when there is a next
// page.
func withNextToken(out map[string]any, next string) map[string]any {
	if next != "" {
		out["nextToken"] = next
	}
	return out
}
