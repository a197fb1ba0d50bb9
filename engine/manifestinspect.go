package engine

import "context"

// InspectManifest returns the manifest that reference (tag or digest)
// names, as GetManifest does, without recording a pull: for programs that
// show or copy an image (the console, the replicator) rather than pull
// it, whose reads must not move an image's last-pulled time (lifecycle
// rules count from it).
func (e *Engine) InspectManifest(ctx context.Context, repo, reference string) (*Manifest, error) {
	m, err := e.manifestRecord(ctx, repo, reference, true)
	if err != nil {
		return nil, err
	}
	return &Manifest{
		Descriptor:   Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: int64(len(m.Payload))},
		Payload:      m.Payload,
		ArtifactType: m.ArtifactType, Subject: m.Subject, Annotations: m.Annotations,
		PushedAt: m.PushedAt, LastPulledAt: m.LastPulledAt,
	}, nil
}
