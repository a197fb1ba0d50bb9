package admin

// The secret store's admin operations (registryd secrets against a
// daemon): put a secret's value (the request's body, never answered,
// logged or recorded), list the secrets (names, ARNs and keys, never a
// value) and delete one. Each asks its secretsmanager: action on the
// secret, through the seam.

import (
	"context"
	"errors"
	"net/http"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/oci"
)

// SecretStore is the role of the store that keeps the secrets (the
// upstream credentials of pull-through cache rules).
type SecretStore interface {
	PutSecret(ctx context.Context, name string, value []byte, key string) (engine.SecretInfo, bool, error)
	Secret(ctx context.Context, name string) (engine.SecretInfo, error)
	Secrets(ctx context.Context) ([]engine.SecretInfo, error)
	DeleteSecret(ctx context.Context, name string) error
}

var _ SecretStore = (*engine.Engine)(nil)

// The query parameters of the secret operations.
const (
	// SecretName names the secret (secrets/put, secrets/delete).
	SecretName = "name"
	// SecretKey names the key-encryption key that seals it (secrets/put;
	// the registry's default key when absent).
	SecretKey = "key"
)

func init() {
	addOperations(map[string]operation{
		"secrets":        {access: onRegistry(authz.SecretsListSecrets), method: http.MethodGet, run: (*API).listSecrets},
		"secrets/put":    {access: secretPutAccess, run: (*API).putSecret, maxBody: engine.MaxSecretSize},
		"secrets/delete": {access: secretAccess(authz.SecretsDeleteSecret), run: (*API).deleteSecret},
	})
}

// secretName is the secret a request names.
func secretName(r *http.Request) (string, error) {
	name := r.URL.Query().Get(SecretName)
	if name == "" {
		return "", oci.NewError(oci.CodeInvalidArgument, "name is required", nil)
	}
	return name, nil
}

// secretAccess is the access of action on the secret the request names.
func secretAccess(action authz.Action) func(*API, *http.Request, []byte) ([]authz.Access, error) {
	return func(_ *API, r *http.Request, _ []byte) ([]authz.Access, error) {
		name, err := secretName(r)
		if err != nil {
			return nil, err
		}
		return []authz.Access{{Action: action, Resource: authz.Secret(name)}}, nil
	}
}

// secretPutAccess is the access of a put: secretsmanager:PutSecretValue
// on the secret (and CreateSecret when it is new: asked by putSecret,
// which knows), with kms:CreateGrant and kms:DescribeKey on a key it
// names, as a repository's key asks them.
func secretPutAccess(a *API, r *http.Request, body []byte) ([]authz.Access, error) {
	access, err := secretAccess(authz.SecretsPutSecretValue)(a, r, body)
	if err != nil {
		return nil, err
	}
	return append(access, authz.KeyAccess(r.URL.Query().Get(SecretKey))...), nil
}

// SecretPutResult is what secrets/put answers: the secret (never its
// value) and whether it is new.
type SecretPutResult struct {
	engine.SecretInfo
	Created bool `json:"created"`
}

// putSecret serves POST secrets/put?name=&key= with the value as the
// body.
func (a *API) putSecret(r *http.Request, body []byte) (any, error) {
	ctx := r.Context()
	name, _ := secretName(r) // checked by the access
	if _, err := a.store.Secret(ctx, name); errors.Is(err, engine.ErrSecretNotFound) {
		if err := a.authz.Authorize(ctx, callerOf(r), authz.SecretsCreateSecret, authz.Secret(name)); err != nil {
			return nil, err
		}
	} else if err != nil && !errors.Is(err, engine.ErrInvalidArgument) {
		return nil, err
	}
	info, created, err := a.store.PutSecret(ctx, name, body, r.URL.Query().Get(SecretKey))
	clear(body)
	if err != nil {
		return nil, err
	}
	return SecretPutResult{SecretInfo: info, Created: created}, nil
}

// listSecrets serves GET secrets.
func (a *API) listSecrets(r *http.Request, _ []byte) (any, error) {
	return a.store.Secrets(r.Context())
}

// deleteSecret serves POST secrets/delete?name=.
func (a *API) deleteSecret(r *http.Request, _ []byte) (any, error) {
	name, _ := secretName(r)
	if err := a.store.DeleteSecret(r.Context(), name); err != nil {
		return nil, err
	}
	return map[string]string{"deleted": name}, nil
}
