package server

import (
	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/admin"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/console"
	"github.com/berthstore/berth/registryd/internal/ecrapi"
	"github.com/berthstore/berth/registryd/internal/metrics"
	"github.com/berthstore/berth/registryd/internal/oci"
	"github.com/berthstore/berth/registryd/internal/pullthrough"
)

// Store is everything the server needs of the store: the roles of each
// protocol (the OCI API's, the ECR API's, the admin API's), the
// pull-through cache's, the access decisions the Authorizer asks for and
// the audit log it records them in, and the totals and audit log health
// the metrics export. The daemon passes an
// *engine.Engine; a store that lacks a role does not compile, so no
// capability is ever found missing (and skipped) at run time.
type Store interface {
	oci.Store
	ecrapi.Store
	admin.Store
	pullthrough.Store
	console.Store
	authz.Decider
	metrics.StoreStatser
	metrics.AuditStatuser
	metrics.EventStatser
	metrics.ReplicationFigurer
}

var _ Store = (*engine.Engine)(nil)
