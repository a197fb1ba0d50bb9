package admin

// Identities: list those in force (berth:DescribeIdentities), reload the
// identity, htpasswd and access key files (berth:ReloadIdentities), and
// simulate a decision (berth:SimulatePolicy).

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/auth"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/oci"
)

func init() {
	addOperations(map[string]operation{
		"iam/identities": {access: onRegistry(authz.AdminDescribeIdentities), method: http.MethodGet, run: (*API).identities},
	})
}

// identities serves GET iam/identities: the users, groups and policies
// in force (those of the identity file the daemon last loaded).
func (a *API) identities(*http.Request, []byte) (any, error) {
	return a.authn.Identities().Summary(), nil
}

// maxSimulationBody bounds a simulation request (which may carry an
// identity file).
const maxSimulationBody = 1 << 20

// reloadIdentities serves POST iam/reload: the files are read again and
// swapped in at once, or the old ones stay and the error is answered.
func (a *API) reloadIdentities(*http.Request, []byte) (any, error) {
	s, err := a.authn.Reload()
	if err != nil {
		return nil, oci.NewError(oci.CodeInvalidArgument, "identities not reloaded, the previous ones stay in force: "+err.Error(), nil)
	}
	return s, nil
}

// SimulationRequest is the body of POST iam/simulate: a request to
// simulate, and optionally the text of an identity file (YAML or JSON)
// whose policies the user holds instead of the daemon's.
type SimulationRequest struct {
	authz.Simulation
	// IdentityFile is an identity file's text; empty: the identities in
	// force.
	IdentityFile string `json:"identityFile,omitempty"`
}

// simulate serves POST iam/simulate.
func (a *API) simulate(r *http.Request, body []byte) (any, error) {
	var req SimulationRequest
	var err error
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, oci.NewError(oci.CodeInvalidArgument, "the simulation is not JSON of the documented shape: "+err.Error(), nil)
	}
	if err := req.Validate(); err != nil {
		return nil, oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
	}
	var who engine.Principal
	if req.IdentityFile != "" {
		ids, err := auth.ParseIdentities("identityFile", []byte(req.IdentityFile))
		if err == nil {
			who, err = ids.Principal(a.authn.Account(), req.User)
		}
		if err != nil {
			return nil, oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
		}
	} else if who, err = a.authn.Principal(req.User); err != nil {
		return nil, oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
	}
	out, err := authz.Simulate(r.Context(), a.store, who, req.Simulation)
	if errors.Is(err, authz.ErrSimulation) {
		return nil, oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
