package cli

// registryd iam check|simulate: validate an identity file, and ask what
// a decision would be (docs/policies.md).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/admin"
	"github.com/berthstore/berth/registryd/internal/adminsock"
	"github.com/berthstore/berth/registryd/internal/auth"
	"github.com/berthstore/berth/registryd/internal/authz"
)

var iamCommand = &Command{
	Name:    "iam",
	Summary: "check an identity file or the identities in force; simulate an access decision (live, or on a stopped store)",
	Run:     runIAM,
}

func init() { Register(iamCommand) }

// serverPasswordEnv names the environment variable holding the password
// of --server-user.
const serverPasswordEnv = "BERTH_PASSWORD"

func runIAM(ctx context.Context, env Env, args []string) int {
	const synopsis = "iam check FILE | iam simulate [flags]"
	if code, done := subcommandUsage(env, args, "iam", synopsis, false); done {
		return code
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "check":
		return runIAMCheck(ctx, env, rest)
	case "simulate":
		return runIAMSimulate(ctx, env, rest)
	default:
		fmt.Fprintf(env.Stderr, "registryd iam: unknown subcommand %q (want check or simulate)\n", sub)
		return exitUsage
	}
}

// runIAMCheck runs "registryd iam check [--json] FILE": exit 1 with the
// file's problems, or the users, their groups and policies; without FILE,
// those in force at the daemon holding --data (its admin socket) or at
// --server (GET /admin/v1/iam/identities, berth:DescribeIdentities).
func runIAMCheck(ctx context.Context, env Env, args []string) int {
	fs := flagSetFor(env, args, "iam check", "iam check [--json] FILE | iam check [--json] [--data DIR | --server URL]")
	var (
		asJSON bool
		lf     liveFlags
	)
	cfg, err := parseFlags(fs, args, func(fs *flag.FlagSet, c *Config) {
		fs.BoolVar(&asJSON, "json", false, "print the identities as JSON")
		fs.StringVar(&c.Data, "data", c.Data, "without FILE: the store whose daemon is asked for the identities in force")
		fs.StringVar(&c.AdminSocket, "admin-socket", c.AdminSocket, "without FILE: the admin socket of that daemon (default <data>/admin.sock)")
		lf.bind(fs)
	})
	if err != nil {
		if errors.Is(err, ErrConfig) {
			fmt.Fprintln(env.Stderr, "registryd:", err)
			return exitUsage
		}
		return flagExit(err)
	}
	var s auth.IdentitySummary
	switch fs.NArg() {
	case 1:
		var given []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "json" && f.Name != "config" {
				given = append(given, "--"+f.Name)
			}
		})
		if len(given) > 0 {
			fmt.Fprintf(env.Stderr, "registryd iam check: %s do not apply to a FILE (they name a daemon to ask)\n", strings.Join(given, ", "))
			return exitUsage
		}
		ids, err := auth.LoadIdentities(fs.Arg(0))
		if err != nil {
			fmt.Fprintln(env.Stderr, "registryd iam check:", err)
			return exitError
		}
		s = ids.Summary()
	case 0:
		d, err := lf.findDaemon(ctx, env, cfg)
		switch {
		case errors.Is(err, errDaemonFlags):
			fmt.Fprintln(env.Stderr, "registryd iam check:", strings.TrimPrefix(err.Error(), errDaemonFlags.Error()+": "))
			return exitUsage
		case err != nil:
			fmt.Fprintln(env.Stderr, "registryd iam check:", err)
			return exitError
		case d == nil:
			fmt.Fprintf(env.Stderr, "registryd iam check: want an identity FILE, or a daemon to ask for the identities in force: none answers on the admin socket of %s (--data, --admin-socket, --server)\n", cfg.Data)
			return exitUsage
		}
		if err := d.call(ctx, http.MethodGet, "iam/identities", nil, nil, &s); err != nil {
			fmt.Fprintln(env.Stderr, "registryd iam check:", err)
			return exitError
		}
	default:
		fmt.Fprintln(env.Stderr, "registryd iam check: want one identity FILE")
		return exitUsage
	}
	if asJSON {
		err = printJSON(env, s)
	} else {
		err = writeIdentities(env.Stdout, s)
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd iam check:", err)
		return exitError
	}
	return exitOK
}

// writeIdentities prints users -> groups -> policies, with each policy's
// number of statements, then what no user uses.
func writeIdentities(w io.Writer, s auth.IdentitySummary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d users, %d groups, %d policies\n", s.Source, len(s.Users), len(s.Groups), len(s.Policies))
	statements := map[string]int{}
	for _, p := range s.Policies {
		statements[p.Name] = p.Statements
	}
	groupPolicies := map[string][]string{}
	for _, g := range s.Groups {
		groupPolicies[g.Name] = g.Policies
	}
	usedGroups, usedPolicies := map[string]bool{}, map[string]bool{}
	for _, u := range s.Users {
		fmt.Fprintf(&b, "user %s (path %s)\n", u.Name, u.Path)
		for _, g := range u.Groups {
			usedGroups[g] = true
			fmt.Fprintf(&b, "  group %s\n", g)
			for _, p := range groupPolicies[g] {
				fmt.Fprintf(&b, "    policy %s (%s)\n", p, plural(statements[p], "statement"))
			}
		}
		for _, p := range u.Policies {
			usedPolicies[p.Name] = true
			if p.Via == "user" {
				fmt.Fprintf(&b, "  policy %s (%s)\n", p.Name, plural(p.Statements, "statement"))
			}
		}
		if len(u.Policies) == 0 {
			fmt.Fprintln(&b, "  no policy: allowed nothing unless a resource policy grants it")
		}
	}
	for _, g := range s.Groups {
		if !usedGroups[g.Name] {
			fmt.Fprintf(&b, "group %s: no user belongs to it\n", g.Name)
		}
	}
	for _, p := range s.Policies {
		if !usedPolicies[p.Name] {
			fmt.Fprintf(&b, "policy %s (%s): no user holds it\n", p.Name, plural(p.Statements, "statement"))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// plural is "1 statement" or "n statements".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// tagList is the repeatable --request-tag KEY=VALUE flag.
type tagList map[string]string

func (t tagList) String() string { return "" }

func (t tagList) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want KEY=VALUE")
	}
	if _, dup := t[k]; dup {
		return fmt.Errorf("tag %q given twice", k)
	}
	t[k] = v
	return nil
}

// serverOnlyFlags are the flags that mean something to a daemon; the
// others open a store and are refused with one (but --data and
// --admin-socket, which find a daemon through its socket).
var serverOnlyFlags = map[string]bool{
	"server": true, "server-user": true, "password-stdin": true, "iam": true, "user": true, "action": true, "repository": true,
	"key": true, "source-ip": true, "secure": true, "request-tag": true, "json": true, "config": true,
}

// runIAMSimulate runs "registryd iam simulate": the decision on one
// request, from the identity file and the store's repository and
// registry policies, or from those of the daemon holding the store (its
// admin socket, or --server).
func runIAMSimulate(ctx context.Context, env Env, args []string) int {
	const synopsis = "iam simulate --iam FILE --user USER --action ACTION [--repository NAME | --key NAME] [--source-ip IP] [--secure] [--request-tag KEY=VALUE]... [--data DIR [--metadata URL] [--blob-store URL] | --server URL [--server-user NAME]] [--json]"
	fs := flagSetFor(env, args, "iam simulate", synopsis)
	var (
		sim    authz.Simulation
		tags   = tagList{}
		lf     liveFlags
		asJSON bool
	)
	cfg, err := parseFlags(fs, args, func(fs *flag.FlagSet, c *Config) {
		fs.StringVar(&c.Data, "data", c.Data, "store directory whose repository and registry policies apply (its daemon is asked when one holds it)")
		fs.StringVar(&c.AdminSocket, "admin-socket", c.AdminSocket, "admin socket of the daemon holding --data (default <data>/admin.sock)")
		fs.StringVar(&c.Metadata, "metadata", c.Metadata, "the store's PostgreSQL database, when its metadata is there: postgres://USER@HOST:PORT/DB?sslmode=... (default: pebble under --data)")
		fs.StringVar(&c.BlobStore, "blob-store", c.BlobStore, "the store's S3-compatible bucket, when its blobs are there: s3://HOST[:PORT]/BUCKET[/PREFIX][?tls=false&region=R]")
		fs.StringVar(&c.IAM, "iam", c.IAM, "identity file whose policies the user holds (asking a daemon: instead of the daemon's; default the daemon's)")
		fs.StringVar(&c.ECRAccountID, "ecr-account-id", c.ECRAccountID, "registry ID of the ARNs (default 000000000000)")
		fs.StringVar(&c.ECRRegion, "ecr-region", c.ECRRegion, "region of the ARNs (default us-east-1)")
		fs.StringVar(&sim.User, "user", "", "user making the request (empty: an anonymous caller)")
		fs.StringVar(&sim.Action, "action", "", "action, such as ecr:PutImage (required)")
		fs.StringVar(&sim.Repository, "repository", "", "repository acted on (none: a registry-level action)")
		fs.StringVar(&sim.Key, "key", "", "key-encryption key acted on by a kms: action")
		fs.StringVar(&sim.SourceIP, "source-ip", "", "caller's address (aws:SourceIp)")
		fs.BoolVar(&sim.SecureTransport, "secure", false, "the request comes over TLS (aws:SecureTransport)")
		fs.Var(tags, "request-tag", "KEY=VALUE tag the request sets (aws:RequestTag/KEY, aws:TagKeys), repeatable")
		lf.bind(fs)
		fs.BoolVar(&asJSON, "json", false, "print the decision as JSON")
	})
	if err != nil {
		if errors.Is(err, ErrConfig) {
			fmt.Fprintln(env.Stderr, "registryd:", err)
			return exitUsage
		}
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "registryd iam simulate: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if len(tags) > 0 {
		sim.RequestTags = tags
	}
	if err := sim.Validate(); err != nil {
		fmt.Fprintln(env.Stderr, "registryd iam simulate:", err)
		return exitUsage
	}
	d, err := lf.findDaemon(ctx, env, cfg)
	switch {
	case errors.Is(err, errDaemonFlags):
		fmt.Fprintln(env.Stderr, "registryd iam simulate:", strings.TrimPrefix(err.Error(), errDaemonFlags.Error()+": "))
		return exitUsage
	case err != nil:
		fmt.Fprintln(env.Stderr, "registryd iam simulate:", err)
		return exitError
	}
	var res authz.SimulationResult
	if d != nil {
		var misplaced []string
		fs.Visit(func(f *flag.Flag) {
			if !serverOnlyFlags[f.Name] && !(d.socket && (f.Name == "data" || f.Name == "admin-socket")) {
				misplaced = append(misplaced, "--"+f.Name)
			}
		})
		if len(misplaced) > 0 {
			fmt.Fprintf(env.Stderr, "registryd iam simulate: %s do not apply with --server or the daemon holding the store (the daemon's store and account decide)\n", strings.Join(misplaced, ", "))
			return exitUsage
		}
		res, err = simulateOnDaemon(ctx, d, cfg.IAM, sim)
	} else {
		var code int
		if res, code, err = simulateOnStore(ctx, env, cfg, sim); code != exitOK {
			return code
		}
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd iam simulate:", err)
		return exitError
	}
	if asJSON {
		err = printJSON(env, res)
	} else {
		_, err = fmt.Fprintf(env.Stdout, "%s\n  principal %s\n  action    %s\n  resource  %s\n  reason    %s\n",
			res.Decision, res.Principal, res.Action, res.Resource, res.Reason)
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd iam simulate:", err)
		return exitError
	}
	return exitOK
}

// simulateOnStore decides sim with the identity file of cfg (the
// administrator policy for every user without one, as the daemon) and
// the repository and registry policies of the store at cfg.Data, which
// no daemon may hold.
func simulateOnStore(ctx context.Context, env Env, cfg *Config, sim authz.Simulation) (authz.SimulationResult, int, error) {
	ids := auth.DefaultIdentities()
	if cfg.IAM != "" {
		var err error
		if ids, err = auth.LoadIdentities(cfg.IAM); err != nil {
			fmt.Fprintln(env.Stderr, "registryd iam simulate:", err)
			return authz.SimulationResult{}, exitError, nil
		}
	} else {
		fmt.Fprintln(env.Stderr, "registryd iam simulate: no --iam: the user holds the administrator policy, as every user of a registry without an identity file does")
	}
	account := cfg.ECRAccountID
	if account == "" {
		account = engine.DefaultAccount
	}
	who, err := ids.Principal(account, sim.User)
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd iam simulate:", err)
		return authz.SimulationResult{}, exitUsage, nil
	}
	opts, err := cfg.EngineOptions()
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd:", err)
		return authz.SimulationResult{}, exitUsage, nil
	}
	exists, err := engine.StoreExists(ctx, cfg.Data, opts)
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd iam simulate:", err)
		return authz.SimulationResult{}, exitError, nil
	}
	if !exists {
		where := cfg.Data
		if opts.Metadata != "" {
			where += " (its metadata in the database --metadata names)"
		}
		fmt.Fprintf(env.Stderr, "registryd iam simulate: no store at %s: --data DIR (and --metadata for a store whose metadata is in PostgreSQL) names the registry's store (or ask a running daemon with --server URL)\n", where)
		return authz.SimulationResult{}, exitUsage, nil
	}
	opts.Account = account
	eng, err := engine.Open(cfg.Data, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd iam simulate: cannot open the store at %s: %v\n"+
			"A store that a running registryd holds cannot be opened here, and no daemon answers on its admin socket (%s): name the socket with --admin-socket PATH, or ask the daemon with --server URL (for example --server http://127.0.0.1:5000 --server-user USER, the password in $%s).\n",
			cfg.Data, err, adminsock.DefaultPath(cfg.Data), serverPasswordEnv)
		return authz.SimulationResult{}, exitError, nil
	}
	res, err := authz.Simulate(ctx, eng, who, sim)
	if cerr := eng.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close store: %w", cerr)
	}
	return res, exitOK, err
}

// simulateOnDaemon asks the daemon d (POST /admin/v1/iam/simulate,
// berth:SimulatePolicy), sending the identity file's text when one is
// given.
func simulateOnDaemon(ctx context.Context, d *daemon, identityFile string, sim authz.Simulation) (authz.SimulationResult, error) {
	body := admin.SimulationRequest{Simulation: sim}
	if identityFile != "" {
		text, err := os.ReadFile(identityFile)
		if err != nil {
			return authz.SimulationResult{}, err
		}
		body.IdentityFile = string(text)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return authz.SimulationResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var res authz.SimulationResult
	err = d.call(ctx, http.MethodPost, "iam/simulate", nil, b, &res)
	return res, err
}
