package authz

// Action is the name of what a request does, as IAM names it: ECR's
// actions ("ecr:PutImage"), and Berth's own for the admin API
// ("berth:CollectGarbage").
type Action string

// The ECR actions: one per operation of the ECR API that Berth serves,
// and those the OCI API's requests map to (ECR's mapping of docker pull
// and push; docs/policies.md).
const (
	BatchCheckLayerAvailability             Action = "ecr:BatchCheckLayerAvailability"
	BatchDeleteImage                        Action = "ecr:BatchDeleteImage"
	BatchGetImage                           Action = "ecr:BatchGetImage"
	BatchGetRepositoryScanningConfiguration Action = "ecr:BatchGetRepositoryScanningConfiguration"
	BatchImportUpstreamImage                Action = "ecr:BatchImportUpstreamImage"
	CompleteLayerUpload                     Action = "ecr:CompleteLayerUpload"
	CreatePullThroughCacheRule              Action = "ecr:CreatePullThroughCacheRule"
	CreateRepository                        Action = "ecr:CreateRepository"
	CreateRepositoryCreationTemplate        Action = "ecr:CreateRepositoryCreationTemplate"
	DeleteLifecyclePolicy                   Action = "ecr:DeleteLifecyclePolicy"
	DeletePullThroughCacheRule              Action = "ecr:DeletePullThroughCacheRule"
	DeleteRegistryPolicy                    Action = "ecr:DeleteRegistryPolicy"
	DeleteRepository                        Action = "ecr:DeleteRepository"
	DeleteRepositoryCreationTemplate        Action = "ecr:DeleteRepositoryCreationTemplate"
	DeleteRepositoryPolicy                  Action = "ecr:DeleteRepositoryPolicy"
	DescribeImageReplicationStatus          Action = "ecr:DescribeImageReplicationStatus"
	DescribeImageScanFindings               Action = "ecr:DescribeImageScanFindings"
	DescribeImages                          Action = "ecr:DescribeImages"
	DescribePullThroughCacheRules           Action = "ecr:DescribePullThroughCacheRules"
	DescribeRegistry                        Action = "ecr:DescribeRegistry"
	DescribeRepositories                    Action = "ecr:DescribeRepositories"
	DescribeRepositoryCreationTemplates     Action = "ecr:DescribeRepositoryCreationTemplates"
	GetAccountSetting                       Action = "ecr:GetAccountSetting"
	GetAuthorizationToken                   Action = "ecr:GetAuthorizationToken"
	GetDownloadURLForLayer                  Action = "ecr:GetDownloadUrlForLayer"
	GetLifecyclePolicy                      Action = "ecr:GetLifecyclePolicy"
	GetLifecyclePolicyPreview               Action = "ecr:GetLifecyclePolicyPreview"
	GetRegistryPolicy                       Action = "ecr:GetRegistryPolicy"
	GetRegistryScanningConfiguration        Action = "ecr:GetRegistryScanningConfiguration"
	GetRepositoryPolicy                     Action = "ecr:GetRepositoryPolicy"
	InitiateLayerUpload                     Action = "ecr:InitiateLayerUpload"
	ListImages                              Action = "ecr:ListImages"
	ListTagsForResource                     Action = "ecr:ListTagsForResource"
	PutAccountSetting                       Action = "ecr:PutAccountSetting"
	PutImage                                Action = "ecr:PutImage"
	PutImageScanningConfiguration           Action = "ecr:PutImageScanningConfiguration"
	PutImageTagMutability                   Action = "ecr:PutImageTagMutability"
	PutLifecyclePolicy                      Action = "ecr:PutLifecyclePolicy"
	PutRegistryPolicy                       Action = "ecr:PutRegistryPolicy"
	PutRegistryScanningConfiguration        Action = "ecr:PutRegistryScanningConfiguration"
	PutReplicationConfiguration             Action = "ecr:PutReplicationConfiguration"
	// ReplicateImage is what a replicated push asks of the destination
	// (every request carrying the replication header; docs/replication.md).
	ReplicateImage                   Action = "ecr:ReplicateImage"
	SetRepositoryPolicy              Action = "ecr:SetRepositoryPolicy"
	StartImageScan                   Action = "ecr:StartImageScan"
	StartLifecyclePolicyPreview      Action = "ecr:StartLifecyclePolicyPreview"
	TagResource                      Action = "ecr:TagResource"
	UntagResource                    Action = "ecr:UntagResource"
	UpdateImageStorageClass          Action = "ecr:UpdateImageStorageClass"
	UpdatePullThroughCacheRule       Action = "ecr:UpdatePullThroughCacheRule"
	UpdateRepositoryCreationTemplate Action = "ecr:UpdateRepositoryCreationTemplate"
	UploadLayerPart                  Action = "ecr:UploadLayerPart"
	ValidatePullThroughCacheRule     Action = "ecr:ValidatePullThroughCacheRule"
)

// The KMS actions a request needs on the key-encryption key of a
// repository it creates (CreateRepository, creation templates, create on
// push with a template that names a key), as ECR needs them on the
// repository's KMS key.
const (
	KMSCreateGrant Action = "kms:CreateGrant"
	KMSDescribeKey Action = "kms:DescribeKey"
)

// The KMS actions of the admin API's key operations (/admin/v1/keys...,
// `registryd keys`), on the key's ARN; listing the keys is kms:ListKeys
// on the registry ("*", as in KMS), and each key listed is one the caller
// may kms:DescribeKey.
const (
	KMSCreateKey           Action = "kms:CreateKey"
	KMSEnableKeyRotation   Action = "kms:EnableKeyRotation" // rotate: a new primary version, data keys rewrapped
	KMSDisableKey          Action = "kms:DisableKey"
	KMSEnableKey           Action = "kms:EnableKey"
	KMSScheduleKeyDeletion Action = "kms:ScheduleKeyDeletion" // destroy (crypto-shredding), at once
	KMSListKeys            Action = "kms:ListKeys"
)

// The Secrets Manager actions of Berth's secret store (the upstream
// credentials of pull-through cache rules), on the secret's ARN
// (arn:aws:secretsmanager:<region>:<account>:secret:<name>), or on the
// registry for a listing. GetSecretValue is what naming a secret in a
// rule's credentialArn needs: the value itself is never answered.
const (
	SecretsCreateSecret   Action = "secretsmanager:CreateSecret"
	SecretsPutSecretValue Action = "secretsmanager:PutSecretValue"
	SecretsDeleteSecret   Action = "secretsmanager:DeleteSecret"
	SecretsListSecrets    Action = "secretsmanager:ListSecrets"
	SecretsGetSecretValue Action = "secretsmanager:GetSecretValue"
)

// The admin API's actions (/admin/v1/...), which ECR does not have.
const (
	AdminCollectGarbage   Action = "berth:CollectGarbage"
	AdminFsck             Action = "berth:Fsck"
	AdminPreviewLifecycle Action = "berth:PreviewLifecycle"
	AdminApplyLifecycle   Action = "berth:ApplyLifecycle"
	// AdminReloadIdentities reloads the identity, htpasswd and access key
	// files (POST /admin/v1/iam/reload, SIGHUP's admin call).
	AdminReloadIdentities Action = "berth:ReloadIdentities"
	// AdminSimulatePolicy answers what a decision would be
	// (POST /admin/v1/iam/simulate, registryd iam simulate --server).
	AdminSimulatePolicy Action = "berth:SimulatePolicy"
	// AdminReadAuditLog reads the audit log (GET /admin/v1/audit,
	// registryd audit --server).
	AdminReadAuditLog Action = "berth:ReadAuditLog"
	// AdminDescribeIdentities reads the users, groups and policies in
	// force (GET /admin/v1/iam/identities, registryd iam check without a
	// file).
	AdminDescribeIdentities Action = "berth:DescribeIdentities"
	// AdminListEvents lists the event queue, the webhooks' pending
	// deliveries and their dead letters (GET /admin/v1/events, registryd
	// events list --server).
	AdminListEvents Action = "berth:ListEvents"
	// AdminRedriveEvents moves a webhook's dead letters back to its queue
	// (POST /admin/v1/events/redrive, registryd events redrive --server).
	AdminRedriveEvents Action = "berth:RedriveEvents"
	// AdminImportVulnerabilities imports vulnerability data
	// (POST /admin/v1/scan/db/import).
	AdminImportVulnerabilities Action = "berth:ImportVulnerabilities"
	// AdminDescribeVulnerabilityDatabase shows the vulnerability
	// database's versions (GET /admin/v1/scan/db/status).
	AdminDescribeVulnerabilityDatabase Action = "berth:DescribeVulnerabilityDatabase"
	// AdminRollbackVulnerabilities returns to the previous version of the
	// vulnerability database (POST /admin/v1/scan/db/rollback).
	AdminRollbackVulnerabilities Action = "berth:RollbackVulnerabilities"
	// AdminListReplication lists the replication queue
	// (GET /admin/v1/replication/jobs, registryd replication status).
	AdminListReplication Action = "berth:ListReplication"
	// AdminRetryReplication queues the given-up replications again
	// (POST /admin/v1/replication/retry, registryd replication retry).
	AdminRetryReplication Action = "berth:RetryReplication"
)

// known are the actions an Authorizer of this package decides; any other
// is refused.
var known = map[Action]bool{}

// admin are the admin API's actions.
var admin = map[Action]bool{
	AdminCollectGarbage: true, AdminFsck: true, AdminPreviewLifecycle: true, AdminApplyLifecycle: true,
	AdminReloadIdentities: true, AdminSimulatePolicy: true, AdminReadAuditLog: true, AdminDescribeIdentities: true,
	AdminListEvents: true, AdminRedriveEvents: true,
	AdminImportVulnerabilities: true, AdminDescribeVulnerabilityDatabase: true, AdminRollbackVulnerabilities: true,
	AdminListReplication: true, AdminRetryReplication: true,
}

func init() {
	for _, a := range []Action{
		BatchCheckLayerAvailability, BatchDeleteImage, BatchGetImage, BatchImportUpstreamImage,
		CompleteLayerUpload, CreatePullThroughCacheRule, CreateRepository, CreateRepositoryCreationTemplate,
		DeleteLifecyclePolicy, DeletePullThroughCacheRule, DeleteRegistryPolicy, DeleteRepository,
		DeleteRepositoryCreationTemplate, DeleteRepositoryPolicy, DescribeImages,
		DescribePullThroughCacheRules, DescribeRegistry, DescribeRepositories, DescribeRepositoryCreationTemplates,
		GetAccountSetting, GetAuthorizationToken, GetDownloadURLForLayer, GetLifecyclePolicy, GetLifecyclePolicyPreview,
		GetRegistryPolicy, GetRepositoryPolicy, InitiateLayerUpload, ListImages, ListTagsForResource, PutAccountSetting, PutImage,
		PutImageScanningConfiguration, PutImageTagMutability, PutLifecyclePolicy, PutRegistryPolicy,
		SetRepositoryPolicy, StartLifecyclePolicyPreview, TagResource, UntagResource,
		UpdateImageStorageClass, UpdatePullThroughCacheRule, UpdateRepositoryCreationTemplate, UploadLayerPart, ValidatePullThroughCacheRule,
		KMSCreateGrant, KMSDescribeKey,
		KMSCreateKey, KMSEnableKeyRotation, KMSDisableKey, KMSEnableKey, KMSScheduleKeyDeletion, KMSListKeys,
		SecretsCreateSecret, SecretsPutSecretValue, SecretsDeleteSecret, SecretsListSecrets, SecretsGetSecretValue,
		BatchGetRepositoryScanningConfiguration, DescribeImageScanFindings, GetRegistryScanningConfiguration,
		PutRegistryScanningConfiguration, StartImageScan,
		DescribeImageReplicationStatus, PutReplicationConfiguration, ReplicateImage,
	} {
		known[a] = true
	}
	for a := range admin {
		known[a] = true
	}
}

// Known reports whether a is an action this package knows.
func (a Action) Known() bool { return known[a] }
