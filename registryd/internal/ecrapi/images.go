package ecrapi

// Images: list, describe, get, put, delete.

import (
	"context"
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

// ECR's failure for an image the repository does not hold.
const (
	imageNotFoundCode   = "ImageNotFound"
	imageNotFoundReason = "Requested image not found"
	// imageInaccessibleCode is the failure of an image that exists but
	// cannot be read now (archived).
	imageInaccessibleCode = "ImageInaccessible"
)

// imageOps serve the image operations.
type imageOps struct {
	reg    registry
	images ImageStore
	scans  ScanStore // DescribeImages shows each image's scan
}

// ListImagesInput is ListImages' request.
type ListImagesInput struct {
	repositoryRef
	NextToken  string       `json:"nextToken"`
	MaxResults *int         `json:"maxResults"`
	Filter     *ImageFilter `json:"filter"`
}

// ListImagesOutput is ListImages' answer: one entry a tag, and one for
// each untagged image, ordered by digest then tag.
type ListImagesOutput struct {
	ImageIDs  []ImageIdentifier `json:"imageIds"`
	NextToken string            `json:"nextToken,omitempty"`
}

func (o imageOps) list(ctx context.Context, _ *call, in *ListImagesInput) (*ListImagesOutput, error) {
	n, err := pageSize(in.MaxResults, 1000)
	if err != nil {
		return nil, err
	}
	imgs, err := o.images.Images(ctx, in.RepositoryName)
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	if err := in.Filter.check(); err != nil {
		return nil, err
	}
	var ids []ImageIdentifier
	for i := range imgs {
		im := &imgs[i]
		if !in.Filter.keep(im) {
			continue
		}
		if len(im.Tags) == 0 {
			ids = append(ids, ImageIdentifier{ImageDigest: string(im.Digest)})
		}
		for _, t := range im.Tags {
			ids = append(ids, ImageIdentifier{ImageDigest: string(im.Digest), ImageTag: t})
		}
	}
	page, next, err := paginate(ids, func(id ImageIdentifier) string { return id.ImageDigest + " " + id.ImageTag }, in.NextToken, n)
	if err != nil {
		return nil, err
	}
	return &ListImagesOutput{ImageIDs: append([]ImageIdentifier{}, page...), NextToken: next}, nil
}

// resolve finds the image an ImageIdentifier names in repo: by digest,
// by tag, or by both (which must agree), with one lookup (no listing of
// the repository). failure is the ECR failure code when it names none;
// err is for the whole call (such as an unknown repository).
func (o imageOps) resolve(ctx context.Context, repo string, id ImageIdentifier) (im *engine.ImageDetail, failure, reason string, err error) {
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
	im, err = o.images.Image(ctx, repo, ref)
	switch {
	case errors.Is(err, engine.ErrManifestUnknown):
		return nil, imageNotFoundCode, imageNotFoundReason, nil
	case err != nil:
		return nil, "", "", o.reg.repositoryNotFound(err, repo)
	case id.ImageDigest != "" && id.ImageTag != "" && !slices.Contains(im.Tags, id.ImageTag):
		return nil, "ImageTagDoesNotMatchDigest", "Invalid request parameters: given tag does not map to the given digest", nil
	}
	return im, "", "", nil
}

// DescribeImagesInput is DescribeImages' request: the images named, or a
// page of all of them.
type DescribeImagesInput struct {
	repositoryRef
	ImageIDs   []ImageIdentifier `json:"imageIds"`
	NextToken  string            `json:"nextToken"`
	MaxResults *int              `json:"maxResults"`
	Filter     *ImageFilter      `json:"filter"`
}

// DescribeImagesOutput is DescribeImages' answer.
type DescribeImagesOutput struct {
	ImageDetails []ImageDetail `json:"imageDetails"`
	NextToken    string        `json:"nextToken,omitempty"`
}

func (o imageOps) describe(ctx context.Context, _ *call, in *DescribeImagesInput) (*DescribeImagesOutput, error) {
	out := &DescribeImagesOutput{ImageDetails: []ImageDetail{}}
	if err := in.Filter.check(); err != nil {
		return nil, err
	}
	if len(in.ImageIDs) > 0 {
		if in.NextToken != "" || in.MaxResults != nil || in.Filter != nil {
			return nil, invalidParameter("imageIds", "maxResults, nextToken and filter cannot be used with imageIds")
		}
		if len(in.ImageIDs) > maxBatchImageIDs {
			return nil, invalidParameter("imageIds", maxLength, maxBatchImageIDs)
		}
		for _, id := range in.ImageIDs {
			im, failure, reason, err := o.resolve(ctx, in.RepositoryName, id)
			if err != nil {
				return nil, err
			}
			switch failure {
			case "":
				det := imageDetailFromEngine(o.reg, in.RepositoryName, im)
				if err := scanForDetail(ctx, o.scans, in.RepositoryName, &det); err != nil {
					return nil, err
				}
				out.ImageDetails = append(out.ImageDetails, det)
			case imageNotFoundCode, "ImageTagDoesNotMatchDigest":
				return nil, o.reg.imageNotFound(id, in.RepositoryName)
			default:
				return nil, errorf(ecrInvalidParameter, "%s", reason)
			}
		}
		return out, nil
	}
	n, err := pageSize(in.MaxResults, 1000)
	if err != nil {
		return nil, err
	}
	imgs, err := o.images.Images(ctx, in.RepositoryName)
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	var kept []engine.ImageDetail
	for i := range imgs {
		if in.Filter.keep(&imgs[i]) {
			kept = append(kept, imgs[i])
		}
	}
	page, next, err := paginate(kept, func(im engine.ImageDetail) string { return string(im.Digest) }, in.NextToken, n)
	if err != nil {
		return nil, err
	}
	for i := range page {
		det := imageDetailFromEngine(o.reg, in.RepositoryName, &page[i])
		if err := scanForDetail(ctx, o.scans, in.RepositoryName, &det); err != nil {
			return nil, err
		}
		out.ImageDetails = append(out.ImageDetails, det)
	}
	out.NextToken = next
	return out, nil
}

// imageNotFound is the failure of an ImageIdentifier that names no image.
func imageNotFound(id ImageIdentifier) ImageFailure {
	return ImageFailure{ImageID: id, FailureCode: imageNotFoundCode, FailureReason: imageNotFoundReason}
}

// imageArchived is the failure of an ImageIdentifier that names an image
// archived (or being restored), which BatchGetImage does not answer:
// ImageInaccessible, the failure code the ECR API reference lists for an
// image that exists but cannot be read.
func imageArchived(id ImageIdentifier, st engine.ImageStatus) ImageFailure {
	reason := "The image is archived and cannot be pulled; restore it with UpdateImageStorageClass (targetStorageClass STANDARD)"
	if st == engine.ImageActivating {
		reason = "The image is being restored from the archive (imageStatus ACTIVATING) and can be pulled when its restore completes"
	}
	return ImageFailure{ImageID: id, FailureCode: imageInaccessibleCode, FailureReason: reason}
}

// checkImageIDs bounds a batch's imageIds.
func checkImageIDs(ids []ImageIdentifier) error {
	return checkLength("imageIds", len(ids), 1, maxBatchImageIDs)
}

// BatchGetImageInput is BatchGetImage's request.
type BatchGetImageInput struct {
	repositoryRef
	ImageIDs           []ImageIdentifier `json:"imageIds"`
	AcceptedMediaTypes []string          `json:"acceptedMediaTypes"`
}

// BatchGetImageOutput is BatchGetImage's answer.
type BatchGetImageOutput struct {
	Images   []Image        `json:"images"`
	Failures []ImageFailure `json:"failures"`
}

func (o imageOps) batchGet(ctx context.Context, _ *call, in *BatchGetImageInput) (*BatchGetImageOutput, error) {
	if err := checkImageIDs(in.ImageIDs); err != nil {
		return nil, err
	}
	out := &BatchGetImageOutput{Images: []Image{}, Failures: []ImageFailure{}}
	for _, id := range in.ImageIDs {
		im, failure, reason, err := o.resolve(ctx, in.RepositoryName, id)
		if err != nil {
			return nil, err
		}
		if failure != "" {
			out.Failures = append(out.Failures, ImageFailure{ImageID: id, FailureCode: failure, FailureReason: reason})
			continue
		}
		if st := imageStatusOf(im); st != engine.ImageActive {
			out.Failures = append(out.Failures, imageArchived(id, st))
			continue
		}
		if len(in.AcceptedMediaTypes) > 0 && !slices.Contains(in.AcceptedMediaTypes, im.MediaType) {
			out.Failures = append(out.Failures, ImageFailure{ImageID: id, FailureCode: imageNotFoundCode,
				FailureReason: "the manifest is " + im.MediaType + ", which acceptedMediaTypes does not list (Berth does not convert manifests)"})
			continue
		}
		// GetManifest records the pull, as ECR's BatchGetImage does.
		m, err := o.images.GetManifest(ctx, in.RepositoryName, string(im.Digest))
		if errors.Is(err, engine.ErrImageArchived) { // archived meanwhile
			out.Failures = append(out.Failures, imageArchived(id, engine.ImageArchived))
			continue
		}
		if errors.Is(err, engine.ErrManifestUnknown) {
			out.Failures = append(out.Failures, imageNotFound(id))
			continue
		}
		if err != nil {
			return nil, err
		}
		out.Images = append(out.Images, Image{
			RegistryID: o.reg.account, RepositoryName: in.RepositoryName,
			ImageID:       ImageIdentifier{ImageDigest: string(m.Digest), ImageTag: id.ImageTag},
			ImageManifest: string(m.Payload), ImageManifestMediaType: m.MediaType,
		})
	}
	return out, nil
}

// BatchDeleteImageInput is BatchDeleteImage's request.
type BatchDeleteImageInput struct {
	repositoryRef
	ImageIDs []ImageIdentifier `json:"imageIds"`
}

// BatchDeleteImageOutput is BatchDeleteImage's answer.
type BatchDeleteImageOutput struct {
	ImageIDs []ImageIdentifier `json:"imageIds"`
	Failures []ImageFailure    `json:"failures"`
}

func (o imageOps) batchDelete(ctx context.Context, _ *call, in *BatchDeleteImageInput) (*BatchDeleteImageOutput, error) {
	if err := checkImageIDs(in.ImageIDs); err != nil {
		return nil, err
	}
	out := &BatchDeleteImageOutput{ImageIDs: []ImageIdentifier{}, Failures: []ImageFailure{}}
	for _, id := range in.ImageIDs {
		// Resolved against the repository as it is now: an earlier entry
		// of the batch may have deleted what a later one names.
		im, failure, reason, err := o.resolve(ctx, in.RepositoryName, id)
		if err != nil {
			return nil, err
		}
		if failure != "" {
			out.Failures = append(out.Failures, ImageFailure{ImageID: id, FailureCode: failure, FailureReason: reason})
			continue
		}
		if id.ImageDigest == "" {
			// By tag: the tag goes, and the image with its last tag.
			d, _, err := o.images.UntagImage(ctx, in.RepositoryName, id.ImageTag)
			if errors.Is(err, engine.ErrManifestUnknown) {
				out.Failures = append(out.Failures, imageNotFound(id))
				continue
			}
			if err != nil {
				return nil, err
			}
			out.ImageIDs = append(out.ImageIDs, ImageIdentifier{ImageDigest: string(d), ImageTag: id.ImageTag})
			continue
		}
		err = o.images.DeleteImage(ctx, in.RepositoryName, im.Digest)
		switch {
		case errors.Is(err, engine.ErrImageReferenced):
			out.Failures = append(out.Failures, ImageFailure{ImageID: id, FailureCode: "ImageReferencedByManifestList",
				FailureReason: "Requested image referenced by manifest list: " + strings.ReplaceAll(err.Error(), "engine: ", "")})
			continue
		case errors.Is(err, engine.ErrManifestUnknown):
			out.Failures = append(out.Failures, imageNotFound(id))
			continue
		case err != nil:
			return nil, err
		}
		if len(im.Tags) == 0 {
			out.ImageIDs = append(out.ImageIDs, ImageIdentifier{ImageDigest: string(im.Digest)})
		}
		for _, t := range im.Tags {
			out.ImageIDs = append(out.ImageIDs, ImageIdentifier{ImageDigest: string(im.Digest), ImageTag: t})
		}
	}
	return out, nil
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

// PutImageInput is PutImage's request.
type PutImageInput struct {
	repositoryRef
	ImageManifest          string `json:"imageManifest"`
	ImageManifestMediaType string `json:"imageManifestMediaType"`
	ImageTag               string `json:"imageTag"`
	ImageDigest            string `json:"imageDigest"`
}

// PutImageOutput is PutImage's answer: the image stored.
type PutImageOutput struct {
	Image Image `json:"image"`
}

func (o imageOps) put(ctx context.Context, _ *call, in *PutImageInput) (*PutImageOutput, error) {
	if in.ImageManifest == "" {
		return nil, invalidParameter("imageManifest", mustNotBeNull)
	}
	if in.ImageTag != "" && engine.ValidateTag(in.ImageTag) != nil {
		return nil, errorf(ecrInvalidParameter, "Invalid parameter at 'imageTag' failed to satisfy constraint: 'must satisfy regular expression '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}''")
	}
	payload := []byte(in.ImageManifest)
	d := digest.FromBytes(payload)
	if in.ImageDigest != "" && in.ImageDigest != string(d) {
		return nil, errorf(ecrImageDigestDoesNotMatch, "The specified image digest '%s' does not match the digest '%s' that Amazon ECR calculated for the image", truncate(in.ImageDigest, 100), d)
	}
	// The media type is imageManifestMediaType or the manifest's own
	// mediaType (the engine refuses the two disagreeing); a manifest
	// with neither is refused, not taken for one.
	mediaType := in.ImageManifestMediaType
	if mediaType == "" {
		mediaType = manifestMediaType(payload)
	}
	if mediaType == "" {
		return nil, invalidParameter("imageManifestMediaType", "image manifest mediatype not provided in manifest or parameter")
	}
	if desc, err := o.images.StatManifest(ctx, in.RepositoryName, string(d)); err == nil {
		at := ""
		if in.ImageTag != "" {
			if td, err := o.images.StatManifest(ctx, in.RepositoryName, in.ImageTag); err == nil && td.Digest == d {
				at = in.ImageTag
			}
		}
		if in.ImageTag == "" || at != "" {
			return nil, errorf(ecrImageAlreadyExists, "Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'",
				desc.Digest, in.ImageTag, in.RepositoryName, o.reg.account)
		}
	}
	ref := in.ImageTag
	if ref == "" {
		ref = string(d)
	}
	res, err := o.images.PutManifest(ctx, in.RepositoryName, ref, mediaType, payload)
	if err != nil {
		return nil, o.reg.putImageError(err, in)
	}
	return &PutImageOutput{Image: Image{
		RegistryID: o.reg.account, RepositoryName: in.RepositoryName,
		ImageID:       ImageIdentifier{ImageDigest: string(res.Digest), ImageTag: in.ImageTag},
		ImageManifest: in.ImageManifest, ImageManifestMediaType: res.MediaType,
	}}, nil
}
