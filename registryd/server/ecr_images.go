package server

// ECR API: images (list, describe, get, put, delete) and layers (check,
// download URL, the three-step upload).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
)

// maxBatchImageIDs bounds the imageIds of BatchGetImage and
// BatchDeleteImage (ECR's limit).
const maxBatchImageIDs = 100

// layerPartSize is the partSize InitiateLayerUpload answers (ECR's
// minimum part size; only the last part may be smaller).
const layerPartSize = 5 << 20

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func ecrListImages(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		NextToken  string              `json:"nextToken"`
		MaxResults *int                `json:"maxResults"`
		Filter     *ecrTagStatusFilter `json:"filter"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	n, err := pageSize(in.MaxResults, 1000)
	if err != nil {
		return nil, err
	}
	imgs, err := st.Images(c.r.Context(), in.RepositoryName)
	if err != nil {
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	// One entry a tag, and one for each untagged image, ordered by digest
	// then tag.
	var ids []ecrImageID
	for _, im := range imgs {
		ok, err := in.Filter.keep(len(im.Tags))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if len(im.Tags) == 0 {
			ids = append(ids, ecrImageID{ImageDigest: string(im.Digest)})
		}
		for _, t := range im.Tags {
			ids = append(ids, ecrImageID{ImageDigest: string(im.Digest), ImageTag: t})
		}
	}
	page, next, err := paginate(ids, func(id ecrImageID) string { return id.ImageDigest + " " + id.ImageTag }, in.NextToken, n)
	if err != nil {
		return nil, err
	}
	return withNextToken(map[string]any{"imageIds": append([]ecrImageID{}, page...)}, next), nil
}

// ecrImageDetail is an ImageDetail.
type ecrImageDetail struct {
	RegistryID             string   `json:"registryId"`
	RepositoryName         string   `json:"repositoryName"`
	ImageDigest            string   `json:"imageDigest"`
	ImageTags              []string `json:"imageTags,omitempty"`
	ImageSizeInBytes       int64    `json:"imageSizeInBytes"`
	ImagePushedAt          awsTime  `json:"imagePushedAt,omitzero"`
	ImageManifestMediaType string   `json:"imageManifestMediaType,omitempty"`
	ArtifactMediaType      string   `json:"artifactMediaType,omitempty"`
	LastRecordedPullTime   awsTime  `json:"lastRecordedPullTime,omitzero"`
}

// resolveImageID finds the image an ImageIdentifier names in repo: by
// digest, by tag, or by both (which must agree), with one lookup (no
// listing of the repository). failure is the ECR failure code when it
// names none; err is for the whole call (such as an unknown repository).
func (s *Server) resolveImageID(ctx context.Context, st ecrStore, repo string, id ecrImageID) (im *engine.ImageDetail, failure, reason string, err error) {
	if id.ImageDigest == "" && id.ImageTag == "" {
		return nil, "MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null", nil
	}
	if id.ImageDigest != "" {
		if _, err := digest.Parse(id.ImageDigest); err != nil {
			return nil, "InvalidImageDigest", "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'", nil
		}
	}
	if id.ImageTag != "" && engine.ValidateTag(id.ImageTag) != nil {
		return nil, "InvalidImageTag", "Invalid request parameters: image tag should satisfy the regex '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}'", nil
	}
	ref := id.ImageDigest
	if ref == "" {
		ref = id.ImageTag
	}
	im, err = st.Image(ctx, repo, ref)
	switch {
	case errors.Is(err, engine.ErrManifestUnknown):
		return nil, imageNotFoundCode, imageNotFoundReason, nil
	case err != nil:
		return nil, "", "", s.repoNotFound(err, repo)
	case id.ImageDigest != "" && id.ImageTag != "" && !slices.Contains(im.Tags, id.ImageTag):
		return nil, "ImageTagDoesNotMatchDigest", "Invalid request parameters: given tag does not map to the given digest", nil
	}
	return im, "", "", nil
}

func ecrDescribeImages(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in imageQuery
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	ctx := c.r.Context()
	detail := func(im *engine.ImageDetail) ecrImageDetail {
		return ecrImageDetail{
			RegistryID: s.ecrAccountID(), RepositoryName: in.RepositoryName,
			ImageDigest: string(im.Digest), ImageTags: im.Tags, ImageSizeInBytes: im.Size,
			ImagePushedAt: awsTime(im.PushedAt), ImageManifestMediaType: im.MediaType,
			ArtifactMediaType: im.ArtifactType, LastRecordedPullTime: awsTime(im.LastPulledAt),
		}
	}
	details := []ecrImageDetail{}
	if len(in.ImageIDs) > 0 {
		if in.NextToken != "" || in.MaxResults != nil {
			return nil, ecrErrf(ecrInvalidParameter, "maxResults and nextToken cannot be used with imageIds")
		}
		if len(in.ImageIDs) > maxBatchImageIDs {
			return nil, ecrErrf(ecrInvalidParameter, "at most %d imageIds", maxBatchImageIDs)
		}
		for _, id := range in.ImageIDs {
			im, failure, reason, err := s.resolveImageID(ctx, st, in.RepositoryName, id)
			if err != nil {
				return nil, err
			}
			switch failure {
			case "":
				details = append(details, detail(im))
			case imageNotFoundCode, "ImageTagDoesNotMatchDigest":
				return nil, ecrErrf(ecrImageNotFound, "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
					id.ImageDigest, id.ImageTag, in.RepositoryName, s.ecrAccountID())
			default:
				return nil, ecrErrf(ecrInvalidParameter, "%s", reason)
			}
		}
		return map[string]any{"imageDetails": details}, nil
	}
	n, err := pageSize(in.MaxResults, 1000)
	if err != nil {
		return nil, err
	}
	imgs, err := st.Images(ctx, in.RepositoryName)
	if err != nil {
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	var kept []engine.ImageDetail
	for _, im := range imgs {
		ok, err := in.Filter.keep(len(im.Tags))
		if err != nil {
			return nil, err
		}
		if ok {
			kept = append(kept, im)
		}
	}
	page, next, err := paginate(kept, func(im engine.ImageDetail) string { return string(im.Digest) }, in.NextToken, n)
	if err != nil {
		return nil, err
	}
	for i := range page {
		details = append(details, detail(&page[i]))
	}
	return withNextToken(map[string]any{"imageDetails": details}, next), nil
}

// ecrImage is an Image of BatchGetImage and PutImage.
type ecrImage struct {
	RegistryID             string     `json:"registryId"`
	RepositoryName         string     `json:"repositoryName"`
	ImageID                ecrImageID `json:"imageId"`
	ImageManifest          string     `json:"imageManifest"`
	ImageManifestMediaType string     `json:"imageManifestMediaType,omitempty"`
}

// ecrImageFailure is an ImageFailure.
type ecrImageFailure struct {
	ImageID       ecrImageID `json:"imageId"`
	FailureCode   string     `json:"failureCode"`
	FailureReason string     `json:"failureReason"`
}

// ECR's failure for an image the repository does not hold.
const (
	imageNotFoundCode   = "ImageNotFound"
	imageNotFoundReason = "Requested image not found"
)

// imageNotFound is the failure of an ImageIdentifier that names no image.
func imageNotFound(id ecrImageID) ecrImageFailure {
	return ecrImageFailure{ImageID: id, FailureCode: imageNotFoundCode, FailureReason: imageNotFoundReason}
}

// checkImageIDs bounds a batch's imageIds.
func checkImageIDs(ids []ecrImageID) error {
	if len(ids) == 0 || len(ids) > maxBatchImageIDs {
		return ecrErrf(ecrInvalidParameter, "imageIds needs 1 to %d entries, got %d", maxBatchImageIDs, len(ids))
	}
	return nil
}

func ecrBatchGetImage(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		ImageIDs           []ecrImageID `json:"imageIds"`
		AcceptedMediaTypes []string     `json:"acceptedMediaTypes"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	if err := checkImageIDs(in.ImageIDs); err != nil {
		return nil, err
	}
	ctx := c.r.Context()
	images, failures := []ecrImage{}, []ecrImageFailure{}
	for _, id := range in.ImageIDs {
		im, failure, reason, err := s.resolveImageID(ctx, st, in.RepositoryName, id)
		if err != nil {
			return nil, err
		}
		if failure != "" {
			failures = append(failures, ecrImageFailure{ImageID: id, FailureCode: failure, FailureReason: reason})
			continue
		}
		if len(in.AcceptedMediaTypes) > 0 && !slices.Contains(in.AcceptedMediaTypes, im.MediaType) {
			failures = append(failures, ecrImageFailure{ImageID: id, FailureCode: imageNotFoundCode,
				FailureReason: "the manifest is " + im.MediaType + ", which acceptedMediaTypes does not list (Berth does not convert manifests)"})
			continue
		}
		// GetManifest records the pull, as ECR's BatchGetImage does.
		m, err := st.GetManifest(ctx, in.RepositoryName, string(im.Digest))
		if errors.Is(err, engine.ErrManifestUnknown) {
			failures = append(failures, imageNotFound(id))
			continue
		}
		if err != nil {
			return nil, err
		}
		images = append(images, ecrImage{
			RegistryID: s.ecrAccountID(), RepositoryName: in.RepositoryName,
			ImageID:       ecrImageID{ImageDigest: string(m.Digest), ImageTag: id.ImageTag},
			ImageManifest: string(m.Payload), ImageManifestMediaType: m.MediaType,
		})
	}
	return map[string]any{"images": images, "failures": failures}, nil
}

func ecrBatchDeleteImage(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		ImageIDs []ecrImageID `json:"imageIds"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	if err := checkImageIDs(in.ImageIDs); err != nil {
		return nil, err
	}
	ctx := c.r.Context()
	deleted, failures := []ecrImageID{}, []ecrImageFailure{}
	for _, id := range in.ImageIDs {
		// Resolved against the repository as it is now: an earlier entry
		// of the batch may have deleted what a later one names.
		im, failure, reason, err := s.resolveImageID(ctx, st, in.RepositoryName, id)
		if err != nil {
			return nil, err
		}
		if failure != "" {
			failures = append(failures, ecrImageFailure{ImageID: id, FailureCode: failure, FailureReason: reason})
			continue
		}
		if id.ImageDigest == "" {
			// By tag: the tag goes, and the image with its last tag.
			d, _, err := st.UntagImage(ctx, in.RepositoryName, id.ImageTag)
			if errors.Is(err, engine.ErrManifestUnknown) {
				failures = append(failures, imageNotFound(id))
				continue
			}
			if err != nil {
				return nil, err
			}
			deleted = append(deleted, ecrImageID{ImageDigest: string(d), ImageTag: id.ImageTag})
			continue
		}
		err = st.DeleteImage(ctx, in.RepositoryName, im.Digest)
		switch {
		case errors.Is(err, engine.ErrImageReferenced):
			failures = append(failures, ecrImageFailure{ImageID: id, FailureCode: "ImageReferencedByManifestList",
				FailureReason: "Requested image referenced by manifest list: " + strings.ReplaceAll(err.Error(), "engine: ", "")})
			continue
		case errors.Is(err, engine.ErrManifestUnknown):
			failures = append(failures, imageNotFound(id))
			continue
		case err != nil:
			return nil, err
		}
		if len(im.Tags) == 0 {
			deleted = append(deleted, ecrImageID{ImageDigest: string(im.Digest)})
		}
		for _, t := range im.Tags {
			deleted = append(deleted, ecrImageID{ImageDigest: string(im.Digest), ImageTag: t})
		}
	}
	return map[string]any{"imageIds": deleted, "failures": failures}, nil
}

// manifestMediaType is the mediaType a manifest declares in its JSON, for
// a PutImage that does not give imageManifestMediaType.
func manifestMediaType(payload []byte) string {
	var m struct {
		MediaType string `json:"mediaType"`
	}
	_ = json.Unmarshal(payload, &m)
	return m.MediaType
}

func ecrPutImage(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		ImageManifest          string `json:"imageManifest"`
		ImageManifestMediaType string `json:"imageManifestMediaType"`
		ImageTag               string `json:"imageTag"`
		ImageDigest            string `json:"imageDigest"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	if in.ImageManifest == "" {
		return nil, ecrErrf(ecrInvalidParameter, "imageManifest is required")
	}
	if in.ImageTag != "" && engine.ValidateTag(in.ImageTag) != nil {
		return nil, ecrErrf(ecrInvalidParameter, "Invalid parameter at 'imageTag' failed to satisfy constraint: 'must satisfy regular expression '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}''")
	}
	payload := []byte(in.ImageManifest)
	d := digest.FromBytes(payload)
	if in.ImageDigest != "" && in.ImageDigest != string(d) {
		return nil, ecrErrf(ecrImageDigestDoesNotMatch, "Invalid parameter at 'imageDigest': the manifest's digest is %s, not %s", d, truncate(in.ImageDigest, 100))
	}
	mediaType := in.ImageManifestMediaType
	if mediaType == "" {
		mediaType = manifestMediaType(payload)
	}
	ctx := c.r.Context()
	if desc, err := st.StatManifest(ctx, in.RepositoryName, string(d)); err == nil {
		at := ""
		if in.ImageTag != "" {
			if td, err := st.StatManifest(ctx, in.RepositoryName, in.ImageTag); err == nil && td.Digest == d {
				at = in.ImageTag
			}
		}
		if in.ImageTag == "" || at != "" {
			return nil, ecrErrf(ecrImageAlreadyExists, "Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'",
				desc.Digest, in.ImageTag, in.RepositoryName, s.ecrAccountID())
		}
	}
	ref := in.ImageTag
	if ref == "" {
		ref = string(d)
	}
	res, err := st.PutManifest(ctx, in.RepositoryName, ref, mediaType, payload)
	if err != nil {
		if errors.Is(err, engine.ErrManifestBlobUnknown) && !strings.Contains(err.Error(), "blob") {
			return nil, &ecrError{Type: ecrReferencedImagesNotFound, Msg: strings.ReplaceAll(err.Error(), "engine: ", ""), Err: err}
		}
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	return map[string]any{"image": ecrImage{
		RegistryID: s.ecrAccountID(), RepositoryName: in.RepositoryName,
		ImageID:       ecrImageID{ImageDigest: string(res.Digest), ImageTag: in.ImageTag},
		ImageManifest: in.ImageManifest, ImageManifestMediaType: res.MediaType,
	}}, nil
}

func ecrBatchCheckLayerAvailability(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		LayerDigests []string `json:"layerDigests"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	if len(in.LayerDigests) == 0 || len(in.LayerDigests) > maxBatchImageIDs {
		return nil, ecrErrf(ecrInvalidParameter, "layerDigests needs 1 to %d entries", maxBatchImageIDs)
	}
	ctx := c.r.Context()
	if _, err := st.Repository(ctx, in.RepositoryName); err != nil {
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	type layer struct {
		LayerDigest       string `json:"layerDigest"`
		LayerAvailability string `json:"layerAvailability"`
		LayerSize         int64  `json:"layerSize,omitempty"`
		MediaType         string `json:"mediaType,omitempty"`
	}
	type failure struct {
		LayerDigest   string `json:"layerDigest"`
		FailureCode   string `json:"failureCode"`
		FailureReason string `json:"failureReason"`
	}
	layers, failures := []layer{}, []failure{}
	for _, ld := range in.LayerDigests {
		d, err := digest.Parse(ld)
		if err != nil {
			failures = append(failures, failure{LayerDigest: ld, FailureCode: "InvalidLayerDigest", FailureReason: "Invalid layer digest"})
			continue
		}
		desc, err := st.StatBlob(ctx, in.RepositoryName, d)
		switch {
		case err == nil:
			layers = append(layers, layer{LayerDigest: ld, LayerAvailability: "AVAILABLE", LayerSize: desc.Size})
		case errors.Is(err, engine.ErrBlobUnknown):
			failures = append(failures, failure{LayerDigest: ld, FailureCode: "MissingLayerDigest", FailureReason: "Requested layer not found"})
		default:
			return nil, err
		}
	}
	return map[string]any{"layers": layers, "failures": failures}, nil
}

func ecrGetDownloadURLForLayer(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		LayerDigest string `json:"layerDigest"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	d, err := digest.Parse(in.LayerDigest)
	if err != nil {
		return nil, ecrErrf(ecrInvalidParameter, "Invalid parameter at 'layerDigest': %q is not a digest", truncate(in.LayerDigest, 100))
	}
	if _, err := st.StatBlob(c.r.Context(), in.RepositoryName, d); err != nil {
		if errors.Is(err, engine.ErrBlobUnknown) {
			return nil, ecrErrf(ecrLayersNotFound, "The image layer '%s' does not exist in the repository with name '%s' in the registry with id '%s'", d, in.RepositoryName, s.ecrAccountID())
		}
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	return map[string]any{
		"downloadUrl": c.scheme + "://" + c.host + "/v2/" + in.RepositoryName + "/blobs/" + string(d),
		"layerDigest": string(d),
	}, nil
}

func ecrInitiateLayerUpload(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in repoRef
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	if err := s.beginUploadRequest(); err != nil {
		return nil, err
	}
	defer s.endUploadRequest()
	ctx := c.r.Context()
	u, err := st.BeginUpload(ctx, in.RepositoryName)
	if err != nil {
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	defer u.Close()
	if err := u.Checkpoint(ctx); err != nil {
		_ = u.Cancel(ctx)
		return nil, err
	}
	return map[string]any{"uploadId": u.ID(), "partSize": layerPartSize}, nil
}

// resumeLayerUpload opens the upload session of a layer upload call.
func (s *Server) resumeLayerUpload(ctx context.Context, st ecrStore, repo, id string) (engine.Upload, error) {
	u, err := st.ResumeUpload(ctx, repo, id)
	if errors.Is(err, engine.ErrBlobUploadUnknown) {
		return nil, ecrErrf(ecrUploadNotFound, "The upload with id '%s' does not exist in the repository with name '%s'", truncate(id, 100), repo)
	}
	if err != nil {
		return nil, s.repoNotFound(err, repo)
	}
	return u, nil
}

func ecrUploadLayerPart(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		UploadID      string `json:"uploadId"`
		PartFirstByte *int64 `json:"partFirstByte"`
		PartLastByte  *int64 `json:"partLastByte"`
		LayerPartBlob []byte `json:"layerPartBlob"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	if in.UploadID == "" || in.PartFirstByte == nil || in.PartLastByte == nil || len(in.LayerPartBlob) == 0 {
		return nil, ecrErrf(ecrInvalidParameter, "uploadId, partFirstByte, partLastByte and layerPartBlob are required")
	}
	if err := s.beginUploadRequest(); err != nil {
		return nil, err
	}
	defer s.endUploadRequest()
	ctx := c.r.Context()
	u, err := s.resumeLayerUpload(ctx, st, in.RepositoryName, in.UploadID)
	if err != nil {
		return nil, err
	}
	defer u.Close()
	first, last := *in.PartFirstByte, *in.PartLastByte
	if first != u.Size() || last-first+1 != int64(len(in.LayerPartBlob)) {
		return nil, ecrErrf(ecrInvalidLayerPart, "The part covers bytes %d-%d with %d bytes; the upload has %d bytes, so the next part starts at %d (lastValidByteReceived %d)",
			first, last, len(in.LayerPartBlob), u.Size(), u.Size(), u.Size()-1)
	}
	if _, err := u.Write(in.LayerPartBlob); err != nil {
		return nil, err
	}
	if err := u.Checkpoint(ctx); err != nil {
		return nil, err
	}
	return map[string]any{
		"registryId": s.ecrAccountID(), "repositoryName": in.RepositoryName,
		"uploadId": in.UploadID, "lastByteReceived": last,
	}, nil
}

func ecrCompleteLayerUpload(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		UploadID     string   `json:"uploadId"`
		LayerDigests []string `json:"layerDigests"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	if in.UploadID == "" || len(in.LayerDigests) != 1 {
		return nil, ecrErrf(ecrInvalidParameter, "uploadId and exactly one layerDigests entry are required")
	}
	d, err := digest.Parse(in.LayerDigests[0])
	if err != nil {
		return nil, ecrErrf(ecrInvalidLayer, "%q is not a digest", truncate(in.LayerDigests[0], 100))
	}
	if err := s.beginUploadRequest(); err != nil {
		return nil, err
	}
	defer s.endUploadRequest()
	ctx := c.r.Context()
	u, err := s.resumeLayerUpload(ctx, st, in.RepositoryName, in.UploadID)
	if err != nil {
		return nil, err
	}
	defer u.Close()
	if u.Size() == 0 {
		return nil, ecrErrf(ecrEmptyUpload, "The upload with id '%s' holds no layer part", truncate(in.UploadID, 100))
	}
	if _, err := st.StatBlob(ctx, in.RepositoryName, d); err == nil {
		_ = u.Cancel(ctx)
		return nil, ecrErrf(ecrLayerAlreadyExists, "The layer '%s' already exists in the repository with name '%s' in the registry with id '%s'", d, in.RepositoryName, s.ecrAccountID())
	}
	desc, err := u.Commit(ctx, d, -1)
	if err != nil {
		if errors.Is(err, engine.ErrDigestInvalid) {
			return nil, ecrErrf(ecrInvalidLayer, "The uploaded content's digest is not %s", d)
		}
		return nil, err
	}
	return map[string]any{
		"registryId": s.ecrAccountID(), "repositoryName": in.RepositoryName,
		"uploadId": in.UploadID, "layerDigest": string(desc.Digest),
	}, nil
}
