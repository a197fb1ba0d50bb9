// Package ecrapi is registryd's ECR management API: the AWS JSON 1.1
// protocol that the aws CLI and the AWS SDKs speak (POST with
// X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>), over
// the same store as the OCI API. docs/ecr-api.md lists the operations and
// the choices.
//
// Every operation is an entry of one table (operations.go): its ECR
// action, and a handler over typed input and output structs whose JSON
// names are the ECR API reference's. The input names the resources the
// call acts on; the dispatcher decodes the input, asks the Authorizer
// about the action on each resource, and only then runs the handler. The
// handlers depend on narrow roles of the store (roles.go), each on the
// ones it uses.
package ecrapi

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/berthstore/berth/registryd/internal/auth"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/request"
	"github.com/berthstore/berth/registryd/internal/sigv4"
)

const (
	// TargetPrefix starts the X-Amz-Target header of every ECR call.
	TargetPrefix = "AmazonEC2ContainerRegistry_V20150921."
	// ContentType is the AWS JSON 1.1 media type.
	ContentType = "application/x-amz-json-1.1"
	// DefaultRegion is the region the ECR API answers for.
	DefaultRegion = "us-east-1"
	// DefaultAccountID is the registry ID (an AWS account ID) the ECR API
	// answers for.
	DefaultAccountID = "000000000000"
	// retryAfterSeconds is the Retry-After answered with retryable errors.
	retryAfterSeconds = "5"
)

// IsRequest reports whether r is an ECR API call.
func IsRequest(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
}

// operationName is the operation r's X-Amz-Target names.
func operationName(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
}

// Authenticator answers who an ECR API call comes from, by its SigV4
// signature, and mints the login tokens of GetAuthorizationToken
// (*auth.Authenticator). BeginSigV4 authenticates what the headers tell
// before the body is read; the call's Finish checks the signature over
// the body.
type Authenticator interface {
	BeginSigV4(r *http.Request) (*auth.SigV4Call, error)
	TokenMinter
}

// CallObserver counts the calls answered, by operation and result (ok,
// or the AWS error type) (*metrics.Metrics).
type CallObserver interface {
	ObserveECRCall(operation, result string)
}

// Config configures an API.
type Config struct {
	// Logger receives errors. Default slog.Default().
	Logger *slog.Logger
	// Region and AccountID are the region and registry ID the API answers
	// for (in ARNs and registryId). Defaults DefaultRegion and
	// DefaultAccountID.
	Region, AccountID string
	// MaxManifestSize is the largest manifest the registry accepts; it
	// bounds PutImage's body (bodyLimits). Default DefaultMaxManifestSize.
	MaxManifestSize int64
	// Upstreams validates a pull-through cache rule's upstream
	// (ValidatePullThroughCacheRule; *pullthrough.Cache), and makes the
	// handshake with a new rule's upstream. Without it that operation
	// fails with ServerException.
	Upstreams Upstreams
}

// API serves the ECR API.
type API struct {
	authn   Authenticator
	authz   authz.Authorizer
	observe CallObserver
	log     *slog.Logger
	reg     registry
	ops     map[string]operation
	limits  bodyLimits
}

var _ http.Handler = (*API)(nil)

// New returns the ECR API over store. Each dependency is required:
// authn says who a call comes from, az whether it may do what it asks,
// uploads lets shutdown wait for the layer upload calls, observe counts
// the calls.
func New(store Store, authn Authenticator, az authz.Authorizer, uploads *request.Uploads, observe CallObserver, cfg Config) (*API, error) {
	if store == nil || authn == nil || az == nil || uploads == nil || observe == nil {
		return nil, errors.New("ecrapi: New needs a store, an authenticator, an authorizer, an upload tracker and a call observer")
	}
	a := &API{authn: authn, authz: az, observe: observe, log: cfg.Logger,
		reg: registry{account: cfg.AccountID, region: cfg.Region}}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.reg.account == "" {
		a.reg.account = DefaultAccountID
	}
	if a.reg.region == "" {
		a.reg.region = DefaultRegion
	}
	a.limits = newBodyLimits(cfg.MaxManifestSize)
	a.ops = operations(a.reg, store, authn, uploads, cfg.Upstreams)
	return a, nil
}

// ServeHTTP answers one ECR API call: it authenticates the request's
// headers (signature scope, date, access key) before reading any body,
// reads the body within the operation's limit, checks the signature over
// it, dispatches on X-Amz-Target and answers JSON or an AWS error.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := request.InfoFrom(r.Context())
	if info.RequestID == "" { // served outside the server
		info.RequestID = request.NewRequestID()
	}
	w.Header().Set("X-Amzn-RequestId", info.RequestID)
	name := operationName(r)
	info.Operation = truncate(name, 100)
	op, known := a.ops[name]
	result := "ok"
	defer func() {
		counted := name
		if !known {
			counted = "unknown" // bound the label's cardinality
		}
		a.observe.ObserveECRCall(counted, result)
	}()
	signed, err := a.authn.BeginSigV4(r)
	if err != nil {
		result = a.writeError(w, r, authError(err))
		return
	}
	body, err := a.readBody(w, r, name)
	if err != nil {
		result = a.writeError(w, r, err)
		return
	}
	who, err := signed.Finish(body)
	if err != nil {
		result = a.writeError(w, r, authError(err))
		return
	}
	if !known {
		result = a.writeError(w, r, errorf(ecrUnknownOperation, "operation %q is not implemented by Berth (docs/ecr-api.md lists the ones that are)", truncate(name, 100)))
		return
	}
	c := &call{who: who, host: r.Host, scheme: "http", action: op.action(), authz: a.authz, operation: name}
	if r.TLS != nil {
		c.scheme = "https"
	}
	out, err := op.serve(r.Context(), a.reg, c, body)
	if err != nil {
		result = a.writeError(w, r, err)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		result = a.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// readBody reads the call's body within the limit of the operation
// name: a declared Content-Length over it is refused before a byte is
// read, and a body that runs past it as soon as it does.
func (a *API) readBody(w http.ResponseWriter, r *http.Request, name string) ([]byte, error) {
	limit := a.limits.of(name)
	tooLarge := func() error {
		return errorf(ecrLimitExceeded, "request body of %s larger than %d bytes", truncate(name, 100), limit)
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, errorf(ecrSerialization, "reading the request body: %v", err)
	}
	return body, nil
}

// authError is the AWS error of a refused authentication.
func authError(err error) error {
	var scope *sigv4.ScopeError
	switch {
	case errors.Is(err, auth.ErrECRClosed):
		return errorf(ecrUnrecognizedClient, "this registry requires authentication and has no ECR API credentials configured (registryd --ecr-credentials)")
	case errors.As(err, &scope):
		return &apiError{Type: ecrInvalidSignature, Msg: scope.AWSMessage(), Err: err}
	case errors.Is(err, sigv4.ErrUnknownKey):
		return errorf(ecrUnrecognizedClient, "The security token included in the request is invalid: %v", err)
	case errors.Is(err, sigv4.ErrExpired):
		return errorf(ecrInvalidSignature, "Signature expired: %v", err)
	case errors.Is(err, sigv4.ErrMissing):
		return errorf(ecrMissingAuth, "Missing Authentication Token: %v", err)
	default:
		return errorf(ecrInvalidSignature, "The request signature we calculated does not match the signature you provided: %v", err)
	}
}

// DefaultMaxManifestSize is the manifest limit of PutImage's body when
// Config.MaxManifestSize is not set (the engine's default).
const DefaultMaxManifestSize = 4 << 20

const (
	// maxLayerPartBody bounds an UploadLayerPart call: its part travels
	// base64-encoded in the JSON body, so a part may be up to 48 MiB.
	maxLayerPartBody = 64 << 20
	// maxCallBody bounds every other call: ECR's largest documented
	// inputs (a 30,720-character lifecycle policy, a 10,240-character
	// repository policy, 100 image IDs or layer digests) fit many times.
	maxCallBody = 1 << 20
	// jsonEscapeFactor is the worst growth of a string's bytes in a JSON
	// string: a control character becomes \u00XX, six bytes.
	jsonEscapeFactor = 6
	// putImageOverhead is room for PutImage's other fields.
	putImageOverhead = 64 << 10
)

// bodyLimits are the largest body each operation accepts.
type bodyLimits map[string]int64

// newBodyLimits returns the limits of a registry whose manifests may be
// up to maxManifest bytes: PutImage carries one as a JSON string, which
// escaping may grow up to six-fold.
func newBodyLimits(maxManifest int64) bodyLimits {
	if maxManifest <= 0 {
		maxManifest = DefaultMaxManifestSize
	}
	return bodyLimits{
		"UploadLayerPart": maxLayerPartBody,
		"PutImage":        jsonEscapeFactor*maxManifest + putImageOverhead,
	}
}

// of is the limit of the operation name (maxCallBody by default, and for
// names that are no operation).
func (l bodyLimits) of(name string) int64 {
	if n, ok := l[name]; ok {
		return n
	}
	return maxCallBody
}

// truncate shortens s for a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
