package ecrapi

// The archive storage class: UpdateImageStorageClass, and the imageStatus
// filter of ListImages and DescribeImages.

import (
	"context"
	"errors"
	"strings"

	"github.com/berthstore/berth/engine"
)

// StorageClassStore moves images between the standard and the archive
// storage classes.
type StorageClassStore interface {
	UpdateImageStorageClass(ctx context.Context, repo, reference string, to engine.StorageClass) (engine.StorageClassUpdate, error)
}

// The imageStatus values of ListImagesFilter and DescribeImagesFilter
// (ImageStatusFilter); ANY is every status.
const (
	imageStatusActive     = string(engine.ImageActive)
	imageStatusArchived   = string(engine.ImageArchived)
	imageStatusActivating = string(engine.ImageActivating)
	imageStatusAny        = "ANY"
)

// ImageFilter is the filter of ListImages and DescribeImages
// (ListImagesFilter, DescribeImagesFilter): tagStatus and imageStatus.
// Without an imageStatus only ACTIVE images are answered, as the ECR API
// reference says.
type ImageFilter struct {
	TagStatus   string `json:"tagStatus"`
	ImageStatus string `json:"imageStatus"`
}

// check refuses a filter value the ECR API does not list.
func (f *ImageFilter) check() error {
	if f == nil {
		return nil
	}
	if _, err := (&TagStatusFilter{TagStatus: f.TagStatus}).keep(0); err != nil {
		return err
	}
	switch f.ImageStatus {
	case "", imageStatusActive, imageStatusArchived, imageStatusActivating, imageStatusAny:
		return nil
	}
	return errorf(ecrInvalidParameter, "Invalid parameter at 'filter.imageStatus' failed to satisfy constraint: 'Member must satisfy enum value set: [ACTIVE, ARCHIVED, ACTIVATING, ANY]'")
}

// keep reports whether image im passes the filter (checked).
func (f *ImageFilter) keep(im *engine.ImageDetail) bool {
	tags, status := "", ""
	if f != nil {
		tags, status = f.TagStatus, f.ImageStatus
	}
	ok, _ := (&TagStatusFilter{TagStatus: tags}).keep(len(im.Tags))
	if !ok {
		return false
	}
	switch status {
	case imageStatusAny:
		return true
	case "":
		status = imageStatusActive
	}
	return string(imageStatusOf(im)) == status
}

// imageStatusOf is im's status on the wire (ACTIVE when the engine says
// none).
func imageStatusOf(im *engine.ImageDetail) engine.ImageStatus {
	if im.Status == "" {
		return engine.ImageActive
	}
	return im.Status
}

// storageClassOps serve UpdateImageStorageClass.
type storageClassOps struct {
	images imageOps
	store  StorageClassStore
}

// UpdateImageStorageClassInput is UpdateImageStorageClass' request.
type UpdateImageStorageClassInput struct {
	repositoryRef
	ImageID            *ImageIdentifier `json:"imageId"`
	TargetStorageClass string           `json:"targetStorageClass"`
}

// UpdateImageStorageClassOutput is UpdateImageStorageClass' answer: the
// image and its status after the call (ARCHIVED after an archive,
// ACTIVATING after a restore, which finishes in the background).
type UpdateImageStorageClassOutput struct {
	RegistryID     string          `json:"registryId"`
	RepositoryName string          `json:"repositoryName"`
	ImageID        ImageIdentifier `json:"imageId"`
	ImageStatus    string          `json:"imageStatus"`
}

// The ECR error of an update the image's status does not allow.
var ecrImageStorageClassUpdateNotSupported = errorType{"ImageStorageClassUpdateNotSupportedException", 400}

func (o storageClassOps) update(ctx context.Context, _ *call, in *UpdateImageStorageClassInput) (*UpdateImageStorageClassOutput, error) {
	var to engine.StorageClass
	switch in.TargetStorageClass {
	case string(engine.StorageArchive), string(engine.StorageStandard):
		to = engine.StorageClass(in.TargetStorageClass)
	case "":
		return nil, invalidParameter("targetStorageClass", mustNotBeNull)
	default:
		return nil, invalidParameter("targetStorageClass", mustBeOneOf, "STANDARD, ARCHIVE")
	}
	if in.ImageID == nil {
		return nil, invalidParameter("imageId", mustNotBeNull)
	}
	id := *in.ImageID
	im, failure, reason, err := o.images.resolve(ctx, in.RepositoryName, id)
	if err != nil {
		return nil, err
	}
	switch failure {
	case "":
	case imageNotFoundCode, "ImageTagDoesNotMatchDigest":
		return nil, o.notFound(in.RepositoryName, id)
	default:
		return nil, errorf(ecrInvalidParameter, "%s", reason)
	}
	res, err := o.store.UpdateImageStorageClass(ctx, in.RepositoryName, string(im.Digest), to)
	switch {
	case errors.Is(err, engine.ErrStorageClassUpdate):
		return nil, &apiError{Type: ecrImageStorageClassUpdateNotSupported, Msg: updateNotSupported(err), Err: err}
	case errors.Is(err, engine.ErrManifestUnknown): // deleted meanwhile
		return nil, o.notFound(in.RepositoryName, id)
	case err != nil:
		return nil, o.images.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return &UpdateImageStorageClassOutput{
		RegistryID: o.images.reg.account, RepositoryName: in.RepositoryName,
		ImageID:     ImageIdentifier{ImageDigest: string(res.Digest), ImageTag: id.ImageTag},
		ImageStatus: string(res.Status),
	}, nil
}

// notFound is ImageNotFoundException for id in repo, in ECR's words.
func (o storageClassOps) notFound(repo string, id ImageIdentifier) error {
	return o.images.reg.imageNotFound(id, repo)
}

// updateNotSupported is the message of ImageStorageClassUpdateNotSupportedException:
// the ECR API reference's sentence ("The requested image storage class
// update is not supported.") and why.
func updateNotSupported(err error) string {
	why := strings.ReplaceAll(err.Error(), "engine: ", "")
	if _, after, ok := strings.Cut(why, "is not supported: "); ok {
		why = after
	}
	return "The requested image storage class update is not supported. " + strings.ToUpper(why[:1]) + why[1:] + "."
}
