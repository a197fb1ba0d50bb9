package cli

// registryd audit: query the audit log, of a store no daemon holds
// (--data) or of the daemon that holds it (its admin socket, or --server:
// GET /admin/v1/audit); and the records of the changes the local commands
// make (docs/audit.md).

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/admin"
	"github.com/berthstore/berth/registryd/internal/request"
)

var auditCommand = &Command{
	Name:    "audit",
	Summary: "query the audit log (live, or of a stopped store)",
	Run:     runAudit,
}

func init() { Register(auditCommand) }

// defaultAuditLimit is how many records the table and --json show when
// --limit is not given (the newest); --export shows all.
const defaultAuditLimit = 100

// auditFlags are the audit command's own flags.
type auditFlags struct {
	username                string // --server-user's older name
	since, until            string
	principal, repo, action string
	decision                string
	limit                   int
	asJSON, export, oldest  bool
	limitSet                bool // --limit given
}

func (f *auditFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.username, "username", "", "the same as --server-user")
	fs.StringVar(&f.since, "since", "", "records at or after this time: RFC 3339 (2026-11-23T10:00:00Z), a date (2026-11-23) or a duration before now (1h, 7d)")
	fs.StringVar(&f.until, "until", "", "records before this time (as --since)")
	fs.StringVar(&f.principal, "principal", "", "records of this caller: user name or ARN (a local command's: the OS user)")
	fs.StringVar(&f.repo, "repository", "", "records of this repository")
	fs.StringVar(&f.action, "action", "", "records of this action, or a pattern with * and ? (ecr:*Image*), without case")
	fs.StringVar(&f.decision, "decision", "", "records of this decision: Allow, Deny (either denial), ExplicitDeny or ImplicitDeny")
	fs.IntVar(&f.limit, "limit", defaultAuditLimit, "at most this many records, the newest (0: all; --export: all unless given)")
	fs.BoolVar(&f.asJSON, "json", false, "print the records as CloudTrail JSON lines, newest first")
	fs.BoolVar(&f.export, "export", false, "print the records as CloudTrail JSON lines, oldest first, all of them unless --limit (an archive of the log)")
	fs.BoolVar(&f.oldest, "oldest-first", false, "oldest first (the default is newest first, as CloudTrail's LookupEvents)")
}

// values are the query as the admin route's parameters (which the
// offline query parses too, so both read them alike).
func (f *auditFlags) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set(admin.AuditSince, f.since)
	set(admin.AuditUntil, f.until)
	set(admin.AuditPrincipal, f.principal)
	set(admin.AuditRepository, f.repo)
	set(admin.AuditAction, f.action)
	set(admin.AuditDecision, f.decision)
	limit := f.limit
	if f.export && !f.limitSet {
		limit = 0
	}
	v.Set(admin.AuditLimit, strconv.Itoa(limit))
	if f.export || f.oldest {
		v.Set(admin.AuditOrder, "oldest")
	}
	return v
}

// runAudit runs "registryd audit [--data DIR | --server URL] [query flags] [--json | --export]".
func runAudit(ctx context.Context, env Env, args []string) int {
	fs := flagSetFor(env, args, "audit", "audit [--data DIR | --server URL] [--since T] [--until T] [--principal P] [--repository R] [--action A] [--decision D] [--limit N] [--json | --export]")
	f := &auditFlags{}
	t, code := parseTarget(env, fs, args, func(fs *flag.FlagSet, _ *Config) { f.bind(fs) })
	if t == nil {
		return code
	}
	fs.Visit(func(fl *flag.Flag) { f.limitSet = f.limitSet || fl.Name == "limit" })
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "registryd audit: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if f.asJSON && f.export {
		fmt.Fprintln(env.Stderr, "registryd audit: --json and --export are two ways to print lines: choose one")
		return exitUsage
	}
	if f.username != "" {
		if t.live.user != "" && t.live.user != f.username {
			fmt.Fprintln(env.Stderr, "registryd audit: --username and --server-user name two users: choose one")
			return exitUsage
		}
		t.live.user = f.username
	}
	values := f.values()
	q, err := admin.ParseAuditQuery(values, time.Now())
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd audit:", err)
		return exitUsage
	}
	lines := f.asJSON || f.export
	if code := t.open(ctx, env, fs, nil); code != exitOK {
		return code
	}
	if t.daemon != nil {
		return auditLive(ctx, env, t.daemon, values, lines)
	}
	if lines {
		err = t.eng.ExportAudit(ctx, q, env.Stdout)
	} else {
		tb := newAuditTable(env.Stdout)
		if err = t.eng.AuditRecords(ctx, q, tb.add); err == nil {
			err = tb.flush()
		}
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd audit:", err)
		return t.close(env, exitError)
	}
	return t.close(env, exitOK)
}

// auditLive asks the daemon (GET /admin/v1/audit) and prints its lines,
// or a table of them.
func auditLive(ctx context.Context, env Env, d *daemon, values url.Values, lines bool) int {
	resp, err := d.send(ctx, http.MethodGet, "audit", values, nil)
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd audit:", err)
		return exitError
	}
	defer resp.Body.Close()
	if lines {
		if _, err := io.Copy(env.Stdout, resp.Body); err != nil {
			fmt.Fprintln(env.Stderr, "registryd audit:", err)
			return exitError
		}
		return exitOK
	}
	t := newAuditTable(env.Stdout)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 2<<20)
	for sc.Scan() {
		r, err := engine.DecodeAuditRecord(sc.Bytes())
		if err != nil {
			fmt.Fprintln(env.Stderr, "registryd audit: a line of the answer:", err)
			return exitError
		}
		_ = t.add(r)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(env.Stderr, "registryd audit:", err)
		return exitError
	}
	if err := t.flush(); err != nil {
		fmt.Fprintln(env.Stderr, "registryd audit:", err)
		return exitError
	}
	return exitOK
}

// auditTable prints records as a table: time, principal, action,
// resource, decision, statement.
type auditTable struct{ tw *tabwriter.Writer }

func newAuditTable(w io.Writer) *auditTable {
	t := &auditTable{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	fmt.Fprintln(t.tw, "TIME\tPRINCIPAL\tACTION\tRESOURCE\tDECISION\tSTATEMENT")
	return t
}

func (t *auditTable) add(r engine.AuditRecord) error {
	who := r.UserName
	switch {
	case r.PrincipalType == engine.AuditAnonymous:
		who = "anonymous"
	case r.PrincipalType == engine.AuditLocal:
		who = "local:" + r.UserName
	case who == "":
		who = r.PrincipalARN
	}
	_, err := fmt.Fprintf(t.tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format("2006-01-02T15:04:05.000Z"), who, r.Action,
		shortResource(r.Resource), r.Decision, oneLine(r.Statement))
	return err
}

func (t *auditTable) flush() error { return t.tw.Flush() }

// shortResource is an ARN's resource part (repository/app, key/k1), or
// the text as it is.
func shortResource(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" {
		return parts[5]
	}
	return arn
}

// oneLine keeps a table cell on one line.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\t", " ").Replace(s)
}

// localChange is a change a local command is about to make to a store no
// daemon holds, to be recorded before it is made.
type localChange struct {
	command    string // the command line's words: "repo create"
	action     string // the IAM action it amounts to: "ecr:CreateRepository"
	resource   string // its ARN, or "*"
	repository string
	parameters map[string]string
	dryRun     bool // changes nothing (gc --dry-run): recorded, not as a change
}

// recordLocal records c in eng's audit log, durably, as the operating
// system's user (principal type Local, source "local") allowed by
// holding the store. The caller makes the change only when it returns
// nil: no change goes unrecorded.
func recordLocal(ctx context.Context, eng *engine.Engine, c localChange) error {
	rec := engine.AuditRecord{
		RequestID:     request.NewRequestID(),
		UserName:      osUser(),
		PrincipalType: engine.AuditLocal,
		SourceIP:      "local",
		UserAgent:     "registryd " + c.command,
		API:           engine.AuditAPICLI,
		Action:        c.action,
		Resource:      c.resource,
		Repository:    c.repository,
		Parameters:    c.parameters,
		Decision:      engine.AuditAllow,
		Statement:     "allowed: a local command on a store no daemon holds (no policy is evaluated)",
		Mutating:      !c.dryRun,
		ReadOnly:      c.dryRun,
	}
	if err := eng.RecordAudit(ctx, rec, true); err != nil {
		return fmt.Errorf("cannot record the change in the audit log, so it is not made: %w", err)
	}
	return nil
}

// osUser is the name of the operating system's user running the command
// (its uid when the user database does not name it).
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid:" + strconv.Itoa(os.Getuid())
}

// recordTemplatePut records the put of the creation template of prefix:
// a create when no template has the prefix, else an update.
func recordTemplatePut(ctx context.Context, eng *engine.Engine, command, prefix string) error {
	ts, err := eng.CreationTemplates(ctx)
	if err != nil {
		return err
	}
	action := "ecr:CreateRepositoryCreationTemplate"
	for _, t := range ts {
		if t.Prefix == prefix {
			action = "ecr:UpdateRepositoryCreationTemplate"
		}
	}
	return recordLocal(ctx, eng, localChange{command: command, action: action, resource: "*",
		parameters: map[string]string{"prefix": prefix}})
}

// recordCacheRulePut records the put of the pull-through cache rule of
// prefix: a create when no rule has the prefix, else an update.
func recordCacheRulePut(ctx context.Context, eng *engine.Engine, command string, r engine.PullThroughCacheRule) error {
	rules, err := eng.PullThroughCacheRules(ctx)
	if err != nil {
		return err
	}
	action := "ecr:CreatePullThroughCacheRule"
	for _, have := range rules {
		if have.ECRRepositoryPrefix == r.ECRRepositoryPrefix {
			action = "ecr:UpdatePullThroughCacheRule"
		}
	}
	return recordLocal(ctx, eng, localChange{command: command, action: action, resource: "*",
		parameters: map[string]string{"ecrRepositoryPrefix": r.ECRRepositoryPrefix, "upstreamRegistryUrl": r.UpstreamRegistryURL,
			"upstreamRegistry": r.UpstreamRegistry, "credentialArn": r.CredentialARN}})
}
