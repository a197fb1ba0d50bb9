package ecrapi

// Replication: PutReplicationConfiguration, DescribeRegistry (which
// answers the configuration) and DescribeImageReplicationStatus
// (docs/replication.md).

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
)

// ReplicationStore keeps the replication configuration and the images'
// replication statuses.
type ReplicationStore interface {
	PutReplicationConfiguration(ctx context.Context, c engine.ReplicationConfiguration) (engine.ReplicationConfiguration, error)
	ReplicationConfiguration(ctx context.Context) (engine.ReplicationConfiguration, error)
	ImageReplicationStatuses(ctx context.Context, repo, reference string) (digest.Digest, []engine.ImageReplicationStatus, error)
}

// replicationOps serve the replication operations.
type replicationOps struct {
	reg    registry
	images imageOps
	store  ReplicationStore
}

// ReplicationConfiguration is ECR's replicationConfiguration.
type ReplicationConfiguration struct {
	Rules []ReplicationRule `json:"rules"`
}

// ReplicationRule is one rule: its destinations and repository filters.
type ReplicationRule struct {
	Destinations      []ReplicationDestination `json:"destinations"`
	RepositoryFilters []RepositoryFilter       `json:"repositoryFilters,omitempty"`
}

// ReplicationDestination is a destination registry.
type ReplicationDestination struct {
	Region     string `json:"region"`
	RegistryID string `json:"registryId"`
}

// RepositoryFilter selects the repositories of a rule.
type RepositoryFilter struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

// PutReplicationConfigurationInput is PutReplicationConfiguration's
// request.
type PutReplicationConfigurationInput struct {
	onRegistry
	ReplicationConfiguration *ReplicationConfiguration `json:"replicationConfiguration"`
}

// PutReplicationConfigurationOutput is its answer.
type PutReplicationConfigurationOutput struct {
	ReplicationConfiguration ReplicationConfiguration `json:"replicationConfiguration"`
}

// validate checks the request as ECR's request validation words its
// failures; the engine checks the rest (distinct destinations, each with
// an endpoint).
func (in *PutReplicationConfigurationInput) validate() error {
	if in.ReplicationConfiguration == nil {
		return invalidParameter("replicationConfiguration", mustNotBeNull)
	}
	rules := in.ReplicationConfiguration.Rules
	if rules == nil {
		return invalidParameter("replicationConfiguration.rules", mustNotBeNull)
	}
	if err := checkLength("replicationConfiguration.rules", len(rules), 0, engine.MaxReplicationRules); err != nil {
		return err
	}
	for i, r := range rules {
		field := fmt.Sprintf("replicationConfiguration.rules.%d", i+1)
		if r.Destinations == nil {
			return invalidParameter(field+".destinations", mustNotBeNull)
		}
		if err := checkLength(field+".destinations", len(r.Destinations), 0, 100); err != nil {
			return err
		}
		for j, d := range r.Destinations {
			df := fmt.Sprintf("%s.destinations.%d", field, j+1)
			if d.Region == "" {
				return invalidParameter(df+".region", mustNotBeNull)
			}
			if d.RegistryID == "" {
				return invalidParameter(df+".registryId", mustNotBeNull)
			}
		}
		if r.RepositoryFilters != nil {
			if err := checkLength(field+".repositoryFilters", len(r.RepositoryFilters), 1, engine.MaxReplicationFilters); err != nil {
				return err
			}
		}
		for j, f := range r.RepositoryFilters {
			ff := fmt.Sprintf("%s.repositoryFilters.%d", field, j+1)
			if err := checkLength(ff+".filter", len(f.Filter), 2, 256); err != nil {
				return err
			}
			if f.FilterType == "" {
				return invalidParameter(ff+".filterType", mustNotBeNull)
			}
			if err := checkEnum(ff+".filterType", f.FilterType, engine.ReplicationFilterPrefixMatch); err != nil {
				return err
			}
		}
	}
	return nil
}

func (o replicationOps) put(ctx context.Context, _ *call, in *PutReplicationConfigurationInput) (*PutReplicationConfigurationOutput, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	var c engine.ReplicationConfiguration
	for _, r := range in.ReplicationConfiguration.Rules {
		er := engine.ReplicationRule{}
		for _, d := range r.Destinations {
			er.Destinations = append(er.Destinations, engine.ReplicationDestination{Region: d.Region, RegistryID: d.RegistryID})
		}
		for _, f := range r.RepositoryFilters {
			er.RepositoryFilters = append(er.RepositoryFilters, engine.ReplicationRepositoryFilter{Filter: f.Filter, FilterType: f.FilterType})
		}
		c.Rules = append(c.Rules, er)
	}
	got, err := o.store.PutReplicationConfiguration(ctx, c)
	if err != nil {
		return nil, err
	}
	return &PutReplicationConfigurationOutput{ReplicationConfiguration: replicationFromEngine(got)}, nil
}

func replicationFromEngine(c engine.ReplicationConfiguration) ReplicationConfiguration {
	out := ReplicationConfiguration{Rules: []ReplicationRule{}}
	for _, r := range c.Rules {
		wr := ReplicationRule{Destinations: []ReplicationDestination{}}
		for _, d := range r.Destinations {
			wr.Destinations = append(wr.Destinations, ReplicationDestination{Region: d.Region, RegistryID: d.RegistryID})
		}
		for _, f := range r.RepositoryFilters {
			wr.RepositoryFilters = append(wr.RepositoryFilters, RepositoryFilter{Filter: f.Filter, FilterType: f.FilterType})
		}
		out.Rules = append(out.Rules, wr)
	}
	return out
}

// DescribeRegistryInput is DescribeRegistry's request.
type DescribeRegistryInput struct {
	onRegistry
}

// DescribeRegistryOutput is DescribeRegistry's answer: the registry's ID
// and its replication configuration.
type DescribeRegistryOutput struct {
	RegistryID               string                   `json:"registryId"`
	ReplicationConfiguration ReplicationConfiguration `json:"replicationConfiguration"`
}

func (o replicationOps) describeRegistry(ctx context.Context, _ *call, _ *DescribeRegistryInput) (*DescribeRegistryOutput, error) {
	c, err := o.store.ReplicationConfiguration(ctx)
	if err != nil {
		return nil, err
	}
	return &DescribeRegistryOutput{RegistryID: o.reg.account, ReplicationConfiguration: replicationFromEngine(c)}, nil
}

// DescribeImageReplicationStatusInput is DescribeImageReplicationStatus'
// request.
type DescribeImageReplicationStatusInput struct {
	repositoryRef
	ImageID *ImageIdentifier `json:"imageId"`
}

// DescribeImageReplicationStatusOutput is its answer.
type DescribeImageReplicationStatusOutput struct {
	RepositoryName      string              `json:"repositoryName"`
	ImageID             ImageIdentifier     `json:"imageId"`
	ReplicationStatuses []ReplicationStatus `json:"replicationStatuses"`
}

// ReplicationStatus is an image's replication to one destination.
type ReplicationStatus struct {
	Region      string `json:"region"`
	RegistryID  string `json:"registryId"`
	Status      string `json:"status"`
	FailureCode string `json:"failureCode,omitempty"`
}

func (o replicationOps) describeStatus(ctx context.Context, _ *call, in *DescribeImageReplicationStatusInput) (*DescribeImageReplicationStatusOutput, error) {
	if in.ImageID == nil {
		return nil, invalidParameter("imageId", mustNotBeNull)
	}
	im, failure, reason, err := o.images.resolve(ctx, in.RepositoryName, *in.ImageID)
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	switch failure {
	case "":
	case imageNotFoundCode, "ImageTagDoesNotMatchDigest":
		return nil, o.reg.imageNotFound(*in.ImageID, in.RepositoryName)
	default:
		return nil, errorf(ecrInvalidParameter, "%s", reason)
	}
	_, statuses, err := o.store.ImageReplicationStatuses(ctx, in.RepositoryName, string(im.Digest))
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	out := &DescribeImageReplicationStatusOutput{
		RepositoryName:      in.RepositoryName,
		ImageID:             ImageIdentifier{ImageDigest: string(im.Digest), ImageTag: in.ImageID.ImageTag},
		ReplicationStatuses: []ReplicationStatus{},
	}
	for _, s := range statuses {
		out.ReplicationStatuses = append(out.ReplicationStatuses, ReplicationStatus{
			Region: s.Destination.Region, RegistryID: s.Destination.RegistryID, Status: s.Status, FailureCode: s.FailureCode})
	}
	return out, nil
}
