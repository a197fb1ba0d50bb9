package ecrapi

// Image scanning: StartImageScan, DescribeImageScanFindings,
// Put/GetRegistryScanningConfiguration,
// BatchGetRepositoryScanningConfiguration (docs/scanning.md).

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// ScanStore starts scans, reads them, and keeps the registry's scanning
// configuration.
type ScanStore interface {
	StartImageScan(ctx context.Context, repo, reference string) (*engine.ImageScan, error)
	ImageScan(ctx context.Context, repo, reference string, findings bool) (*engine.ImageScan, error)
	PutRegistryScanningConfiguration(ctx context.Context, c engine.ScanningConfiguration) (engine.ScanningConfiguration, error)
	RegistryScanningConfiguration(ctx context.Context) (engine.ScanningConfiguration, error)
	RepositoryScanningConfiguration(ctx context.Context, repo string) (engine.RepositoryScanning, error)
}

// scanOps serve the scanning operations.
type scanOps struct {
	reg    registry
	images imageOps
	scans  ScanStore
}

// ImageScanStatus is an image scan's status.
type ImageScanStatus struct {
	Status      string `json:"status,omitempty"`
	Description string `json:"description,omitempty"`
}

// ImageScanFindingsSummary is the summary DescribeImages shows.
type ImageScanFindingsSummary struct {
	ImageScanCompletedAt         awsTime          `json:"imageScanCompletedAt,omitzero"`
	VulnerabilitySourceUpdatedAt awsTime          `json:"vulnerabilitySourceUpdatedAt,omitzero"`
	FindingSeverityCounts        map[string]int32 `json:"findingSeverityCounts,omitempty"`
}

// ImageScanFindings are a scan's findings (a page of them) and counts.
type ImageScanFindings struct {
	ImageScanCompletedAt         awsTime            `json:"imageScanCompletedAt,omitzero"`
	VulnerabilitySourceUpdatedAt awsTime            `json:"vulnerabilitySourceUpdatedAt,omitzero"`
	FindingSeverityCounts        map[string]int32   `json:"findingSeverityCounts,omitempty"`
	Findings                     []ImageScanFinding `json:"findings,omitempty"`
}

// ImageScanFinding is one finding.
type ImageScanFinding struct {
	Name        string      `json:"name,omitempty"`
	Description string      `json:"description,omitempty"`
	URI         string      `json:"uri,omitempty"`
	Severity    string      `json:"severity,omitempty"`
	Attributes  []Attribute `json:"attributes,omitempty"`
}

// Attribute is a finding's attribute.
type Attribute struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// ScanningRepositoryFilter is a repository filter of a scanning rule.
type ScanningRepositoryFilter struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

// RegistryScanningRule is a rule of the registry's scanning
// configuration.
type RegistryScanningRule struct {
	ScanFrequency     string                     `json:"scanFrequency"`
	RepositoryFilters []ScanningRepositoryFilter `json:"repositoryFilters"`
}

// RegistryScanningConfiguration is the registry's scanning configuration.
type RegistryScanningConfiguration struct {
	ScanType string                 `json:"scanType,omitempty"`
	Rules    []RegistryScanningRule `json:"rules"`
}

// RepositoryScanningConfiguration is what applies to one repository.
type RepositoryScanningConfiguration struct {
	RepositoryARN      string                     `json:"repositoryArn"`
	RepositoryName     string                     `json:"repositoryName"`
	ScanOnPush         bool                       `json:"scanOnPush"`
	ScanFrequency      string                     `json:"scanFrequency"`
	AppliedScanFilters []ScanningRepositoryFilter `json:"appliedScanFilters"`
}

// RepositoryScanningConfigurationFailure is a repository
// BatchGetRepositoryScanningConfiguration could not answer for.
type RepositoryScanningConfigurationFailure struct {
	RepositoryName string `json:"repositoryName"`
	FailureCode    string `json:"failureCode"`
	FailureReason  string `json:"failureReason"`
}

// StartImageScanInput is StartImageScan's request.
type StartImageScanInput struct {
	repositoryRef
	ImageID *ImageIdentifier `json:"imageId"`
}

// StartImageScanOutput is StartImageScan's answer.
type StartImageScanOutput struct {
	RegistryID      string          `json:"registryId"`
	RepositoryName  string          `json:"repositoryName"`
	ImageID         ImageIdentifier `json:"imageId"`
	ImageScanStatus ImageScanStatus `json:"imageScanStatus"`
}

// imageOf resolves the image an input names, with ECR's errors.
func (o scanOps) imageOf(ctx context.Context, repo string, id *ImageIdentifier) (*engine.ImageDetail, error) {
	if id == nil {
		return nil, invalidParameter("imageId", mustNotBeNull)
	}
	im, failure, reason, err := o.images.resolve(ctx, repo, *id)
	if err != nil {
		return nil, err
	}
	switch failure {
	case "":
		return im, nil
	case imageNotFoundCode, "ImageTagDoesNotMatchDigest":
		return nil, o.reg.imageNotFound(*id, repo)
	}
	return nil, errorf(ecrInvalidParameter, "%s", reason)
}

func (o scanOps) start(ctx context.Context, _ *call, in *StartImageScanInput) (*StartImageScanOutput, error) {
	im, err := o.imageOf(ctx, in.RepositoryName, in.ImageID)
	if err != nil {
		return nil, err
	}
	s, err := o.scans.StartImageScan(ctx, in.RepositoryName, string(im.Digest))
	if errors.Is(err, engine.ErrScanLimitExceeded) {
		// ECR's words; the engine's error, which says when the next
		// manual scan is allowed, stays in the log.
		return nil, &apiError{Type: ecrLimitExceeded, Msg: "The scan quota per image has been exceeded. Wait and try again.", Err: err}
	}
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	return &StartImageScanOutput{
		RegistryID: o.reg.account, RepositoryName: in.RepositoryName,
		ImageID:         ImageIdentifier{ImageDigest: string(im.Digest), ImageTag: in.ImageID.ImageTag},
		ImageScanStatus: ImageScanStatus{Status: string(s.Status), Description: s.Description},
	}, nil
}

// DescribeImageScanFindingsInput is DescribeImageScanFindings' request.
type DescribeImageScanFindingsInput struct {
	repositoryRef
	ImageID    *ImageIdentifier `json:"imageId"`
	NextToken  string           `json:"nextToken"`
	MaxResults *int             `json:"maxResults"`
}

// DescribeImageScanFindingsOutput is DescribeImageScanFindings' answer.
type DescribeImageScanFindingsOutput struct {
	RegistryID        string             `json:"registryId"`
	RepositoryName    string             `json:"repositoryName"`
	ImageID           ImageIdentifier    `json:"imageId"`
	ImageScanStatus   ImageScanStatus    `json:"imageScanStatus"`
	ImageScanFindings *ImageScanFindings `json:"imageScanFindings,omitempty"`
	NextToken         string             `json:"nextToken,omitempty"`
}

func (o scanOps) describeFindings(ctx context.Context, _ *call, in *DescribeImageScanFindingsInput) (*DescribeImageScanFindingsOutput, error) {
	n, err := pageSize(in.MaxResults, 1000)
	if err != nil {
		return nil, err
	}
	im, err := o.imageOf(ctx, in.RepositoryName, in.ImageID)
	if err != nil {
		return nil, err
	}
	s, err := o.scans.ImageScan(ctx, in.RepositoryName, string(im.Digest), true)
	if errors.Is(err, engine.ErrScanNotFound) {
		return nil, errorf(ecrScanNotFound, "Image scan does not exist for the image with imageId {imageDigest:'%s', imageTag:'%s'} in the repository with name '%s' in the registry with id '%s'",
			im.Digest, orNull(in.ImageID.ImageTag), in.RepositoryName, o.reg.account)
	}
	if err != nil {
		return nil, o.reg.repositoryNotFound(err, in.RepositoryName)
	}
	out := &DescribeImageScanFindingsOutput{
		RegistryID: o.reg.account, RepositoryName: in.RepositoryName,
		ImageID:         ImageIdentifier{ImageDigest: string(im.Digest), ImageTag: in.ImageID.ImageTag},
		ImageScanStatus: ImageScanStatus{Status: string(s.Status), Description: s.Description},
	}
	if !hasFindings(s) {
		return out, nil
	}
	findings := make([]ImageScanFinding, len(s.Findings))
	for i, f := range s.Findings {
		findings[i] = findingFromScan(f)
	}
	keyed := make([]int, len(findings))
	for i := range keyed {
		keyed[i] = i
	}
	// The engine keeps findings most severe first; the page key is the
	// position, zero-padded so that keys sort as positions do.
	page, next, err := paginate(keyed, func(i int) string { return fmt.Sprintf("%010d", i) }, in.NextToken, n)
	if err != nil {
		return nil, err
	}
	sum := summaryFromScan(s)
	out.ImageScanFindings = &ImageScanFindings{
		ImageScanCompletedAt: sum.ImageScanCompletedAt, VulnerabilitySourceUpdatedAt: sum.VulnerabilitySourceUpdatedAt,
		FindingSeverityCounts: sum.FindingSeverityCounts, Findings: []ImageScanFinding{},
	}
	for _, i := range page {
		out.ImageScanFindings.Findings = append(out.ImageScanFindings.Findings, findings[i])
	}
	out.NextToken = next
	return out, nil
}

// findingFromScan is a finding as ECR's basic scanning reports it: the
// CVE, the advisory's text and link, the severity, and attributes.
func findingFromScan(f engine.ScanFinding) ImageScanFinding {
	out := ImageScanFinding{Name: f.Name, Description: f.Description, URI: f.URI, Severity: string(f.Severity)}
	out.Attributes = []Attribute{
		{Key: "package_version", Value: f.Package.Version},
		{Key: "package_name", Value: f.Package.Name},
	}
	if f.Package.Ecosystem != "" {
		out.Attributes = append(out.Attributes, Attribute{Key: "package_ecosystem", Value: f.Package.Ecosystem})
	}
	if f.FixedVersion != "" {
		out.Attributes = append(out.Attributes, Attribute{Key: "fixed_version", Value: f.FixedVersion})
	}
	seen := map[string]bool{}
	for _, c := range f.CVSS {
		prefix := ""
		switch c.Version {
		case "2.0":
			prefix = "CVSS2"
		case "3.0", "3.1":
			prefix = "CVSS3"
		case "4.0":
			prefix = "CVSS4"
		}
		if prefix == "" || seen[prefix] {
			continue
		}
		seen[prefix] = true
		out.Attributes = append(out.Attributes,
			Attribute{Key: prefix + "_VECTOR", Value: c.Vector},
			Attribute{Key: prefix + "_SCORE", Value: strconv.FormatFloat(c.Score, 'f', 1, 64)})
	}
	return out
}

// hasFindings reports whether a scan's findings are shown: once it is
// complete (or its continuous scanning expired), not while a new scan
// runs nor after one failed.
func hasFindings(s *engine.ImageScan) bool {
	return !s.CompletedAt.IsZero() && (s.Status == engine.ScanComplete || s.Status == engine.ScanEligibilityExpired)
}

// summaryFromScan is the findings summary of a scan that completed.
func summaryFromScan(s *engine.ImageScan) ImageScanFindingsSummary {
	out := ImageScanFindingsSummary{
		ImageScanCompletedAt:         awsTime(s.CompletedAt),
		VulnerabilitySourceUpdatedAt: awsTime(s.DatabaseUpdatedAt),
		FindingSeverityCounts:        map[string]int32{},
	}
	for sev, n := range s.Counts {
		if n > 0 {
			out.FindingSeverityCounts[string(sev)] = int32(n)
		}
	}
	return out
}

// scanForDetail adds an image's scan status and summary to its
// description, as DescribeImages shows them.
func scanForDetail(ctx context.Context, scans ScanStore, repo string, d *ImageDetail) error {
	if scans == nil {
		return nil
	}
	s, err := scans.ImageScan(ctx, repo, d.ImageDigest, false)
	if err != nil {
		if toError(err).Type == ecrScanNotFound {
			return nil
		}
		return err
	}
	d.ImageScanStatus = &ImageScanStatus{Status: string(s.Status), Description: s.Description}
	if hasFindings(s) {
		sum := summaryFromScan(s)
		d.ImageScanFindingsSummary = &sum
	}
	return nil
}

// PutRegistryScanningConfigurationInput is
// PutRegistryScanningConfiguration's request.
type PutRegistryScanningConfigurationInput struct {
	onRegistry
	ScanType string                 `json:"scanType"`
	Rules    []RegistryScanningRule `json:"rules"`
}

// PutRegistryScanningConfigurationOutput is its answer.
type PutRegistryScanningConfigurationOutput struct {
	RegistryScanningConfiguration RegistryScanningConfiguration `json:"registryScanningConfiguration"`
}

// validate checks the configuration's parameters as ECR's request
// validation words their failures; the engine checks what is left (the
// filters' grammar).
func (in *PutRegistryScanningConfigurationInput) validate() error {
	if err := checkEnum("scanType", in.ScanType, engine.ScanTypeBasic, engine.ScanTypeEnhanced); err != nil {
		return err
	}
	if err := checkLength("rules", len(in.Rules), 0, 2); err != nil {
		return err
	}
	for i, r := range in.Rules {
		field := fmt.Sprintf("rules[%d].scanFrequency", i)
		if r.ScanFrequency == "" {
			return invalidParameter(field, mustNotBeNull)
		}
		if err := checkEnum(field, r.ScanFrequency, engine.ScanFrequencyOnPush, engine.ScanFrequencyContinuous, engine.ScanFrequencyManual); err != nil {
			return err
		}
		if r.ScanFrequency == engine.ScanFrequencyContinuous && in.ScanType != engine.ScanTypeEnhanced {
			return invalidParameter(field, "%s needs scanType %s (basic scanning scans on push and manually)", engine.ScanFrequencyContinuous, engine.ScanTypeEnhanced)
		}
		if err := checkLength(fmt.Sprintf("rules[%d].repositoryFilters", i), len(r.RepositoryFilters), 1, 100); err != nil {
			return err
		}
		for j, f := range r.RepositoryFilters {
			if err := checkLength(fmt.Sprintf("rules[%d].repositoryFilters[%d].filter", i, j), len(f.Filter), 1, 255); err != nil {
				return err
			}
			if f.FilterType == "" {
				return invalidParameter(fmt.Sprintf("rules[%d].repositoryFilters[%d].filterType", i, j), mustNotBeNull)
			}
			if err := checkEnum(fmt.Sprintf("rules[%d].repositoryFilters[%d].filterType", i, j), f.FilterType, engine.ScanFilterWildcard); err != nil {
				return err
			}
		}
	}
	return nil
}

func (o scanOps) putConfiguration(ctx context.Context, _ *call, in *PutRegistryScanningConfigurationInput) (*PutRegistryScanningConfigurationOutput, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	c := engine.ScanningConfiguration{ScanType: in.ScanType}
	for _, r := range in.Rules {
		er := engine.ScanningRule{ScanFrequency: r.ScanFrequency}
		for _, f := range r.RepositoryFilters {
			er.RepositoryFilters = append(er.RepositoryFilters, engine.ScanRepositoryFilter{Filter: f.Filter, FilterType: f.FilterType})
		}
		c.Rules = append(c.Rules, er)
	}
	got, err := o.scans.PutRegistryScanningConfiguration(ctx, c)
	if err != nil {
		return nil, err
	}
	return &PutRegistryScanningConfigurationOutput{RegistryScanningConfiguration: configurationFromEngine(got)}, nil
}

// GetRegistryScanningConfigurationInput is
// GetRegistryScanningConfiguration's request.
type GetRegistryScanningConfigurationInput struct {
	onRegistry
}

// GetRegistryScanningConfigurationOutput is its answer.
type GetRegistryScanningConfigurationOutput struct {
	RegistryID            string                        `json:"registryId"`
	ScanningConfiguration RegistryScanningConfiguration `json:"scanningConfiguration"`
}

func (o scanOps) getConfiguration(ctx context.Context, _ *call, _ *GetRegistryScanningConfigurationInput) (*GetRegistryScanningConfigurationOutput, error) {
	c, err := o.scans.RegistryScanningConfiguration(ctx)
	if err != nil {
		return nil, err
	}
	return &GetRegistryScanningConfigurationOutput{RegistryID: o.reg.account, ScanningConfiguration: configurationFromEngine(c)}, nil
}

func configurationFromEngine(c engine.ScanningConfiguration) RegistryScanningConfiguration {
	out := RegistryScanningConfiguration{ScanType: c.ScanType, Rules: []RegistryScanningRule{}}
	for _, r := range c.Rules {
		out.Rules = append(out.Rules, RegistryScanningRule{ScanFrequency: r.ScanFrequency, RepositoryFilters: filtersFromEngine(r.RepositoryFilters)})
	}
	return out
}

func filtersFromEngine(fs []engine.ScanRepositoryFilter) []ScanningRepositoryFilter {
	out := []ScanningRepositoryFilter{}
	for _, f := range fs {
		out = append(out, ScanningRepositoryFilter{Filter: f.Filter, FilterType: f.FilterType})
	}
	return out
}

// BatchGetRepositoryScanningConfigurationInput is
// BatchGetRepositoryScanningConfiguration's request.
type BatchGetRepositoryScanningConfigurationInput struct {
	RepositoryNames []string `json:"repositoryNames"`
}

// resources are the repositories named (1 to 25, as ECR allows).
func (in *BatchGetRepositoryScanningConfigurationInput) resources(registry) ([]authz.Resource, error) {
	if err := checkLength("repositoryNames", len(in.RepositoryNames), 1, 25); err != nil {
		return nil, err
	}
	out := make([]authz.Resource, len(in.RepositoryNames))
	for i, name := range in.RepositoryNames {
		if err := checkRepositoryName(name); err != nil {
			return nil, err
		}
		out[i] = authz.Repository(name)
	}
	return out, nil
}

// BatchGetRepositoryScanningConfigurationOutput is its answer.
type BatchGetRepositoryScanningConfigurationOutput struct {
	ScanningConfigurations []RepositoryScanningConfiguration        `json:"scanningConfigurations"`
	Failures               []RepositoryScanningConfigurationFailure `json:"failures"`
}

func (o scanOps) batchGetRepositoryConfiguration(ctx context.Context, _ *call, in *BatchGetRepositoryScanningConfigurationInput) (*BatchGetRepositoryScanningConfigurationOutput, error) {
	out := &BatchGetRepositoryScanningConfigurationOutput{
		ScanningConfigurations: []RepositoryScanningConfiguration{}, Failures: []RepositoryScanningConfigurationFailure{},
	}
	names := append([]string(nil), in.RepositoryNames...)
	sort.Strings(names)
	for i, name := range names {
		if i > 0 && names[i-1] == name {
			continue
		}
		rs, err := o.scans.RepositoryScanningConfiguration(ctx, name)
		if err != nil {
			if toError(err).Type == ecrRepositoryNotFound {
				out.Failures = append(out.Failures, RepositoryScanningConfigurationFailure{
					RepositoryName: name, FailureCode: "REPOSITORY_NOT_FOUND", FailureReason: "REPOSITORY_NOT_FOUND"})
				continue
			}
			return nil, err
		}
		out.ScanningConfigurations = append(out.ScanningConfigurations, RepositoryScanningConfiguration{
			RepositoryARN: o.reg.repositoryARN(name), RepositoryName: name, ScanOnPush: rs.ScanOnPush,
			ScanFrequency: rs.ScanFrequency, AppliedScanFilters: filtersFromEngine(rs.AppliedScanFilters),
		})
	}
	return out, nil
}
