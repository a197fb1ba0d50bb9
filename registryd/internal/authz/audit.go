package authz

// The audit record of each question: the seam writes one for every
// decision it makes (docs/audit.md), through the engine, before the
// answer goes back to the handler. A record that cannot be written
// refuses the request, as Vault's audit devices do.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/request"
)

// Recorder keeps the audit log (*engine.Engine).
type Recorder interface {
	RecordAudit(ctx context.Context, rec engine.AuditRecord, durable bool) error
	// RecordAuditAll writes several records together (a listing's
	// denials).
	RecordAuditAll(ctx context.Context, recs []engine.AuditRecord, durable bool) error
	// RecordAuditSyncing writes rec and returns with its sync under way.
	RecordAuditSyncing(ctx context.Context, rec engine.AuditRecord) (wait func() error, err error)
}

var _ Recorder = (*engine.Engine)(nil)

// Mutating reports whether action changes the store (or the registry's
// configuration) when it is carried out: a push, a delete, a policy or
// setting put, a collection, a key operation. An allowed mutating action
// is recorded durably (synced before the answer: while the change is
// made, when the server's answer waits for it), as a denial is, but for
// an upload session's steps (sessionStep); the other actions only read.
func Mutating(action Action) bool { return mutating[action] }

// mutating is the table of the actions that change something, known to
// this package or not yet (so that an action added later is classified
// here already). Every other action is read-only:
// StartLifecyclePolicyPreview and berth:PreviewLifecycle compute without
// storing, GetAuthorizationToken mints a token and stores nothing.
var mutating = map[Action]bool{}

func init() {
	for _, name := range []string{
		"BatchDeleteImage", "BatchImportUpstreamImage", "CompleteLayerUpload",
		"CreatePullThroughCacheRule", "CreateRepository", "CreateRepositoryCreationTemplate",
		"DeleteLifecyclePolicy", "DeletePullThroughCacheRule", "DeleteRegistryPolicy",
		"DeleteRepository", "DeleteRepositoryCreationTemplate", "DeleteRepositoryPolicy",
		"DeleteSigningConfiguration", "DeregisterPullTimeUpdateExclusion", "InitiateLayerUpload",
		"PutAccountSetting", "PutImage", "PutImageScanningConfiguration", "PutImageTagMutability",
		"PutLifecyclePolicy", "PutRegistryPolicy", "PutRegistryScanningConfiguration",
		"PutReplicationConfiguration", "PutSigningConfiguration", "RegisterPullTimeUpdateExclusion",
		"ReplicateImage", "SetRepositoryPolicy", "StartImageScan", "TagResource", "UntagResource",
		"UpdateImageStorageClass", "UpdatePullThroughCacheRule", "UpdateRepositoryCreationTemplate",
		"UploadLayerPart",
	} {
		mutating[Action("ecr:"+name)] = true
	}
	for _, name := range []string{
		"CancelKeyDeletion", "CreateAlias", "CreateGrant", "CreateKey", "DeleteAlias",
		"DisableKey", "DisableKeyRotation", "EnableKey", "EnableKeyRotation", "ImportKeyMaterial",
		"PutKeyPolicy", "ReplicateKey", "RetireGrant", "RevokeGrant", "RotateKeyOnDemand",
		"ScheduleKeyDeletion", "TagResource", "UntagResource", "UpdateAlias", "UpdateKeyDescription",
	} {
		mutating[Action("kms:"+name)] = true
	}
	for _, a := range []Action{SecretsCreateSecret, SecretsPutSecretValue, SecretsDeleteSecret} {
		mutating[a] = true
	}
	for _, a := range []Action{AdminApplyLifecycle, AdminCollectGarbage, AdminReloadIdentities, AdminRedriveEvents, AdminImportVulnerabilities, AdminRollbackVulnerabilities, AdminRetryReplication} {
		mutating[a] = true
	}
}

// record writes the audit record of one question: req decided as
// decision (the final one: after the open registry and anonymous pull
// allowances) on resource (an ARN, or "*"), because of statement, and
// refused with refusal (nil when allowed). It is durable for a denial and
// for an allowed change, but for an upload session's steps; an allowed
// change's sync is left under way for the answer to wait for when the
// request's Info defers it (DeferAuditSyncs), and for a filter question
// (Visible). (A listing's questions are recorded by its Listing.) It returns refusal once the record is
// written, or the failure to write it, which refuses the request (503
// for engine.ErrAuditUnavailable). The request's details come from its
// request.Info.
func (a *IAM) record(ctx context.Context, req *engine.AccessRequest, resource string, decision engine.AuditDecision, statement string, refusal error) error {
	info := request.InfoFrom(ctx)
	action := Action(req.Action)
	rec := auditRecord(info, req, resource, decision, statement, refusal)
	// A filter question (Visible) is recorded but not synced: a
	// candidate it hides is no attempt on it. The steps of an upload
	// session (its start, its chunks, its end without a blob) change
	// nothing durable: their records are written, and the completing
	// PUT's is synced.
	durable := (decision.Denied() || mutating[action] && !sessionStep[action]) && !isFilter(ctx)
	var err error
	var syncs *request.AuditSyncs
	if durable && decision == engine.AuditAllow {
		syncs = request.AuditSyncsOf(ctx)
	}
	switch {
	case syncs != nil:
		// A change: its record is written now, before the change, and
		// synced while the change is made; the answer (or, for a change
		// made in the background, its first durable commit) waits for it.
		var wait func() error
		if wait, err = a.decider.RecordAuditSyncing(ctx, rec); err == nil {
			syncs.Add(wait)
		}
	default:
		err = a.decider.RecordAudit(ctx, rec, durable)
	}
	switch {
	case err == nil:
		return refusal
	case refusal != nil && !action.Known():
		// A question the seam could not even put (an action without the
		// form the log needs): refused all the same.
		return refusal
	}
	return fmt.Errorf("authz: recording %s on %s: %w", req.Action, resource, err)
}

// auditRecord is the record of req, decided as decision on resource ("":
// "*") because of statement, refused with refusal (nil when allowed), in
// the request info describes.
func auditRecord(info *request.Info, req *engine.AccessRequest, resource string, decision engine.AuditDecision, statement string, refusal error) engine.AuditRecord {
	action := Action(req.Action)
	if resource == "" {
		resource = "*"
	}
	rec := engine.AuditRecord{
		RequestID:  info.RequestID,
		SourceIP:   sourceIP(info),
		UserAgent:  info.UserAgent,
		API:        apiOf(info),
		Method:     info.Method,
		Path:       info.Path,
		Action:     req.Action,
		Resource:   resource,
		Repository: req.Repository,
		Decision:   decision,
		Statement:  statement,
		Mutating:   decision == engine.AuditAllow && mutating[action],
		ReadOnly:   !mutating[action],
	}
	rec.SetPrincipal(req.Principal)
	if refusal != nil {
		rec.ErrorMessage = strings.ReplaceAll(refusal.Error(), "engine: ", "")
	}
	return rec
}

// sessionStep are the actions of an upload session's steps, which change
// no durable state of the store: starting a session, sending a chunk,
// reading its state, cancelling it. A session is parked in memory and in
// a scratch file; the blob is made durable by the completing PUT
// (ecr:CompleteLayerUpload), whose record is synced. A mount or a
// monolithic upload in the POST also asks ecr:CompleteLayerUpload.
var sessionStep = map[Action]bool{InitiateLayerUpload: true, UploadLayerPart: true}

// apiOf is the interface a request came through, by what the handlers
// filled in: an ECR operation, or the server's route.
func apiOf(info *request.Info) engine.AuditAPI {
	switch {
	case info.Operation != "":
		return engine.AuditAPIECR
	case info.Route == "admin":
		return engine.AuditAPIAdmin
	case info.Route == "console":
		return engine.AuditAPIConsole
	}
	return engine.AuditAPIOCI
}

// sourceIP is the client's address as the audit log records it (the
// one decisions see as aws:SourceIp), "local" for a request through the
// admin socket (as for a local command), or "" when it cannot be told.
func sourceIP(info *request.Info) string {
	if info.Local {
		return "local"
	}
	if !info.SourceIP.IsValid() {
		return ""
	}
	return info.SourceIP.String()
}

// filterKey marks the context of a filter question (Visible).
type filterKey struct{}

// isFilter reports whether ctx is a filter question's.
func isFilter(ctx context.Context) bool { return ctx.Value(filterKey{}) != nil }

// Visible reports whether who may perform action on resource when the
// question only filters candidates (a blob mount's probing for a
// repository that holds the blob): the decision Authorize makes,
// recorded in the audit log like any other, but not synced for a
// refusal, since a candidate hidden is no attempt on it. A listing asks
// through a Listing instead.
func Visible(ctx context.Context, az Authorizer, who engine.Principal, action Action, resource Resource) (bool, error) {
	err := az.Authorize(context.WithValue(ctx, filterKey{}, true), who, action, resource)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, engine.ErrAccessDenied):
		return false, nil
	}
	return false, err
}
