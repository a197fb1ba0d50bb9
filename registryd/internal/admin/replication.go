package admin

// GET /admin/v1/replication/jobs: the replication queue (jobs queued,
// waiting for a retry, or given up); GET /admin/v1/replication/status:
// one image's replication status at each destination; POST
// /admin/v1/replication/retry: the given-up jobs queued again
// (docs/replication.md).

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/oci"
)

// The replication routes' query parameters.
const (
	ReplicationDestination = "destination" // <registryId>/<region>; absent: every destination
	ReplicationFailed      = "failed"      // "true": only the given-up jobs
	ReplicationLimit       = "limit"       // most listed; 0 or absent: all
	ReplicationRepository  = "repository"  // status: the image's repository
	ReplicationReference   = "reference"   // status: its tag or digest
)

// ReplicationStore is the role of the store the replication routes
// drive.
type ReplicationStore interface {
	ListReplicationJobs(ctx context.Context, dest string, failed bool, limit int, fn func(engine.ReplicationJobListing) error) error
	RetryReplication(ctx context.Context, dest *engine.ReplicationDestination) (int, error)
	ImageReplicationStatuses(ctx context.Context, repo, reference string) (digest.Digest, []engine.ImageReplicationStatus, error)
	ReplicationFigures() []engine.ReplicationFigures
}

var _ ReplicationStore = (*engine.Engine)(nil)

func init() {
	addOperations(map[string]operation{
		"replication/jobs":   {access: onRegistry(authz.AdminListReplication), method: http.MethodGet, run: (*API).replicationJobs},
		"replication/status": {access: replicationStatusAccess, method: http.MethodGet, run: (*API).replicationStatus},
		"replication/retry":  {access: onRegistry(authz.AdminRetryReplication), run: (*API).retryReplication},
	})
}

// ReplicationJobs is the answer of GET replication/jobs: the queue's
// figures by destination and the jobs listed.
type ReplicationJobs struct {
	Destinations []engine.ReplicationFigures    `json:"destinations"`
	Jobs         []engine.ReplicationJobListing `json:"jobs"`
}

func (a *API) replicationJobs(r *http.Request, _ []byte) (any, error) {
	q := r.URL.Query()
	limit := 0
	if s := q.Get(ReplicationLimit); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, oci.NewError(oci.CodeInvalidArgument, "limit: want a count (0: all)", nil)
		}
		limit = n
	}
	dest := q.Get(ReplicationDestination)
	if dest != "" {
		if _, err := engine.ParseReplicationDestination(dest); err != nil {
			return nil, oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
		}
	}
	out := ReplicationJobs{Destinations: a.store.ReplicationFigures(), Jobs: []engine.ReplicationJobListing{}}
	err := a.store.ListReplicationJobs(r.Context(), dest, q.Get(ReplicationFailed) == "true", limit, func(l engine.ReplicationJobListing) error {
		out.Jobs = append(out.Jobs, l)
		return nil
	})
	return out, err
}

// replicationStatusAccess is ecr:DescribeImageReplicationStatus on the
// image's repository.
func replicationStatusAccess(_ *API, r *http.Request, _ []byte) ([]authz.Access, error) {
	repo := r.URL.Query().Get(ReplicationRepository)
	if err := engine.ValidateRepositoryName(repo); err != nil {
		return nil, oci.NewError(oci.CodeNameInvalid, "repository: "+err.Error(), nil)
	}
	return []authz.Access{{Action: authz.DescribeImageReplicationStatus, Resource: authz.Repository(repo)}}, nil
}

// ReplicationImageStatus is the answer of GET replication/status.
type ReplicationImageStatus struct {
	Repository string                          `json:"repository"`
	Digest     digest.Digest                   `json:"digest"`
	Statuses   []engine.ImageReplicationStatus `json:"statuses"`
}

func (a *API) replicationStatus(r *http.Request, _ []byte) (any, error) {
	q := r.URL.Query()
	repo, ref := q.Get(ReplicationRepository), q.Get(ReplicationReference)
	d, st, err := a.store.ImageReplicationStatuses(r.Context(), repo, ref)
	if err != nil {
		return nil, err
	}
	if st == nil {
		st = []engine.ImageReplicationStatus{}
	}
	return ReplicationImageStatus{Repository: repo, Digest: d, Statuses: st}, nil
}

// RetryResult is the answer of POST replication/retry.
type RetryResult struct {
	Retried int `json:"retried"`
}

func (a *API) retryReplication(r *http.Request, _ []byte) (any, error) {
	var dest *engine.ReplicationDestination
	if s := r.URL.Query().Get(ReplicationDestination); s != "" {
		d, err := engine.ParseReplicationDestination(s)
		if err != nil {
			return nil, oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
		}
		dest = &d
	}
	n, err := a.store.RetryReplication(r.Context(), dest)
	if errors.Is(err, engine.ErrInvalidArgument) {
		return nil, oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
	}
	if err != nil {
		return nil, err
	}
	return RetryResult{Retried: n}, nil
}
