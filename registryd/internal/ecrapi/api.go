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
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/berthstore/berth/engine"
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
	// maxBody bounds a request body; an UploadLayerPart carries its
	// part base64-encoded, so a part may be up to 48 MiB.
	maxBody = 64 << 20
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
// (*auth.Authenticator).
type Authenticator interface {
	SigV4(r *http.Request, body []byte) (engine.Principal, error)
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
}

// API serves the ECR API.
type API struct {
	authn   Authenticator
	authz   authz.Authorizer
	observe CallObserver
	log     *slog.Logger
	reg     registry
	ops     map[string]operation
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
	a.ops = operations(a.reg, store, authn, uploads)
	return a, nil
}

// ServeHTTP answers one ECR API call: it authenticates the request's
// signature, dispatches on X-Amz-Target and answers JSON or an AWS error.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := request.InfoFrom(r.Context())
	if info.RequestID == "" { // served outside the server
		info.RequestID = newRequestID()
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			result = a.writeError(w, r, errorf(ecrLimitExceeded, "request body larger than %d bytes", maxBody))
			return
		}
		result = a.writeError(w, r, errorf(ecrSerialization, "reading the request body: %v", err))
		return
	}
	who, err := a.authenticate(r, body)
	if err != nil {
		result = a.writeError(w, r, err)
		return
	}
	if !known {
		result = a.writeError(w, r, errorf(ecrUnknownOperation, "operation %q is not implemented by Berth (docs/ecr-api.md lists the ones that are)", truncate(name, 100)))
		return
	}
	c := &call{who: who, host: r.Host, scheme: "http", action: op.action(), authz: a.authz}
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

// authenticate says who a call comes from, or answers the AWS error of
// a refused signature.
func (a *API) authenticate(r *http.Request, body []byte) (engine.Principal, error) {
	who, err := a.authn.SigV4(r, body)
	switch {
	case err == nil:
		return who, nil
	case errors.Is(err, auth.ErrECRClosed):
		return who, errorf(ecrUnrecognizedClient, "this registry requires authentication and has no ECR API credentials configured (registryd --ecr-credentials)")
	case errors.Is(err, sigv4.ErrUnknownKey):
		return who, errorf(ecrUnrecognizedClient, "The security token included in the request is invalid: %v", err)
	case errors.Is(err, sigv4.ErrExpired):
		return who, errorf(ecrInvalidSignature, "Signature expired: %v", err)
	case errors.Is(err, sigv4.ErrMissing):
		return who, errorf(ecrMissingAuth, "Missing Authentication Token: %v", err)
	default:
		return who, errorf(ecrInvalidSignature, "The request signature we calculated does not match the signature you provided: %v", err)
	}
}

// newRequestID returns a random request ID in the UUID form AWS uses.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// truncate shortens s for a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
