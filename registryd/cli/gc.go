package cli

// registryd gc, fsck and lifecycle: the engine's collection, check and
// lifecycle operations, on the store itself when no process holds it, or
// through the admin API of the daemon that does (docs/gc.md).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berthstore/berth/engine"
)

var (
	gcCommand = &Command{
		Name:    "gc",
		Summary: "collect unreferenced blobs (--dry-run to list them)",
		Run:     runGC,
	}
	fsckCommand = &Command{
		Name:    "fsck",
		Summary: "check a store: blob digests, references, orphans",
		Run:     runFsck,
	}
	lifecycleCommand = &Command{
		Name:    "lifecycle",
		Summary: "preview or apply a repository's lifecycle policy",
		Run:     runLifecycle,
	}
)

// DefaultOneShotIndexCache is the index block cache of the one-shot gc
// and fsck commands (--index-cache). They read the index in a few
// sequential scans, which a cache barely helps, so a small one keeps their
// RSS low: the daemon's default (64 MiB, in C memory outside the Go
// runtime's limit) was most of their peak (docs/gc.md, Memory).
const DefaultOneShotIndexCache = 8 << 20

// indexCacheFlag binds --index-cache to *n.
func indexCacheFlag(fs *flag.FlagSet, n *int64) {
	fs.Int64Var(n, "index-cache", DefaultOneShotIndexCache, "index (pebble) block cache, bytes (0: the daemon's default, 64 MiB)")
}

// tuneIndexCache returns the openTarget tune setting the cache to *n.
func tuneIndexCache(n *int64) func(*engine.Options) error {
	return func(o *engine.Options) error {
		if *n < 0 {
			return fmt.Errorf("--index-cache %d: want 0 or more bytes", *n)
		}
		o.IndexCacheSize = *n
		return nil
	}
}

func init() {
	Register(gcCommand)
	Register(fsckCommand)
	Register(lifecycleCommand)
}

// runGC runs "registryd gc [--data DIR | --server URL] [--grace D] [--dry-run] [--json]".
func runGC(ctx context.Context, env Env, args []string) int {
	fs := flagSetFor(env, args, "gc", "gc [--data DIR | --server URL] [--grace DURATION] [--dry-run] [--json]")
	var (
		grace   time.Duration
		dryRun  bool
		asJSON  bool
		uploads time.Duration
		cache   int64
	)
	t, code := openTarget(ctx, env, fs, args, func(fs *flag.FlagSet, _ *Config) {
		indexCacheFlag(fs, &cache)
		fs.DurationVar(&grace, "grace", engine.DefaultGCGrace, "spare unreferenced blobs younger than this (0: none)")
		fs.BoolVar(&dryRun, "dry-run", false, "print what would be collected, change nothing")
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		fs.DurationVar(&uploads, "upload-ttl", engine.DefaultUploadTTL, "expire upload sessions idle longer than this (0: never)")
	}, tuneIndexCache(&cache), "index-cache")
	if t == nil {
		return code
	}
	if grace < 0 || uploads < 0 {
		fmt.Fprintln(env.Stderr, "registryd gc: --grace and --upload-ttl must not be negative")
		return t.close(env, exitUsage)
	}
	var r engine.GCReport
	var err error
	if t.daemon != nil {
		q := url.Values{"dry-run": {strconv.FormatBool(dryRun)}, "grace": {grace.String()}, "upload-ttl": {uploads.String()}}
		err = t.daemon.call(ctx, http.MethodPost, "gc", q, nil, &r)
	} else {
		opts := engine.GCOptions{Grace: grace, DryRun: dryRun, UploadTTL: uploads}
		if grace == 0 {
			opts.Grace = -1
		}
		if uploads == 0 {
			opts.UploadTTL = -1
		}
		err = recordLocal(ctx, t.eng, localChange{command: "gc", action: "berth:CollectGarbage", resource: "*", dryRun: dryRun,
			parameters: map[string]string{"dryRun": strconv.FormatBool(dryRun), "grace": grace.String()}})
		if err == nil {
			r, err = t.eng.CollectGarbage(ctx, opts)
		}
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd gc:", err)
		return t.close(env, exitError)
	}
	switch {
	case asJSON:
		err = printJSON(env, r)
	case dryRun:
		if err = r.Plan.WriteText(env.Stdout); err == nil && r.ShreddedBlobs > 0 {
			_, err = fmt.Fprintf(env.Stdout, "%d crypto-shredded blobs (every key wrapping them destroyed) would be removed\n", r.ShreddedBlobs)
		}
	default:
		_, err = fmt.Fprintf(env.Stdout, "swept %d blobs (%d bytes), %d crypto-shredded blobs, %d orphan files (%d bytes), %d orphan uploads, %d expired uploads; %d spared, %d errors; mark %v, plan %v, sweep %v\n",
			r.BlobsSwept, r.BytesFreed, r.ShreddedBlobs, r.OrphanFilesRemoved, r.OrphanBytesFreed, r.OrphanUploadsRemoved, r.UploadsExpired,
			r.BlobsSpared, r.Errors, r.MarkDuration, r.PlanDuration, r.SweepDuration)
	}
	if err == nil && r.Errors > 0 {
		err = fmt.Errorf("%d items could not be collected (see the log)", r.Errors)
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd gc:", err)
		return t.close(env, exitError)
	}
	return t.close(env, exitOK)
}

// runFsck runs "registryd fsck [--data DIR | --server URL] [--sample F] [--no-verify] [--json]";
// the exit status is 1 when the store is corrupt.
func runFsck(ctx context.Context, env Env, args []string) int {
	fs := flagSetFor(env, args, "fsck", "fsck [--data DIR | --server URL] [--sample FRACTION] [--no-verify] [--json]")
	var (
		sample   float64
		noVerify bool
		asJSON   bool
		cache    int64
	)
	t, code := openTarget(ctx, env, fs, args, func(fs *flag.FlagSet, _ *Config) {
		indexCacheFlag(fs, &cache)
		fs.Float64Var(&sample, "sample", 1, "fraction of blobs whose digests are re-verified, in (0, 1]")
		fs.BoolVar(&noVerify, "no-verify", false, "check sizes and references only, read no blob")
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	}, tuneIndexCache(&cache), "index-cache")
	if t == nil {
		return code
	}
	if sample <= 0 || sample > 1 {
		fmt.Fprintln(env.Stderr, "registryd fsck: --sample must be in (0, 1]")
		return t.close(env, exitUsage)
	}
	var r *engine.FsckReport
	var err error
	if t.daemon != nil {
		q := url.Values{"verify": {strconv.FormatBool(!noVerify)}, "sample": {strconv.FormatFloat(sample, 'g', -1, 64)}}
		r = &engine.FsckReport{}
		err = t.daemon.call(ctx, http.MethodPost, "fsck", q, nil, r)
	} else {
		r, err = t.eng.Fsck(ctx, engine.FsckOptions{Verify: !noVerify, Sample: sample})
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd fsck:", err)
		return t.close(env, exitError)
	}
	if asJSON {
		err = printJSON(env, r)
	} else {
		for _, f := range r.Corrupt {
			fmt.Fprintln(env.Stdout, "CORRUPT", f)
		}
		for _, f := range r.Orphans {
			fmt.Fprintln(env.Stdout, "orphan ", f)
		}
		_, err = fmt.Fprintf(env.Stdout, "%d repositories, %d manifests, %d tags, %d links, %d blob records (%d verified, %d bytes), %d blob files, %d uploads: %d corrupt, %d orphans (%v)\n",
			r.Repositories, r.Manifests, r.Tags, r.Links, r.BlobRecords, r.Verified, r.VerifiedBytes, r.BlobFiles, r.Uploads,
			len(r.Corrupt), len(r.Orphans), r.Duration.Round(time.Millisecond))
	}
	code = exitOK
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd fsck:", err)
		code = exitError
	}
	if !r.Clean() {
		code = exitError
	}
	return t.close(env, code)
}

// runLifecycle runs "registryd lifecycle preview|apply [--data DIR | --server URL] --repo NAME
// [--policy FILE] [--json]".
func runLifecycle(ctx context.Context, env Env, args []string) int {
	const synopsis = "lifecycle preview|apply [--data DIR | --server URL] --repo NAME [--policy FILE] [--json]"
	if code, done := subcommandUsage(env, args, "lifecycle", synopsis, false); done {
		return code
	}
	sub, args := args[0], args[1:]
	if sub != "preview" && sub != "apply" {
		fmt.Fprintf(env.Stderr, "registryd lifecycle: unknown subcommand %q (want preview or apply)\n", sub)
		return exitUsage
	}
	fs := flagSetFor(env, args, "lifecycle "+sub, strings.Replace(synopsis, "preview|apply", sub, 1))
	var repo, policyFile string
	var asJSON bool
	t, code := openTarget(ctx, env, fs, args, func(fs *flag.FlagSet, _ *Config) {
		fs.StringVar(&repo, "repo", "", "repository (required)")
		fs.StringVar(&policyFile, "policy", "", "lifecycle policy JSON file; overrides the repository's stored policy")
		fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	}, nil)
	if t == nil {
		return code
	}
	if repo == "" {
		fmt.Fprintf(env.Stderr, "registryd lifecycle %s: --repo is required\n", sub)
		return t.close(env, exitUsage)
	}
	var policy string
	if policyFile != "" {
		b, err := os.ReadFile(policyFile)
		if err != nil {
			fmt.Fprintf(env.Stderr, "registryd lifecycle %s: %v\n", sub, err)
			return t.close(env, exitUsage)
		}
		policy = string(b)
	}
	var exp []engine.Expiry
	var err error
	switch {
	case t.daemon != nil:
		var body []byte
		if policy != "" {
			body = []byte(policy)
		}
		err = t.daemon.call(ctx, http.MethodPost, "lifecycle/"+sub, url.Values{"repository": {repo}}, body, &exp)
		if c := errorCode(err); c == codeInvalidArgument || c == "NOT_FOUND" {
			fmt.Fprintf(env.Stderr, "registryd lifecycle %s: %v\n", sub, err)
			return exitUsage
		}
	case sub == "preview":
		exp, err = t.eng.LifecyclePreview(ctx, repo, policy)
	default:
		err = recordLocal(ctx, t.eng, localChange{command: "lifecycle apply", action: "berth:ApplyLifecycle",
			resource: t.eng.RepositoryARN(repo), repository: repo, parameters: map[string]string{"policyOverride": strconv.FormatBool(policy != "")}})
		if err == nil {
			exp, err = t.eng.LifecycleApply(ctx, repo, policy)
		}
	}
	if err != nil {
		var pe *engine.LifecyclePolicyError
		if errors.As(err, &pe) {
			err = pe // ECR's message, unadorned
		}
		fmt.Fprintf(env.Stderr, "registryd lifecycle %s: %v\n", sub, err)
		if errors.Is(err, engine.ErrInvalidPolicy) || errors.Is(err, engine.ErrLifecyclePolicyNotFound) {
			return t.close(env, exitUsage)
		}
		return t.close(env, exitError)
	}
	if asJSON {
		if exp == nil {
			exp = []engine.Expiry{}
		}
		err = printJSON(env, struct {
			Repository string          `json:"repositoryName"`
			Results    []engine.Expiry `json:"previewResults"`
			Total      int             `json:"expiringImageTotalCount"`
		}{repo, exp, len(exp)})
	} else {
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DIGEST\tTAGS\tPUSHED\tRULE")
		for _, x := range exp {
			tags := strings.Join(x.Tags, ",")
			if tags == "" {
				tags = "<untagged>"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", x.Digest, tags, x.PushedAt.UTC().Format(time.RFC3339), x.RulePriority)
		}
		verb := "would expire"
		if sub == "apply" {
			verb = "expired"
		}
		fmt.Fprintf(tw, "%s %d images\n", verb, len(exp))
		err = tw.Flush()
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd lifecycle %s: %v\n", sub, err)
		return t.close(env, exitError)
	}
	return t.close(env, exitOK)
}
