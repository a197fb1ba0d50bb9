package cli

// registryd replication status|retry: the replication queue and an
// image's replication status, of a store no daemon holds (--data) or of
// the daemon holding it (admin socket, --server); the given-up jobs queued
// again. docs/replication.md.

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/admin"
)

var replicationCommand = &Command{
	Name:    "replication",
	Summary: "show the replication queue or an image's replication status; retry the replications given up",
	Run:     runReplication,
}

func init() { Register(replicationCommand) }

// replicationFlags are the replication command's own flags.
type replicationFlags struct {
	dest, repo, ref string
	failed, asJSON  bool
	limit           int
}

func runReplication(ctx context.Context, env Env, args []string) int {
	const synopsis = "replication status|retry [flags]"
	if len(args) == 0 || helpRequested(args[:1]) {
		fmt.Fprintf(env.Stdout, "Usage: registryd %s\n\n", synopsis)
		fmt.Fprintln(env.Stdout, "  status  the queue by destination and its jobs (--failed: the given-up ones); with --repository and --reference, one image's status at each destination")
		fmt.Fprintln(env.Stdout, "  retry   queue the given-up replications again (--destination: one destination's)")
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub, args := args[0], args[1:]
	if sub != "status" && sub != "retry" {
		fmt.Fprintf(env.Stderr, "registryd replication: unknown subcommand %q (want status or retry)\n", sub)
		return exitUsage
	}
	f := &replicationFlags{}
	fs := flagSetFor(env, args, "replication "+sub, "replication "+sub+" [flags]")
	t, code := parseTarget(env, fs, args, func(fs *flag.FlagSet, _ *Config) {
		fs.StringVar(&f.dest, "destination", "", "one destination's (<registryId>/<region>)")
		if sub == "status" {
			fs.BoolVar(&f.failed, "failed", false, "only the jobs given up (FAILED)")
			fs.IntVar(&f.limit, "limit", 0, "list at most this many jobs (0: all)")
			fs.StringVar(&f.repo, "repository", "", "with --reference: the image's repository")
			fs.StringVar(&f.ref, "reference", "", "with --repository: the image's tag or digest")
			fs.BoolVar(&f.asJSON, "json", false, "print JSON")
		}
	})
	if t == nil {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "registryd replication %s: unexpected argument %q\n", sub, fs.Arg(0))
		return exitUsage
	}
	if (f.repo == "") != (f.ref == "") {
		fmt.Fprintln(env.Stderr, "registryd replication status: --repository and --reference go together")
		return exitUsage
	}
	if f.dest != "" {
		if _, err := engine.ParseReplicationDestination(f.dest); err != nil {
			fmt.Fprintln(env.Stderr, "registryd replication:", err)
			return exitUsage
		}
	}
	if code := t.open(ctx, env, fs, nil); code != exitOK {
		return code
	}
	var err error
	switch {
	case sub == "retry":
		err = replicationRetry(ctx, env, t, f)
	case f.repo != "":
		err = replicationImageStatus(ctx, env, t, f)
	default:
		err = replicationQueue(ctx, env, t, f)
	}
	code = exitOK
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd replication %s: %v\n", sub, err)
		code = exitError
	}
	return t.close(env, code)
}

func replicationQueue(ctx context.Context, env Env, t *storeTarget, f *replicationFlags) error {
	var out admin.ReplicationJobs
	if t.daemon != nil {
		q := url.Values{}
		if f.dest != "" {
			q.Set(admin.ReplicationDestination, f.dest)
		}
		if f.failed {
			q.Set(admin.ReplicationFailed, "true")
		}
		if f.limit > 0 {
			q.Set(admin.ReplicationLimit, strconv.Itoa(f.limit))
		}
		if err := t.daemon.call(ctx, http.MethodGet, "replication/jobs", q, nil, &out); err != nil {
			return err
		}
	} else {
		out = admin.ReplicationJobs{Destinations: t.eng.ReplicationFigures(), Jobs: []engine.ReplicationJobListing{}}
		err := t.eng.ListReplicationJobs(ctx, f.dest, f.failed, f.limit, func(l engine.ReplicationJobListing) error {
			out.Jobs = append(out.Jobs, l)
			return nil
		})
		if err != nil {
			return err
		}
	}
	if f.asJSON {
		return printJSON(env, out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DESTINATION\tPENDING\tFAILED")
	for _, d := range out.Destinations {
		if f.dest == "" || d.Destination.String() == f.dest {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", d.Destination, d.Pending, d.Failed)
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "DESTINATION\tREPOSITORY\tREFERENCE\tDIGEST\tQUEUED\tATTEMPTS\tSTATE\tLAST ERROR")
	for _, j := range out.Jobs {
		state := "queued"
		switch {
		case j.Failed:
			state = "FAILED " + j.FailureCode
		case !j.NextAttempt.IsZero():
			state = "retry at " + j.NextAttempt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", j.Destination, j.Repository, j.Reference, j.Digest,
			j.QueuedAt.UTC().Format(time.RFC3339), j.Attempts, state, j.LastError)
	}
	return tw.Flush()
}

func replicationImageStatus(ctx context.Context, env Env, t *storeTarget, f *replicationFlags) error {
	var out admin.ReplicationImageStatus
	if t.daemon != nil {
		q := url.Values{admin.ReplicationRepository: {f.repo}, admin.ReplicationReference: {f.ref}}
		if err := t.daemon.call(ctx, http.MethodGet, "replication/status", q, nil, &out); err != nil {
			return err
		}
	} else {
		d, st, err := t.eng.ImageReplicationStatuses(ctx, f.repo, f.ref)
		if err != nil {
			return err
		}
		if st == nil {
			st = []engine.ImageReplicationStatus{}
		}
		out = admin.ReplicationImageStatus{Repository: f.repo, Digest: d, Statuses: st}
	}
	if f.asJSON {
		return printJSON(env, out)
	}
	fmt.Fprintf(env.Stdout, "%s@%s\n", out.Repository, out.Digest)
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DESTINATION\tSTATUS\tFAILURE CODE\tUPDATED\tREASON")
	for _, s := range out.Statuses {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Destination, s.Status, s.FailureCode, s.UpdatedAt.UTC().Format(time.RFC3339), s.FailureReason)
	}
	return tw.Flush()
}

func replicationRetry(ctx context.Context, env Env, t *storeTarget, f *replicationFlags) error {
	var n int
	if t.daemon != nil {
		q := url.Values{}
		if f.dest != "" {
			q.Set(admin.ReplicationDestination, f.dest)
		}
		var res admin.RetryResult
		if err := t.daemon.call(ctx, http.MethodPost, "replication/retry", q, nil, &res); err != nil {
			return err
		}
		n = res.Retried
	} else {
		var dest *engine.ReplicationDestination
		params := map[string]string{}
		if f.dest != "" {
			d, err := engine.ParseReplicationDestination(f.dest)
			if err != nil {
				return err
			}
			dest = &d
			params["destination"] = f.dest
		}
		if err := recordLocal(ctx, t.eng, localChange{command: "replication retry", action: "berth:RetryReplication", resource: "*", parameters: params}); err != nil {
			return err
		}
		var err error
		if n, err = t.eng.RetryReplication(ctx, dest); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.Stdout, "%d replications queued again\n", n)
	return nil
}
