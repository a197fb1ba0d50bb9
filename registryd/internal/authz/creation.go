package authz

import (
	"context"

	"github.com/berthstore/berth/engine"
)

// CreationAccess is what creating the repository c asks of the caller:
// ecr:CreateRepository on it and, when its settings name a KMS key,
// kms:CreateGrant and kms:DescribeKey on that key (as ECR asks them of
// CreateRepository with a KMS key). The settings' resource tags (a
// creation template's) are the request's tags (aws:RequestTag/<key>,
// aws:TagKeys), as in ECR.
func CreationAccess(name string, s engine.RepositorySettings) []Access {
	access := []Access{{Action: CreateRepository, Resource: Repository(name), RequestTags: tagMap(s.ResourceTags)}}
	return append(access, KeyAccess(s.Encryption.KMSKey)...)
}

// tagMap is tags as the request tags of a decision (nil for none).
func tagMap(tags []engine.ResourceTag) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

// KeyAccess is what using key for a new repository or template asks:
// kms:CreateGrant and kms:DescribeKey on it; nothing for "" (the
// registry's default key).
func KeyAccess(key string) []Access {
	if key == "" {
		return nil
	}
	return []Access{{Action: KMSCreateGrant, Resource: Key(key)}, {Action: KMSDescribeKey, Resource: Key(key)}}
}

// GuardCreation returns ctx carrying the engine's creation check for
// who: every repository the engine would create on who's behalf while
// serving the request (create on push, a pull-through cache fill) is
// created only if az allows CreationAccess; a refusal fails the
// operation with az's error and nothing is created.
func GuardCreation(ctx context.Context, az Authorizer, who engine.Principal) context.Context {
	return engine.WithCreationCheck(ctx, func(ctx context.Context, c engine.RepositoryCreation) error {
		return All(ctx, az, who, CreationAccess(c.Name, c.Settings)...)
	})
}

// GuardReplicatedCreation is GuardCreation for a replicated push: the
// replicator is asked ecr:CreateRepository on the repository (with the
// template's tags as the request's), not the kms: pair on the key of the
// REPLICATION template, which this registry's administrator named when
// writing the template (and was allowed to), as ECR creates a replicated
// repository with its own service role rather than the source's.
func GuardReplicatedCreation(ctx context.Context, az Authorizer, who engine.Principal) context.Context {
	return engine.WithCreationCheck(ctx, func(ctx context.Context, c engine.RepositoryCreation) error {
		return All(ctx, az, who, Access{Action: CreateRepository, Resource: Repository(c.Name), RequestTags: tagMap(c.Settings.ResourceTags)})
	})
}
