package iam

import (
	"strings"
)

// ecrActions are the actions of Amazon ECR (service prefix ecr) as the
// Service Authorization Reference lists them ("Actions, resources, and
// condition keys for Amazon Elastic Container Registry": the actions
// table and the permission-only actions BatchImportUpstreamImage,
// GetImageCopyStatus and ReplicateImage).
var ecrActions = []string{
	"BatchCheckLayerAvailability",
	"BatchDeleteImage",
	"BatchGetImage",
	"BatchGetRepositoryScanningConfiguration",
	"BatchImportUpstreamImage",
	"CompleteLayerUpload",
	"CreatePullThroughCacheRule",
	"CreateRepository",
	"CreateRepositoryCreationTemplate",
	"DeleteLifecyclePolicy",
	"DeletePullThroughCacheRule",
	"DeleteRegistryPolicy",
	"DeleteRepository",
	"DeleteRepositoryCreationTemplate",
	"DeleteRepositoryPolicy",
	"DeleteSigningConfiguration",
	"DeregisterPullTimeUpdateExclusion",
	"DescribeImageReplicationStatus",
	"DescribeImageScanFindings",
	"DescribeImageSigningStatus",
	"DescribeImages",
	"DescribePullThroughCacheRules",
	"DescribeRegistry",
	"DescribeRepositories",
	"DescribeRepositoryCreationTemplates",
	"GetAccountSetting",
	"GetAuthorizationToken",
	"GetDownloadUrlForLayer",
	"GetImageCopyStatus",
	"GetLifecyclePolicy",
	"GetLifecyclePolicyPreview",
	"GetRegistryPolicy",
	"GetRegistryScanningConfiguration",
	"GetRepositoryPolicy",
	"GetSigningConfiguration",
	"InitiateLayerUpload",
	"ListImages",
	"ListPullTimeUpdateExclusions",
	"ListTagsForResource",
	"PutAccountSetting",
	"PutImage",
	"PutImageScanningConfiguration",
	"PutImageTagMutability",
	"PutLifecyclePolicy",
	"PutRegistryPolicy",
	"PutRegistryScanningConfiguration",
	"PutReplicationConfiguration",
	"PutSigningConfiguration",
	"RegisterPullTimeUpdateExclusion",
	"ReplicateImage",
	"SetRepositoryPolicy",
	"StartImageScan",
	"StartLifecyclePolicyPreview",
	"TagResource",
	"UntagResource",
	"UpdateImageStorageClass",
	"UpdatePullThroughCacheRule",
	"UpdateRepositoryCreationTemplate",
	"UploadLayerPart",
	"ValidatePullThroughCacheRule",
}

// kmsActions are the actions of AWS KMS (service prefix kms) as the
// Service Authorization Reference lists them. Berth performs only the
// key-use ones (Decrypt, GenerateDataKey*, ReEncrypt*, DescribeKey, ...);
// the others are known so that a key policy written for AWS parses.
var kmsActions = []string{
	"CancelKeyDeletion",
	"ConnectCustomKeyStore",
	"CreateAlias",
	"CreateCustomKeyStore",
	"CreateGrant",
	"CreateKey",
	"Decrypt",
	"DeleteAlias",
	"DeleteCustomKeyStore",
	"DeleteImportedKeyMaterial",
	"DeriveSharedSecret",
	"DescribeCustomKeyStores",
	"DescribeKey",
	"DisableKey",
	"DisableKeyRotation",
	"DisconnectCustomKeyStore",
	"EnableKey",
	"EnableKeyRotation",
	"Encrypt",
	"GenerateDataKey",
	"GenerateDataKeyPair",
	"GenerateDataKeyPairWithoutPlaintext",
	"GenerateDataKeyWithoutPlaintext",
	"GenerateMac",
	"GenerateRandom",
	"GetKeyLastUsage",
	"GetKeyPolicy",
	"GetKeyRotationStatus",
	"GetParametersForImport",
	"GetPublicKey",
	"ImportKeyMaterial",
	"ListAliases",
	"ListGrants",
	"ListKeyPolicies",
	"ListKeyRotations",
	"ListKeys",
	"ListResourceTags",
	"ListRetirableGrants",
	"PutKeyPolicy",
	"ReEncryptFrom",
	"ReEncryptTo",
	"ReplicateKey",
	"RetireGrant",
	"RevokeGrant",
	"RotateKeyOnDemand",
	"ScheduleKeyDeletion",
	"Sign",
	"SynchronizeMultiRegionKey",
	"TagResource",
	"UntagResource",
	"UpdateAlias",
	"UpdateCustomKeyStore",
	"UpdateKeyDescription",
	"UpdatePrimaryRegion",
	"Verify",
	"VerifyMac",
}

// secretsManagerActions are the actions of AWS Secrets Manager (service
// prefix secretsmanager) as the Service Authorization Reference lists
// them. Berth's secret store (the pull-through cache's upstream
// credentials) performs CreateSecret, PutSecretValue, DeleteSecret,
// ListSecrets and GetSecretValue; the others are known so that a policy
// written for AWS parses.
var secretsManagerActions = []string{
	"BatchGetSecretValue",
	"CancelRotateSecret",
	"CreateSecret",
	"DeleteResourcePolicy",
	"DeleteSecret",
	"DescribeSecret",
	"GetRandomPassword",
	"GetResourcePolicy",
	"GetSecretValue",
	"ListSecretVersionIds",
	"ListSecrets",
	"PutResourcePolicy",
	"PutSecretValue",
	"RemoveRegionsFromReplication",
	"ReplicateSecretToRegions",
	"RestoreSecret",
	"RotateSecret",
	"StopReplicationToReplica",
	"TagResource",
	"UntagResource",
	"UpdateSecret",
	"UpdateSecretVersionStage",
	"ValidateResourcePolicy",
}

// knownServices are the services whose action names Berth knows: an
// action of these services that is not in their table is refused.
// Actions of other services are accepted when well formed and match
// only requests for them (Berth makes none).
var knownServices = map[string][]string{
	"ecr":            ecrActions,
	"kms":            kmsActions,
	"secretsmanager": secretsManagerActions,
	"berth":          berthActions,
}

// berthActions are Berth's own actions, which AWS does not have: those of
// registryd's admin API and its commands (service prefix "berth:").
var berthActions = []string{
	"ApplyLifecycle",
	"CollectGarbage",
	"DescribeIdentities",
	"DescribeVulnerabilityDatabase",
	"Fsck",
	"ImportVulnerabilities",
	"ListEvents",
	"ListReplication",
	"PreviewLifecycle",
	"ReadAuditLog",
	"RedriveEvents",
	"ReloadIdentities",
	"RetryReplication",
	"RollbackVulnerabilities",
	"SimulatePolicy",
}

// actionID numbers the known actions; noAction is a request action
// outside the tables.
type actionID int16

const noAction actionID = -1

// actionBits is a set of known actions.
type actionBits [4]uint64

func (b *actionBits) add(id actionID)      { b[id>>6] |= 1 << (uint(id) & 63) }
func (b *actionBits) has(id actionID) bool { return b[id>>6]&(1<<(uint(id)&63)) != 0 }
func (b *actionBits) union(o *actionBits)  { b[0] |= o[0]; b[1] |= o[1]; b[2] |= o[2]; b[3] |= o[3] }
func (b *actionBits) empty() bool          { return b[0]|b[1]|b[2]|b[3] == 0 }
func (b *actionBits) subsetOf(o *actionBits) bool {
	return b[0]&^o[0] == 0 && b[1]&^o[1] == 0 && b[2]&^o[2] == 0 && b[3]&^o[3] == 0
}

// actionTable is built from knownServices at start.
type actionTable struct {
	names   []string            // id -> "ecr:BatchGetImage"
	lower   []string            // id -> "ecr:batchgetimage"
	byName  map[string]actionID // canonical name -> id
	byLower map[string]actionID // lower-case name -> id
	service map[string]actionBits
}

var actions = buildActionTable()

func buildActionTable() *actionTable {
	t := &actionTable{byName: map[string]actionID{}, byLower: map[string]actionID{}, service: map[string]actionBits{}}
	for _, svc := range []string{"ecr", "kms", "secretsmanager"} {
		var bits actionBits
		for _, a := range knownServices[svc] {
			id := actionID(len(t.names))
			name := svc + ":" + a
			t.names = append(t.names, name)
			t.lower = append(t.lower, strings.ToLower(name))
			t.byName[name] = id
			t.byLower[strings.ToLower(name)] = id
			bits.add(id)
		}
		t.service[svc] = bits
	}
	if len(t.names) > len(actionBits{})*64 {
		panic("iam: actionBits too small for the action tables")
	}
	return t
}

// lookupAction finds the id of a request's action. known is false for a
// service outside the tables; id is noAction also when the service is
// known but the action is not.
func lookupAction(action string) (id actionID, knownService bool) {
	if id, ok := actions.byName[action]; ok {
		return id, true
	}
	svc, _, _ := strings.Cut(action, ":")
	if _, ok := actions.service[strings.ToLower(svc)]; !ok {
		return noAction, false
	}
	// Action names are case-insensitive; the engine passes canonical
	// names, so this path (and its allocation) is for other callers.
	if id, ok := actions.byLower[strings.ToLower(action)]; ok {
		return id, true
	}
	return noAction, true
}

// ActionNames returns the names of the actions Berth knows for a service
// ("ecr", "kms", "secretsmanager"), such as "ecr:BatchGetImage"; nil for
// another service.
func ActionNames(service string) []string {
	bits, ok := actions.service[strings.ToLower(service)]
	if !ok {
		return nil
	}
	var out []string
	for id := range actions.names {
		if bits.has(actionID(id)) {
			out = append(out, actions.names[id])
		}
	}
	return out
}

// actionSet is a parsed Action or NotAction element.
type actionSet struct {
	all     bool       // "*"
	known   actionBits // the known actions the patterns match
	foreign []string   // lower-case patterns of other services
}

func (s *actionSet) matches(id actionID, action string) bool {
	if s.all {
		return true
	}
	if id != noAction {
		return s.known.has(id)
	}
	for _, p := range s.foreign {
		if globFold(p, action) {
			return true
		}
	}
	return false
}

// parseActions reads an Action or NotAction list.
func parseActions(field string, list []string) (actionSet, error) {
	var s actionSet
	for _, a := range list {
		if a == "*" {
			s.all = true
			continue
		}
		svc, name, ok := strings.Cut(a, ":")
		if !ok || svc == "" || name == "" {
			return s, errorf(ErrSyntax, field, "%s is not service:action", quote(a))
		}
		svc = strings.ToLower(svc)
		for _, c := range svc {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return s, errorf(ErrSyntax, field, "%s: the service prefix may hold only letters, digits and '-' (no wildcard)", quote(a))
			}
		}
		for _, c := range name {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '*' || c == '?') {
				return s, errorf(ErrSyntax, field, "%s: an action name holds only letters, digits, '*' and '?'", quote(a))
			}
		}
		pat := svc + ":" + strings.ToLower(name)
		bits, known := actions.service[svc]
		if !known {
			s.foreign = append(s.foreign, pat)
			continue
		}
		var matched actionBits
		for id := range actions.names {
			if bits.has(actionID(id)) && globFold(pat, actions.lower[id]) {
				matched.add(actionID(id))
			}
		}
		if matched.empty() {
			return s, errorf(ErrUnknownAction, field, "%s names no %s action (see the service's actions in the AWS Service Authorization Reference)", quote(a), svc)
		}
		s.known.union(&matched)
	}
	return s, nil
}

// onlyServices reports whether the set's patterns name only actions of
// the given known services ("*" is left to the caller).
func (s *actionSet) onlyServices(allowed ...string) bool {
	if len(s.foreign) > 0 {
		return false
	}
	var ok actionBits
	for _, svc := range allowed {
		b := actions.service[svc]
		ok.union(&b)
	}
	return s.known.subsetOf(&ok)
}
