package admin

// Key-encryption keys, live: list, create, rotate, disable, enable and
// destroy, each authorized with its KMS action on the key's ARN (listing:
// kms:ListKeys on the registry, and each key listed one the caller may
// kms:DescribeKey). The engine does each while the registry serves: a
// rotation rewraps data keys in the background, a disabled or destroyed
// key's cached data keys are dropped at once.

import (
	"context"
	"net/http"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/oci"
)

// KeyStore is the role of the store that the key operations drive.
type KeyStore interface {
	Keys(ctx context.Context) ([]engine.KeyStatus, error)
	CreateKey(ctx context.Context, name string) (engine.KeyInfo, error)
	RotateKey(ctx context.Context, name string) (uint32, error)
	WaitRewraps(ctx context.Context) error
	RewrapKey(ctx context.Context, name string) (engine.RewrapStats, error)
	DisableKey(ctx context.Context, name string) error
	EnableKey(ctx context.Context, name string) error
	DestroyKey(ctx context.Context, name string) error
}

var _ KeyStore = (*engine.Engine)(nil)

// KeyParam is the key operations' query parameter naming the key: a
// keyring key name or a pkcs11: URI.
const KeyParam = "name"

// KeyResult is the answer of a key operation that changes a key: the key
// and its state after it; for a rotation, its new primary version and the
// data keys rewrapped after the background pass (with wait=true).
type KeyResult struct {
	Key       string          `json:"key"`
	State     engine.KeyState `json:"state"`
	Version   uint32          `json:"version,omitempty"`
	Rewrapped int             `json:"rewrapped,omitempty"`
}

func init() {
	addOperations(map[string]operation{
		"keys":         {access: onRegistry(authz.KMSListKeys), method: http.MethodGet, run: (*API).listKeys},
		"keys/create":  {access: onKey(authz.KMSCreateKey), run: (*API).createKey},
		"keys/rotate":  {access: onKey(authz.KMSEnableKeyRotation), run: (*API).rotateKey},
		"keys/disable": {access: onKey(authz.KMSDisableKey), run: keyStateChange(engine.KeyDisabled, KeyStore.DisableKey)},
		"keys/enable":  {access: onKey(authz.KMSEnableKey), run: keyStateChange(engine.KeyEnabled, KeyStore.EnableKey)},
		"keys/destroy": {access: onKey(authz.KMSScheduleKeyDeletion), run: keyStateChange(engine.KeyDestroyed, KeyStore.DestroyKey)},
	})
}

// onKey is the access of action on the key the name parameter names.
func onKey(action authz.Action) func(*API, *http.Request, []byte) ([]authz.Access, error) {
	return func(_ *API, r *http.Request, _ []byte) ([]authz.Access, error) {
		name, err := keyName(r)
		if err != nil {
			return nil, err
		}
		return []authz.Access{{Action: action, Resource: authz.Key(name)}}, nil
	}
}

// keyName is the key the request names.
func keyName(r *http.Request) (string, error) {
	name := r.URL.Query().Get(KeyParam)
	if name == "" {
		return "", oci.NewError(oci.CodeInvalidArgument, KeyParam+" is required: the key's name", nil)
	}
	return name, nil
}

// listKeys serves GET keys: the keys the caller may describe, with their
// use in the store.
func (a *API) listKeys(r *http.Request, _ []byte) (any, error) {
	keys, err := a.store.Keys(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]engine.KeyStatus, 0, len(keys))
	for _, k := range keys {
		ok, err := authz.Visible(r.Context(), a.authz, callerOf(r), authz.KMSDescribeKey, authz.Key(k.Name))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, k)
		}
	}
	return out, nil
}

// createKey serves POST keys/create?name=.
func (a *API) createKey(r *http.Request, _ []byte) (any, error) {
	name, err := keyName(r)
	if err != nil {
		return nil, err
	}
	info, err := a.store.CreateKey(r.Context(), name)
	if err != nil {
		return nil, err
	}
	return KeyResult{Key: name, State: info.State, Version: info.PrimaryVersion}, nil
}

// rotateKey serves POST keys/rotate?name=&wait=: a new primary version,
// and the rewrap of the data keys under the older ones, in the
// background; with wait=true the answer comes when it is done.
func (a *API) rotateKey(r *http.Request, _ []byte) (any, error) {
	name, err := keyName(r)
	if err != nil {
		return nil, err
	}
	wait, err := boolParam(r.URL.Query().Get("wait"))
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	v, err := a.store.RotateKey(ctx, name)
	if err != nil {
		return nil, err
	}
	out := KeyResult{Key: name, State: engine.KeyEnabled, Version: v}
	if wait {
		if err := a.store.WaitRewraps(ctx); err != nil {
			return nil, err
		}
		// Anything the background pass missed (none, normally).
		st, err := a.store.RewrapKey(ctx, name)
		if err != nil {
			return nil, err
		}
		out.Rewrapped = st.Rewrapped
	}
	return out, nil
}

// keyStateChange serves POST keys/{disable,enable,destroy}?name=.
func keyStateChange(state engine.KeyState, change func(KeyStore, context.Context, string) error) func(*API, *http.Request, []byte) (any, error) {
	return func(a *API, r *http.Request, _ []byte) (any, error) {
		name, err := keyName(r)
		if err != nil {
			return nil, err
		}
		if err := change(a.store, r.Context(), name); err != nil {
			return nil, err
		}
		return KeyResult{Key: name, State: state}, nil
	}
}
