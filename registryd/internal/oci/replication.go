package oci

// Replicated pushes: requests carrying the replication header, which a
// source registry's replicator sends (package replicate). They ask
// ecr:ReplicateImage where an ordinary push asks its own actions, and
// create repositories from the REPLICATION creation templates
// (docs/replication.md).

import (
	"net/http"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// replicationRequest checks a request that carries the replication
// header h: only what a replication does (reads and pushes of manifests,
// blobs and uploads; never a delete, a listing or the catalog), with a
// source of the form "<account>/<region>".
func replicationRequest(r *http.Request, rt route, h string) (engine.ReplicationSource, error) {
	src, err := engine.ParseReplicationSource(h)
	if err != nil {
		return src, NewError(CodeInvalidArgument, err.Error(), nil)
	}
	switch rt.kind {
	case routeManifest, routeBlob, routeUpload:
		if r.Method != http.MethodDelete {
			return src, nil
		}
	}
	return src, NewError(CodeDenied, "a replicated request ("+engine.ReplicationSourceHeader+") only reads and pushes manifests and blobs", nil)
}

// replicationAccess is what a replicated request asks: ecr:ReplicateImage
// on each repository the request's own access names (once each), and the
// rest unchanged.
func replicationAccess(access []authz.Access) []authz.Access {
	out := make([]authz.Access, 0, len(access))
	seen := map[string]bool{}
	for _, a := range access {
		if name, ok := a.Resource.Repository(); ok {
			if seen[name] {
				continue
			}
			seen[name] = true
			a.Action = authz.ReplicateImage
		}
		out = append(out, a)
	}
	return out
}
