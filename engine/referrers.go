package engine

// Referrers: the manifests whose subject (OCI 1.1) is a given manifest.

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/index"
)

// Referrer is one entry of the referrers list of a subject.
type Referrer struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	// Status is the referrer manifest's status (ImageActive unless
	// AllReferrers listed it archived or activating); not part of the
	// descriptor.
	Status ImageStatus `json:"-"`
}

// Referrers lists the manifests in repo whose subject is d, filtered by
// artifactType when it is not "", leaving out archived ones (they do not
// pull).
func (e *Engine) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]Referrer, error) {
	return e.referrers(repo, d, artifactType, false)
}

// AllReferrers lists the manifests in repo whose subject is d, filtered
// by artifactType when it is not "", archived and activating ones
// included, each with its Status (ECR's ListImageReferrers, whose
// artifactStatus filter selects by it).
func (e *Engine) AllReferrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]Referrer, error) {
	return e.referrers(repo, d, artifactType, true)
}

// referrers is Referrers, or AllReferrers with all.
func (e *Engine) referrers(repo string, d digest.Digest, artifactType string, all bool) ([]Referrer, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	if _, err := ParseDigest(string(d)); err != nil {
		return nil, err
	}
	refs, err := e.db.Referrers(repo, d)
	if err != nil {
		return nil, storageErr(err)
	}
	out := []Referrer{}
	for _, r := range refs {
		if artifactType != "" && r.ArtifactType != artifactType {
			continue
		}
		st := index.StatusActive
		if m, err := e.db.ManifestMeta(repo, r.Digest); err == nil {
			st = m.Status
		}
		if st != index.StatusActive && !all {
			continue // archived: it does not pull
		}
		out = append(out, Referrer{MediaType: r.MediaType, Digest: r.Digest, Size: r.Size, ArtifactType: r.ArtifactType,
			Annotations: r.Annotations, Status: imageStatusOf(st)})
	}
	if len(out) == 0 {
		if _, err := e.cachedRepoState(repo); err != nil {
			return nil, err
		}
	}
	return out, nil
}
