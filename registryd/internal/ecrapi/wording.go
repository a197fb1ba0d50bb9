package ecrapi

// The ECR API's errors in AWS's words. Each engine error an operation can
// meet is answered as ECR answers it: the exception type of the ECR API
// reference and the message ECR sends, with the repository, prefix and
// registry ID filled in. Where AWS publishes no message (the API
// reference gives types, not texts), the message follows the pattern of
// ECR's published ones; registryd/e2e's TestECRErrors lists which are
// which.

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/berthstore/berth/engine"
)

// subject is what an error is about: the repository an input names, or
// the prefix of the creation template or pull-through cache rule.
type subject struct {
	repository, prefix string
}

// subjectOf is implemented by the inputs whose errors name what they are
// about.
type subjectOf interface {
	errorSubject() subject
}

func (r repositoryRef) errorSubject() subject { return subject{repository: r.RepositoryName} }

func (r resourceRef) errorSubject() subject {
	_, name, _ := strings.Cut(r.ResourceARN, ":repository/")
	return subject{repository: name}
}

func (in *TemplateInput) errorSubject() subject { return subject{prefix: in.Prefix} }

func (in *DeleteRepositoryCreationTemplateInput) errorSubject() subject {
	return subject{prefix: in.Prefix}
}

func (in *CreatePullThroughCacheRuleInput) errorSubject() subject {
	return subject{prefix: in.ECRRepositoryPrefix}
}

func (in *DeletePullThroughCacheRuleInput) errorSubject() subject {
	return subject{prefix: in.ECRRepositoryPrefix}
}

func (in *UpdatePullThroughCacheRuleInput) errorSubject() subject {
	return subject{prefix: in.ECRRepositoryPrefix}
}

func (in *ValidatePullThroughCacheRuleInput) errorSubject() subject {
	return subject{prefix: in.ECRRepositoryPrefix}
}

// subjectOfInput is in's subject, the zero subject for an input that
// names none.
func subjectOfInput(in any) subject {
	if s, ok := in.(subjectOf); ok {
		return s.errorSubject()
	}
	return subject{}
}

// word answers err, an error of an operation about s, in ECR's words: an
// *apiError as it is, an engine error as ECR words that condition, and
// anything else as toError maps it.
func (g registry) word(err error, s subject) error {
	if err == nil {
		return nil
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return err
	}
	var denied *engine.AccessDeniedError
	if errors.As(err, &denied) {
		return &apiError{Type: ecrAccessDenied, Msg: accessDeniedMessage(denied), Err: err}
	}
	wrap := func(t errorType, format string, args ...any) error {
		return &apiError{Type: t, Msg: fmt.Sprintf(format, args...), Err: err}
	}
	repo, prefix := s.repository, s.prefix
	switch {
	case repo != "" && errors.Is(err, engine.ErrNameUnknown):
		return wrap(ecrRepositoryNotFound, "The repository with name '%s' does not exist in the registry with id '%s'", repo, g.account)
	case repo != "" && errors.Is(err, engine.ErrRepositoryExists):
		return wrap(ecrRepositoryAlreadyExists, "The repository with name '%s' already exists in the registry with id '%s'", repo, g.account)
	case repo != "" && errors.Is(err, engine.ErrRepositoryNotEmpty):
		return wrap(ecrRepositoryNotEmpty, "The repository with name '%s' in registry with id '%s' cannot be deleted because it still contains images", repo, g.account)
	case repo != "" && errors.Is(err, engine.ErrRepositoryPolicyNotFound):
		return wrap(ecrRepositoryPolicyNotFound, "Repository policy does not exist for the repository with name '%s' in the registry with id '%s'", repo, g.account)
	case repo != "" && errors.Is(err, engine.ErrLifecyclePolicyNotFound):
		return wrap(ecrLifecyclePolicyNotFound, "Lifecycle policy does not exist for the repository with name '%s' in the registry with id '%s'", repo, g.account)
	case errors.Is(err, engine.ErrRegistryPolicyNotFound):
		return wrap(ecrRegistryPolicyNotFound, "Registry policy does not exist in the registry with id '%s'", g.account)
	case errors.Is(err, engine.ErrTemplateNotFound):
		return wrap(ecrTemplateNotFound, "The repository creation template with prefix '%s' does not exist in the registry with id '%s'", prefix, g.account)
	case errors.Is(err, engine.ErrTemplateExists):
		return wrap(ecrTemplateAlreadyExists, "The repository creation template with prefix '%s' already exists in the registry with id '%s'", prefix, g.account)
	case errors.Is(err, engine.ErrCacheRuleNotFound) && prefix != "":
		return wrap(ecrCacheRuleNotFound, "The pull through cache rule with prefix '%s' does not exist in the registry with id '%s'", prefix, g.account)
	case errors.Is(err, engine.ErrCacheRuleExists):
		return wrap(ecrCacheRuleExists, "A pull through cache rule with prefix '%s' already exists in the registry with id '%s'", prefix, g.account)
	case errors.Is(err, engine.ErrLimitExceeded):
		return wrap(ecrLimitExceeded, "%s", engineDetail(err, engine.ErrLimitExceeded))
	case repo != "" && errors.Is(err, engine.ErrManifestChildUnknown):
		var ue *engine.UnknownReferenceError
		if errors.As(err, &ue) {
			return wrap(ecrReferencedImagesNotFound, "Images with digests '[%s]' referenced by the image index do not exist in the repository with name '%s' in the registry with id '%s'", ue.Digest, repo, g.account)
		}
	case repo != "" && errors.Is(err, engine.ErrManifestBlobUnknown):
		var ue *engine.UnknownReferenceError
		if errors.As(err, &ue) {
			return wrap(ecrLayersNotFound, "Layers with digests '[%s]' required for pushing image into repository with name '%s' in the registry with id '%s' do not exist", ue.Digest, repo, g.account)
		}
	case repo != "" && (errors.Is(err, engine.ErrKeyUnavailable) || errors.Is(err, engine.ErrKeyDestroyed) || errors.Is(err, engine.ErrKeyNotFound)):
		t := ecrKMS
		if errors.Is(err, engine.ErrKeyUnavailable) {
			t = ecrKMSUnavailable
		}
		detail := strings.TrimPrefix(engineDetail(err, engine.ErrInvalidArgument), "encryption key not found: ")
		return wrap(t, "The KMS key of the repository with name '%s' in the registry with id '%s' cannot be used: %s", repo, g.account, detail)
	case repo != "" && errors.Is(err, engine.ErrPushToCacheRepository):
		// ECR publishes no message; the pull-through cache writes into
		// its repositories, nobody else.
		e := invalidParameter("repositoryName", "%s", engineDetail(err, engine.ErrPushToCacheRepository))
		e.Err = err
		return e
	case errors.Is(err, engine.ErrInvalidArgument), errors.Is(err, engine.ErrManifestInvalid),
		errors.Is(err, engine.ErrUnsupported), errors.Is(err, engine.ErrNameInvalid):
		return &apiError{Type: ecrInvalidParameter, Msg: invalidArgumentMessage(err), Err: err}
	}
	return err
}

// accessDeniedMessage is IAM's message for a refused request, as AWS
// answers it (IAM User Guide, "Troubleshoot access denied error
// messages"), with Berth's deciding statement after it, in parentheses,
// as the audit log records it.
func accessDeniedMessage(d *engine.AccessDeniedError) string {
	who := d.Principal
	if who == "anonymous caller" {
		who = "anonymous"
	}
	why := "because no identity-based policy allows the " + d.Action + " action"
	switch d.DeniedBy {
	case engine.DeniedByIdentityPolicy:
		why = "with an explicit deny in an identity-based policy"
	case engine.DeniedByResourcePolicy:
		why = "with an explicit deny in a resource-based policy"
	}
	return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s %s (%s)", who, d.Action, d.Resource, why, d.Reason)
}

// invalidParameter is ECR's InvalidParameterException for field failing
// constraint: "Invalid parameter at 'repositoryName' failed to satisfy
// constraint: '...'".
func invalidParameter(field, constraint string, args ...any) *apiError {
	return errorf(ecrInvalidParameter, "Invalid parameter at '%s' failed to satisfy constraint: '%s'", field, fmt.Sprintf(constraint, args...))
}

// The constraints of the ECR API's parameters, as AWS words their
// failures.
const (
	mustNotBeNull = "Member must not be null"
	maxLength     = "Member must have length less than or equal to %d"
	minLength     = "Member must have length greater than or equal to %d"
	maxValue      = "Member must have value less than or equal to %d"
	minValue      = "Member must have value greater than or equal to %d"
	mustMatch     = "Member must satisfy regular expression pattern: %s"
	mustBeOneOf   = "Member must satisfy enum value set: [%s]"
)

// checkLength checks the length of a parameter (a string's characters, a
// list's entries) against ECR's bounds; max 0 has none.
func checkLength(field string, n, min, max int) error {
	switch {
	case n < min:
		if min == 1 && n == 0 {
			return invalidParameter(field, mustNotBeNull)
		}
		return invalidParameter(field, minLength, min)
	case max > 0 && n > max:
		return invalidParameter(field, maxLength, max)
	}
	return nil
}

// checkEnum checks an enumerated parameter (empty: not given).
func checkEnum(field, value string, values ...string) error {
	for _, v := range values {
		if value == v {
			return nil
		}
	}
	if value == "" {
		return nil
	}
	return invalidParameter(field, mustBeOneOf, strings.Join(values, ", "))
}

// unsupportedParameter refuses a parameter of the ECR API that Berth
// does not act on, so that nothing a caller asks for is silently left
// undone.
func unsupportedParameter(operation, field, why string) *apiError {
	return invalidParameter(field, "Berth does not support this parameter of %s: %s", operation, why)
}

// parameterRoots are the parameter names of the ECR API's inputs that an
// engine error may start with ("imageTagMutability ...",
// "resourceTags[2].Key ...", "policyText: ...").
var parameterRoots = map[string]bool{
	"appliedFor": true, "customRoleArn": true, "description": true, "ecrRepositoryPrefix": true,
	"encryptionConfiguration": true, "imageManifest": true, "imageTag": true, "imageTagMutability": true,
	"imageTagMutabilityExclusionFilters": true, "lifecyclePolicy": true, "lifecyclePolicyText": true,
	"name": true, "policyText": true, "prefix": true, "repositoryName": true, "repositoryPolicy": true,
	"resourceTags": true, "tagKeys": true, "tags": true, "upstreamRegistryUrl": true,
	"upstreamRepositoryPrefix": true, "value": true,
}

// leadingParameter matches an engine error that starts with a
// parameter: its path, then a colon or a space, then the rest.
var leadingParameter = regexp.MustCompile(`^([a-zA-Z]+)((?:\[\d+\])?(?:\.[a-zA-Z]+(?:\[\d+\])?)*):? (.+)$`)

// invalidArgumentMessage words an engine error about a parameter as ECR
// does ("Invalid parameter at 'x' failed to satisfy constraint: '...'"),
// and any other invalid input as its detail: a lifecycle policy's
// validation failure is already in ECR's words.
func invalidArgumentMessage(err error) string {
	var lp *engine.LifecyclePolicyError
	if errors.As(err, &lp) {
		return lp.Message
	}
	detail := engineDetail(err, engine.ErrInvalidArgument)
	if m := leadingParameter.FindStringSubmatch(detail); m != nil && parameterRoots[m[1]] {
		return fmt.Sprintf("Invalid parameter at '%s%s' failed to satisfy constraint: '%s'", m[1], m[2], m[3])
	}
	return "Invalid parameter: " + detail
}

// engineDetail is err's message without the engine's sentinel prefixes
// ("engine: invalid argument: ", "engine: ").
func engineDetail(err, sentinel error) string {
	msg := err.Error()
	for {
		rest, ok := strings.CutPrefix(msg, sentinel.Error()+": ")
		if !ok {
			break
		}
		msg = rest
	}
	return strings.ReplaceAll(msg, "engine: ", "")
}

// orNull is an image identifier's part as ECR's messages show it: "null"
// when not given.
func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// imageNotFound is ECR's ImageNotFoundException for id in repo ("null"
// for the part of the identifier not given).
func (g registry) imageNotFound(id ImageIdentifier, repo string) *apiError {
	return errorf(ecrImageNotFound, "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
		orNull(id.ImageDigest), orNull(id.ImageTag), repo, g.account)
}

// putImageError words an error of PutImage's put: an immutable tag as
// ECR (and docker, after "tag invalid: ") shows it, a manifest that does
// not validate as the imageManifest parameter's failure, the rest as
// word does.
func (g registry) putImageError(err error, in *PutImageInput) error {
	switch {
	case errors.Is(err, engine.ErrTagImmutable):
		return &apiError{Type: ecrImageTagAlreadyExists, Err: err,
			Msg: fmt.Sprintf("The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the repository is immutable.", in.ImageTag, in.RepositoryName)}
	case errors.Is(err, engine.ErrManifestInvalid), errors.Is(err, engine.ErrUnsupported):
		detail := engineDetail(err, engine.ErrInvalidArgument)
		return &apiError{Type: ecrInvalidParameter, Err: err, Msg: invalidParameter("imageManifest", "%s", detail).Msg}
	}
	return g.word(err, subject{repository: in.RepositoryName})
}
