package authz

// Action is the name of what a request does, as IAM names it: ECR's
// actions ("ecr:PutImage"), and Berth's own for the admin API
// ("berth:CollectGarbage").
type Action string

// The ECR actions: one per operation of the ECR API that Berth serves,
// and those the OCI API's requests map to (ECR's mapping of docker pull
// and push; docs/policies.md).
const (
	BatchCheckLayerAvailability         Action = "ecr:BatchCheckLayerAvailability"
	BatchDeleteImage                    Action = "ecr:BatchDeleteImage"
	BatchGetImage                       Action = "ecr:BatchGetImage"
	CompleteLayerUpload                 Action = "ecr:CompleteLayerUpload"
	CreatePullThroughCacheRule          Action = "ecr:CreatePullThroughCacheRule"
	CreateRepository                    Action = "ecr:CreateRepository"
	CreateRepositoryCreationTemplate    Action = "ecr:CreateRepositoryCreationTemplate"
	DeleteLifecyclePolicy               Action = "ecr:DeleteLifecyclePolicy"
	DeletePullThroughCacheRule          Action = "ecr:DeletePullThroughCacheRule"
	DeleteRepository                    Action = "ecr:DeleteRepository"
	DeleteRepositoryCreationTemplate    Action = "ecr:DeleteRepositoryCreationTemplate"
	DeleteRepositoryPolicy              Action = "ecr:DeleteRepositoryPolicy"
	DescribeImages                      Action = "ecr:DescribeImages"
	DescribePullThroughCacheRules       Action = "ecr:DescribePullThroughCacheRules"
	DescribeRepositories                Action = "ecr:DescribeRepositories"
	DescribeRepositoryCreationTemplates Action = "ecr:DescribeRepositoryCreationTemplates"
	GetAuthorizationToken               Action = "ecr:GetAuthorizationToken"
	GetDownloadURLForLayer              Action = "ecr:GetDownloadUrlForLayer"
	GetLifecyclePolicy                  Action = "ecr:GetLifecyclePolicy"
	GetLifecyclePolicyPreview           Action = "ecr:GetLifecyclePolicyPreview"
	GetRepositoryPolicy                 Action = "ecr:GetRepositoryPolicy"
	InitiateLayerUpload                 Action = "ecr:InitiateLayerUpload"
	ListImages                          Action = "ecr:ListImages"
	ListTagsForResource                 Action = "ecr:ListTagsForResource"
	PutImage                            Action = "ecr:PutImage"
	PutImageScanningConfiguration       Action = "ecr:PutImageScanningConfiguration"
	PutImageTagMutability               Action = "ecr:PutImageTagMutability"
	PutLifecyclePolicy                  Action = "ecr:PutLifecyclePolicy"
	SetRepositoryPolicy                 Action = "ecr:SetRepositoryPolicy"
	StartLifecyclePolicyPreview         Action = "ecr:StartLifecyclePolicyPreview"
	TagResource                         Action = "ecr:TagResource"
	UntagResource                       Action = "ecr:UntagResource"
	UpdateRepositoryCreationTemplate    Action = "ecr:UpdateRepositoryCreationTemplate"
	UploadLayerPart                     Action = "ecr:UploadLayerPart"
)

// The admin API's actions (/admin/v1/...), which ECR does not have.
const (
	AdminCollectGarbage   Action = "berth:CollectGarbage"
	AdminFsck             Action = "berth:Fsck"
	AdminPreviewLifecycle Action = "berth:PreviewLifecycle"
	AdminApplyLifecycle   Action = "berth:ApplyLifecycle"
	AdminReadAuditLog     Action = "berth:ReadAuditLog"
)

// known are the actions an Authorizer of this package decides; any other
// is refused.
var known = map[Action]bool{}

// admin are the admin API's actions.
var admin = map[Action]bool{AdminCollectGarbage: true, AdminFsck: true, AdminPreviewLifecycle: true, AdminApplyLifecycle: true, AdminReadAuditLog: true}

func init() {
	for _, a := range []Action{
		BatchCheckLayerAvailability, BatchDeleteImage, BatchGetImage, CompleteLayerUpload,
		CreatePullThroughCacheRule, CreateRepository, CreateRepositoryCreationTemplate,
		DeleteLifecyclePolicy, DeletePullThroughCacheRule, DeleteRepository,
		DeleteRepositoryCreationTemplate, DeleteRepositoryPolicy, DescribeImages,
		DescribePullThroughCacheRules, DescribeRepositories, DescribeRepositoryCreationTemplates,
		GetAuthorizationToken, GetDownloadURLForLayer, GetLifecyclePolicy, GetLifecyclePolicyPreview,
		GetRepositoryPolicy, InitiateLayerUpload, ListImages, ListTagsForResource, PutImage,
		PutImageScanningConfiguration, PutImageTagMutability, PutLifecyclePolicy,
		SetRepositoryPolicy, StartLifecyclePolicyPreview, TagResource, UntagResource,
		UpdateRepositoryCreationTemplate, UploadLayerPart,
	} {
		known[a] = true
	}
	for a := range admin {
		known[a] = true
	}
}

// Known reports whether a is an action this package knows.
func (a Action) Known() bool { return known[a] }
