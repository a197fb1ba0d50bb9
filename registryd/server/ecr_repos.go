package server

// ECR API: repositories, their settings, resource tags, repository
// policies, lifecycle policies and creation templates.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/berthstore/berth/engine"
)

// ecrOps are the operations served, by name.
var ecrOps = map[string]ecrOp{
	"CreateRepository":                    ecrCreateRepository,
	"DescribeRepositories":                ecrDescribeRepositories,
	"DeleteRepository":                    ecrDeleteRepository,
	"PutImageTagMutability":               ecrPutImageTagMutability,
	"PutImageScanningConfiguration":       ecrPutImageScanningConfiguration,
	"SetRepositoryPolicy":                 ecrSetRepositoryPolicy,
	"GetRepositoryPolicy":                 policyCall("policyText", ecrStore.GetRepositoryPolicy),
	"DeleteRepositoryPolicy":              policyCall("policyText", ecrStore.DeleteRepositoryPolicy),
	"TagResource":                         ecrTagResource,
	"UntagResource":                       ecrUntagResource,
	"ListTagsForResource":                 ecrListTagsForResource,
	"PutLifecyclePolicy":                  ecrPutLifecyclePolicy,
	"GetLifecyclePolicy":                  policyCall("lifecyclePolicyText", ecrStore.GetLifecyclePolicy),
	"DeleteLifecyclePolicy":               policyCall("lifecyclePolicyText", ecrStore.DeleteLifecyclePolicy),
	"StartLifecyclePolicyPreview":         ecrStartLifecyclePolicyPreview,
	"GetLifecyclePolicyPreview":           ecrGetLifecyclePolicyPreview,
	"CreateRepositoryCreationTemplate":    ecrCreateTemplate,
	"UpdateRepositoryCreationTemplate":    ecrUpdateTemplate,
	"DeleteRepositoryCreationTemplate":    ecrDeleteTemplate,
	"DescribeRepositoryCreationTemplates": ecrDescribeTemplates,
	"GetAuthorizationToken":               ecrGetAuthorizationToken,
	"ListImages":                          ecrListImages,
	"DescribeImages":                      ecrDescribeImages,
	"BatchGetImage":                       ecrBatchGetImage,
	"BatchDeleteImage":                    ecrBatchDeleteImage,
	"PutImage":                            ecrPutImage,
	"BatchCheckLayerAvailability":         ecrBatchCheckLayerAvailability,
	"GetDownloadUrlForLayer":              ecrGetDownloadURLForLayer,
	"InitiateLayerUpload":                 ecrInitiateLayerUpload,
	"UploadLayerPart":                     ecrUploadLayerPart,
	"CompleteLayerUpload":                 ecrCompleteLayerUpload,
	"CreatePullThroughCacheRule":          ecrCreatePullThroughCacheRule,
	"DescribePullThroughCacheRules":       ecrDescribePullThroughCacheRules,
	"DeletePullThroughCacheRule":          ecrDeletePullThroughCacheRule,
}

// repoRef is the part of most inputs that names a repository.
type repoRef struct {
	RegistryID     string `json:"registryId,omitempty"`
	RepositoryName string `json:"repositoryName"`
}

// repoInput is an operation's input that names a repository (a struct
// embedding repoRef).
type repoInput interface{ ref() repoRef }

func (r repoRef) ref() repoRef { return r }

// decodeRepoInput decodes the call's input, checks the repository it
// names and that the repository's policy lets the caller make the call.
func (s *Server) decodeRepoInput(c *ecrCall, in repoInput) error {
	if err := c.decode(in); err != nil {
		return err
	}
	if err := s.checkRepoRef(in.ref()); err != nil {
		return err
	}
	return s.allowed(c, in.ref().RepositoryName)
}

// decodeRegistryInput decodes the input of a call about the registry (not
// one repository) and checks its registry ID, which id points into.
func (s *Server) decodeRegistryInput(c *ecrCall, in any, id *string) error {
	if err := c.decode(in); err != nil {
		return err
	}
	return s.checkRegistryID(*id)
}

// checkRepoRef validates the registry ID and the repository name.
func (s *Server) checkRepoRef(r repoRef) error {
	if err := s.checkRegistryID(r.RegistryID); err != nil {
		return err
	}
	if r.RepositoryName == "" {
		return ecrErrf(ecrInvalidParameter, "repositoryName is required")
	}
	if err := engine.ValidateRepositoryName(r.RepositoryName); err != nil {
		return ecrErrf(ecrInvalidParameter, "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*'' (%q)", truncate(r.RepositoryName, 300))
	}
	return nil
}

// checkRegistryID refuses a registry ID that is not this registry's.
func (s *Server) checkRegistryID(id string) error {
	if id != "" && id != s.ecrAccountID() {
		return ecrErrf(ecrInvalidParameter, "registryId %q is not this registry's (%s)", truncate(id, 20), s.ecrAccountID())
	}
	return nil
}

func (s *Server) ecrAccountID() string {
	if s.cfg.ECRAccountID != "" {
		return s.cfg.ECRAccountID
	}
	return DefaultECRAccountID
}

func (s *Server) ecrRegion() string {
	if s.cfg.ECRRegion != "" {
		return s.cfg.ECRRegion
	}
	return DefaultECRRegion
}

// repositoryARN is a repository's ARN.
func (s *Server) repositoryARN(name string) string {
	return fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", s.ecrRegion(), s.ecrAccountID(), name)
}

// repoFromARN returns the repository an ARN of this registry names.
func (s *Server) repoFromARN(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "ecr" || !strings.HasPrefix(parts[5], "repository/") {
		return "", ecrErrf(ecrInvalidParameter, "Invalid parameter at 'resourceArn': %q is not a repository ARN (arn:aws:ecr:<region>:<account>:repository/<name>)", truncate(arn, 300))
	}
	if parts[3] != s.ecrRegion() || parts[4] != s.ecrAccountID() {
		return "", ecrErrf(ecrInvalidParameter, "Invalid parameter at 'resourceArn': %q is not in this registry (%s, %s)", truncate(arn, 300), s.ecrRegion(), s.ecrAccountID())
	}
	name := strings.TrimPrefix(parts[5], "repository/")
	if err := engine.ValidateRepositoryName(name); err != nil {
		return "", ecrErrf(ecrInvalidParameter, "Invalid parameter at 'resourceArn': repository name %q is invalid", truncate(name, 300))
	}
	return name, nil
}

// ecrScanningConfiguration is an imageScanningConfiguration.
type ecrScanningConfiguration struct {
	ScanOnPush bool `json:"scanOnPush"`
}

// ecrRepository is a Repository of the ECR API.
type ecrRepository struct {
	RepositoryARN                      string                   `json:"repositoryArn"`
	RegistryID                         string                   `json:"registryId"`
	RepositoryName                     string                   `json:"repositoryName"`
	RepositoryURI                      string                   `json:"repositoryUri"`
	CreatedAt                          awsTime                  `json:"createdAt,omitzero"`
	ImageTagMutability                 string                   `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters []engine.TagFilter       `json:"imageTagMutabilityExclusionFilters,omitempty"`
	ImageScanningConfiguration         ecrScanningConfiguration `json:"imageScanningConfiguration"`
	EncryptionConfiguration            engine.EncryptionConfig  `json:"encryptionConfiguration"`
}

// ecrRepo describes r as the ECR API does; its URI is the host the client
// addressed.
func (s *Server) ecrRepo(c *ecrCall, r *engine.Repository) ecrRepository {
	enc := r.Encryption
	if enc.EncryptionType == "" {
		enc.EncryptionType = engine.EncryptionAES256
	}
	mut := r.TagMutability
	if mut == "" {
		mut = engine.TagMutable
	}
	return ecrRepository{
		RepositoryARN:                      s.repositoryARN(r.Name),
		RegistryID:                         s.ecrAccountID(),
		RepositoryName:                     r.Name,
		RepositoryURI:                      c.host + "/" + r.Name,
		CreatedAt:                          awsTime(r.CreatedAt),
		ImageTagMutability:                 mut,
		ImageTagMutabilityExclusionFilters: r.TagMutabilityExclusions,
		ImageScanningConfiguration:         ecrScanningConfiguration{ScanOnPush: r.ScanOnPush},
		EncryptionConfiguration:            enc,
	}
}

func ecrCreateRepository(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		Tags                               []engine.ResourceTag      `json:"tags"`
		ImageTagMutability                 string                    `json:"imageTagMutability"`
		ImageTagMutabilityExclusionFilters []engine.TagFilter        `json:"imageTagMutabilityExclusionFilters"`
		ImageScanningConfiguration         *ecrScanningConfiguration `json:"imageScanningConfiguration"`
		EncryptionConfiguration            *engine.EncryptionConfig  `json:"encryptionConfiguration"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	set := engine.RepositorySettings{
		TagMutability:           in.ImageTagMutability,
		TagMutabilityExclusions: in.ImageTagMutabilityExclusionFilters,
		ResourceTags:            in.Tags,
	}
	if in.ImageScanningConfiguration != nil {
		set.ScanOnPush = in.ImageScanningConfiguration.ScanOnPush
	}
	if in.EncryptionConfiguration != nil {
		set.Encryption = *in.EncryptionConfiguration
	}
	r, err := st.CreateRepository(c.r.Context(), in.RepositoryName, set)
	if err != nil {
		return nil, err
	}
	return map[string]any{"repository": s.ecrRepo(c, r)}, nil
}

func ecrDescribeRepositories(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		RegistryID      string   `json:"registryId"`
		RepositoryNames []string `json:"repositoryNames"`
		NextToken       string   `json:"nextToken"`
		MaxResults      *int     `json:"maxResults"`
	}
	if err := s.decodeRegistryInput(c, &in, &in.RegistryID); err != nil {
		return nil, err
	}
	ctx := c.r.Context()
	var out struct {
		Repositories []ecrRepository `json:"repositories"`
		NextToken    string          `json:"nextToken,omitempty"`
	}
	out.Repositories = []ecrRepository{}
	if len(in.RepositoryNames) > 0 {
		if in.NextToken != "" || in.MaxResults != nil {
			return nil, ecrErrf(ecrInvalidParameter, "maxResults and nextToken cannot be used with repositoryNames")
		}
		if len(in.RepositoryNames) > 100 {
			return nil, ecrErrf(ecrInvalidParameter, "at most 100 repositoryNames")
		}
		for _, name := range in.RepositoryNames {
			if err := s.checkRepoRef(repoRef{RepositoryName: name}); err != nil {
				return nil, err
			}
			if err := s.allowed(c, name); err != nil {
				return nil, err
			}
			r, err := st.Repository(ctx, name)
			if err != nil {
				return nil, s.repoNotFound(err, name)
			}
			out.Repositories = append(out.Repositories, s.ecrRepo(c, r))
		}
		return out, nil
	}
	n, err := pageSize(in.MaxResults, 1000)
	if err != nil {
		return nil, err
	}
	last := ""
	if in.NextToken != "" {
		if last, err = parsePageToken(in.NextToken); err != nil {
			return nil, err
		}
	}
	names, err := st.ListRepositories(ctx, last, n+1)
	if err != nil {
		return nil, err
	}
	if len(names) > n {
		names = names[:n]
		out.NextToken = pageToken(names[n-1])
	}
	for _, name := range names {
		if s.allowed(c, name) != nil {
			continue // its policy hides it from this caller
		}
		r, err := st.Repository(ctx, name)
		if err != nil {
			continue // deleted since it was listed
		}
		out.Repositories = append(out.Repositories, s.ecrRepo(c, r))
	}
	return out, nil
}

// repoNotFound words a missing repository as ECR does.
func (s *Server) repoNotFound(err error, name string) error {
	if toECRError(err).Type == ecrRepositoryNotFound {
		return ecrErrf(ecrRepositoryNotFound, "The repository with name '%s' does not exist in the registry with id '%s'", name, s.ecrAccountID())
	}
	return err
}

func ecrDeleteRepository(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		Force bool `json:"force"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	ctx := c.r.Context()
	r, err := st.Repository(ctx, in.RepositoryName)
	if err != nil {
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	if err := st.DeleteRepository(ctx, in.RepositoryName, in.Force); err != nil {
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	return map[string]any{"repository": s.ecrRepo(c, r)}, nil
}

func ecrPutImageTagMutability(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		ImageTagMutability                 string             `json:"imageTagMutability"`
		ImageTagMutabilityExclusionFilters []engine.TagFilter `json:"imageTagMutabilityExclusionFilters"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	if in.ImageTagMutability == "" {
		return nil, ecrErrf(ecrInvalidParameter, "imageTagMutability is required")
	}
	if err := st.SetTagMutability(c.r.Context(), in.RepositoryName, in.ImageTagMutability, in.ImageTagMutabilityExclusionFilters); err != nil {
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	return map[string]any{
		"registryId": s.ecrAccountID(), "repositoryName": in.RepositoryName,
		"imageTagMutability":                 in.ImageTagMutability,
		"imageTagMutabilityExclusionFilters": in.ImageTagMutabilityExclusionFilters,
	}, nil
}

func ecrPutImageScanningConfiguration(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		ImageScanningConfiguration *ecrScanningConfiguration `json:"imageScanningConfiguration"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	if in.ImageScanningConfiguration == nil {
		return nil, ecrErrf(ecrInvalidParameter, "imageScanningConfiguration is required")
	}
	if err := st.SetScanOnPush(c.r.Context(), in.RepositoryName, in.ImageScanningConfiguration.ScanOnPush); err != nil {
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	return map[string]any{
		"registryId": s.ecrAccountID(), "repositoryName": in.RepositoryName,
		"imageScanningConfiguration": in.ImageScanningConfiguration,
	}, nil
}

// policyCall is an operation that reads or removes a repository's policy
// of one kind and answers it in field.
func policyCall(field string, call func(ecrStore, context.Context, string) (string, error)) ecrOp {
	return func(s *Server, st ecrStore, c *ecrCall) (any, error) {
		var in repoRef
		if err := s.decodeRepoInput(c, &in); err != nil {
			return nil, err
		}
		p, err := call(st, c.r.Context(), in.RepositoryName)
		if err != nil {
			return nil, s.repoNotFound(err, in.RepositoryName)
		}
		return s.policyOut(in.RepositoryName, field, p), nil
	}
}

// policyOut is the answer of the repository and lifecycle policy calls.
func (s *Server) policyOut(repo, field, text string) map[string]any {
	return map[string]any{"registryId": s.ecrAccountID(), "repositoryName": repo, field: text}
}

func ecrSetRepositoryPolicy(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		PolicyText string `json:"policyText"`
		Force      bool   `json:"force"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	if err := st.SetRepositoryPolicy(c.r.Context(), in.RepositoryName, in.PolicyText); err != nil {
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	return s.policyOut(in.RepositoryName, "policyText", in.PolicyText), nil
}

// tagError words a refused resource tag change as ECR does.
func tagError(err error) error {
	if toECRError(err).Type == ecrInvalidParameter {
		if strings.Contains(err.Error(), "at most") {
			return &ecrError{Type: ecrTooManyTags, Msg: strings.ReplaceAll(err.Error(), "engine: ", ""), Err: err}
		}
		return &ecrError{Type: ecrInvalidTagParameter, Msg: strings.ReplaceAll(err.Error(), "engine: ", ""), Err: err}
	}
	return err
}

func ecrTagResource(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		ResourceARN string               `json:"resourceArn"`
		Tags        []engine.ResourceTag `json:"tags"`
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	repo, err := s.repoFromARN(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	if err := s.allowed(c, repo); err != nil {
		return nil, err
	}
	if err := st.TagRepository(c.r.Context(), repo, in.Tags); err != nil {
		return nil, tagError(s.repoNotFound(err, repo))
	}
	return struct{}{}, nil
}

func ecrUntagResource(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		ResourceARN string   `json:"resourceArn"`
		TagKeys     []string `json:"tagKeys"`
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	repo, err := s.repoFromARN(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	if err := s.allowed(c, repo); err != nil {
		return nil, err
	}
	if err := st.UntagRepository(c.r.Context(), repo, in.TagKeys); err != nil {
		return nil, tagError(s.repoNotFound(err, repo))
	}
	return struct{}{}, nil
}

func ecrListTagsForResource(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		ResourceARN string `json:"resourceArn"`
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	repo, err := s.repoFromARN(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	if err := s.allowed(c, repo); err != nil {
		return nil, err
	}
	r, err := st.Repository(c.r.Context(), repo)
	if err != nil {
		return nil, s.repoNotFound(err, repo)
	}
	tags := r.ResourceTags
	if tags == nil {
		tags = []engine.ResourceTag{} // an empty list, as ECR answers, not null
	}
	return map[string]any{"tags": tags}, nil
}

func ecrPutLifecyclePolicy(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		LifecyclePolicyText string `json:"lifecyclePolicyText"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	if err := st.PutLifecyclePolicy(c.r.Context(), in.RepositoryName, in.LifecyclePolicyText); err != nil {
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	return s.policyOut(in.RepositoryName, "lifecyclePolicyText", in.LifecyclePolicyText), nil
}

// lifecyclePreview is a finished preview, kept for GetLifecyclePolicyPreview.
type lifecyclePreview struct {
	policy  string
	results []engine.Expiry
}

// maxPreviews bounds the previews kept (one a repository, the oldest
// started dropped first).
const maxPreviews = 1024

func ecrStartLifecyclePolicyPreview(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		repoRef
		LifecyclePolicyText string `json:"lifecyclePolicyText"`
	}
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	ctx := c.r.Context()
	policy := in.LifecyclePolicyText
	if policy == "" {
		p, err := st.GetLifecyclePolicy(ctx, in.RepositoryName)
		if err != nil {
			return nil, s.repoNotFound(err, in.RepositoryName)
		}
		policy = p
	}
	// The preview is computed now: it reads only the index, and a
	// repository of 10,000 images takes milliseconds.
	exp, err := st.LifecyclePreview(ctx, in.RepositoryName, policy)
	if err != nil {
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	s.previewMu.Lock()
	if s.previews == nil {
		s.previews = map[string]*lifecyclePreview{}
	}
	if _, ok := s.previews[in.RepositoryName]; !ok {
		s.previewOrder = append(s.previewOrder, in.RepositoryName)
	}
	s.previews[in.RepositoryName] = &lifecyclePreview{policy: policy, results: exp}
	for len(s.previewOrder) > maxPreviews {
		delete(s.previews, s.previewOrder[0])
		s.previewOrder = s.previewOrder[1:]
	}
	s.previewMu.Unlock()
	out := s.policyOut(in.RepositoryName, "lifecyclePolicyText", policy)
	out["status"] = "COMPLETE"
	return out, nil
}

// ecrImageID is an ImageIdentifier.
type ecrImageID struct {
	ImageDigest string `json:"imageDigest,omitempty"`
	ImageTag    string `json:"imageTag,omitempty"`
}

// ecrTagStatusFilter is the filter of ListImages, DescribeImages and
// GetLifecyclePolicyPreview.
type ecrTagStatusFilter struct {
	TagStatus string `json:"tagStatus"`
}

// keep reports whether an image with n tags passes the filter.
func (f *ecrTagStatusFilter) keep(n int) (bool, error) {
	if f == nil {
		return true, nil
	}
	switch f.TagStatus {
	case "", "ANY":
		return true, nil
	case "TAGGED":
		return n > 0, nil
	case "UNTAGGED":
		return n == 0, nil
	}
	return false, ecrErrf(ecrInvalidParameter, "filter.tagStatus %q (want TAGGED, UNTAGGED or ANY)", truncate(f.TagStatus, 50))
}

// imageQuery is the input of DescribeImages and
// GetLifecyclePolicyPreview.
type imageQuery struct {
	repoRef
	ImageIDs   []ecrImageID        `json:"imageIds"`
	NextToken  string              `json:"nextToken"`
	MaxResults *int                `json:"maxResults"`
	Filter     *ecrTagStatusFilter `json:"filter"`
}

func ecrGetLifecyclePolicyPreview(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in imageQuery
	if err := s.decodeRepoInput(c, &in); err != nil {
		return nil, err
	}
	if _, err := st.Repository(c.r.Context(), in.RepositoryName); err != nil {
		return nil, s.repoNotFound(err, in.RepositoryName)
	}
	s.previewMu.Lock()
	p := s.previews[in.RepositoryName]
	s.previewMu.Unlock()
	if p == nil {
		return nil, ecrErrf(ecrLifecyclePreviewNotFound, "There is no lifecycle policy preview for the repository '%s' in the registry with id '%s'", in.RepositoryName, s.ecrAccountID())
	}
	n, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	type result struct {
		ImageTags           []string          `json:"imageTags,omitempty"`
		ImageDigest         string            `json:"imageDigest"`
		ImagePushedAt       awsTime           `json:"imagePushedAt,omitzero"`
		Action              map[string]string `json:"action"`
		AppliedRulePriority int               `json:"appliedRulePriority"`
	}
	var all []result
	for _, x := range p.results {
		if ok, err := in.Filter.keep(len(x.Tags)); err != nil {
			return nil, err
		} else if !ok {
			continue
		}
		if len(in.ImageIDs) > 0 && !slices.ContainsFunc(in.ImageIDs, func(id ecrImageID) bool {
			return string(x.Digest) == id.ImageDigest || (id.ImageTag != "" && slices.Contains(x.Tags, id.ImageTag))
		}) {
			continue
		}
		tags := slices.Clone(x.Tags)
		slices.Sort(tags)
		all = append(all, result{ImageTags: tags, ImageDigest: string(x.Digest), ImagePushedAt: awsTime(x.PushedAt),
			Action: map[string]string{"type": "EXPIRE"}, AppliedRulePriority: x.RulePriority})
	}
	slices.SortFunc(all, func(a, b result) int { return strings.Compare(a.ImageDigest, b.ImageDigest) })
	page, next, err := paginate(all, func(r result) string { return r.ImageDigest }, in.NextToken, n)
	if err != nil {
		return nil, err
	}
	out := s.policyOut(in.RepositoryName, "lifecyclePolicyText", p.policy)
	out["status"] = "COMPLETE"
	out["previewResults"] = append([]result{}, page...)
	out["summary"] = map[string]int{"expiringImageTotalCount": len(p.results)}
	return withNextToken(out, next), nil
}

// ecrTemplate is a RepositoryCreationTemplate.
type ecrTemplate struct {
	Prefix                             string                   `json:"prefix"`
	Description                        string                   `json:"description,omitempty"`
	EncryptionConfiguration            *engine.EncryptionConfig `json:"encryptionConfiguration,omitempty"`
	ResourceTags                       []engine.ResourceTag     `json:"resourceTags,omitempty"`
	ImageTagMutability                 string                   `json:"imageTagMutability,omitempty"`
	ImageTagMutabilityExclusionFilters []engine.TagFilter       `json:"imageTagMutabilityExclusionFilters,omitempty"`
	RepositoryPolicy                   string                   `json:"repositoryPolicy,omitempty"`
	LifecyclePolicy                    string                   `json:"lifecyclePolicy,omitempty"`
	AppliedFor                         []string                 `json:"appliedFor"`
	CustomRoleARN                      string                   `json:"customRoleArn,omitempty"`
	CreatedAt                          awsTime                  `json:"createdAt,omitzero"`
	UpdatedAt                          awsTime                  `json:"updatedAt,omitzero"`
}

func (t *ecrTemplate) toEngine() engine.CreationTemplate {
	ct := engine.CreationTemplate{
		Prefix: t.Prefix, Description: t.Description, AppliedFor: t.AppliedFor, CustomRoleARN: t.CustomRoleARN,
		RepositorySettings: engine.RepositorySettings{
			TagMutability:           t.ImageTagMutability,
			TagMutabilityExclusions: t.ImageTagMutabilityExclusionFilters,
			LifecyclePolicy:         t.LifecyclePolicy,
			RepositoryPolicy:        t.RepositoryPolicy,
			ResourceTags:            t.ResourceTags,
		},
	}
	if t.EncryptionConfiguration != nil {
		ct.Encryption = *t.EncryptionConfiguration
	}
	return ct
}

func fromTemplate(t engine.CreationTemplate) ecrTemplate {
	out := ecrTemplate{
		Prefix: t.Prefix, Description: t.Description, AppliedFor: t.AppliedFor, CustomRoleARN: t.CustomRoleARN,
		ImageTagMutability:                 t.TagMutability,
		ImageTagMutabilityExclusionFilters: t.TagMutabilityExclusions,
		LifecyclePolicy:                    t.LifecyclePolicy,
		RepositoryPolicy:                   t.RepositoryPolicy,
		ResourceTags:                       t.ResourceTags,
		CreatedAt:                          awsTime(t.CreatedAt),
		UpdatedAt:                          awsTime(t.UpdatedAt),
	}
	if t.Encryption.EncryptionType != "" {
		enc := t.Encryption
		out.EncryptionConfiguration = &enc
	}
	return out
}

// templateByPrefix returns the stored template with this prefix.
func templateByPrefix(st ecrStore, c *ecrCall, prefix string) (engine.CreationTemplate, error) {
	ts, err := st.CreationTemplates(c.r.Context())
	if err != nil {
		return engine.CreationTemplate{}, err
	}
	p := prefix
	if p != engine.RootPrefix {
		p = strings.TrimSuffix(p, "/")
	}
	for _, t := range ts {
		if t.Prefix == p {
			return t, nil
		}
	}
	return engine.CreationTemplate{}, fmt.Errorf("%w: prefix %q", engine.ErrTemplateNotFound, prefix)
}

// putTemplate serves Create and UpdateRepositoryCreationTemplate.
func putTemplate(s *Server, st ecrStore, c *ecrCall, put func(engine.CreationTemplate) error) (any, error) {
	var in struct {
		ecrTemplate
		RegistryID string `json:"registryId"`
	}
	if err := s.decodeRegistryInput(c, &in, &in.RegistryID); err != nil {
		return nil, err
	}
	if err := put(in.toEngine()); err != nil {
		return nil, err
	}
	t, err := templateByPrefix(st, c, in.Prefix)
	if err != nil {
		return nil, err
	}
	return map[string]any{"registryId": s.ecrAccountID(), "repositoryCreationTemplate": fromTemplate(t)}, nil
}

func ecrCreateTemplate(s *Server, st ecrStore, c *ecrCall) (any, error) {
	return putTemplate(s, st, c, func(t engine.CreationTemplate) error { return st.CreateCreationTemplate(c.r.Context(), t) })
}

func ecrUpdateTemplate(s *Server, st ecrStore, c *ecrCall) (any, error) {
	return putTemplate(s, st, c, func(t engine.CreationTemplate) error { return st.UpdateCreationTemplate(c.r.Context(), t) })
}

func ecrDeleteTemplate(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		Prefix     string `json:"prefix"`
		RegistryID string `json:"registryId"`
	}
	if err := s.decodeRegistryInput(c, &in, &in.RegistryID); err != nil {
		return nil, err
	}
	t, err := templateByPrefix(st, c, in.Prefix)
	if err != nil {
		return nil, err
	}
	if err := st.DeleteCreationTemplate(c.r.Context(), in.Prefix); err != nil {
		return nil, err
	}
	return map[string]any{"registryId": s.ecrAccountID(), "repositoryCreationTemplate": fromTemplate(t)}, nil
}

func ecrDescribeTemplates(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		Prefixes   []string `json:"prefixes"`
		NextToken  string   `json:"nextToken"`
		MaxResults *int     `json:"maxResults"`
		RegistryID string   `json:"registryId"`
	}
	if err := s.decodeRegistryInput(c, &in, &in.RegistryID); err != nil {
		return nil, err
	}
	n, err := pageSize(in.MaxResults, 1000)
	if err != nil {
		return nil, err
	}
	ts, err := st.CreationTemplates(c.r.Context())
	if err != nil {
		return nil, err
	}
	if len(in.Prefixes) > 0 {
		want := map[string]bool{}
		for _, p := range in.Prefixes {
			if p != engine.RootPrefix {
				p = strings.TrimSuffix(p, "/")
			}
			want[p] = true
		}
		ts = slices.DeleteFunc(ts, func(t engine.CreationTemplate) bool { return !want[t.Prefix] })
	}
	page, next, err := paginate(ts, func(t engine.CreationTemplate) string { return t.Prefix }, in.NextToken, n)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"registryId": s.ecrAccountID()}
	list := make([]ecrTemplate, len(page))
	for i, t := range page {
		list[i] = fromTemplate(t)
	}
	out["repositoryCreationTemplates"] = list
	return withNextToken(out, next), nil
}

func ecrGetAuthorizationToken(s *Server, st ecrStore, c *ecrCall) (any, error) {
	var in struct {
		RegistryIDs []string `json:"registryIds"`
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	for _, id := range in.RegistryIDs {
		if err := s.checkRegistryID(id); err != nil {
			return nil, err
		}
	}
	tok, exp := s.tokens.mint(c.who.User)
	return map[string]any{"authorizationData": []map[string]any{{
		"authorizationToken": base64Std(loginUser + ":" + tok),
		"expiresAt":          awsTime(exp),
		"proxyEndpoint":      c.scheme + "://" + c.host,
	}}}, nil
}
