package ecrapi

// GetAuthorizationToken: registry login tokens for the OCI API.

import (
	"context"
	"encoding/base64"

	"github.com/berthstore/berth/registryd/internal/auth"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// loginOps serve GetAuthorizationToken.
type loginOps struct {
	tokens TokenMinter
}

// GetAuthorizationTokenInput is GetAuthorizationToken's request; the
// registry IDs, if given, must be this registry's.
type GetAuthorizationTokenInput struct {
	RegistryIDs []string `json:"registryIds"`
}

func (in *GetAuthorizationTokenInput) resources(g registry) ([]authz.Resource, error) {
	if in.RegistryIDs != nil {
		if err := checkLength("registryIds", len(in.RegistryIDs), 1, 10); err != nil {
			return nil, err
		}
	}
	for _, id := range in.RegistryIDs {
		if err := g.checkID(id); err != nil {
			return nil, err
		}
	}
	return []authz.Resource{authz.Registry}, nil
}

// AuthorizationData is a login token: base64("AWS:" + token), good until
// ExpiresAt on the registry at ProxyEndpoint.
type AuthorizationData struct {
	AuthorizationToken string  `json:"authorizationToken"`
	ExpiresAt          awsTime `json:"expiresAt"`
	ProxyEndpoint      string  `json:"proxyEndpoint"`
}

// GetAuthorizationTokenOutput is GetAuthorizationToken's answer.
type GetAuthorizationTokenOutput struct {
	AuthorizationData []AuthorizationData `json:"authorizationData"`
}

func (o loginOps) token(_ context.Context, c *call, _ *GetAuthorizationTokenInput) (*GetAuthorizationTokenOutput, error) {
	tok, exp := o.tokens.MintLoginToken(c.who.User)
	return &GetAuthorizationTokenOutput{AuthorizationData: []AuthorizationData{{
		AuthorizationToken: base64.StdEncoding.EncodeToString([]byte(auth.LoginUser + ":" + tok)),
		ExpiresAt:          awsTime(exp),
		ProxyEndpoint:      c.scheme + "://" + c.host,
	}}}, nil
}
