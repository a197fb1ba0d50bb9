package cli

// registryd scan db import|status|rollback: the vulnerability database
// of a store no daemon holds (docs/scanning.md).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
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
	var remote remoteFlags
	cfg, err := parseFlags(fs, args, func(fs *flag.FlagSet, c *Config) {
		bindStoreFlags(fs, c)
		remote.bind(fs, "ask this daemon (http://HOST:PORT) through its admin API (/admin/v1/scan/db/...) instead of opening a store (--data); an import's FILE|DIR is then a path on the daemon's host")
	})
	if err != nil {
		if errors.Is(err, ErrConfig) {
			fmt.Fprintln(env.Stderr, "registryd:", err)
			return exitUsage
		}
		return flagExit(err)
	}
	if sub == "import" && fs.NArg() != 1 {
		fmt.Fprintln(env.Stderr, "registryd scan db import: want one FILE or DIR")
		return exitUsage
	}
	if remote.server != "" {
		return scanDBRemote(ctx, env, &remote, sub, fs.Arg(0))
	}
	opts, err := cfg.EngineOptions()
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd:", err)
		return exitUsage
	}
	// No scans run in this process: the daemon runs the re-matches an
	// import queues when it next starts.
	opts.ScanWorkers = -1
	eng, err := engine.Open(cfg.Data, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd: open store %s: %v (is a daemon serving it? then use --server)\n", cfg.Data, err)
		return exitError
	}
	code := exitOK
	switch sub {
	case "import":
		start := time.Now()
		var imp *engine.VulnImport
		if imp, err = eng.ImportVulnerabilities(ctx, fs.Arg(0)); err == nil {
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

// remoteFlags name a daemon and the user to call its admin API as.
type remoteFlags struct {
	server, username string
	passwordStdin    bool
}

func (f *remoteFlags) bind(fs *flag.FlagSet, serverUsage string) {
	fs.StringVar(&f.server, "server", "", serverUsage)
	fs.StringVar(&f.username, "username", "", "with --server: the user to authenticate as (password from the BERTH_PASSWORD environment variable, or --password-stdin)")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "with --server: read the password from stdin")
}

// call sends one admin API request and decodes its JSON answer into out.
func (f *remoteFlags) call(ctx context.Context, env Env, method, path string, body any, out any) error {
	base := strings.TrimSuffix(f.server, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+admin.Prefix+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "registryd-scan")
	if f.username != "" {
		pass := os.Getenv("BERTH_PASSWORD")
		if f.passwordStdin {
			b, err := io.ReadAll(io.LimitReader(env.Stdin, 4096))
			if err != nil {
				return fmt.Errorf("reading the password: %w", err)
			}
			pass = strings.TrimRight(string(b), "\r\n")
		}
		req.SetBasicAuth(f.username, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, out)
}

// scanDBRemote runs a scan db subcommand through a daemon's admin API.
func scanDBRemote(ctx context.Context, env Env, f *remoteFlags, sub, path string) int {
	var err error
	switch sub {
	case "import":
		if !filepath.IsAbs(path) {
			fmt.Fprintln(env.Stderr, "registryd scan db import --server: FILE|DIR must be an absolute path on the daemon's host")
			return exitUsage
		}
		start := time.Now()
		var imp engine.VulnImport
		if err = f.call(ctx, env, http.MethodPost, "scan/db/import", admin.ScanImportRequest{Path: path}, &imp); err == nil {
			printImport(env, &imp, time.Since(start))
		}
	case "status":
		var st admin.ScanDatabaseStatus
		if err = f.call(ctx, env, http.MethodGet, "scan/db/status", nil, &st); err == nil {
			printStatus(env, st.Current, st.Previous, st.Queue)
		}
	case "rollback":
		var v engine.VulnDatabaseVersion
		if err = f.call(ctx, env, http.MethodPost, "scan/db/rollback", nil, &v); err == nil {
			fmt.Fprintf(env.Stdout, "rolled back to version %d (%s)\n", v.Version, counts(v))
		}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd scan db %s: %v\n", sub, err)
		return exitError
	}
	return exitOK
}
