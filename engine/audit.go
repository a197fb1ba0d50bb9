package engine

// The audit log: every access decision and every change, kept by the
// engine in Options.AuditDir. engine/internal/audit is the store (segments
// of CloudTrail-shaped JSON lines, group commit, retention, queries); this
// file is its API in the engine's own types. docs/audit.md has the format,
// the durability rule and the costs.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/berthstore/berth/engine/internal/audit"
	"github.com/berthstore/berth/engine/internal/iam"
)

// Defaults and bounds of the audit options.
const (
	// DefaultAuditMaxAge is how long audit records are kept by default:
	// 90 days, as long as CloudTrail's event history keeps management
	// events.
	DefaultAuditMaxAge = 90 * 24 * time.Hour
	// DefaultAuditMaxBytes bounds the audit log's directory by default:
	// 1 GiB.
	DefaultAuditMaxBytes = 1 << 30
	// MinAuditMaxBytes is the smallest AuditMaxBytes Validate accepts.
	MinAuditMaxBytes = 1 << 20
)

// maxAuditSegmentBytes is the size of an audit segment when
// AuditMaxBytes is large; smaller bounds get smaller segments (a
// sixteenth of the bound, at least 64 KiB), so that retention deletes in
// small steps.
const (
	maxAuditSegmentBytes = 64 << 20
	minAuditSegmentBytes = 64 << 10
)

// AuditDecision is what authorization decided, as a record states it.
type AuditDecision string

// The decisions a record holds, and AuditAnyDenial for queries.
const (
	// AuditAllow: a statement allowed the request, or the registry let it
	// through (an open registry, an anonymous pull); Statement says which.
	AuditAllow AuditDecision = "Allow"
	// AuditExplicitDeny: a Deny statement matched.
	AuditExplicitDeny AuditDecision = "ExplicitDeny"
	// AuditImplicitDeny: no statement allowed the request.
	AuditImplicitDeny AuditDecision = "ImplicitDeny"
	// AuditAnyDenial, as an AuditQuery's Decision, selects both kinds of
	// denial. It is never a record's decision.
	AuditAnyDenial AuditDecision = "Deny"
)

// AuditDecisionOf is the decision a record states for an outcome.
func AuditDecisionOf(o Outcome) AuditDecision {
	switch o {
	case Allow:
		return AuditAllow
	case ExplicitDeny:
		return AuditExplicitDeny
	}
	return AuditImplicitDeny
}

// Denied reports whether d refuses the request (either kind of denial).
func (d AuditDecision) Denied() bool { return d == AuditExplicitDeny || d == AuditImplicitDeny }

// AuditPrincipalType is the kind of caller a record names
// (userIdentity.type).
type AuditPrincipalType string

// The kinds of caller.
const (
	// AuditIAMUser: a user authenticated by password, access key or
	// login token.
	AuditIAMUser AuditPrincipalType = "IAMUser"
	// AuditAnonymous: a caller without credentials, the principal "*".
	AuditAnonymous AuditPrincipalType = "Anonymous"
	// AuditLocal: a user of the machine (UserName is the operating
	// system's user): the operator's command line acting on a store no
	// daemon holds, or a peer of the daemon's admin socket (UserID is then
	// "uid:<uid>"); or the engine's own scheduled work (UserName
	// AuditSystemUser, API AuditAPIEngine).
	AuditLocal AuditPrincipalType = "Local"
)

// AuditAPI is the interface a recorded request came through.
type AuditAPI string

// The interfaces.
const (
	AuditAPIOCI     AuditAPI = "oci"     // the OCI Distribution API (/v2/...)
	AuditAPIECR     AuditAPI = "ecr"     // the ECR JSON API
	AuditAPIAdmin   AuditAPI = "admin"   // registryd's admin API (/admin/v1/...)
	AuditAPIConsole AuditAPI = "console" // the web console
	AuditAPICLI     AuditAPI = "cli"     // a registryd command acting on the store itself
	// AuditAPIEngine: the engine's own work (schedules, events routed), recorded as
	// principal type AuditLocal and user AuditSystemUser.
	AuditAPIEngine AuditAPI = "engine"
)

// AuditRecord is one audit event: an access decision (allowed or denied)
// or a change made by a local command. On disk it is one CloudTrail-shaped
// JSON line (docs/audit.md names the field each goes to).
type AuditRecord struct {
	// Time is when the record was written (eventTime), in UTC. RecordAudit
	// sets it from the engine's clock; records read back carry it.
	Time time.Time
	// EventID is the record's unique id (eventID). RecordAudit sets a
	// random UUID when it is empty.
	EventID string
	// RequestID is the HTTP request or command the record belongs to
	// (requestID); the records of one request's questions share it.
	RequestID string

	// PrincipalARN, Account, UserName and UserID name the caller
	// (userIdentity.arn, .accountId, .userName, .principalId); an
	// anonymous caller's ARN is "*". SetPrincipal fills them.
	PrincipalARN, Account, UserName, UserID string
	// PrincipalType is the kind of caller (required).
	PrincipalType AuditPrincipalType
	// SourceIP is the caller's address (sourceIPAddress), "local" for a
	// local command.
	SourceIP string
	// UserAgent is the caller's User-Agent header (userAgent).
	UserAgent string

	// API is the interface the request came through (required).
	API AuditAPI
	// Method and Path are the HTTP request's method and path.
	Method, Path string

	// Action is the action decided or carried out, "ecr:PutImage",
	// "berth:CollectGarbage", "kms:CreateKey" (required).
	Action string
	// Resource is the ARN acted on (RepositoryARN, KeyARN), or "*" for
	// the registry as a whole (required).
	Resource string
	// Repository is the repository's name when the action is on one.
	Repository string
	// Parameters are further request parameters worth keeping
	// ("imageTag", "dryRun"), at most 16. Optional.
	Parameters map[string]string

	// Decision is what authorization decided (required; never
	// AuditAnyDenial).
	Decision AuditDecision
	// Statement names the deciding statement (Decision.Reason), or why
	// the request was let through without one.
	Statement string
	// Mutating is true when the request goes on to change the store (an
	// allowed push, delete, policy change, collection...).
	Mutating bool
	// ReadOnly is true when the action only reads (readOnly).
	ReadOnly bool
	// ErrorCode and ErrorMessage say how the request ended when it was
	// refused or failed; a denial without a code is "AccessDenied".
	ErrorCode, ErrorMessage string
}

// SetPrincipal names p as the record's caller: its ARN, account, user
// name and unique id, and type IAMUser; "*" and Anonymous for an
// anonymous caller; or its user name, "uid:<uid>" and Local for a local
// user (LocalPrincipal).
func (r *AuditRecord) SetPrincipal(p Principal) {
	if uid, ok := p.Local(); ok {
		r.PrincipalARN, r.Account, r.UserName = "", "", p.User
		r.UserID = "uid:" + strconv.FormatUint(uint64(uid), 10)
		r.PrincipalType = AuditLocal
		return
	}
	if p.Anonymous() {
		r.PrincipalARN, r.Account, r.UserName, r.UserID = "*", "", "", ""
		r.PrincipalType = AuditAnonymous
		return
	}
	r.PrincipalARN, r.Account, r.UserName = p.ARN(), p.Account, p.User
	r.UserID = p.iam.UserID
	if r.UserID == "" {
		r.UserID = UserID(p.Account, p.User)
	}
	r.PrincipalType = AuditIAMUser
}

// AuditQuery selects audit records. The zero AuditQuery selects every
// record, newest first.
type AuditQuery struct {
	// Since and Until bound the records' times: Since <= Time < Until; a
	// zero bound is open.
	Since, Until time.Time
	// Principal selects one caller's records, by ARN or user name.
	Principal string
	// Repository selects one repository's records.
	Repository string
	// Action selects by action, exactly or with '*' and '?' wildcards,
	// without case ("ecr:*Image*").
	Action string
	// Decision selects AuditAllow, AuditExplicitDeny, AuditImplicitDeny
	// or AuditAnyDenial records; empty selects all.
	Decision AuditDecision
	// Limit stops after that many records; 0 is no limit.
	Limit int
	// OldestFirst returns records in the order they were written (for
	// history); the default is newest first (with a Limit, the latest).
	OldestFirst bool
}

// AuditStatus is the audit log's health and size, for /metrics and an
// operator.
type AuditStatus struct {
	// Enabled is false when Options.DisableAudit is set; the other fields
	// are then zero.
	Enabled bool
	// Dir is the log's directory.
	Dir string
	// Healthy is false after a write or sync failed, until one succeeds:
	// requests that need a record are refused meanwhile.
	Healthy bool
	// LastError is the most recent write or sync failure since open
	// ("" if none), at LastErrorTime.
	LastError     string
	LastErrorTime time.Time
	// Segments and Bytes are the log's files and their total size;
	// Oldest and Newest the times of its first and last records.
	Segments       int
	Bytes          int64
	Oldest, Newest time.Time
	// Allowed, ExplicitDenied and ImplicitDenied count the records
	// written since open, by decision; Failed the appends that could not
	// be written (each refused its request).
	Allowed, ExplicitDenied, ImplicitDenied uint64
	Failed                                  uint64
	// Writes and Syncs count the write(2) and fdatasync(2) calls since
	// open (several records share one under load).
	Writes, Syncs uint64
	// DroppedAtOpen is the bytes of a torn last line (a crash in the
	// middle of a write, never an acknowledged record) cut at open.
	DroppedAtOpen int64
}

// openAudit opens the audit log of a store in dir with o (defaults
// filled): Options.AuditDir, or dir/audit, created when missing.
func openAudit(dir string, o *Options) (*audit.Log, string, error) {
	auditDir := o.AuditDir
	if auditDir == "" {
		auditDir = filepath.Join(dir, "audit")
	}
	seg := o.AuditMaxBytes / 16
	seg = max(minAuditSegmentBytes, min(seg, maxAuditSegmentBytes))
	l, err := audit.Open(auditDir, &audit.Options{
		SegmentBytes: seg,
		MaxAge:       o.AuditMaxAge,
		MaxBytes:     o.AuditMaxBytes,
		Region:       o.Region,
		AccountID:    o.Account,
		Now:          o.Clock.Now,
		Logger:       o.Logger,
		FS:           o.FS,
	})
	if err != nil {
		return nil, auditDir, fmt.Errorf("engine: audit log: %w", err)
	}
	return l, auditDir, nil
}

// RecordAudit writes rec to the audit log. It returns once the record is
// written to the operating system (a crash of the process cannot lose
// it), and with durable once it is also synced to the disk (a crash of
// the machine cannot lose it): durable for denials and changes, as the
// authorization seam and the local commands write them. The caller must
// refuse the request rec records when RecordAudit fails, so that nothing
// happens unrecorded.
//
// RecordAudit sets rec's Time (from the engine's clock) and, when empty,
// its EventID. Errors: ErrInvalidArgument (rec lacks an action
// "service:Name", a decision, a principal type, an API or a resource),
// ErrAuditUnavailable (the disk refused the write: answer 503; the cause,
// such as syscall.ENOSPC, is wrapped), ErrClosed. With
// Options.DisableAudit it records nothing and returns nil. ctx is not
// consulted: a decision made is recorded even if its request was given
// up meanwhile.
func (e *Engine) RecordAudit(_ context.Context, rec AuditRecord, durable bool) error {
	if e.audit == nil {
		if err := e.checkOpen(); err != nil {
			return err
		}
		return nil
	}
	if rec.Decision == AuditAnyDenial {
		return fmt.Errorf("%w: audit record: decision %q is for queries", ErrInvalidArgument, rec.Decision)
	}
	if err := e.auditError(e.audit.Append(rec.toAudit(), durable)); err != nil {
		return err
	}
	e.auditCounts[auditCountIndex(rec.Decision)].Add(1)
	return nil
}

// RecordAuditAll writes recs as RecordAudit writes each, together (usually
// one write(2) for all): a listing records the question it asked about
// each repository this way. It returns the first error; an invalid record
// fails the call before any is written.
func (e *Engine) RecordAuditAll(_ context.Context, recs []AuditRecord, durable bool) error {
	if e.audit == nil {
		return e.checkOpen()
	}
	ars := make([]audit.Record, len(recs))
	for i := range recs {
		if recs[i].Decision == AuditAnyDenial {
			return fmt.Errorf("%w: audit record: decision %q is for queries", ErrInvalidArgument, recs[i].Decision)
		}
		ars[i] = recs[i].toAudit()
	}
	if err := e.auditError(e.audit.AppendAll(ars, durable)); err != nil {
		return err
	}
	for i := range recs {
		e.auditCounts[auditCountIndex(recs[i].Decision)].Add(1)
	}
	return nil
}

// RecordAuditSyncing writes rec as a durable RecordAudit does, but returns
// once the record is written (a crash of the process cannot lose it) with
// its sync under way, and a wait that returns when the sync is done (or
// fails: ErrAuditUnavailable). The caller makes the change rec records
// and calls wait, once, before it acknowledges the change: the change's
// own syncs and the record's overlap. An error is RecordAudit's (nothing
// to wait for then).
func (e *Engine) RecordAuditSyncing(_ context.Context, rec AuditRecord) (wait func() error, err error) {
	if e.audit == nil {
		return func() error { return nil }, e.checkOpen()
	}
	if rec.Decision == AuditAnyDenial {
		return nil, fmt.Errorf("%w: audit record: decision %q is for queries", ErrInvalidArgument, rec.Decision)
	}
	p, err := e.audit.AppendSyncing(rec.toAudit())
	if err := e.auditError(err); err != nil {
		return nil, err
	}
	e.auditCounts[auditCountIndex(rec.Decision)].Add(1)
	return func() error { return e.auditError(p.Wait()) }, nil
}

// auditError is an error of the audit log as the engine reports it.
func (e *Engine) auditError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, audit.ErrInvalidRecord):
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	case errors.Is(err, audit.ErrClosed):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
}

// auditCountIndex is the index of a decision's counter.
func auditCountIndex(d AuditDecision) int {
	switch d {
	case AuditAllow:
		return 0
	case AuditExplicitDeny:
		return 1
	}
	return 2
}

// AuditRecords calls fn with each audit record q selects, in q's order,
// until fn returns an error (which it returns), the limit is reached or
// ctx is done. Errors: ErrInvalidArgument (a query that cannot be
// answered: Until before Since, a negative Limit, an unknown decision),
// ErrAuditDisabled, ErrClosed.
func (e *Engine) AuditRecords(ctx context.Context, q AuditQuery, fn func(AuditRecord) error) error {
	aq, err := e.auditQuery(q)
	if err != nil {
		return err
	}
	return auditQueryErr(e.audit.Records(ctx, aq, func(r audit.Record) error {
		return fn(auditRecordOf(&r))
	}))
}

// ExportAudit writes the lines of the audit records q selects to w, in
// q's order: CloudTrail-shaped JSON, one event a line, as stored (`jq`
// reads them; DecodeAuditRecord reads one back). Errors as AuditRecords.
func (e *Engine) ExportAudit(ctx context.Context, q AuditQuery, w io.Writer) error {
	aq, err := e.auditQuery(q)
	if err != nil {
		return err
	}
	return auditQueryErr(e.audit.Export(ctx, aq, w))
}

// auditQuery checks that the log can be queried and translates q.
func (e *Engine) auditQuery(q AuditQuery) (audit.Query, error) {
	if err := e.checkOpen(); err != nil {
		return audit.Query{}, err
	}
	if e.audit == nil {
		return audit.Query{}, ErrAuditDisabled
	}
	aq := audit.Query{
		Since: q.Since, Until: q.Until,
		Principal: q.Principal, Repository: q.Repository, Action: q.Action,
		Decision: audit.Decision(q.Decision), Limit: q.Limit,
	}
	if q.OldestFirst {
		aq.Order = audit.OldestFirst
	}
	return aq, nil
}

// auditQueryErr translates the errors of a query.
func auditQueryErr(err error) error {
	if errors.Is(err, audit.ErrInvalidQuery) {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return err
}

// AuditStatus reports the audit log's health, size and counters.
func (e *Engine) AuditStatus() AuditStatus {
	if e.audit == nil {
		return AuditStatus{}
	}
	s := e.audit.Status()
	out := AuditStatus{
		Enabled: true, Dir: e.auditDir, Healthy: s.Healthy, LastErrorTime: s.LastErrorTime,
		Segments: s.Segments, Bytes: s.Bytes, Oldest: s.Oldest, Newest: s.Newest,
		Allowed: e.auditCounts[0].Load(), ExplicitDenied: e.auditCounts[1].Load(), ImplicitDenied: e.auditCounts[2].Load(),
		Failed: s.Failed, Writes: s.Writes, Syncs: s.Syncs, DroppedAtOpen: s.DroppedAtOpen,
	}
	if s.LastError != nil {
		out.LastError = s.LastError.Error()
	}
	return out
}

// DecodeAuditRecord reads one line of an export (ExportAudit, the admin
// API's answer) back into a record. An error wraps ErrInvalidArgument.
func DecodeAuditRecord(line []byte) (AuditRecord, error) {
	r, err := audit.Decode(line)
	if err != nil {
		return AuditRecord{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return auditRecordOf(&r), nil
}

// RepositoryARN is the ARN of repository name in this registry,
// arn:aws:ecr:<region>:<account>:repository/<name>: the resource its
// access decisions and audit records name.
func (e *Engine) RepositoryARN(name string) string {
	return iam.RepositoryARN(e.opts.Region, e.opts.Account, name)
}

// KeyARN is the ARN of key-encryption key name,
// arn:aws:kms:<region>:<account>:key/<name>.
func (e *Engine) KeyARN(name string) string {
	return iam.KeyARN(e.opts.Region, e.opts.Account, name)
}

// toAudit is r as the log stores it.
func (r *AuditRecord) toAudit() audit.Record {
	return audit.Record{
		EventID: r.EventID, RequestID: r.RequestID,
		PrincipalARN: r.PrincipalARN, Account: r.Account, UserName: r.UserName, UserID: r.UserID,
		PrincipalType: audit.PrincipalType(r.PrincipalType), SourceIP: r.SourceIP, UserAgent: r.UserAgent,
		Action: r.Action, Resource: r.Resource, Repository: r.Repository, Parameters: r.Parameters,
		Decision: audit.Decision(r.Decision), Statement: r.Statement, Mutating: r.Mutating, ReadOnly: r.ReadOnly,
		ErrorCode: r.ErrorCode, ErrorMessage: r.ErrorMessage,
		API: audit.API(r.API), Method: r.Method, Path: r.Path,
	}
}

// auditRecordOf is a stored record in the engine's type.
func auditRecordOf(r *audit.Record) AuditRecord {
	return AuditRecord{
		Time: r.Time, EventID: r.EventID, RequestID: r.RequestID,
		PrincipalARN: r.PrincipalARN, Account: r.Account, UserName: r.UserName, UserID: r.UserID,
		PrincipalType: AuditPrincipalType(r.PrincipalType), SourceIP: r.SourceIP, UserAgent: r.UserAgent,
		API: AuditAPI(r.API), Method: r.Method, Path: r.Path,
		Action: r.Action, Resource: r.Resource, Repository: r.Repository, Parameters: r.Parameters,
		Decision: AuditDecision(r.Decision), Statement: r.Statement, Mutating: r.Mutating, ReadOnly: r.ReadOnly,
		ErrorCode: r.ErrorCode, ErrorMessage: r.ErrorMessage,
	}
}
