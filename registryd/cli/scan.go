package cli

// registryd scan db import|status|rollback: the vulnerability database
// of a store no daemon holds (docs/scanning.md).

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/berthstore/berth/engine"
)

func init() { Register(scanCommand) }

var scanCommand = &Command{
	Name:    "scan",
	Summary: "import, show or roll back the vulnerability database of a store no daemon holds",
	Run:     runScan,
}

func runScan(ctx context.Context, env Env, args []string) int {
	const synopsis = "scan db import|status|rollback [flags] [FILE|DIR]"
	if len(args) < 2 || args[0] != "db" || helpRequested(args[:1]) {
		fs := flagSetFor(env, args, "scan", synopsis)
		bindStoreFlags(fs, &Config{})
		fs.Usage()
		if len(args) == 0 || !helpRequested(args[:1]) {
			return exitUsage
		}
		return exitOK
	}
	sub, args := args[1], args[2:]
	var synopsisSub string
	switch sub {
	case "import":
		synopsisSub = "scan db import [flags] FILE|DIR   (OSV zip exports, JSON records, or a directory of them)"
	case "status":
		synopsisSub = "scan db status [flags]"
	case "rollback":
		synopsisSub = "scan db rollback [flags]   (back to the version before the current one)"
	default:
		fmt.Fprintf(env.Stderr, "registryd scan db: unknown subcommand %q (want import, status or rollback)\n", sub)
		return exitUsage
	}
	fs := flagSetFor(env, args, "scan db "+sub, synopsisSub)
	// No scans run in this process: the daemon runs the re-matches an
	// import queues when it next starts.
	eng, _, code := openStoreWith(env, fs, args, nil, func(o *engine.Options) error {
		o.ScanWorkers = -1
		return nil
	})
	if eng == nil {
		return code
	}
	code = exitOK
	var err error
	switch sub {
	case "import":
		if fs.NArg() != 1 {
			fmt.Fprintln(env.Stderr, "registryd scan db import: want one FILE or DIR")
			return closeStore(env, eng, exitUsage)
		}
		start := time.Now()
		var imp *engine.VulnImport
		if imp, err = eng.ImportVulnerabilities(ctx, fs.Arg(0)); err == nil {
			if imp.Changed {
				fmt.Fprintf(env.Stdout, "imported version %d: %s in %v; %d images queued for a re-match\n",
					imp.Version.Version, counts(imp.Version), time.Since(start).Round(time.Millisecond), imp.Rematched)
			} else {
				fmt.Fprintf(env.Stdout, "unchanged: the data equals version %d (%d records); nothing imported\n", imp.Version.Version, imp.Version.Records)
			}
		}
	case "status":
		var st engine.VulnDatabaseStatus
		if st, err = eng.VulnDatabaseStatus(ctx); err == nil {
			printVersion(env, "current", st.Current)
			printVersion(env, "previous", st.Previous)
			var n int
			if n, err = eng.ScanQueue(ctx); err == nil {
				fmt.Fprintf(env.Stdout, "scan queue: %d jobs\n", n)
			}
		}
	case "rollback":
		var v *engine.VulnDatabaseVersion
		if v, err = eng.RollbackVulnDatabase(ctx); err == nil {
			fmt.Fprintf(env.Stdout, "rolled back to version %d (%s)\n", v.Version, counts(*v))
		}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd scan db %s: %v\n", sub, err)
		code = exitError
	}
	return closeStore(env, eng, code)
}

// counts describes a version's records: the total, withdrawn, and the
// package entries by ecosystem.
func counts(v engine.VulnDatabaseVersion) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records", v.Records)
	if v.Withdrawn > 0 {
		fmt.Fprintf(&b, " (%d withdrawn)", v.Withdrawn)
	}
	ecos := make([]string, 0, len(v.Ecosystems))
	for e := range v.Ecosystems {
		ecos = append(ecos, e)
	}
	sort.Strings(ecos)
	for i, e := range ecos {
		if i == 0 {
			b.WriteString("; package entries: ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", e, v.Ecosystems[e])
	}
	return b.String()
}

func printVersion(env Env, label string, v *engine.VulnDatabaseVersion) {
	if v == nil {
		fmt.Fprintf(env.Stdout, "%s: none\n", label)
		return
	}
	fmt.Fprintf(env.Stdout, "%s: version %d, imported %s from %s, %s, digest %s\n",
		label, v.Version, v.ImportedAt.Format(time.RFC3339), v.Source, counts(*v), v.Digest)
}
