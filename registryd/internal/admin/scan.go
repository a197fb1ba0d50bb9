package admin

// The vulnerability database of the store this daemon holds:
// POST /admin/v1/scan/db/import (a file or directory on the daemon's
// host), GET /admin/v1/scan/db/status, POST /admin/v1/scan/db/rollback
// (docs/scanning.md). The same operations as `registryd scan db` on a
// store no daemon holds; the re-matches they queue run at once.

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/oci"
)

func init() {
	addOperations(map[string]operation{
		"scan/db/import":   {access: onRegistry(authz.AdminImportVulnerabilities), run: (*API).scanImport},
		"scan/db/status":   {access: onRegistry(authz.AdminDescribeVulnerabilityDatabase), method: http.MethodGet, run: (*API).scanStatus},
		"scan/db/rollback": {access: onRegistry(authz.AdminRollbackVulnerabilities), run: (*API).scanRollback},
	})
}

// ScanImportRequest is the body of POST /admin/v1/scan/db/import.
type ScanImportRequest struct {
	// Path is the OSV zip export, JSON record or directory to import, on
	// the daemon's host.
	Path string `json:"path"`
}

// ScanDatabaseStatus answers GET /admin/v1/scan/db/status.
type ScanDatabaseStatus struct {
	Current  *engine.VulnDatabaseVersion `json:"current"`
	Previous *engine.VulnDatabaseVersion `json:"previous"`
	// Queue is the number of scan jobs queued or running.
	Queue int `json:"queue"`
}

func (a *API) scanImport(r *http.Request, body []byte) (any, error) {
	var req ScanImportRequest
	if err := json.Unmarshal(body, &req); err != nil || req.Path == "" {
		return nil, oci.NewError(oci.CodeInvalidArgument, `want {"path": FILE or DIR on the daemon's host}`, nil)
	}
	imp, err := a.store.ImportVulnerabilities(r.Context(), req.Path)
	if errors.Is(err, engine.ErrVulnDataInvalid) {
		return nil, oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
	}
	return imp, err
}

func (a *API) scanStatus(r *http.Request, _ []byte) (any, error) {
	st, err := a.store.VulnDatabaseStatus(r.Context())
	if err != nil {
		return nil, err
	}
	n, err := a.store.ScanQueue(r.Context())
	if err != nil {
		return nil, err
	}
	return ScanDatabaseStatus{Current: st.Current, Previous: st.Previous, Queue: n}, nil
}

func (a *API) scanRollback(r *http.Request, _ []byte) (any, error) {
	v, err := a.store.RollbackVulnDatabase(r.Context())
	if errors.Is(err, engine.ErrNoVulnDatabase) {
		return nil, oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
	}
	return v, err
}
