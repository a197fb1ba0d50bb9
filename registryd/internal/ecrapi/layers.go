package ecrapi

// Layers: availability, download URL, and the three-step upload over the
// engine's resumable uploads.

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/request"
)

// layerDigestPattern is ECR's pattern of a layer digest.
const layerDigestPattern = "[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+"

// invalidLayerPartFields are InvalidLayerPartException's fields besides
// its message: where the upload stands.
type invalidLayerPartFields struct {
	RegistryID            string `json:"registryId"`
	RepositoryName        string `json:"repositoryName"`
	UploadID              string `json:"uploadId"`
	LastValidByteReceived int64  `json:"lastValidByteReceived"`
}

// layerPartSize is the partSize InitiateLayerUpload answers (ECR's
// minimum part size; only the last part may be smaller).
const layerPartSize = 5 << 20

// layerOps serve the layer operations.
type layerOps struct {
	reg     registry
	repos   RepositoryStore
	layers  LayerStore
	uploads *request.Uploads
}

// BatchCheckLayerAvailabilityInput is BatchCheckLayerAvailability's
// request.
type BatchCheckLayerAvailabilityInput struct {
	repositoryRef
	LayerDigests []string `json:"layerDigests"`
}

// Layer is a layer the repository holds.
type Layer struct {
	LayerDigest       string `json:"layerDigest"`
	LayerAvailability string `json:"layerAvailability"`
	LayerSize         int64  `json:"layerSize,omitempty"`
	MediaType         string `json:"mediaType,omitempty"`
}

// LayerFailure is why a layer of a batch is not available.
type LayerFailure struct {
	LayerDigest   string `json:"layerDigest"`
	FailureCode   string `json:"failureCode"`
	FailureReason string `json:"failureReason"`
}

// BatchCheckLayerAvailabilityOutput is BatchCheckLayerAvailability's
// answer.
type BatchCheckLayerAvailabilityOutput struct {
	Layers   []Layer        `json:"layers"`
	Failures []LayerFailure `json:"failures"`
}

func (o layerOps) check(ctx context.Context, _ *call, in *BatchCheckLayerAvailabilityInput) (*BatchCheckLayerAvailabilityOutput, error) {
	if err := checkLength("layerDigests", len(in.LayerDigests), 1, maxBatchImageIDs); err != nil {
		return nil, err
	}
	if _, err := o.repos.Repository(ctx, in.RepositoryName); err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	out := &BatchCheckLayerAvailabilityOutput{Layers: []Layer{}, Failures: []LayerFailure{}}
	for _, ld := range in.LayerDigests {
		d, err := digest.Parse(ld)
		if err != nil {
			out.Failures = append(out.Failures, LayerFailure{LayerDigest: ld, FailureCode: "InvalidLayerDigest", FailureReason: "Invalid layer digest"})
			continue
		}
		desc, err := o.layers.StatBlob(ctx, in.RepositoryName, d)
		switch {
		case err == nil:
			out.Layers = append(out.Layers, Layer{LayerDigest: ld, LayerAvailability: "AVAILABLE", LayerSize: desc.Size})
		case errors.Is(err, engine.ErrBlobUnknown):
			out.Failures = append(out.Failures, LayerFailure{LayerDigest: ld, FailureCode: "MissingLayerDigest", FailureReason: "Requested layer not found"})
		default:
			return nil, err
		}
	}
	return out, nil
}

// GetDownloadURLForLayerInput is GetDownloadUrlForLayer's request.
type GetDownloadURLForLayerInput struct {
	repositoryRef
	LayerDigest string `json:"layerDigest"`
}

// GetDownloadURLForLayerOutput is GetDownloadUrlForLayer's answer: the
// layer's /v2/<name>/blobs/<digest> URL on this registry.
type GetDownloadURLForLayerOutput struct {
	DownloadURL string `json:"downloadUrl"`
	LayerDigest string `json:"layerDigest"`
}

func (o layerOps) downloadURL(ctx context.Context, c *call, in *GetDownloadURLForLayerInput) (*GetDownloadURLForLayerOutput, error) {
	d, err := digest.Parse(in.LayerDigest)
	if err != nil {
		return nil, invalidParameter("layerDigest", mustMatch, layerDigestPattern)
	}
	if _, err := o.layers.StatBlob(ctx, in.RepositoryName, d); err != nil {
		if errors.Is(err, engine.ErrBlobUnknown) {
			return nil, errorf(ecrLayersNotFound, "The image layer '%s' does not exist in the repository with name '%s' in the registry with id '%s'", d, in.RepositoryName, o.reg.account)
		}
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return &GetDownloadURLForLayerOutput{
		DownloadURL: c.scheme + "://" + c.host + "/v2/" + in.RepositoryName + "/blobs/" + string(d),
		LayerDigest: string(d),
	}, nil
}

// InitiateLayerUploadInput is InitiateLayerUpload's request.
type InitiateLayerUploadInput struct {
	repositoryRef
}

// InitiateLayerUploadOutput is InitiateLayerUpload's answer.
type InitiateLayerUploadOutput struct {
	UploadID string `json:"uploadId"`
	PartSize int64  `json:"partSize"`
}

func (o layerOps) initiate(ctx context.Context, _ *call, in *InitiateLayerUploadInput) (*InitiateLayerUploadOutput, error) {
	if err := o.uploads.Begin(); err != nil {
		return nil, err
	}
	defer o.uploads.End()
	u, err := o.layers.BeginUpload(ctx, in.RepositoryName)
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	defer u.Close()
	if err := u.Checkpoint(ctx); err != nil {
		_ = u.Cancel(ctx)
		return nil, err
	}
	return &InitiateLayerUploadOutput{UploadID: u.ID(), PartSize: layerPartSize}, nil
}

// resume opens the upload session of a layer upload call.
func (o layerOps) resume(ctx context.Context, repo, id string) (engine.Upload, error) {
	u, err := o.layers.ResumeUpload(ctx, repo, id)
	if errors.Is(err, engine.ErrBlobUploadUnknown) {
		if _, rerr := o.repos.Repository(ctx, repo); rerr != nil {
			return nil, o.reg.repositoryNotFound(rerr, repo)
		}
		return nil, errorf(ecrUploadNotFound, "The upload with id '%s' does not exist in the repository with name '%s' in the registry with id '%s'", truncate(id, 100), repo, o.reg.account)
	}
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, repo)
	}
	return u, nil
}

// UploadLayerPartInput is UploadLayerPart's request: the part's bytes
// (base64 on the wire) and where they go.
type UploadLayerPartInput struct {
	repositoryRef
	UploadID      string `json:"uploadId"`
	PartFirstByte *int64 `json:"partFirstByte"`
	PartLastByte  *int64 `json:"partLastByte"`
	LayerPartBlob []byte `json:"layerPartBlob"`
}

// UploadLayerPartOutput is UploadLayerPart's answer.
type UploadLayerPartOutput struct {
	RegistryID       string `json:"registryId"`
	RepositoryName   string `json:"repositoryName"`
	UploadID         string `json:"uploadId"`
	LastByteReceived int64  `json:"lastByteReceived"`
}

func (o layerOps) uploadPart(ctx context.Context, _ *call, in *UploadLayerPartInput) (*UploadLayerPartOutput, error) {
	for _, p := range []struct {
		field string
		given bool
	}{{"uploadId", in.UploadID != ""}, {"partFirstByte", in.PartFirstByte != nil}, {"partLastByte", in.PartLastByte != nil}, {"layerPartBlob", len(in.LayerPartBlob) > 0}} {
		if !p.given {
			return nil, invalidParameter(p.field, mustNotBeNull)
		}
	}
	if *in.PartFirstByte < 0 {
		return nil, invalidParameter("partFirstByte", minValue, 0)
	}
	if *in.PartLastByte < 0 {
		return nil, invalidParameter("partLastByte", minValue, 0)
	}
	if err := o.uploads.Begin(); err != nil {
		return nil, err
	}
	defer o.uploads.End()
	u, err := o.resume(ctx, in.RepositoryName, in.UploadID)
	if err != nil {
		return nil, err
	}
	defer u.Close()
	first, last := *in.PartFirstByte, *in.PartLastByte
	if first != u.Size() || last-first+1 != int64(len(in.LayerPartBlob)) {
		return nil, &apiError{Type: ecrInvalidLayerPart, Msg: fmt.Sprintf("The layer part covers bytes %d-%d with %d bytes; the upload with id '%s' has %d bytes, so the next part starts at byte %d",
			first, last, len(in.LayerPartBlob), in.UploadID, u.Size(), u.Size()),
			Fields: invalidLayerPartFields{RegistryID: o.reg.account, RepositoryName: in.RepositoryName, UploadID: in.UploadID, LastValidByteReceived: u.Size() - 1}}
	}
	if _, err := u.Write(in.LayerPartBlob); err != nil {
		return nil, err
	}
	if err := u.Checkpoint(ctx); err != nil {
		return nil, err
	}
	return &UploadLayerPartOutput{
		RegistryID: o.reg.account, RepositoryName: in.RepositoryName,
		UploadID: in.UploadID, LastByteReceived: last,
	}, nil
}

// CompleteLayerUploadInput is CompleteLayerUpload's request.
type CompleteLayerUploadInput struct {
	repositoryRef
	UploadID     string   `json:"uploadId"`
	LayerDigests []string `json:"layerDigests"`
}

// CompleteLayerUploadOutput is CompleteLayerUpload's answer.
type CompleteLayerUploadOutput struct {
	RegistryID     string `json:"registryId"`
	RepositoryName string `json:"repositoryName"`
	UploadID       string `json:"uploadId"`
	LayerDigest    string `json:"layerDigest"`
}

func (o layerOps) complete(ctx context.Context, _ *call, in *CompleteLayerUploadInput) (*CompleteLayerUploadOutput, error) {
	if in.UploadID == "" {
		return nil, invalidParameter("uploadId", mustNotBeNull)
	}
	if err := checkLength("layerDigests", len(in.LayerDigests), 1, maxBatchImageIDs); err != nil {
		return nil, err
	}
	if len(in.LayerDigests) > 1 {
		return nil, unsupportedParameter("CompleteLayerUpload", "layerDigests", "an upload is one layer, so Berth takes exactly one digest")
	}
	d, err := digest.Parse(in.LayerDigests[0])
	if err != nil {
		return nil, invalidParameter("layerDigests", mustMatch, layerDigestPattern)
	}
	if err := o.uploads.Begin(); err != nil {
		return nil, err
	}
	defer o.uploads.End()
	u, err := o.resume(ctx, in.RepositoryName, in.UploadID)
	if err != nil {
		return nil, err
	}
	defer u.Close()
	if u.Size() == 0 {
		return nil, errorf(ecrEmptyUpload, "The upload with id '%s' in the repository with name '%s' in the registry with id '%s' does not contain any layer parts", truncate(in.UploadID, 100), in.RepositoryName, o.reg.account)
	}
	if _, err := o.layers.StatBlob(ctx, in.RepositoryName, d); err == nil {
		_ = u.Cancel(ctx)
		return nil, errorf(ecrLayerAlreadyExists, "The layer '%s' already exists in the repository with name '%s' in the registry with id '%s'", d, in.RepositoryName, o.reg.account)
	}
	desc, err := u.Commit(ctx, d, -1)
	if err != nil {
		if errors.Is(err, engine.ErrDigestInvalid) {
			return nil, errorf(ecrInvalidLayer, "The layer digest calculated for the upload with id '%s' does not match the digest '%s' specified", truncate(in.UploadID, 100), d)
		}
		return nil, err
	}
	return &CompleteLayerUploadOutput{
		RegistryID: o.reg.account, RepositoryName: in.RepositoryName,
		UploadID: in.UploadID, LayerDigest: string(desc.Digest),
	}, nil
}
