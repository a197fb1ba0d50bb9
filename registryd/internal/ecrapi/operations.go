package ecrapi

import (
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/request"
)

// operations is the operation table: each operation Berth serves, by
// name, with its ECR action and its handler. Each group of handlers holds
// the roles of the store it uses and nothing else. The dispatcher
// authorizes the action on the resources the input names before the
// handler runs (operation.go); an entry cannot be made without an action,
// and an input cannot be used without naming its resources.
func operations(g registry, st Store, tokens TokenMinter, uploads *request.Uploads, upstreams Upstreams) map[string]operation {
	repos := repositoryOps{reg: g, repos: st}
	tags := tagOps{reg: g, tags: st}
	policies := policyOps{reg: g, policies: st}
	registryLevel := registryOps{reg: g, policies: st}
	lifecycle := lifecycleOps{reg: g, repos: st, lifecycle: st}
	images := imageOps{reg: g, images: st, scans: st}
	scans := scanOps{reg: g, images: images, scans: st}
	storage := storageClassOps{images: images, store: st}
	layers := layerOps{reg: g, repos: st, layers: st, uploads: uploads}
	templates := templateOps{reg: g, templates: st}
	rules := cacheRuleOps{reg: g, rules: st, upstreams: upstreams}
	login := loginOps{tokens: tokens}
	settings := accountSettingOps{settings: st}
	referrers := referrerOps{reg: g, referrers: st}
	replication := replicationOps{reg: g, images: images, store: st}
	return map[string]operation{
		"CreateRepository":              newOp(authz.CreateRepository, repos.create),
		"DescribeRepositories":          newOp(authz.DescribeRepositories, repos.describe),
		"DeleteRepository":              newOp(authz.DeleteRepository, repos.delete),
		"PutImageTagMutability":         newOp(authz.PutImageTagMutability, repos.putTagMutability),
		"PutImageScanningConfiguration": newOp(authz.PutImageScanningConfiguration, repos.putScanning),

		"TagResource":         newOp(authz.TagResource, tags.tag),
		"UntagResource":       newOp(authz.UntagResource, tags.untag),
		"ListTagsForResource": newOp(authz.ListTagsForResource, tags.list),

		"SetRepositoryPolicy":    newOp(authz.SetRepositoryPolicy, policies.set),
		"GetRepositoryPolicy":    newOp(authz.GetRepositoryPolicy, policies.get),
		"DeleteRepositoryPolicy": newOp(authz.DeleteRepositoryPolicy, policies.delete),

		"PutRegistryPolicy":    newOp(authz.PutRegistryPolicy, registryLevel.putPolicy),
		"GetRegistryPolicy":    newOp(authz.GetRegistryPolicy, registryLevel.getPolicy),
		"DeleteRegistryPolicy": newOp(authz.DeleteRegistryPolicy, registryLevel.deletePolicy),
		"DescribeRegistry":     newOp(authz.DescribeRegistry, replication.describeRegistry),

		"PutReplicationConfiguration":    newOp(authz.PutReplicationConfiguration, replication.put),
		"DescribeImageReplicationStatus": newOp(authz.DescribeImageReplicationStatus, replication.describeStatus),
		"GetAccountSetting":              newOp(authz.GetAccountSetting, settings.get),
		"PutAccountSetting":              newOp(authz.PutAccountSetting, settings.put),

		"PutLifecyclePolicy":          newOp(authz.PutLifecyclePolicy, lifecycle.put),
		"GetLifecyclePolicy":          newOp(authz.GetLifecyclePolicy, lifecycle.get),
		"DeleteLifecyclePolicy":       newOp(authz.DeleteLifecyclePolicy, lifecycle.delete),
		"StartLifecyclePolicyPreview": newOp(authz.StartLifecyclePolicyPreview, lifecycle.startPreview),
		"GetLifecyclePolicyPreview":   newOp(authz.GetLifecyclePolicyPreview, lifecycle.getPreview),

		"ListImages":       newOp(authz.ListImages, images.list),
		"DescribeImages":   newOp(authz.DescribeImages, images.describe),
		"BatchGetImage":    newOp(authz.BatchGetImage, images.batchGet),
		"BatchDeleteImage": newOp(authz.BatchDeleteImage, images.batchDelete),
		"PutImage":         newOp(authz.PutImage, images.put),
		// ECR asks ecr:BatchGetImage of ListImageReferrers (its API
		// reference): there is no ecr:ListImageReferrers action.
		"ListImageReferrers": newOp(authz.BatchGetImage, referrers.list),

		"UpdateImageStorageClass": newOp(authz.UpdateImageStorageClass, storage.update),

		"StartImageScan":                          newOp(authz.StartImageScan, scans.start),
		"DescribeImageScanFindings":               newOp(authz.DescribeImageScanFindings, scans.describeFindings),
		"PutRegistryScanningConfiguration":        newOp(authz.PutRegistryScanningConfiguration, scans.putConfiguration),
		"GetRegistryScanningConfiguration":        newOp(authz.GetRegistryScanningConfiguration, scans.getConfiguration),
		"BatchGetRepositoryScanningConfiguration": newOp(authz.BatchGetRepositoryScanningConfiguration, scans.batchGetRepositoryConfiguration),

		"BatchCheckLayerAvailability": newOp(authz.BatchCheckLayerAvailability, layers.check),
		"GetDownloadUrlForLayer":      newOp(authz.GetDownloadURLForLayer, layers.downloadURL),
		"InitiateLayerUpload":         newOp(authz.InitiateLayerUpload, layers.initiate),
		"UploadLayerPart":             newOp(authz.UploadLayerPart, layers.uploadPart),
		"CompleteLayerUpload":         newOp(authz.CompleteLayerUpload, layers.complete),

		"CreateRepositoryCreationTemplate":    newOp(authz.CreateRepositoryCreationTemplate, templates.create),
		"UpdateRepositoryCreationTemplate":    newOp(authz.UpdateRepositoryCreationTemplate, templates.update),
		"DeleteRepositoryCreationTemplate":    newOp(authz.DeleteRepositoryCreationTemplate, templates.delete),
		"DescribeRepositoryCreationTemplates": newOp(authz.DescribeRepositoryCreationTemplates, templates.describe),

		"CreatePullThroughCacheRule":    newOp(authz.CreatePullThroughCacheRule, rules.create),
		"DescribePullThroughCacheRules": newOp(authz.DescribePullThroughCacheRules, rules.describe),
		"DeletePullThroughCacheRule":    newOp(authz.DeletePullThroughCacheRule, rules.delete),
		"UpdatePullThroughCacheRule":    newOp(authz.UpdatePullThroughCacheRule, rules.update),
		"ValidatePullThroughCacheRule":  newOp(authz.ValidatePullThroughCacheRule, rules.validate),

		"GetAuthorizationToken": newOp(authz.GetAuthorizationToken, login.token),
	}
}
