package ecrapi

// Account settings: GetAccountSetting and PutAccountSetting, over the
// engine's (REGISTRY_POLICY_SCOPE and BLOB_MOUNTING, acted on; Berth's
// scanner is its own, neither of ECR's, so BASIC_SCAN_TYPE_VERSION is
// refused).

import (
	"context"
)

// accountSettingOps serve the account setting operations.
type accountSettingOps struct {
	settings AccountSettingStore
}

// maxAccountSettingName is the longest setting name ECR takes.
const maxAccountSettingName = 64

// GetAccountSettingInput is GetAccountSetting's request.
type GetAccountSettingInput struct {
	onRegistry
	Name string `json:"name"`
}

// validate checks the name's length.
func (in *GetAccountSettingInput) validate() error {
	return checkLength("name", len(in.Name), 1, maxAccountSettingName)
}

// PutAccountSettingInput is PutAccountSetting's request.
type PutAccountSettingInput struct {
	onRegistry
	Name  string `json:"name"`
	Value string `json:"value"`
}

// validate checks the name's length and that a value is given.
func (in *PutAccountSettingInput) validate() error {
	if err := checkLength("name", len(in.Name), 1, maxAccountSettingName); err != nil {
		return err
	}
	return checkLength("value", len(in.Value), 1, 0)
}

// AccountSettingOutput is the answer of GetAccountSetting and
// PutAccountSetting: the setting and its value.
type AccountSettingOutput struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (o accountSettingOps) get(ctx context.Context, _ *call, in *GetAccountSettingInput) (*AccountSettingOutput, error) {
	v, err := o.settings.AccountSetting(ctx, in.Name)
	if err != nil {
		return nil, err
	}
	return &AccountSettingOutput{Name: in.Name, Value: v}, nil
}

func (o accountSettingOps) put(ctx context.Context, _ *call, in *PutAccountSettingInput) (*AccountSettingOutput, error) {
	if err := o.settings.PutAccountSetting(ctx, in.Name, in.Value); err != nil {
		return nil, err
	}
	return &AccountSettingOutput{Name: in.Name, Value: in.Value}, nil
}
