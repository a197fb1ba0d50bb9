package engine

// Referrers: the manifests whose subject (OCI 1.1) is a given manifest.

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// Referrer is one entry of the referrers list of a subject.
type Referrer struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// Referrers lists the manifests in repo whose subject is d, filtered by
// artifactType when it is not "".
func (e *Engine) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]Referrer, error) {
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
		out = append(out, Referrer{MediaType: r.MediaType, Digest: r.Digest, Size: r.Size, ArtifactType: r.ArtifactType, Annotations: r.Annotations})
	}
	if len(out) == 0 {
		if _, err := e.cachedRepoState(repo); err != nil {
			return nil, err
		}
	}
	return out, nil
}
