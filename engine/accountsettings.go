package engine

// Account settings: ECR's registry-wide switches (GetAccountSetting,
// PutAccountSetting), kept as registry settings in the index (the G keys)
// and acted on where they apply: the registry policy's scope in Authorize
// (access.go), blob mounting in MountBlob (blobs.go).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/berthstore/berth/engine/internal/errdefs"
	"github.com/berthstore/berth/index"
)

// The account settings ECR documents (PutAccountSetting's name).
const (
	// AccountSettingRegistryPolicyScope is the registry policy's scope:
	// RegistryPolicyScopeV2 (the default) enforces it on every request,
	// RegistryPolicyScopeV1 only on ecr:ReplicateImage,
	// ecr:BatchImportUpstreamImage and ecr:CreateRepository.
	AccountSettingRegistryPolicyScope = "REGISTRY_POLICY_SCOPE"
	// AccountSettingBlobMounting says whether a push may mount a blob from
	// another repository of the registry (the OCI API's cross-repository
	// mount): BlobMountingEnabled (Berth's default) or
	// BlobMountingDisabled.
	AccountSettingBlobMounting = "BLOB_MOUNTING"
	// AccountSettingBasicScanTypeVersion is the scanner of basic scanning.
	// Berth's is its own offline scanner (docs/scanning.md), neither of
	// ECR's two, so it has no value: reading or setting it is refused
	// (ErrInvalidArgument).
	AccountSettingBasicScanTypeVersion = "BASIC_SCAN_TYPE_VERSION"
)

// The values of the account settings.
const (
	RegistryPolicyScopeV1 = "V1"
	RegistryPolicyScopeV2 = "V2"
	BlobMountingEnabled   = "ENABLED"
	BlobMountingDisabled  = "DISABLED"
)

// accountSettingDefaults are the values of the settings never put.
var accountSettingDefaults = map[string]string{
	AccountSettingRegistryPolicyScope: RegistryPolicyScopeV2,
	AccountSettingBlobMounting:        BlobMountingEnabled,
}

// accountSettingValues are the values each setting takes.
var accountSettingValues = map[string][]string{
	AccountSettingRegistryPolicyScope: {RegistryPolicyScopeV1, RegistryPolicyScopeV2},
	AccountSettingBlobMounting:        {BlobMountingDisabled, BlobMountingEnabled},
}

// accountSettingKeyPrefix starts the registry setting names (G keys) of
// the account settings: "accountSetting/REGISTRY_POLICY_SCOPE".
const accountSettingKeyPrefix = "accountSetting/"

// accountSettings are the settings' current values, cached.
type accountSettings map[string]string

// checkAccountSetting refuses a name that is no setting Berth acts on.
func checkAccountSetting(name string) error {
	switch {
	case name == AccountSettingBasicScanTypeVersion:
		return fmt.Errorf("%w: name %s: Berth's basic scanning is its own offline scanner, neither AWS_NATIVE nor CLAIR, so it has no basic scan type to read or choose", ErrInvalidArgument, name)
	case accountSettingDefaults[name] == "":
		return fmt.Errorf("%w: name %q is not an account setting (want %s or %s)", ErrInvalidArgument,
			errdefs.Truncate(name), AccountSettingRegistryPolicyScope, AccountSettingBlobMounting)
	}
	return nil
}

// AccountSetting returns the value of the account setting name (its
// default when it was never put). BASIC_SCAN_TYPE_VERSION and unknown
// names fail with ErrInvalidArgument.
func (e *Engine) AccountSetting(ctx context.Context, name string) (string, error) {
	if err := checkAccountSetting(name); err != nil {
		return "", err
	}
	s, err := e.loadAccountSettings()
	if err != nil {
		return "", err
	}
	return s[name], nil
}

// PutAccountSetting sets the account setting name to value, which takes
// effect on the next request. A value the setting does not take, or a
// setting Berth does not act on, fails with ErrInvalidArgument.
func (e *Engine) PutAccountSetting(ctx context.Context, name, value string) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	if err := checkAccountSetting(name); err != nil {
		return err
	}
	if !slices.Contains(accountSettingValues[name], value) {
		return fmt.Errorf("%w: value %q of %s (want %s)", ErrInvalidArgument, errdefs.Truncate(value), name,
			strings.Join(accountSettingValues[name], " or "))
	}
	e.registryMu.Lock()
	defer e.registryMu.Unlock()
	old, err := e.loadAccountSettingsLocked()
	if err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutRegistrySetting(accountSettingKeyPrefix+name, []byte(value)); err != nil {
		return storageErr(err)
	}
	if err := b.Commit(true); err != nil {
		return storageErr(err)
	}
	s := make(accountSettings, len(old))
	for k, v := range old {
		s[k] = v
	}
	s[name] = value
	e.accountSettings.Store(&s)
	return nil
}

// loadAccountSettings returns the cached settings, loading them on first
// use.
func (e *Engine) loadAccountSettings() (accountSettings, error) {
	if s := e.accountSettings.Load(); s != nil {
		return *s, nil
	}
	e.registryMu.Lock()
	defer e.registryMu.Unlock()
	return e.loadAccountSettingsLocked()
}

// loadAccountSettingsLocked is loadAccountSettings under registryMu.
func (e *Engine) loadAccountSettingsLocked() (accountSettings, error) {
	if s := e.accountSettings.Load(); s != nil {
		return *s, nil
	}
	g := e.fillGen()
	s := accountSettings{}
	for name, def := range accountSettingDefaults {
		v, err := e.db.RegistrySetting(accountSettingKeyPrefix + name)
		switch {
		case errors.Is(err, index.ErrNotFound):
			s[name] = def
		case err != nil:
			return nil, storageErr(err)
		default:
			s[name] = string(v)
		}
	}
	if e.fresh(g) {
		e.accountSettings.Store(&s)
		if !e.fresh(g) {
			e.accountSettings.CompareAndSwap(&s, nil)
		}
	}
	return s, nil
}

// registryPolicyV1Actions are the actions a registry policy of scope V1
// is enforced on (lower case, as Authorize compares them).
var registryPolicyV1Actions = map[string]bool{
	"ecr:replicateimage":           true,
	"ecr:batchimportupstreamimage": true,
	"ecr:createrepository":         true,
}

// registryPolicyApplies reports whether the registry policy takes part
// in deciding action: on every request at scope V2, on the three
// registry-level actions at scope V1.
func (e *Engine) registryPolicyApplies(action string) (bool, error) {
	s, err := e.loadAccountSettings()
	if err != nil {
		return false, err
	}
	return s[AccountSettingRegistryPolicyScope] != RegistryPolicyScopeV1 || registryPolicyV1Actions[strings.ToLower(action)], nil
}

// blobMounting reports whether cross-repository mounts are enabled.
func (e *Engine) blobMounting() (bool, error) {
	s, err := e.loadAccountSettings()
	if err != nil {
		return false, err
	}
	return s[AccountSettingBlobMounting] != BlobMountingDisabled, nil
}
