package cli

// registryd scan db import|status|rollback: the vulnerability database
// of a store, on the store itself when no process holds it, or through
// the admin API of the daemon that does (its admin socket, or --server;
// docs/scanning.md).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/admin"
)

func init() { Register(scanCommand) }

var scanCommand = &Command{
	Name:    "scan",
	Summary: "import, show or roll back the vulnerability database (of the store, or of the daemon holding it)",
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
	t, code := parseTarget(env, fs, args, nil)
	if t == nil {
		return code
	}
	switch {
	case sub == "import" && fs.NArg() != 1:
		fmt.Fprintln(env.Stderr, "registryd scan db import: want one FILE or DIR")
		return exitUsage
	case sub != "import" && fs.NArg() > 0:
		fmt.Fprintf(env.Stderr, "registryd scan db %s: unexpected argument %q\n", sub, fs.Arg(0))
		return exitUsage
	}
	path := fs.Arg(0)
	// No scans run in a process that opens the store for one command
	// (EngineOptions): the daemon runs the re-matches an import queues
	// when it next starts.
	if code := t.open(ctx, env, fs, nil); code != exitOK {
		return code
	}
	if t.daemon != nil {
		return scanDBLive(ctx, env, t.daemon, sub, path)
	}
	eng := t.eng
	var err error
	switch sub {
	case "import":
		start := time.Now()
		var imp *engine.VulnImport
		if imp, err = eng.ImportVulnerabilities(ctx, path); err == nil {
			printImport(env, imp, time.Since(start))
		}
	case "status":
		var st engine.VulnDatabaseStatus
		if st, err = eng.VulnDatabaseStatus(ctx); err == nil {
			var n int
			if n, err = eng.ScanQueue(ctx); err == nil {
				printStatus(env, st.Current, st.Previous, n)
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
	return t.close(env, code)
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

func printImport(env Env, imp *engine.VulnImport, took time.Duration) {
	if imp.Changed {
		fmt.Fprintf(env.Stdout, "imported version %d: %s in %v; %d images queued for a re-match\n",
			imp.Version.Version, counts(imp.Version), took.Round(time.Millisecond), imp.Rematched)
		return
	}
	fmt.Fprintf(env.Stdout, "unchanged: the data equals version %d (%d records); nothing imported\n", imp.Version.Version, imp.Version.Records)
}

func printStatus(env Env, cur, prev *engine.VulnDatabaseVersion, queue int) {
	printVersion(env, "current", cur)
	printVersion(env, "previous", prev)
	fmt.Fprintf(env.Stdout, "scan queue: %d jobs\n", queue)
}

// scanDBLive runs a scan db subcommand through the admin API of the
// daemon holding the store (its admin socket, or --server). An import's
// FILE|DIR is read by the daemon: a relative path is made absolute here
// when the daemon is on this host (its admin socket), and must be
// absolute with --server.
func scanDBLive(ctx context.Context, env Env, d *daemon, sub, path string) int {
	var err error
	switch sub {
	case "import":
		if !filepath.IsAbs(path) {
			if !d.socket {
				fmt.Fprintln(env.Stderr, "registryd scan db import --server: FILE|DIR must be an absolute path on the daemon's host")
				return exitUsage
			}
			if path, err = filepath.Abs(path); err != nil {
				fmt.Fprintln(env.Stderr, "registryd scan db import:", err)
				return exitError
			}
		}
		body, merr := json.Marshal(admin.ScanImportRequest{Path: path})
		if merr != nil {
			fmt.Fprintln(env.Stderr, "registryd scan db import:", merr)
			return exitError
		}
		start := time.Now()
		var imp engine.VulnImport
		if err = d.call(ctx, http.MethodPost, "scan/db/import", nil, body, &imp); err == nil {
			printImport(env, &imp, time.Since(start))
		}
	case "status":
		var st admin.ScanDatabaseStatus
		if err = d.call(ctx, http.MethodGet, "scan/db/status", nil, nil, &st); err == nil {
			printStatus(env, st.Current, st.Previous, st.Queue)
		}
	case "rollback":
		var v engine.VulnDatabaseVersion
		if err = d.call(ctx, http.MethodPost, "scan/db/rollback", nil, nil, &v); err == nil {
			fmt.Fprintf(env.Stdout, "rolled back to version %d (%s)\n", v.Version, counts(v))
		}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd scan db %s: %v\n", sub, err)
		return exitError
	}
	return exitOK
}
